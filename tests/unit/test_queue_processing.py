"""Queue mode without a broker: the processor's one-invocation-per-delivery policy, the
acknowledgement ledger, and Queue's partial-batch-response identifiers."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import pytest

from runtime.observability.counters import Counters, Metric
from runtime.observability.state import MappingStatus
from runtime.pipeline.acknowledgements import AcknowledgementLedger
from runtime.pipeline.batch_responses import BatchResponseError, failed_items
from runtime.pipeline.batcher import Batch
from runtime.pipeline.failures import Condition, FailurePolicy
from runtime.pipeline.offsets import Outcome
from runtime.pipeline.processor import BatchProcessor
from runtime.pipeline.share_source import Acknowledgement, ShareGroupTerms
from runtime.records import Record
from tests.unit.test_failures_processor import (
    NO_WAIT,
    NOW_MS,
    SERVERS,
    RecordingDestination,
    Reply,
    ScriptedInvoker,
    make_batch,
    poison,
    record,
)

LIMIT = 5


class Deliveries:
    """The broker's delivery limit, as the share source reports it."""

    def last_delivery(self, item: Record) -> bool:
        return item.delivery_count >= LIMIT


class Settlements:
    def __init__(self) -> None:
        self.settled: list[tuple[int, Outcome]] = []

    def settle(self, _batch: Batch, records: Sequence[Record], outcome: Outcome) -> object:
        self.settled.extend((r.offset, outcome) for r in records)
        return {}

    def outcomes(self) -> dict[int, Outcome]:
        return dict(self.settled)


def delivered(offsets: Iterable[int], count: int = 1) -> list[Record]:
    return [replace(record(o), delivery_count=count) for o in offsets]


def process(
    records: list[Record],
    reply: Reply | None = None,
    *,
    policy: FailurePolicy | None = None,
    destination: RecordingDestination | None = None,
) -> tuple[Settlements, ScriptedInvoker]:
    invoker = ScriptedInvoker(reply)
    settlements = Settlements()
    processor = BatchProcessor(
        invoker,
        SERVERS,
        Counters(),
        MappingStatus(),
        threading.Event(),
        ledger=settlements,
        backoff=NO_WAIT,
        policy=policy,
        destination=destination,
        clock_ms=lambda: NOW_MS,
        redelivery=Deliveries(),
    )
    outcome = processor.process(make_batch(records))
    assert outcome.complete
    return settlements, invoker


def test_a_success_settles_every_record_handled_in_one_invocation() -> None:
    settlements, invoker = process(delivered(range(3)))
    assert invoker.calls == [[0, 1, 2]]
    assert settlements.outcomes() == dict.fromkeys(range(3), Outcome.HANDLED)


def test_a_function_error_releases_the_batch_instead_of_retrying_it_here() -> None:
    settlements, invoker = process(delivered(range(3)), poison(1))
    assert invoker.calls == [[0, 1, 2]]
    assert settlements.outcomes() == dict.fromkeys(range(3), Outcome.RELEASED)


def test_retries_are_counted_from_the_delivery_count() -> None:
    policy = FailurePolicy(maximum_retry_attempts=2)
    destination = RecordingDestination()
    # Delivery 3 is the second retry: the last MaximumRetryAttempts 2 allows.
    records = delivered([0], count=2) + delivered([1], count=3)
    settlements, _ = process(records, poison(0, 1), policy=policy, destination=destination)
    assert settlements.outcomes() == {0: Outcome.RELEASED, 1: Outcome.SENT_TO_DESTINATION}
    [failure] = destination.accepted
    assert failure.condition is Condition.RETRY_ATTEMPTS_EXHAUSTED
    assert failure.invoke_count == 3


def test_the_brokers_delivery_limit_sends_a_record_to_the_destination_not_the_archive() -> None:
    destination = RecordingDestination()
    records = delivered([0], count=LIMIT - 1) + delivered([1], count=LIMIT)
    settlements, _ = process(records, poison(0, 1), destination=destination)
    assert settlements.outcomes() == {0: Outcome.RELEASED, 1: Outcome.SENT_TO_DESTINATION}


def test_without_a_destination_a_record_at_its_last_delivery_is_dropped() -> None:
    settlements, _ = process(delivered([0], count=LIMIT), poison(0))
    assert settlements.outcomes() == {0: Outcome.DROPPED}


def test_a_partial_batch_response_releases_only_the_named_records() -> None:
    def reply(_event: dict[str, Any], _n: int) -> Any:
        return {
            "batchItemFailures": [
                {"itemIdentifier": "t-0-1"},
                {"itemIdentifier": {"partition": "t-0", "offset": 3}},
            ]
        }

    policy = FailurePolicy(report_item_failures=True)
    settlements, _ = process(delivered(range(5)), reply, policy=policy)
    assert settlements.outcomes() == {
        0: Outcome.HANDLED,
        1: Outcome.RELEASED,
        2: Outcome.HANDLED,
        3: Outcome.RELEASED,
        4: Outcome.HANDLED,
    }


def test_an_invalid_partial_batch_response_releases_the_whole_batch() -> None:
    policy = FailurePolicy(report_item_failures=True)
    reply: Reply = lambda _e, _n: {"batchItemFailures": [{"itemIdentifier": "t-0-99"}]}  # noqa: E731
    settlements, _ = process(delivered(range(2)), reply, policy=policy)
    assert settlements.outcomes() == {0: Outcome.RELEASED, 1: Outcome.RELEASED}


