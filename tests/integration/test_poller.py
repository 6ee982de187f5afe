"""The poller against the real broker: positions, groups, batching, order, retries, stop."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from runtime.observability.state import State
from runtime.pipeline.event import MAX_PAYLOAD_BYTES
from runtime.pipeline.poller import PollerOptions
from tests.kafka_helpers import produce
from tests.poller_harness import (
    FAST_RETRY,
    RecordingHandler,
    committed,
    mapping_doc,
    running_poller,
)

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., str]


def _values(n: int, start: int = 0) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(start, start + n)]


def test_trim_horizon_reads_from_the_beginning(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, _values(10))
    handler = RecordingHandler()
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 10)
    assert handler.values() == _values(10)


def test_latest_skips_what_was_there_before(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"old"] * 5)
    handler = RecordingHandler()
    doc = mapping_doc(kafka, topic, StartingPosition="LATEST", MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler) as running:
        running.wait_assigned()
        # LATEST is resolved when fetching starts: produce until the first new record shows.
        produced = 0
        while not handler.calls:
            produce(kafka.plaintext_config(), topic, _values(1, produced))
            produced += 1
            handler.wait_for(lambda calls: True, timeout_s=0.2) if produced < 50 else None
        produce(kafka.plaintext_config(), topic, _values(3, produced))
        handler.wait_for(lambda calls: b"record-%d" % (produced + 2) in _decoded(calls))
    values = handler.values()
    assert b"old" not in values
    first_new = int(values[0].split(b"-")[1])
    assert values == _values(produced + 3 - first_new, first_new)


def _decoded(calls: list[Any]) -> list[bytes]:
    import base64

    return [
        base64.b64decode(r["value"])
        for c in calls
        for rs in c.event["records"].values()
        for r in rs
    ]


def test_at_timestamp_starts_at_the_first_record_at_or_after_it(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    base_ms = (int(time.time()) - 600) * 1000
    stamps = [base_ms + i * 1000 for i in range(10)]
    produce(kafka.plaintext_config(), topic, _values(10), timestamps=stamps)
    handler = RecordingHandler()
    doc = mapping_doc(
        kafka,
        topic,
        StartingPosition="AT_TIMESTAMP",
        StartingPositionTimestamp=(base_ms + 5000) / 1000,
        MaximumBatchingWindowInSeconds=0,
    )
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 5)
    assert handler.values() == _values(5, 5)
    assert handler.calls[0].event["records"][f"{topic}-0"][0]["timestamp"] == base_ms + 5000


def test_committed_offsets_of_an_existing_group_win(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, _values(10))
    group = f"group-{topic}"
    seed = Consumer({**kafka.plaintext_config(), "group.id": group})
    seed.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    seed.close()
    handler = RecordingHandler()
    with running_poller(
        kafka, mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0), handler
    ):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 3)
    assert handler.values() == _values(3, 7)


def test_batch_size_cuts_batches_then_the_window_sends_the_rest(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, _values(25))
    handler = RecordingHandler()
    doc = mapping_doc(kafka, topic, BatchSize=10, MaximumBatchingWindowInSeconds=1)
    with running_poller(kafka, doc, handler) as running:
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 25)
        running.poller.stop()
    assert [c.count() for c in handler.calls] == [10, 10, 5]


def test_window_sends_a_partial_batch_after_it_passes(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    handler = RecordingHandler()
    doc = mapping_doc(
        kafka, topic, BatchSize=1000, MaximumBatchingWindowInSeconds=2, StartingPosition="LATEST"
    )
    with running_poller(kafka, doc, handler) as running:
        running.wait_assigned()
        produced_at = time.monotonic()
        produce(kafka.plaintext_config(), topic, _values(3))
        handler.wait_for(lambda calls: len(calls) >= 1, timeout_s=30)
    assert [c.count() for c in handler.calls] == [3]
    assert handler.calls[0].received_at - produced_at >= 1.9


def test_payload_never_passes_six_megabytes(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(**{"max.message.bytes": str(2 * 1024 * 1024)})
    megabyte = b"x" * (1024 * 1024)
    config = {**kafka.plaintext_config(), "message.max.bytes": 2 * 1024 * 1024}
    produce(config, topic, [megabyte] * 8)
    sizes: list[int] = []
    handler = RecordingHandler(behaviour=lambda event, _n: sizes.append(len(_json(event))))
    doc = mapping_doc(kafka, topic, BatchSize=100, MaximumBatchingWindowInSeconds=1)
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 8)
    # 1 MiB becomes ~1.4 MB of base64: four fit under 6,291,456 bytes, a fifth would not.
    assert [c.count() for c in handler.calls] == [4, 4]
    assert all(size <= MAX_PAYLOAD_BYTES for size in sizes)


def _json(event: dict[str, Any]) -> bytes:
    import json

    return json.dumps(event, separators=(",", ":")).encode()


def test_partitions_progress_concurrently_in_order_one_batch_each(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=4)
    for partition in range(4):
        produce(kafka.plaintext_config(), topic, _values(100, partition * 100), partition=partition)
    busy: dict[str, int] = defaultdict(int)
    overlaps: list[str] = []
    peak = [0]

    def slow(event: dict[str, Any], _n: int) -> None:
        keys = list(event["records"])
        for key in keys:
            busy[key] += 1
            if busy[key] > 1:
                overlaps.append(key)
        peak[0] = max(peak[0], sum(1 for v in busy.values() if v))
        time.sleep(0.02)
        for key in keys:
            busy[key] -= 1

    handler = RecordingHandler(behaviour=slow)
    doc = mapping_doc(kafka, topic, BatchSize=10, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 400)
    per_partition: dict[str, list[int]] = defaultdict(list)
    for key, offset in handler.delivered():
        per_partition[key].append(offset)
    assert {k: v for k, v in per_partition.items()} == {
        f"{topic}-{p}": list(range(100)) for p in range(4)
    }
    assert overlaps == []
    assert peak[0] > 1, "partitions never ran concurrently"


def test_a_failing_batch_is_retried_until_it_succeeds_without_loss_or_reordering(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, _values(30))

    def flaky(_event: dict[str, Any], number: int) -> None:
        if number in (0, 1, 2, 5):
            raise RuntimeError(f"failure number {number}")

    handler = RecordingHandler(behaviour=flaky)
    doc = mapping_doc(kafka, topic, BatchSize=10, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler) as running:
        handler.wait_for(lambda calls: len(calls) >= 7)
        running.poller.stop()
    offsets = [c.offsets()[f"{topic}-0"] for c in handler.calls]
    assert offsets[:4] == [list(range(10))] * 4  # three failures, then success
    assert offsets[4] == list(range(10, 20))
    assert offsets[5] == offsets[6] == list(range(20, 30))  # failure number 5, retried
    assert committed(kafka, f"group-{topic}", topic) == [30]
    assert running.poller.counters.get(Metric.FAILED_INVOKE) == 40


def test_graceful_stop_finishes_the_in_flight_batch_and_commits(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, _values(5))
    import threading

    release = threading.Event()
    handler = RecordingHandler(behaviour=lambda _e, _n: release.wait(10))
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler) as running:
        handler.wait_for(lambda calls: len(calls) == 1)
        running.poller.stop()
        release.set()
        running.thread.join(30)
        assert not running.thread.is_alive()
        assert running.poller.status.snapshot().state is State.DISABLED
    assert committed(kafka, f"group-{topic}", topic) == [5]


def test_stop_abandons_a_batch_that_outlives_the_drain_timeout_uncommitted(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, _values(5))
    import threading

    release = threading.Event()
    handler = RecordingHandler(behaviour=lambda _e, _n: release.wait(30))
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    options = PollerOptions(drain_timeout_s=0.5, retry_backoff=FAST_RETRY)
    try:
        with running_poller(kafka, doc, handler, options) as running:
            handler.wait_for(lambda calls: len(calls) == 1)
            started = time.monotonic()
            running.poller.stop()
            running.thread.join(30)
            assert time.monotonic() - started < 10
    finally:
        release.set()
    assert committed(kafka, f"group-{topic}", topic) == [-1001]
