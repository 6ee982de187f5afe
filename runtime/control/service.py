"""The five event-source-mapping operations over the store and the mapping workers.

Requests are checked with the same validator as ``kafka-esm run`` (runtime.definition), so a
bad field gets the same message whichever way the mapping arrives; AWS's error types and
status codes wrap them (runtime.control.lambda_api). The store owns what is configured,
each :class:`MappingWorker` what is running.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid as uuid_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from runtime.control.functions import (
    FunctionTarget,
    aws_function_problem,
    function_arn,
    function_name_of,
)
from runtime.control.lambda_api import (
    ApiError,
    ApiRequest,
    create_only_members,
    invalid,
    not_found,
)
from runtime.control.store import MappingStore, StoredMapping
from runtime.control.supervisor import MappingWorker, Observed, PollerCommand, Wanted
from runtime.definition.model import (
    EventSourceMapping,
    MappingValidationError,
    parse_mapping,
    to_request,
)
from runtime.observability.state import State

log = logging.getLogger("runtime.control.service")

ACCOUNT: Final = "000000000000"
"""The account ARNs name: there is none locally (the same placeholder LocalStack uses)."""
DEFAULT_MAX_ITEMS: Final = 100
PRELOAD_REGION: Final = "us-east-1"
"""The region in the ARNs of ``--mappings`` files (a request names none)."""
CREATE_ONLY_KAFKA_FIELDS: Final = ("ConsumerGroupId", "ConsumptionMode")
"""SelfManagedKafkaEventSourceConfig members AWS sets at creation only (the model's Update
takes the structure for SchemaRegistryConfig)."""
_TRANSITIONAL: Final = frozenset({State.CREATING, State.UPDATING, State.DELETING})
FunctionResolver = Callable[[str, str], FunctionTarget | None]
"""(FunctionName, region) -> how to invoke it, or None when no such function exists."""


@dataclass(frozen=True)
class Functions:
    """``--function``/``--functions`` targets; unmapped names are looked up in AWS."""

    targets: Mapping[str, FunctionTarget]
    aws_lookup: bool = True

    def resolve(self, name_or_arn: str, region: str) -> FunctionTarget:
        """The target, or InvalidParameterValueException "Function does not exist", AWS's
        answer to CreateEventSourceMapping for an unknown function (HTTP 400)."""
        target = self.targets.get(function_name_of(name_or_arn))
        if target is not None:
            return target
        why = aws_function_problem(name_or_arn, region) if self.aws_lookup else "lookup disabled"
        if why is None:
            return FunctionTarget()
        known = ", ".join(sorted(self.targets)) or "none"
        raise invalid(
            f"Function does not exist: {function_arn(name_or_arn, region, ACCOUNT)} (not given with"
            f" --function/--functions, whose functions are: {known}; AWS Lambda: {why})"
        )


class MappingService:
    """Create, Get, List, Update, Delete; one instance per ``serve``."""

    def __init__(
        self,
        store: MappingStore,
        functions: Functions,
        command: PollerCommand,
        state_dir: Path,
    ) -> None:
        self._store = store
        self._functions = functions
        self._command = command
        self._mappings_dir = state_dir / "mappings"
        self._lock = threading.Lock()
        self._workers: dict[str, MappingWorker] = {}
        self._generation = 0

    # -- lifecycle -------------------------------------------------------------------------
    def resume(self) -> int:
        """Bring back every stored mapping (same UUID, same group); finish interrupted
        deletes. Returns how many run again."""
        count = 0
        for stored in self._store.all():
            if stored.deleting:
                self._store.remove(stored.uuid)
                continue
            name = stored.request["FunctionName"]
            target = self._functions.targets.get(function_name_of(name))
            if target is None:
                log.warning("%s: %s is not given with --function: AWS Lambda", stored.uuid, name)
            self._start_worker(stored, target or FunctionTarget(), State.ENABLING)
            count += 1
        return count

    def shutdown(self) -> None:
        """Stop every poller gracefully (in parallel); the mappings stay stored."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.shutdown()
        for worker in workers:
            worker.join()

    def health(self) -> dict[str, Any]:
        """``GET /health``: ready, with the count of mappings per State."""
        states: dict[str, int] = {}
        for worker in self.workers().values():
            state = worker.observed().state.value
            states[state] = states.get(state, 0) + 1
        return {"status": "ready", "mappings": sum(states.values()), "states": states}

    def handle(self, request: ApiRequest) -> dict[str, Any]:
        """Carry out one operation; ApiError for what AWS refuses."""
        handler = {
            "CreateEventSourceMapping": self.create,
            "GetEventSourceMapping": self.get,
            "ListEventSourceMappings": self.list_mappings,
            "UpdateEventSourceMapping": self.update,
            "DeleteEventSourceMapping": self.delete,
        }[request.operation]
        return handler(request.params, request.region)

    # -- operations ------------------------------------------------------------------------
    def create(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        """CreateEventSourceMapping."""
        if "UUID" in params:
            raise invalid("UUID: is not a field of CreateEventSourceMapping (Lambda assigns it)")
        return self._create({**params, "UUID": str(uuid_module.uuid4())}, region)

    def preload(self, source: Path, mapping: EventSourceMapping) -> bool:
        """``--mappings``: create ``mapping`` under its own UUID (given or derived) unless
        it is stored already; True when it was created."""
        if self._store.get(mapping.uuid) is not None:
            return False
        log.info("creating %s from %s", mapping.uuid, source)
        request = {**to_request(mapping, include_uuid=False), "UUID": mapping.uuid}
        self._create(request, PRELOAD_REGION)
        return True

    def _create(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        mapping_id = str(request["UUID"])
        _checked(request)
        target = self._functions.resolve(request["FunctionName"], region)
        with self._lock:
            self._refuse_group_conflict(request, mapping_id)
            stored = self._store.add(mapping_id, request, region)
            worker = self._start_worker(stored, target, State.CREATING)
        return self._describe(stored, worker.observed())

    def get(self, params: dict[str, Any], _region: str) -> dict[str, Any]:
        """GetEventSourceMapping."""
        stored, worker = self._find(params["UUID"])
        return self._describe(stored, worker.observed())

    def list_mappings(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        """ListEventSourceMappings: filters, then Marker/MaxItems paging in creation order."""
        after = _marker_seq(params.get("Marker"))
        limit = params.get("MaxItems", DEFAULT_MAX_ITEMS)
        function = params.get("FunctionName")
        source_arn = params.get("EventSourceArn")
        matching = [
            s
            for s in self._store.all()
            if s.seq > after
            and (function is None or _same_function(s.request["FunctionName"], function))
            and source_arn is None  # a self-managed Kafka mapping has no EventSourceArn
        ]
        page = matching[:limit]
        answer: dict[str, Any] = {
            "EventSourceMappings": [self._describe(s, self._observed(s.uuid)) for s in page]
        }
        if len(matching) > limit:
            answer["NextMarker"] = _marker(page[-1].seq)
        return answer

    def update(self, params: dict[str, Any], _region: str) -> dict[str, Any]:
        """UpdateEventSourceMapping: create-only fields refused, the rest validated merged
        into the stored request, applied by restarting the poller."""
        changes = {k: v for k, v in params.items() if k != "UUID"}
        _refuse_create_only(changes)
        with self._lock:
            stored, worker = self._find(params["UUID"])
            current = worker.observed().state
            if current in _TRANSITIONAL:
                raise _busy(current, "update")
            request = _checked(_merged(stored.request, changes))
            target = self._target_for(request, stored, changes)
            updated = self._store.replace_request(stored.uuid, request)
            assert updated is not None
            was, now = bool(stored.request.get("Enabled", True)), bool(request.get("Enabled", True))
            state = State.UPDATING if was == now else (State.ENABLING if now else State.DISABLING)
            worker.want(Wanted(request, target, self._next_generation()), state)
        return self._describe(updated, worker.observed())

    def delete(self, params: dict[str, Any], _region: str) -> dict[str, Any]:
        """DeleteEventSourceMapping: Deleting now, gone once the poller stopped."""
        with self._lock:
            stored, worker = self._find(params["UUID"])
            current = worker.observed().state
            if current in _TRANSITIONAL:
                raise _busy(current, "delete")
            self._store.mark_deleting(stored.uuid)
            wanted = Wanted(stored.request, FunctionTarget(), self._next_generation(), deleted=True)
            worker.want(wanted, State.DELETING)
        return self._describe(stored, worker.observed())

    # -- helpers ---------------------------------------------------------------------------
    def _target_for(
        self, request: dict[str, Any], stored: StoredMapping, changes: Mapping[str, Any]
    ) -> FunctionTarget:
        name = request["FunctionName"]
        if "FunctionName" in changes and not _same_function(stored.request["FunctionName"], name):
            return self._functions.resolve(name, stored.region)
        return self._functions.targets.get(function_name_of(name)) or FunctionTarget()

    def _start_worker(
        self, stored: StoredMapping, target: FunctionTarget, state: State
    ) -> MappingWorker:
        wanted = Wanted(stored.request, target, self._next_generation())
        worker = MappingWorker(
            stored.uuid,
            self._mappings_dir / stored.uuid,
            wanted,
            self._command,
            state=state,
            on_deleted=self._forget,
        )
        self._workers[stored.uuid] = worker
        worker.start()
        return worker

    def _forget(self, mapping_id: str) -> None:
        with self._lock:
            self._store.remove(mapping_id)
            self._workers.pop(mapping_id, None)
        log.info("mapping %s deleted", mapping_id)

    def _next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def _find(self, mapping_id: str) -> tuple[StoredMapping, MappingWorker]:
        stored = self._store.get(mapping_id)
        worker = self._workers.get(mapping_id)
        if stored is None or worker is None:
            raise not_found(f"The resource you requested does not exist. (UUID {mapping_id})")
        return stored, worker

    def _observed(self, mapping_id: str) -> Observed:
        worker = self._workers.get(mapping_id)
        return worker.observed() if worker else Observed(State.DELETING, "User action", "")

    def workers(self) -> dict[str, MappingWorker]:
        """The workers by UUID: `health` counts their States."""
        with self._lock:
            return dict(self._workers)

    def _refuse_group_conflict(self, request: Mapping[str, Any], mapping_id: str) -> None:
        group = _group_of(request)
        for other in self._store.all():
            if other.uuid != mapping_id and _group_of(other.request) == group:
                raise ApiError(
                    "ResourceConflictException",
                    f"SelfManagedKafkaEventSourceConfig.ConsumerGroupId: {group!r} is already"
                    f" used by event source mapping {other.uuid}; a consumer group id must be"
                    " unique",
                )

    def _describe(self, stored: StoredMapping, observed: Observed) -> dict[str, Any]:
        """The EventSourceMappingConfiguration AWS answers with, defaults filled in."""
        request = stored.request
        mapping = parse_mapping(request)
        answer = to_request(mapping, include_uuid=False)
        answer.pop("Enabled", None)
        answer.pop("Tags", None)
        answer["BatchSize"] = mapping.batch_size
        kafka = answer.setdefault("SelfManagedKafkaEventSourceConfig", {})
        kafka.setdefault("ConsumerGroupId", mapping.consumer_group_id)
        answer.update(
            UUID=stored.uuid,
            FunctionArn=function_arn(mapping.function_name, stored.region, ACCOUNT),
            EventSourceMappingArn=(
                f"arn:aws:lambda:{stored.region}:{ACCOUNT}:event-source-mapping:{stored.uuid}"
            ),
            LastModified=stored.last_modified,
            State=observed.state.value,
            StateTransitionReason=observed.reason,
            LastProcessingResult=observed.last_processing_result,
        )
        return answer


def _checked(request: dict[str, Any]) -> dict[str, Any]:
    """The request, or InvalidParameterValueException with the validator's messages."""
    try:
        parse_mapping(request)
    except MappingValidationError as exc:
        count = len(exc.problems)
        details = "; ".join(str(p) for p in exc.problems)
        plural = "s" if count > 1 else ""
        raise invalid(f"{count} validation error{plural} detected: {details}") from None
    return request


def _refuse_create_only(changes: Mapping[str, Any]) -> None:
    fixed = sorted(set(changes) & create_only_members())
    kafka = changes.get("SelfManagedKafkaEventSourceConfig")
    if isinstance(kafka, Mapping):
        fixed += [
            f"SelfManagedKafkaEventSourceConfig.{name}"
            for name in CREATE_ONLY_KAFKA_FIELDS
            if name in kafka
        ]
    if fixed:
        raise invalid(
            f"{', '.join(fixed)}: set when the event source mapping is created and cannot be"
            " updated; delete the mapping and create a new one to change it"
        )


def _merged(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Update semantics: given top-level fields replace the stored ones; the Kafka config's
    create-only members stay."""
    merged = {**stored, **changes}
    if "SelfManagedKafkaEventSourceConfig" in changes:
        kept = {
            k: v
            for k, v in stored.get("SelfManagedKafkaEventSourceConfig", {}).items()
            if k in CREATE_ONLY_KAFKA_FIELDS
        }
        merged["SelfManagedKafkaEventSourceConfig"] = {
            **changes["SelfManagedKafkaEventSourceConfig"],
            **kept,
        }
    return merged


def _busy(state: State, action: str) -> ApiError:
    if state is State.UPDATING and action == "update":
        return ApiError(
            "ResourceConflictException",
            "The operation cannot be performed at this time. The event source mapping is"
            " currently in the Updating state; retry once it is Enabled or Disabled.",
        )
    return ApiError(
        "ResourceInUseException",
        f"Cannot {action} the event source mapping while it is {state.value}; retry once it"
        " is Enabled or Disabled.",
    )


def _group_of(request: Mapping[str, Any]) -> str:
    kafka = request.get("SelfManagedKafkaEventSourceConfig", {})
    return str(kafka.get("ConsumerGroupId") or request["UUID"])


def _same_function(stored: str, asked: str) -> bool:
    return function_name_of(stored) == function_name_of(asked)


def _marker(seq: int) -> str:
    return base64.urlsafe_b64encode(f"kafka-esm:{seq}".encode()).decode()


def _marker_seq(marker: str | None) -> int:
    if marker is None:
        return 0
    try:
        prefix, _, seq = base64.urlsafe_b64decode(marker.encode()).decode().partition(":")
        if prefix != "kafka-esm":
            raise ValueError
        return int(seq)
    except ValueError:
        raise invalid(f"Marker: {marker!r} is not a NextMarker this server gave") from None
