"""Backpressure on the real broker: a stuck function stops the fetching without pausing,
a partition stuck behind another's records still gets its batch, and nothing is lost or
repeated once the function recovers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from runtime.pipeline.poller import PollerOptions
from runtime.pipeline.source import ConsumerGroupSource
from runtime.records import PartitionId
from tests.kafka_helpers import produce
from tests.poller_harness import RecordingHandler, mapping_doc, running_poller

pytestmark = pytest.mark.integration

PARTITIONS = 4
PER_PARTITION = 3_000
BATCH_SIZE = 100  # high water: 500 records per partition
MAX_POLL = 500


def test_a_stuck_function_holds_the_fetching_and_every_partition_gets_its_batch(
    kafka: ClusterInfo, topic_factory: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = topic_factory(partitions=PARTITIONS)
    for partition in range(PARTITIONS):
        produce(kafka.plaintext_config(), topic, [b"x" * 100] * PER_PARTITION, partition=partition)
    paused: list[set[PartitionId]] = []
    pause = ConsumerGroupSource.pause

    def recording_pause(self: ConsumerGroupSource, partitions: Collection[PartitionId]) -> None:
        if partitions:
            paused.append(set(partitions))
        pause(self, partitions)

    monkeypatch.setattr(ConsumerGroupSource, "pause", recording_pause)
    gate = threading.Event()
    handler = RecordingHandler(behaviour=lambda _event, _number: gate.wait(30))
    doc = mapping_doc(kafka, topic, BatchSize=BATCH_SIZE, MaximumBatchingWindowInSeconds=0)
    options = PollerOptions(max_poll_records=MAX_POLL)
    with running_poller(kafka, doc, handler, options) as running:
        # One partition's records arrive first, yet every partition gets its batch: the
        # full ones are paused while another partition waits with nothing to send.
        handler.wait_for(lambda calls: len(calls) == PARTITIONS)

        def polled() -> int:
            return running.poller.counters.snapshot().get(Metric.POLLED, 0)

        deadline = time.monotonic() + 30
        while polled() < PARTITIONS * BATCH_SIZE + PARTITIONS * 5 * BATCH_SIZE:
            assert time.monotonic() < deadline, f"the budget was never filled: {polled()}"
            time.sleep(0.02)
        # Every partition has a stuck batch and the budget is full: the loop holds. For a
        # second (well under the 10 s hold limit) it reads at most one more poll and
        # pauses nothing.
        polled_at_hold, pauses_at_hold = polled(), len(paused)
        peak = polled_at_hold
        watch_until = time.monotonic() + 1.0
        while time.monotonic() < watch_until:
            peak = max(peak, polled())
            time.sleep(0.02)
        assert peak <= polled_at_hold + MAX_POLL < PARTITIONS * PER_PARTITION
        assert len(paused) == pauses_at_hold
        gate.set()
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= PARTITIONS * PER_PARTITION)
    delivered = Counter(handler.delivered())
    assert len(delivered) == PARTITIONS * PER_PARTITION  # nothing lost
    assert set(delivered.values()) == {1}  # nothing repeated
