"""Run a mapping in the test's own process, with a Python handler, and watch it.

``run_mapping`` builds the poller exactly as ``kafka-esm run`` does (the launcher, the
mapping's security and on-failure destination), so boto3 clients it makes for Secrets
Manager, SQS, SNS or S3 are made inside the test and pick up moto's ``mock_aws``. The
poller runs on a background thread; the handle waits for what the handler received,
reports the counters and AWS's status fields, and stops the poller cleanly (in-flight
batches finish and their offsets are committed).
"""

from __future__ import annotations

import base64
import contextlib
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from runtime.cli.launcher import InvokeTarget, LaunchOptions, build_poller
from runtime.definition.model import EventSourceMapping, parse_mapping
from runtime.invokers import MAX_TIMEOUT_S, LocalHandlerInvoker, load_handler
from runtime.observability.state import MappingStopped, State, StatusSnapshot
from runtime.pipeline.failures import RetryBackoff
from runtime.pipeline.poller import Poller, PollerOptions
from runtime.security.plan import SecurityOptions

__all__ = ["MappingRun", "run_mapping"]

Handler = Callable[[dict[str, Any], Any], Any]

FAST_RETRY = RetryBackoff(first_s=0.01, cap_s=0.1)
"""Retries in tests wait milliseconds, not AWS's seconds: a failing test fails fast."""


@dataclass(frozen=True)
class HandlerError:
    """An exception the handler raised, with the traceback the test output shows."""

    error: BaseException
    traceback: str


