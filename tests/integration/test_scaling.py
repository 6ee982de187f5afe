"""Scaling on the real broker: concurrency bound, group split, rebalances, DesiredPollerCount."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer

from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.publishers import ReportingOptions
from runtime.observability.scaling import PollerCapacity
from runtime.observability.status import read_status_documents
from runtime.pipeline.poller import PollerOptions
from tests.kafka_helpers import produce
from tests.poller_harness import (
    FAST_RETRY,
    RecordingHandler,
    RunningPoller,
    committed,
    mapping_doc,
    running_poller,
)

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., str]


def _await(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _committed_now(kafka: ClusterInfo, group: str, topic: str, partitions: int) -> list[int]:
    try:
        return committed(kafka, group, topic, partitions)
    except KafkaException:  # the coordinator may be moving the group
        return []


class Overlap:
    """Counts invocations in progress at once (a handler behaviour)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, _event: dict[str, Any], _number: int) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.seconds)
        with self._lock:
            self.now -= 1


def test_concurrent_batches_stay_within_max_concurrency(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=4)
    for partition in range(4):
        produce(kafka.plaintext_config(), topic, [b"x"] * 20, partition=partition)
    overlap = Overlap(0.05)
    handler = RecordingHandler(behaviour=overlap)
    doc = mapping_doc(kafka, topic, BatchSize=5, MaximumBatchingWindowInSeconds=0)
    options = PollerOptions(max_concurrency=2, retry_backoff=FAST_RETRY)
    with running_poller(kafka, doc, handler, options):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 80)
    assert overlap.peak == 2


@contextmanager
def _pollers(
    kafka: ClusterInfo, doc: dict[str, Any], handlers: list[RecordingHandler]
) -> Iterator[list[RunningPoller]]:
    with ExitStack() as stack:
        yield [stack.enter_context(running_poller(kafka, doc, h)) for h in handlers]


def test_two_pollers_in_one_group_split_the_partitions(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=4)
    handlers = [RecordingHandler(), RecordingHandler()]
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    with _pollers(kafka, doc, handlers) as (first, second):

        def split() -> bool:
            a, b = first.poller.assigned_partitions, second.poller.assigned_partitions
            return bool(a) and bool(b) and a.isdisjoint(b) and len(a | b) == 4

        _await(split, "the group to split four partitions between both pollers")
        owned = [
            {p for _, p in first.poller.assigned_partitions},
            {p for _, p in second.poller.assigned_partitions},
        ]
        for partition in range(4):
            produce(kafka.plaintext_config(), topic, [b"r"] * 10, partition=partition)
        _await(lambda: sum(len(h.delivered()) for h in handlers) >= 40, "every record delivered")
    for handler, partitions in zip(handlers, owned, strict=True):
        seen = {int(key.rsplit("-", 1)[1]) for key, _ in handler.delivered()}
        assert seen == partitions, "a poller only sees the partitions it owns"
    assert committed(kafka, f"group-{topic}", topic, 4) == [10] * 4


class Stream:
    """Produces to every partition until stopped, and remembers how much it wrote."""

    def __init__(self, kafka: ClusterInfo, topic: str, partitions: int) -> None:
        self.producer = Producer({**kafka.plaintext_config(), "linger.ms": 5})
        self.topic = topic
        self.written = [0] * partitions
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            for partition, count in enumerate(self.written):
                for offset in range(count, count + 5):
                    self.producer.produce(self.topic, b"%d" % offset, partition=partition)
                self.written[partition] += 5
            assert self.producer.flush(30) == 0
            self.stopping.wait(0.05)

    def stop(self) -> list[int]:
        self.stopping.set()
        self.thread.join(60)
        return self.written


