"""The broker the benchmarks run against, and the topics they fill.

A fresh local Kafka per run (unless ``--bootstrap`` names one), so that no other
workload's topics or consumer groups share its disk and page cache.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from runtime.devtools.local_kafka import ClusterInfo, LocalKafka

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Where the broker jars are cached: ``$KAFKA_ESM_CACHE`` or the repository's .cache."""
    return Path(os.environ.get("KAFKA_ESM_CACHE", REPO_ROOT / ".cache" / "kafka-esm"))


@contextmanager
def kafka_cluster(bootstrap: str | None = None) -> Iterator[ClusterInfo]:
    """A running broker for the whole benchmark run; stopped (and deleted) at the end."""
    if bootstrap:
        yield ClusterInfo.external(bootstrap)
        return
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as home:
        broker = LocalKafka(Path(home) / "broker", cache_dir=cache_dir())
        info = broker.start(die_with_parent=True)
        try:
            yield info
        finally:
            broker.stop()


def new_topic(kafka: ClusterInfo, partitions: int, prefix: str = "bench") -> str:
    """Create a topic with a name no earlier run used; wait until the broker confirms it."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({**kafka.plaintext_config(), "log_level": 4})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)
    return name


def fill_topic(kafka: ClusterInfo, topic: str, count: int, size: int, partitions: int) -> None:
    """Write ``count`` records of ``size`` random-looking bytes, spread evenly over partitions."""
    producer = Producer(
        {
            **kafka.plaintext_config(),
            "acks": "1",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.kbytes": 262_144,
            "log_level": 4,  # no info line about purged queues at exit
        }
    )
    value = os.urandom(size)  # one value for all: content does not matter, size does
    for index in range(count):
        while True:
            try:
                producer.produce(topic, value=value, partition=index % partitions)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise KafkaException(f"records for {topic} not delivered within 120 s")


class FilledTopics:
    """Topics that hold exactly ``records`` records, made once per (partitions, records).

    A consumer reads a whole topic: were there more records behind the ones a
    benchmark counts, the poller would spend CPU reading ahead into them while
    the counted batches run, and the figure would measure that instead.
    """

    def __init__(self, kafka: ClusterInfo, record_size: int) -> None:
        self._kafka = kafka
        self._record_size = record_size
        self._topics: dict[tuple[int, int], str] = {}

    def get(self, partitions: int, records: int) -> str:
        """The topic with ``records`` records over ``partitions`` partitions."""
        key = (partitions, records)
        if key not in self._topics:
            topic = new_topic(self._kafka, partitions)
            fill_topic(self._kafka, topic, records, self._record_size, partitions)
            self._topics[key] = topic
        return self._topics[key]


class PacedProducer:
    """Produces one small record at a time with no client-side batching delay.

    The record's CreateTime (set by the client when ``produce`` is called) is what
    the latency benchmark measures from.
    """

    def __init__(self, kafka: ClusterInfo, topic: str) -> None:
        self._topic = topic
        self._producer = Producer(
            {**kafka.plaintext_config(), "acks": "1", "linger.ms": 0, "log_level": 4}
        )

    def run(self, rate_per_s: float, duration_s: float, size: int) -> int:
        """Produce at ``rate_per_s`` for ``duration_s``; return how many were sent."""
        value = os.urandom(size)
        interval = 1.0 / rate_per_s
        start = time.monotonic()
        sent = 0
        while (due := start + sent * interval) < start + duration_s:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._producer.produce(self._topic, value=value)
            self._producer.poll(0)
            sent += 1
        self._producer.flush(30)
        return sent