# --------------------------------------------------------------------- identifiers
SENT = {"my-topic-0": {5, 6}, "my-topic-1": {9}}


def test_queue_identifiers_take_the_string_form_with_dashes_in_the_topic() -> None:
    reply = b'{"batchItemFailures": [{"itemIdentifier": "my-topic-1-9"}]}'
    assert failed_items(reply, SENT, queue=True) == [("my-topic-1", 9)]


@pytest.mark.parametrize("name", ["my-topic-0", "my-topic-x-5", "5", "my-topic-0-"])
def test_a_malformed_string_identifier_is_named(name: str) -> None:
    reply = b'{"batchItemFailures": [{"itemIdentifier": "%s"}]}' % name.encode()
    with pytest.raises(BatchResponseError, match="<topic>-<partition>-<offset>"):
        failed_items(reply, SENT, queue=True)


def test_stream_mode_keeps_to_the_object_form() -> None:
    reply = b'{"batchItemFailures": [{"itemIdentifier": "my-topic-0-5"}]}'
    with pytest.raises(BatchResponseError, match="must be an object"):
        failed_items(reply, SENT)


# --------------------------------------------------------------------- the ledger
class Acknowledgements:
    def __init__(self) -> None:
        self.sent: list[tuple[int, Acknowledgement]] = []
        self.commits: list[bool] = []

    def acknowledge(self, records: Iterable[Record], kind: Acknowledgement) -> None:
        self.sent.extend((r.offset, kind) for r in records)

    def commit(self, *, wait: bool = True, timeout_s: float = 30.0) -> bool:
        self.commits.append(wait)
        return True


def test_the_ledger_acknowledges_each_outcome_and_accepts_filtered_records_at_once() -> None:
    source, counters = Acknowledgements(), Counters()
    ledger = AcknowledgementLedger(counters, source)
    records = delivered(range(5))
    assert not ledger.read(records[0], keep=False)
    assert all(ledger.read(r, keep=True) for r in records[1:])
    batch = make_batch(records[1:])
    ledger.begin(batch)
    assert not ledger.busy(("t", 0)), "records of one partition may be in several batches"
    ledger.settle(batch, records[1:2], Outcome.HANDLED)
    ledger.settle(batch, records[2:3], Outcome.SENT_TO_DESTINATION)
    ledger.settle(batch, records[3:4], Outcome.RELEASED)
    ledger.settle(batch, records[4:5], Outcome.DROPPED)
    ledger.finish(batch, complete=True)
    ledger.flush(wait=False)
    assert source.sent == [
        (0, Acknowledgement.ACCEPT),
        (1, Acknowledgement.ACCEPT),
        (2, Acknowledgement.ACCEPT),
        (3, Acknowledgement.RELEASE),
        (4, Acknowledgement.REJECT),
    ]
    assert source.commits == [False]
    assert counters.get(Metric.ACKNOWLEDGED) == 3
    assert counters.get(Metric.RELEASED) == counters.get(Metric.REJECTED) == 1
    assert counters.get(Metric.DROPPED) == counters.get(Metric.ON_FAILURE_DELIVERED) == 1


def test_a_stop_releases_what_is_still_held_and_nothing_twice() -> None:
    source = Acknowledgements()
    ledger = AcknowledgementLedger(Counters(), source)
    records = delivered(range(3))
    for r in records:
        ledger.read(r, keep=True)
    batch = make_batch(records)
    ledger.begin(batch)
    ledger.settle(batch, records[:1], Outcome.HANDLED)
    ledger.finish(batch, complete=False)  # interrupted
    ledger.abandon()
    ledger.flush(wait=True)
    ledger.flush(wait=True)
    assert source.sent == [
        (0, Acknowledgement.ACCEPT),
        (1, Acknowledgement.RELEASE),
        (2, Acknowledgement.RELEASE),
    ]
    assert source.commits == [True, True]


def test_the_lock_check_names_both_numbers() -> None:
    terms = ShareGroupTerms(record_lock_ms=30_000, delivery_limit=5, lock_source="group g")
    assert terms.lock_problem(29.0) is None
    problem = terms.lock_problem(60.0)
    assert problem is not None
    assert "30000 ms, group g" in problem and "60000 ms" in problem


def test_acknowledgements_go_out_in_hand_out_order_once_the_records_before_are_settled() -> None:
    # librdkafka's share consumer loses acknowledgements given out of offset order.
    source = Acknowledgements()
    ledger = AcknowledgementLedger(Counters(), source)
    records = delivered(range(4))
    for r in records:
        ledger.read(r, keep=True)
    first, second = make_batch(records[:2]), make_batch(records[2:])
    ledger.begin(first)
    ledger.begin(second)
    ledger.settle(second, records[2:], Outcome.HANDLED)  # the later batch finishes first
    ledger.flush(wait=False)
    assert source.sent == []
    ledger.settle(first, records[:1], Outcome.RELEASED)
    ledger.flush(wait=False)
    assert source.sent == [(0, Acknowledgement.RELEASE)]
    ledger.settle(first, records[1:2], Outcome.HANDLED)
    ledger.flush(wait=False)
    assert source.sent == [
        (0, Acknowledgement.RELEASE),
        (1, Acknowledgement.ACCEPT),
        (2, Acknowledgement.ACCEPT),
        (3, Acknowledgement.ACCEPT),
    ]