def test_a_poller_joining_and_one_leaving_mid_stream_lose_and_skip_nothing(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic, partitions = topic_factory(partitions=4), 4
    handlers = [RecordingHandler(behaviour=lambda _e, _n: time.sleep(0.01)) for _ in range(3)]
    doc = mapping_doc(kafka, topic, BatchSize=10, MaximumBatchingWindowInSeconds=0)
    stream = Stream(kafka, topic, partitions)

    def delivered() -> int:
        return len({item for h in handlers for item in h.delivered()})

    with ExitStack() as stack:
        first = stack.enter_context(running_poller(kafka, doc, handlers[0]))
        stack.enter_context(running_poller(kafka, doc, handlers[1]))
        first.wait_assigned(1)
        stream.thread.start()
        _await(lambda: delivered() >= 100, "the stream to flow")
        third = stack.enter_context(running_poller(kafka, doc, handlers[2]))
        _await(lambda: bool(handlers[2].delivered()), "the joining poller to take a share")
        first.stop()  # leaves mid-stream: its partitions move to the others
        after_leaving = delivered()
        _await(lambda: delivered() >= after_leaving + 100, "the stream to flow on without it")
        assert third.thread.is_alive()
        written = stream.stop()
        _await(
            lambda: _committed_now(kafka, f"group-{topic}", topic, partitions) == written,
            "every partition committed to its end",
        )
    by_partition: dict[str, set[int]] = defaultdict(set)
    for handler in handlers:
        for key, offset in handler.delivered():
            by_partition[key].add(offset)
    assert by_partition == {f"{topic}-{p}": set(range(written[p])) for p in range(partitions)}, (
        "every offset was delivered at least once"
    )


def _most_at_once(kafka: ClusterInfo, topic: str, seconds: float) -> int:
    """The most invocations running at the same moment, with a handler that sleeps."""
    handler = RecordingHandler(behaviour=lambda _e, _n: time.sleep(seconds))
    doc = mapping_doc(kafka, topic, BatchSize=5, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 40)
    starts = sorted(call.received_at for call in handler.calls)
    return max(sum(1 for s in starts if start <= s < start + seconds) for start in starts)


def test_with_a_slow_function_throughput_grows_with_the_partition_count(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    """Batches of different partitions run side by side; one partition's never do.

    Counted, not timed: a wall-clock comparison failed once under a loaded suite when one
    partition's first fetch came half a second after the others'.
    """
    one = topic_factory(partitions=1)
    produce(kafka.plaintext_config(), one, [b"x"] * 40)
    four = topic_factory(partitions=4)
    for partition in range(4):
        produce(kafka.plaintext_config(), four, [b"x"] * 10, partition=partition)
    assert _most_at_once(kafka, one, 0.5) == 1  # 8 batches, one after another
    assert _most_at_once(kafka, four, 0.5) >= 3  # 4 partitions, 4 batches at a time


def test_desired_poller_count_follows_the_lag(
    kafka: ClusterInfo, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=4)
    for partition in range(4):
        produce(kafka.plaintext_config(), topic, [b"x"] * 10, partition=partition)
    # each record costs 0.2 s of function time; a poller carries one invocation and the
    # lag should go within a second: 40 records behind need 8 pollers, capped at 4
    handler = RecordingHandler(behaviour=lambda _e, _n: time.sleep(0.2))
    reporting = ReportingOptions(
        interval_s=0.1,
        status_interval_s=0.05,
        emf=False,
        status_dir=tmp_path,
        capacity=PollerCapacity(concurrent_invocations=1, catch_up_s=1.0),
    )
    doc = mapping_doc(kafka, topic, BatchSize=1, MaximumBatchingWindowInSeconds=0)
    options = PollerOptions(retry_backoff=FAST_RETRY, reporting=reporting, max_concurrency=1)

    def desired() -> int | None:
        documents, _ = read_status_documents(tmp_path)
        return documents[0].desired_pollers if documents else None

    with running_poller(kafka, doc, handler, options):
        _await(lambda: desired() == 4, "4 pollers (one per partition) while the lag lasts")
        _await(lambda: desired() == 1, "one poller once the lag is gone", timeout_s=90)