class _Recorder:
    """Wraps the handler: keeps every event and every exception, wakes waiters."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._changed = threading.Condition()
        self.events: list[dict[str, Any]] = []
        self.errors: list[HandlerError] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        try:
            return self._handler(event, context)
        except BaseException as exc:
            with self._changed:
                self.errors.append(HandlerError(exc, traceback.format_exc()))
                self._changed.notify_all()
            raise

    def wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout=timeout_s)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def seen(self) -> tuple[list[dict[str, Any]], list[HandlerError]]:
        """The events and errors so far, read together."""
        with self._changed:
            return list(self.events), list(self.errors)


class MappingRun:
    """A mapping running on a background thread; a context manager that stops it."""

    def __init__(self, poller: Poller, recorder: _Recorder) -> None:
        self.poller = poller
        self._recorder = recorder
        self.error: BaseException | None = None
        """What ended the poller early (``MappingStopped`` when AWS would disable it)."""
        self._thread = threading.Thread(target=self._run, name="kafka-esm-test-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.poller.run()
        except BaseException as exc:  # reported by wait_for and stop
            self.error = exc
        finally:
            self._recorder.wake()

    # -- what happened -------------------------------------------------------------------
    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event the handler received, retries included, in order."""
        return self._recorder.seen()[0]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record of every event, flattened, in delivery order."""
        return [r for e in self.events for group in e["records"].values() for r in group]

    def values(self) -> list[bytes | None]:
        """The decoded value of every delivered record (None for a tombstone)."""
        return [base64.b64decode(r["value"]) if "value" in r else None for r in self.records]

    @property
    def handler_errors(self) -> list[HandlerError]:
        """Exceptions the handler raised, with their tracebacks."""
        return self._recorder.seen()[1]

    @property
    def counters(self) -> dict[str, int]:
        """AWS's event counts by metric name (``InvokedEventCount``, ``CommittedEventCount``)."""
        return {metric.value: n for metric, n in self.poller.counters.snapshot().items()}

    @property
    def status(self) -> StatusSnapshot:
        """State, StateTransitionReason and LastProcessingResult, as GetEventSourceMapping."""
        return self.poller.status.snapshot()

    @property
    def state(self) -> State:
        """The mapping's State (``Enabled`` while it runs)."""
        return self.status.state

    @property
    def last_processing_result(self) -> str:
        """``OK``, ``No records processed`` or ``PROBLEM: ...``."""
        return self.status.last_processing_result

    # -- waiting and stopping ------------------------------------------------------------
    def wait_for(
        self,
        records: int | None = None,
        *,
        invocations: int | None = None,
        until: Callable[[MappingRun], bool] | None = None,
        timeout: float = 30.0,
    ) -> MappingRun:
        """Block until the handler has received ``records`` distinct records (retries
        count once), ``invocations`` events, and ``until(self)`` holds; AssertionError
        with what did happen (and the handler's tracebacks) on timeout or early stop."""

        def met() -> bool:
            if records is not None and len(self._distinct()) < records:
                return False
            if invocations is not None and len(self._recorder.events) < invocations:
                return False
            return until is None or until(self)

        def done() -> bool:
            return met() or not self._thread.is_alive()

        self._recorder.wait(done, timeout)
        if not met():
            wanted = _wanted(records, invocations, until)
            why = "the poller stopped" if not self._thread.is_alive() else f"{timeout:g} s passed"
            raise AssertionError(f"{why} before {wanted}\n{self.describe()}")
        return self

    def _distinct(self) -> set[tuple[str, int]]:
        events = self._recorder.seen()[0]
        return {
            (k, r["offset"]) for e in events for k, group in e["records"].items() for r in group
        }

    def describe(self) -> str:
        """What the run did so far: counts, status, the poller's error, handler tracebacks."""
        status = self.status
        lines = [
            f"  events received: {len(self.events)}, distinct records: {len(self._distinct())}",
            f"  State: {status.state.value}, StateTransitionReason: "
            f"{status.state_transition_reason.value}, LastProcessingResult: "
            f"{status.last_processing_result}",
            "  counters: " + ", ".join(f"{k}={v}" for k, v in self.counters.items() if v),
        ]
        if self.error is not None:
            lines.append(f"  poller stopped by: {self.error!r}")
        for error in self.handler_errors[-3:]:
            lines.append("  the handler raised:\n" + _indent(error.traceback))
        return "\n".join(lines)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop gracefully: in-flight batches finish and offsets are committed. Raises the
        poller's own error, if one ended it, other than AWS's MappingStopped (see
        ``error`` and ``status`` for that)."""
        self.poller.stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the poller did not stop within {timeout:g} s\n{self.describe()}")
        if self.error is not None and not isinstance(self.error, MappingStopped):
            raise self.error

    def __enter__(self) -> MappingRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.stop()
            return
        with contextlib.suppress(Exception):  # the test's own failure is the one to report
            self.stop()


def run_mapping(
    mapping: Mapping[str, Any] | EventSourceMapping,
    handler: Handler | str,
    *,
    function_timeout: float = 60.0,
    region: str | None = "us-east-1",
    max_concurrency: int = 8,
    retry_backoff: RetryBackoff = FAST_RETRY,
    consumer_config: Mapping[str, Any] | None = None,
) -> MappingRun:
    """Start ``mapping`` (a CreateEventSourceMapping request or a parsed mapping) with
    ``handler`` (a callable or ``"module:function"``) and return its running handle.

    ``region`` is where boto3 clients (destinations, Secrets Manager) go; retries back
    off in milliseconds (``retry_backoff``); the function timeout is
    ``function_timeout`` seconds (AWS's maximum for a mapping is 840).
    """
    model = mapping if isinstance(mapping, EventSourceMapping) else parse_mapping(mapping)
    recorder = _Recorder(_load(handler))
    invoker = LocalHandlerInvoker(
        recorder,
        function_name=model.function_name,
        timeout_s=min(function_timeout, MAX_TIMEOUT_S),
        region=region,
    )
    options = LaunchOptions(
        InvokeTarget(region=region),
        PollerOptions(max_concurrency=max_concurrency, retry_backoff=retry_backoff),
        SecurityOptions.from_env(),
    )
    poller = build_poller(model, options, dict(consumer_config or {}), invoker=invoker)
    return MappingRun(poller, recorder)


def _load(handler: Handler | str) -> Handler:
    if isinstance(handler, str):
        loaded: Handler = load_handler(handler)
        return loaded
    return handler


def _wanted(records: int | None, invocations: int | None, until: Callable[..., bool] | None) -> str:
    parts = []
    if records is not None:
        parts.append(f"{records} record(s)")
    if invocations is not None:
        parts.append(f"{invocations} invocation(s)")
    if until is not None:
        parts.append(getattr(until, "__name__", "the condition"))
    return " and ".join(parts) or "anything"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())
