"""At least once when the function misbehaves: random failures, poison records, timeouts.

Sizes: RELIABILITY_FUNCTION_RECORDS (8,000 over 4 partitions), _FAILURE_RATE (0.3),
_POISON_FAILS (how often the poison record fails before it passes without limits, 6),
RELIABILITY_SLOW_RECORDS (4,000) and _SLOW_RATE (share of invocations that time out, 0.1),
RELIABILITY_REPLY_RECORDS (4,000: every batch first gets a bad ReportBatchItemFailures reply).
The test with an SQS on-failure destination (moto) runs last in this module.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.destinations.writers import destination_for
from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from tests.delivery_ledger import Ledger, Row, Tally, env_float, env_int, held_back, report, tally
from tests.fault_harness import Fleet, committed_offsets, wait_until
from tests.kafka_helpers import produce
from tests.poller_harness import mapping_doc

pytestmark = pytest.mark.integration

PARTITIONS = 4
RECORDS = env_int("RELIABILITY_FUNCTION_RECORDS", 8_000)
FAILURE_RATE = env_float("RELIABILITY_FUNCTION_FAILURE_RATE", 0.3)
POISON_FAILS = env_int("RELIABILITY_FUNCTION_POISON_FAILS", 6)
SLOW_RECORDS = env_int("RELIABILITY_SLOW_RECORDS", 4_000)
SLOW_RATE = env_float("RELIABILITY_SLOW_RATE", 0.1)
REPLY_RECORDS = env_int("RELIABILITY_REPLY_RECORDS", 4_000)
BATCH_SIZE = 100
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:kafka-esm-reliability-dlq"


class FlakyFunction:
    """Fails a share of invocations at random, and every one that carries a poison record
    until that record has failed ``poison_fails`` times (forever when None)."""

    def __init__(self, poison: set[tuple[int, int]], poison_fails: int | None, seed: str) -> None:
        self.poison = poison
        self.poison_fails = poison_fails
        self.failures: Counter[tuple[int, int]] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], _context: Any) -> None:
        carried = {
            (r["partition"], r["offset"]) for records in event["records"].values() for r in records
        }
        with self._lock:
            for record in sorted(carried & self.poison):
                if self.poison_fails is None or self.failures[record] < self.poison_fails:
                    self.failures[record] += 1
                    raise RuntimeError(f"poison record {record}")
            if self._rng.random() < FAILURE_RATE:
                raise RuntimeError("random failure")


def _produce(kafka: ClusterInfo, topic: str, records: int) -> dict[int, int]:
    ends = {}
    for partition in range(PARTITIONS):
        values = (b"v-%d-%06d" % (partition, i) for i in range(records // PARTITIONS))
        ends[partition] = produce(kafka.plaintext_config(), topic, values, partition=partition)
    return ends


def _poison(ends: dict[int, int], rng: random.Random) -> set[tuple[int, int]]:
    return {(p, rng.randrange(end)) for p, end in ends.items()}


def _settle(
    fleet: Fleet, kafka: ClusterInfo, topic: str, ends: dict[int, int], budget_s: float
) -> None:
    group = str(fleet.mapping.consumer_group_id)

    def done() -> bool:
        fleet.check_alive()
        return committed_offsets(kafka.plaintext_config(), group, topic, PARTITIONS) == ends

    wait_until(done, budget_s, "committed offsets reach the end of the topic")
    fleet.stop_all()


def _report(
    result: Tally, scenario: str, recovery_s: float | None, seconds: float, note: str
) -> None:
    report(
        Row(
            scenario=scenario,
            records=result.produced,
            lost=len(result.lost),
            duplicates=result.duplicates,
            max_duplicates_per_fault=result.most_deliveries - 1,
            recovery_s=recovery_s,
            seconds=seconds,
            note=note,
        )
    )


def _run(fleet: Fleet, kafka: ClusterInfo, topic: str, ends: dict[int, int]) -> float:
    """Start the fleet, let it commit everything in ``ends``, stop it; the seconds it took."""
    started = time.monotonic()
    try:
        fleet.start()
        _settle(fleet, kafka, topic, ends, budget_s=150)
    finally:
        fleet.stop_all()
    return time.monotonic() - started


@pytest.mark.timeout(180)
def test_random_failures_and_poison_records_are_retried_until_delivered(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "flaky"))
    topic = topic_factory(partitions=PARTITIONS)
    ends = _produce(kafka, topic, RECORDS)
    poison = _poison(ends, rng)
    function = FlakyFunction(poison, POISON_FAILS, seed=str(rng.random()))
    ledger = Ledger()
    doc = mapping_doc(kafka, topic, BatchSize=BATCH_SIZE, MaximumBatchingWindowInSeconds=0)
    fleet = Fleet(doc, ledger, function=function)
    seconds = _run(fleet, kafka, topic, ends)

    deliveries = ledger.snapshot()
    result = tally(ends, deliveries)
    waits = held_back(deliveries)
    failed_invocations = sum(r.poller.counters.get(Metric.INVOKE_ERROR) for r in fleet.stopped)
    _report(
        result,
        f"failing function: {FAILURE_RATE:.0%} failures + poison, no limits",
        recovery_s=max(waits),
        seconds=seconds,
        note=f"{failed_invocations} failed invocations; poison fails {POISON_FAILS} times",
    )
    result.assert_at_least_once()
    assert all(function.failures[record] == POISON_FAILS for record in poison)
    assert failed_invocations > 0


@pytest.mark.timeout(180)
def test_a_function_past_its_timeout_is_retried_and_loses_nothing(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "slow"))
    topic = topic_factory(partitions=PARTITIONS)
    ends = _produce(kafka, topic, SLOW_RECORDS)
    lock = threading.Lock()
    timed_out: list[float] = []

    def slow(_event: dict[str, Any], context: Any) -> None:
        with lock:
            late = rng.random() < SLOW_RATE
        if late:
            timed_out.append(time.time())
            time.sleep(context.get_remaining_time_in_millis() / 1000 + 0.3)

    ledger = Ledger()
    doc = mapping_doc(kafka, topic, BatchSize=BATCH_SIZE, MaximumBatchingWindowInSeconds=0)
    fleet = Fleet(doc, ledger, function=slow, function_timeout_s=1.0)
    seconds = _run(fleet, kafka, topic, ends)

    deliveries = ledger.snapshot()
    result = tally(ends, deliveries)
    failed = [d for d in deliveries if not d.ok]
    _report(
        result,
        "slow function: timeouts (1 s function timeout)",
        recovery_s=max(held_back(deliveries), default=None),
        seconds=seconds,
        note=f"{len(timed_out)} invocations timed out",
    )
    result.assert_at_least_once()
    assert timed_out, "no invocation timed out: the scenario tested nothing"
    assert len(failed) >= len(timed_out)  # each timeout failed its batch, which came again


BAD_REPLIES: list[Callable[[str, int], Any]] = [
    lambda key, first: b"bytes are not JSON",  # Runtime.MarshalError
    lambda key, first: "x" * (6 * 1024 * 1024 + 1),  # over Lambda's 6 MB response limit
    lambda key, first: "a string, not an object",
    lambda key, first: {"batchItemFailures": "all"},
    lambda key, first: {"batchItemFailures": [{"itemIdentifier": None}]},
    lambda key, first: {
        "batchItemFailures": [{"itemIdentifier": {"partition": "nope-0", "offset": first}}]
    },
    lambda key, first: {
        "batchItemFailures": [{"itemIdentifier": {"partition": key, "offset": 10**12}}]
    },
    lambda key, first: {
        "batchItemFailures": [{"itemIdentifier": {"partition": key, "offset": str(first)}}]
    },
]


class ReplyingFunction:
    """First answers each batch with a bad reply, then reports its middle record as
    failed (a valid partial batch response), then succeeds."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], _context: Any) -> Any:
        key, records = next(iter(event["records"].items()))
        first = records[0]["offset"]
        with self._lock:
            self.calls[(key, first)] += 1
            attempt = self.calls[(key, first)]
        if attempt == 1:
            return BAD_REPLIES[(first // BATCH_SIZE) % len(BAD_REPLIES)](key, first)
        if attempt == 2 and len(records) > 1:
            middle = records[len(records) // 2]["offset"]
            return {"batchItemFailures": [{"itemIdentifier": {"partition": key, "offset": middle}}]}
        return {"batchItemFailures": []}


@pytest.mark.timeout(180)
def test_bad_replies_to_report_batch_item_failures_fail_the_batch_and_lose_nothing(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(partitions=PARTITIONS)
    ends = _produce(kafka, topic, REPLY_RECORDS)
    ledger = Ledger()
    doc = mapping_doc(
        kafka,
        topic,
        BatchSize=BATCH_SIZE,
        MaximumBatchingWindowInSeconds=0,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    fleet = Fleet(doc, ledger, function=ReplyingFunction())
    seconds = _run(fleet, kafka, topic, ends)

    deliveries = ledger.snapshot()
    result = tally(ends, deliveries)
    failed_invocations = sum(r.poller.counters.get(Metric.INVOKE_ERROR) for r in fleet.stopped)
    _report(
        result,
        "bad replies: not JSON, > 6 MB, wrong types, unknown identifiers",
        recovery_s=max(held_back(deliveries), default=None),
        seconds=seconds,
        note=f"{failed_invocations} invocations failed by their reply",
    )
    result.assert_at_least_once()
    assert failed_invocations >= len(BAD_REPLIES)  # every kind of bad reply was sent


@pytest.fixture
def dead_letter_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName=QUEUE_ARN.rsplit(":", 1)[1])["QueueUrl"]
        yield sqs, url


def _dead_lettered(sqs: Any, url: str, topic: str) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            info = json.loads(message["Body"])["KafkaBatchInfo"]["recordsInfo"]
            for key, span in info.items():
                partition = int(key.removeprefix(f"{topic}-"))
                first, last = int(span["firstRecordOffset"]), int(span["lastRecordOffset"])
                found.update((partition, o) for o in range(first, last + 1))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.timeout(180)
def test_with_a_retry_limit_handled_plus_dead_lettered_is_exactly_what_was_produced(
    kafka: ClusterInfo, topic_factory: Callable[..., str], dead_letter_queue: Any
) -> None:
    sqs, url = dead_letter_queue
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "dlq"))
    topic = topic_factory(partitions=PARTITIONS)
    ends = _produce(kafka, topic, RECORDS)
    poison = _poison(ends, rng)
    ledger = Ledger()
    doc = mapping_doc(
        kafka,
        topic,
        BatchSize=BATCH_SIZE,
        MaximumBatchingWindowInSeconds=0,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": QUEUE_ARN}},
    )
    fleet = Fleet(doc, ledger, function=FlakyFunction(poison, None, seed=str(rng.random())))
    fleet.poller_kwargs["destination"] = destination_for(fleet.mapping)
    seconds = _run(fleet, kafka, topic, ends)

    deliveries = ledger.snapshot()
    handled = {(d.partition, d.offset) for d in deliveries if d.ok}
    dead = _dead_lettered(sqs, url, topic)
    produced = {(p, o) for p, end in ends.items() for o in range(end)}
    result = tally(ends, deliveries)
    counted = sum(r.poller.counters.get(Metric.ON_FAILURE_DELIVERED) for r in fleet.stopped)
    report(
        Row(
            scenario=f"failing function: {FAILURE_RATE:.0%} failures + poison, "
            "MaximumRetryAttempts 2, SQS destination",
            records=len(produced),
            lost=len(produced - handled - dead),
            duplicates=result.duplicates,
            max_duplicates_per_fault=result.most_deliveries - 1,
            recovery_s=None,
            seconds=seconds,
            note=f"{len(handled)} handled + {len(dead)} dead-lettered",
        )
    )
    assert poison <= dead
    tries = Counter((d.partition, d.offset) for d in deliveries)
    assert all(tries[record] == 3 for record in poison)  # the first try and 2 retries
    assert not handled & dead, f"handled and dead-lettered: {sorted(handled & dead)[:10]}"
    assert len(handled) + len(dead) == len(produced)
    assert handled | dead == produced
    assert counted == len(dead)
    assert not result.skips
    assert not result.disorder
