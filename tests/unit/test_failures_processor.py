"""The batch processor's failure policy: retries, record age, bisect, partial responses,
oversized records, destinations that refuse, and stops. No broker: batches are built
here and the function is a scripted invoker that records every event it receives."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from itertools import count
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor as PowertoolsProcessor
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

from runtime.definition.model import parse_mapping
from runtime.destinations.documents import Failure
from runtime.destinations.writers import DeliveryError
from runtime.invokers import ErrorKind, InvokeResult
from runtime.invokers.local_handler import LocalHandlerInvoker
from runtime.invokers.result import reply_result
from runtime.observability.counters import Counters, Metric
from runtime.observability.scaling import WorkloadMeter
from runtime.observability.state import MappingStatus, StateTransitionReason
from runtime.pipeline.batcher import Batch
from runtime.pipeline.event import encode_record
from runtime.pipeline.failures import UNBOUNDED_RETRY_HINT, Condition, FailurePolicy, RetryBackoff
from runtime.pipeline.processor import BatchProcessor, offset_ranges
from runtime.records import PartitionId, Record
from tests.unit import sample_handlers
from tests.unit.ledger_view import RecordingLedger, Settled

NOW_MS = 1_700_000_000_000
SERVERS = ("b-1:9092",)
NO_WAIT = RetryBackoff(first_s=0.0, cap_s=0.0, jitter=False)
_ids = count(1)

Reply = Callable[[dict[str, Any], int], Any]


# --------------------------------------------------------------------------- helpers
def record(offset: int, partition: int = 0, *, age_s: float = 1.0, topic: str = "t") -> Record:
    return Record(
        topic,
        partition,
        offset,
        NOW_MS - int(age_s * 1000),
        key=b"k%d" % offset,
        value=b"v%d" % offset,
    )


def make_batch(records: Iterable[Record], *, oversized: bool = False) -> Batch:
    items = tuple(records)
    ranges: dict[PartitionId, tuple[int, int]] = {}
    for r in items:
        first, last = ranges.get((r.topic, r.partition), (r.offset, r.offset))
        ranges[(r.topic, r.partition)] = (min(first, r.offset), max(last, r.offset))
    return Batch(next(_ids), items, tuple(encode_record(r) for r in items), ranges, 0.0, oversized)


def offsets_of(event: dict[str, Any]) -> list[int]:
    return [r["offset"] for rs in event["records"].values() for r in rs]


class ScriptedInvoker:
    """Returns what ``reply(event, call_number)`` gives: an InvokeResult, an exception
    (a function error, as Lambda reports an unhandled one) or a value (the reply)."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply or (lambda _event, _n: None)
        self.events: list[dict[str, Any]] = []

    @property
    def calls(self) -> list[list[int]]:
        return [offsets_of(e) for e in self.events]

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        event = json.loads(payload)
        number = len(self.events)
        self.events.append(event)
        out = self.reply(event, number)
        if isinstance(out, InvokeResult):
            return out
        if isinstance(out, Exception):
            body = {"errorType": type(out).__name__, "errorMessage": str(out)}
            return reply_result(
                status_code=200,
                function_error="Unhandled",
                executed_version="$LATEST",
                payload=json.dumps(body).encode(),
                request_id=f"req-{number}",
            )
        return reply_result(
            status_code=200,
            function_error=None,
            executed_version="$LATEST",
            payload=json.dumps(out).encode(),
            request_id=f"req-{number}",
        )


def poison(*bad: int) -> Reply:
    """A function that fails any event holding one of the ``bad`` offsets."""

    def reply(event: dict[str, Any], _n: int) -> Any:
        hit = sorted(set(offsets_of(event)) & set(bad))
        return RuntimeError(f"poison {hit}") if hit else None

    return reply


class RecordingDestination:
    """Accepts failures after refusing the first ``refusals`` deliveries."""

    def __init__(self, refusals: int = 0, on_attempt: Callable[[int], None] | None = None) -> None:
        self.refusals = refusals
        self.on_attempt = on_attempt
        self.attempts = 0
        self.accepted: list[Failure] = []

    @property
    def target(self) -> str:
        return "memory://failures"

    def deliver(self, failure: Failure) -> None:
        self.attempts += 1
        if self.on_attempt is not None:
            self.on_attempt(self.attempts)
        if self.attempts <= self.refusals:
            raise DeliveryError(f"refusal {self.attempts}")
        self.accepted.append(failure)

    def close(self) -> None:
        pass


class Harness:
    def __init__(
        self,
        reply: Reply | None = None,
        *,
        policy: FailurePolicy | None = None,
        destination: RecordingDestination | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.invoker = ScriptedInvoker(reply)
        self.counters = Counters()
        self.status = MappingStatus()
        self.stopping = threading.Event()
        self.ledger = RecordingLedger(self.counters)
        self.progress = self.ledger.progress
        self.destination = destination
        self.workload = WorkloadMeter()
        self.processor = BatchProcessor(
            self.invoker,
            SERVERS,
            self.counters,
            self.status,
            self.stopping,
            ledger=self.ledger,
            backoff=NO_WAIT,
            policy=policy,
            destination=destination,
            clock_ms=clock or (lambda: NOW_MS),
            workload=self.workload,
        )

    def run(self, batch: Batch) -> Settled:
        return self.ledger.process(self.processor, batch)

    def count(self, metric: Metric) -> int:
        return self.counters.get(metric)


def failed_offsets(failure: Failure) -> list[int]:
    return [r.offset for r in failure.records]


P0: PartitionId = ("t", 0)
P1: PartitionId = ("t", 1)


# --------------------------------------------------------------------------- success and defaults
def test_a_successful_batch_settles_every_offset() -> None:
    h = Harness()
    outcome = h.run(make_batch(record(o) for o in range(3)))
    assert outcome.complete and outcome.settled == {P0: 3}
    assert h.invoker.calls == [[0, 1, 2]]
    assert h.count(Metric.INVOKED) == 3
    assert h.count(Metric.DROPPED) == h.count(Metric.ON_FAILURE_DELIVERED) == 0


def test_a_call_that_was_never_sent_invokes_nothing() -> None:
    # The endpoint refused the connection: the function did not run; the call is retried.
    unsent = InvokeResult.failure(ErrorKind.SERVICE_ERROR, "Invoke not sent", sent=False)
    h = Harness(lambda _event, n: unsent if n == 0 else None)
    outcome = h.run(make_batch(record(o) for o in range(3)))
    assert outcome.complete and outcome.settled == {P0: 3}
    assert len(h.invoker.calls) == 2
    assert h.count(Metric.INVOKED) == 3  # the one call that reached the function
    assert h.count(Metric.FAILED_INVOKE) == 0
    assert h.count(Metric.INVOKE_ERROR) == 1


def test_a_function_error_is_logged_with_its_trace_once_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real local handler's error document: the same shape Lambda and the RIE send.
    failed = LocalHandlerInvoker(f"{sample_handlers.__name__}:fails").invoke(b"{}", deadline_s=5)
    h = Harness(lambda _event, n: failed if n < 4 else None)
    with caplog.at_level(logging.WARNING, logger="runtime.batch"):
        assert h.run(make_batch(record(o) for o in range(2))).complete
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch failed")]
    assert len(failures) == 4
    assert "stack trace" in failures[0] and 'raise ValueError(f"boom' in failures[0]
    assert [f.count("raise ValueError") for f in failures[1:]] == [0, 0, 0]
    assert "seen 2 times" in failures[1] and "seen 4 times" in failures[3]
    hints = [r for r in caplog.records if r.getMessage() == UNBOUNDED_RETRY_HINT]
    assert len(hints) == 1  # once per batch, after HINT_AFTER_RETRIES retries


def test_no_retry_hint_when_the_retries_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(poison(0), policy=FailurePolicy(maximum_retry_attempts=5))
    with caplog.at_level(logging.WARNING, logger="runtime.batch"):
        h.run(make_batch([record(0)]))
    assert UNBOUNDED_RETRY_HINT not in [r.getMessage() for r in caplog.records]


def test_by_default_a_failing_batch_is_retried_until_it_succeeds() -> None:
    h = Harness(lambda _e, n: RuntimeError("flaky") if n < 4 else None)
    outcome = h.run(make_batch(record(o) for o in range(2)))
    assert outcome.complete and outcome.settled == {P0: 2}
    assert h.invoker.calls == [[0, 1]] * 5
    assert h.count(Metric.FAILED_INVOKE) == 8
    assert h.count(Metric.DROPPED) == 0


# --------------------------------------------------------------------------- retry limit
def test_retries_exhausted_without_destination_drops_counts_and_logs_offsets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(poison(1), policy=FailurePolicy(maximum_retry_attempts=2))
    with caplog.at_level(logging.WARNING, logger="runtime.batch"):
        outcome = h.run(make_batch(record(o) for o in range(3)))
    assert h.invoker.calls == [[0, 1, 2]] * 3  # the first invocation and two retries
    assert outcome.complete and outcome.settled == {P0: 3}
    assert h.count(Metric.DROPPED) == 3
    dropped = [r for r in caplog.records if r.getMessage().startswith("records dropped")]
    assert len(dropped) == 1
    assert dropped[0].__dict__["offsets"] == {"t-0": "0-2"}
    assert dropped[0].__dict__["condition"] == "RetryAttemptsExhausted"


def test_retries_exhausted_with_destination_delivers_instead_of_dropping() -> None:
    destination = RecordingDestination()
    h = Harness(poison(0), policy=FailurePolicy(maximum_retry_attempts=0), destination=destination)
    outcome = h.run(make_batch(record(o) for o in range(2)))
    assert h.invoker.calls == [[0, 1]]
    [failure] = destination.accepted
    assert failure.condition is Condition.RETRY_ATTEMPTS_EXHAUSTED
    assert failed_offsets(failure) == [0, 1]
    assert failure.invoke_count == 1
    assert failure.result is not None and failure.result.request_id == "req-0"
    assert failure.request_id == "req-0"
    assert outcome.complete and outcome.settled == {P0: 2}
    assert h.count(Metric.ON_FAILURE_DELIVERED) == 2
    assert h.count(Metric.DROPPED) == 0


def test_infinite_retries_with_a_destination_stop_after_ten() -> None:
    mapping = parse_mapping(
        {
            "FunctionName": "f",
            "Topics": ["orders"],
            "StartingPosition": "LATEST",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9092"]}},
            "DestinationConfig": {
                "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}
            },
        }
    )
    destination = RecordingDestination()
    h = Harness(poison(0), policy=FailurePolicy.for_mapping(mapping), destination=destination)
    h.run(make_batch([record(0)]))
    assert len(h.invoker.calls) == 11
    assert destination.accepted[0].invoke_count == 11


def test_throttles_and_service_errors_do_not_count_as_retries() -> None:
    kinds = [ErrorKind.THROTTLED, ErrorKind.SERVICE_ERROR, ErrorKind.THROTTLED]

    def reply(_event: dict[str, Any], n: int) -> Any:
        return InvokeResult.failure(kinds[n], "busy") if n < len(kinds) else None

    h = Harness(reply, policy=FailurePolicy(maximum_retry_attempts=0))
    outcome = h.run(make_batch([record(0)]))
    assert outcome.complete and len(h.invoker.calls) == 4
    assert h.count(Metric.DROPPED) == 0
    # the scaling model sees both throttles, and only the calls the function ran as cost
    workload = h.workload.snapshot()
    assert (workload.throttles, workload.records_sent) == (2, 2)


def test_a_function_config_error_stops_the_mapping_and_settles_nothing() -> None:
    h = Harness(lambda _e, _n: InvokeResult.failure(ErrorKind.CONFIG_ERROR, "AccessDenied"))
    outcome = h.run(make_batch([record(0)]))
    assert not outcome.complete and outcome.settled == {}
    assert outcome.stopped is not None
    assert outcome.stopped.reason is StateTransitionReason.FUNCTION_CONFIG_NOT_VALID


# --------------------------------------------------------------------------- record age
def test_expired_records_are_never_sent_and_go_to_the_destination() -> None:
    destination = RecordingDestination()
    h = Harness(policy=FailurePolicy(maximum_record_age_s=60), destination=destination)
    batch = make_batch([record(0, age_s=61), record(1, age_s=30), record(2, age_s=61)])
    outcome = h.run(batch)
    assert h.invoker.calls == [[1]]
    [failure] = destination.accepted
    assert failure.condition is Condition.RECORD_AGE_EXCEEDED
    assert failed_offsets(failure) == [0, 2]
    assert failure.invoke_count == 0 and failure.result is None
    assert outcome.complete and outcome.settled == {P0: 3}


def test_records_expiring_while_retried_are_given_up_with_their_last_reply() -> None:
    now = [NOW_MS]

    def reply(_event: dict[str, Any], _n: int) -> Any:
        now[0] += 20_000  # every failed attempt takes 20 s
        return RuntimeError("down")

    destination = RecordingDestination()
    h = Harness(
        reply,
        policy=FailurePolicy(maximum_record_age_s=60),
        destination=destination,
        clock=lambda: now[0],
    )
    h.run(make_batch([record(0, age_s=1)]))
    assert len(h.invoker.calls) == 3  # ages 1 s, 21 s, 41 s; at 61 s it is expired
    [failure] = destination.accepted
    assert failure.condition is Condition.RECORD_AGE_EXCEEDED
    assert failure.invoke_count == 3
    assert failure.result is not None and failure.result.function_error == "Unhandled"


def test_without_destination_expired_records_are_dropped() -> None:
    h = Harness(policy=FailurePolicy(maximum_record_age_s=60))
    outcome = h.run(make_batch([record(0, age_s=3600), record(1)]))
    assert h.invoker.calls == [[1]]
    assert h.count(Metric.DROPPED) == 1
    assert outcome.complete and outcome.settled == {P0: 2}


# --------------------------------------------------------------------------- bisect
def test_bisect_isolates_the_poison_record_without_counting_splits_as_retries() -> None:
    destination = RecordingDestination()
    h = Harness(
        poison(5),
        policy=FailurePolicy(maximum_retry_attempts=0, bisect=True),
        destination=destination,
    )
    outcome = h.run(make_batch(record(o) for o in range(8)))
    assert h.invoker.calls == [
        [0, 1, 2, 3, 4, 5, 6, 7],
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [4, 5],
        [4],
        [5],
        [6, 7],
    ]
    [failure] = destination.accepted
    assert failed_offsets(failure) == [5]
    assert failure.condition is Condition.RETRY_ATTEMPTS_EXHAUSTED
    assert failure.invoke_count == 4  # [0-7], [4-7], [4,5] and [5] carried it
    assert outcome.complete and outcome.settled == {P0: 8}
    assert h.progress == [{P0: 4}, {P0: 5}, {P0: 6}, {P0: 8}]


def test_bisect_retries_a_single_record_up_to_the_limit() -> None:
    h = Harness(poison(0), policy=FailurePolicy(maximum_retry_attempts=2, bisect=True))
    h.run(make_batch(record(o) for o in range(2)))
    assert h.invoker.calls == [[0, 1], [0], [0], [0], [1]]
    assert h.count(Metric.DROPPED) == 1


def test_bisect_is_not_used_for_throttles() -> None:
    h = Harness(
        lambda _e, n: InvokeResult.failure(ErrorKind.THROTTLED, "429") if n == 0 else None,
        policy=FailurePolicy(bisect=True),
    )
    h.run(make_batch(record(o) for o in range(4)))
    assert h.invoker.calls == [[0, 1, 2, 3], [0, 1, 2, 3]]


def test_a_payload_lambda_refuses_as_too_large_is_split_then_reported() -> None:
    def reply(event: dict[str, Any], _n: int) -> Any:
        if 2 in offsets_of(event):
            return InvokeResult.failure(ErrorKind.PAYLOAD_TOO_LARGE, "413", status_code=413)
        return None

    destination = RecordingDestination()
    h = Harness(reply, destination=destination)
    h.run(make_batch(record(o) for o in range(3)))
    assert h.invoker.calls == [[0, 1, 2], [0, 1], [2]]
    [failure] = destination.accepted
    assert failure.condition is Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED
    assert failed_offsets(failure) == [2]


# --------------------------------------------------------------------------- oversized
def test_an_oversized_record_is_never_invoked_and_goes_to_the_destination() -> None:
    destination = RecordingDestination()
    h = Harness(destination=destination)
    outcome = h.run(make_batch([record(7)], oversized=True))
    assert h.invoker.calls == []
    [failure] = destination.accepted
    assert failure.condition is Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED
    assert failure.invoke_count == 0 and failure.result is None
    assert outcome.complete and outcome.settled == {P0: 8}
    assert h.count(Metric.ON_FAILURE_DELIVERED) == 1


def test_an_oversized_record_without_destination_is_dropped_with_its_offset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    with caplog.at_level(logging.WARNING, logger="runtime.batch"):
        outcome = h.run(make_batch([record(7)], oversized=True))
    assert h.invoker.calls == []
    assert h.count(Metric.DROPPED) == 1
    assert outcome.complete and outcome.settled == {P0: 8}
    [dropped] = [r for r in caplog.records if r.getMessage().startswith("records dropped")]
    assert dropped.__dict__["offsets"] == {"t-0": "7"}
    assert dropped.__dict__["condition"] == "MaximumPayloadSizeExceeded"


# ------------------------------------------------------------------- partial batch responses
def item_failures(*failed: tuple[str, int]) -> dict[str, Any]:
    return {
        "batchItemFailures": [{"itemIdentifier": {"partition": p, "offset": o}} for p, o in failed]
    }


def test_partial_response_commits_before_the_lowest_failure_and_resumes_there() -> None:
    replies = [item_failures(("t-0", 4), ("t-0", 2)), None]
    h = Harness(lambda _e, n: replies[n], policy=FailurePolicy(report_item_failures=True))
    outcome = h.run(make_batch(record(o) for o in range(5)))
    assert h.invoker.calls == [[0, 1, 2, 3, 4], [2, 3, 4]]
    assert h.progress == [{P0: 2}, {P0: 5}]
    assert outcome.complete and outcome.settled == {P0: 5}


def test_partial_response_resumes_only_the_partitions_that_failed() -> None:
    replies = [item_failures(("t-1", 11)), None]
    h = Harness(lambda _e, n: replies[n], policy=FailurePolicy(report_item_failures=True))
    batch = make_batch([record(0), record(1), record(10, 1), record(11, 1), record(12, 1)])
    outcome = h.run(batch)
    assert h.invoker.events[1]["records"] == {
        "t-1": [r for r in h.invoker.events[0]["records"]["t-1"] if r["offset"] >= 11]
    }
    assert h.progress[0] == {P0: 2, P1: 11}
    assert outcome.settled == {P0: 2, P1: 13}


@pytest.mark.parametrize(
    "reply", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
)
def test_empty_partial_responses_mean_success(reply: Any) -> None:
    h = Harness(lambda _e, _n: reply, policy=FailurePolicy(report_item_failures=True))
    outcome = h.run(make_batch(record(o) for o in range(3)))
    assert h.invoker.calls == [[0, 1, 2]] and outcome.complete


def test_a_reply_naming_a_record_not_in_the_batch_fails_the_whole_batch() -> None:
    destination = RecordingDestination()
    h = Harness(
        lambda _e, _n: item_failures(("t-0", 99)),
        policy=FailurePolicy(report_item_failures=True, maximum_retry_attempts=1),
        destination=destination,
    )
    h.run(make_batch(record(o) for o in range(3)))
    assert h.invoker.calls == [[0, 1, 2], [0, 1, 2]]
    [failure] = destination.accepted
    assert failed_offsets(failure) == [0, 1, 2]
    assert h.status.snapshot().last_processing_result.startswith(
        "PROBLEM: FUNCTION_ERROR: invalid ReportBatchItemFailures reply: "
        "batchItemFailures[0].itemIdentifier.offset=99 is not in the batch"
    )


def test_partial_failures_count_as_retries_and_give_up_on_the_rest() -> None:
    destination = RecordingDestination()
    h = Harness(
        lambda _e, _n: item_failures(("t-0", 1)),
        policy=FailurePolicy(report_item_failures=True, maximum_retry_attempts=1),
        destination=destination,
    )
    outcome = h.run(make_batch(record(o) for o in range(3)))
    assert h.invoker.calls == [[0, 1, 2], [1, 2]]
    [failure] = destination.accepted
    assert failed_offsets(failure) == [1, 2]
    assert failure.result is not None and failure.result.function_error is None
    assert outcome.settled == {P0: 3}


def test_without_report_batch_item_failures_the_reply_is_ignored() -> None:
    h = Harness(lambda _e, _n: item_failures(("t-0", 1)))
    outcome = h.run(make_batch(record(o) for o in range(3)))
    assert h.invoker.calls == [[0, 1, 2]] and outcome.settled == {P0: 3}


def powertools_handler(bad: set[int], *, only_first_call: bool = False) -> Reply:
    """A real function body: Powertools' BatchProcessor for Kafka reports the failures."""
    calls = count()

    def reply(event: dict[str, Any], _n: int) -> Any:
        failing = bad if next(calls) == 0 or not only_first_call else set()

        def record_handler(record: KafkaEventRecord) -> None:
            if record.offset in failing:
                raise ValueError(f"cannot handle {record.offset}")

        processor = PowertoolsProcessor(event_type=EventType.Kafka)
        try:
            return process_partial_response(
                event=event, record_handler=record_handler, processor=processor
            )
        except Exception as exc:  # every record failed: Powertools raises
            return exc

    return reply


def test_powertools_partial_response_resumes_and_completes() -> None:
    h = Harness(
        powertools_handler({3}, only_first_call=True),
        policy=FailurePolicy(report_item_failures=True),
    )
    outcome = h.run(make_batch(record(o) for o in range(5)))
    assert h.invoker.calls == [[0, 1, 2, 3, 4], [3, 4]]
    assert h.progress == [{P0: 3}, {P0: 5}]
    assert outcome.complete and outcome.settled == {P0: 5}


def test_powertools_partial_response_without_retries_gives_up_from_the_first_failure() -> None:
    destination = RecordingDestination()
    h = Harness(
        powertools_handler({2, 5}),
        policy=FailurePolicy(report_item_failures=True, maximum_retry_attempts=0),
        destination=destination,
    )
    outcome = h.run(make_batch(record(o) for o in range(7)))
    assert h.invoker.calls == [[0, 1, 2, 3, 4, 5, 6]]
    # Resending from the lowest failure would be a retry: with none left, all of it goes.
    assert [failed_offsets(f) for f in destination.accepted] == [[2, 3, 4, 5, 6]]
    assert h.progress == [{P0: 2}, {P0: 7}]
    assert outcome.complete and outcome.settled == {P0: 7}


def test_powertools_with_retries_delivers_only_the_poison_records() -> None:
    destination = RecordingDestination()
    h = Harness(
        powertools_handler({2, 5}),
        policy=FailurePolicy(report_item_failures=True, maximum_retry_attempts=2, bisect=True),
        destination=destination,
    )
    h.run(make_batch(record(o) for o in range(7)))
    # [0-6] -> 2 fails; [2-6] (retry 1) -> 2; [2-6] (retry 2) -> 2; exhausted.
    assert h.invoker.calls == [[0, 1, 2, 3, 4, 5, 6]] + [[2, 3, 4, 5, 6]] * 2
    assert [failed_offsets(f) for f in destination.accepted] == [[2, 3, 4, 5, 6]]


# ------------------------------------------------------------------- destinations down, stops
def test_a_refusing_destination_is_retried_and_offsets_wait_for_it() -> None:
    h: Harness
    progress_at_attempt: list[list[dict[PartitionId, int]]] = []
    destination = RecordingDestination(
        refusals=3, on_attempt=lambda _n: progress_at_attempt.append(list(h.progress))
    )
    h = Harness(
        poison(1),
        policy=FailurePolicy(maximum_retry_attempts=0, bisect=True),
        destination=destination,
    )
    outcome = h.run(make_batch(record(o) for o in range(3)))
    assert destination.attempts == 4 and len(destination.accepted) == 1
    assert failed_offsets(destination.accepted[0]) == [1]
    # While the destination refused, nothing past the poison record was committable.
    assert all(p == [{P0: 1}] for p in progress_at_attempt)
    assert h.progress == [{P0: 1}, {P0: 2}, {P0: 3}]
    assert outcome.complete and h.count(Metric.ON_FAILURE_DELIVERED) == 1


def test_a_stop_while_the_destination_is_down_leaves_the_failed_records_unsettled() -> None:
    h: Harness

    def stop_after_two(attempt: int) -> None:
        if attempt == 2:
            h.stopping.set()

    destination = RecordingDestination(refusals=10**6, on_attempt=stop_after_two)
    h = Harness(
        poison(2),
        policy=FailurePolicy(maximum_retry_attempts=0, bisect=True),
        destination=destination,
    )
    outcome = h.run(make_batch(record(o) for o in range(4)))
    assert destination.attempts == 2 and destination.accepted == []
    assert not outcome.complete and outcome.stopped is None
    assert outcome.settled == {P0: 2}
    assert h.count(Metric.ON_FAILURE_DELIVERED) == 0


def test_a_stop_interrupts_retries_and_keeps_partial_progress() -> None:
    h: Harness

    def reply(_event: dict[str, Any], n: int) -> Any:
        if n == 2:
            h.stopping.set()
        return item_failures(("t-0", 3))

    h = Harness(reply, policy=FailurePolicy(report_item_failures=True))
    outcome = h.run(make_batch(record(o) for o in range(5)))
    assert len(h.invoker.calls) == 3
    assert not outcome.complete and outcome.settled == {P0: 3}


def test_an_empty_batch_settles_without_invoking() -> None:
    h = Harness()
    batch = Batch(next(_ids), (), (), {P0: (0, 4)}, 0.0)
    assert h.run(batch).settled == {P0: 5}
    assert h.invoker.calls == []


def test_offset_ranges_fold_consecutive_offsets() -> None:
    records = [record(o) for o in (1, 2, 3, 7, 9, 10)] + [record(4, 1)]
    assert offset_ranges(records) == {"t-0": "1-3,7,9-10", "t-1": "4"}
