"""Run a real Poller against the real broker, with a handler the test controls."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from runtime.cli.launcher import assemble_poller
from runtime.definition.model import parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.invokers import LocalHandlerInvoker
from runtime.pipeline.failures import RetryBackoff
from runtime.pipeline.poller import Poller, PollerOptions

FAST_RETRY = RetryBackoff(first_s=0.01, cap_s=0.05)


def mapping_doc(kafka: ClusterInfo, topic: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid mapping for ``topic`` on the test broker; ``fields`` override."""
    doc: dict[str, Any] = {
        "FunctionName": "test-function",
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"group-{topic}"},
    }
    doc.update(fields)
    return doc


@dataclass
class Invocation:
    """One call of the test handler."""

    event: dict[str, Any]
    received_at: float

    def offsets(self) -> dict[str, list[int]]:
        return {k: [r["offset"] for r in v] for k, v in self.event["records"].items()}

    def count(self) -> int:
        return sum(len(v) for v in self.event["records"].values())


@dataclass
class RecordingHandler:
    """Records every event; ``behaviour`` may raise (a function error) or block."""

    behaviour: Callable[[dict[str, Any], int], Any] | None = None
    calls: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def __call__(self, event: dict[str, Any], _context: object) -> Any:
        with self._lock:
            number = len(self.calls)
            self.calls.append(Invocation(event, time.monotonic()))
            self._changed.notify_all()
        if self.behaviour is not None:
            return self.behaviour(event, number)
        return None

    def wait_for(
        self, predicate: Callable[[list[Invocation]], bool], timeout_s: float = 30
    ) -> None:
        """Block until ``predicate(calls)`` holds; fail the test on timeout."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.calls), timeout=timeout_s):
                raise AssertionError(
                    f"condition not met within {timeout_s}s; calls={len(self.calls)}"
                )

    def delivered(self) -> list[tuple[str, int]]:
        """(topic-partition, offset) of every record delivered, in delivery order."""
        with self._lock:
            return [
                (k, o) for call in self.calls for k, offs in call.offsets().items() for o in offs
            ]

    def values(self) -> list[bytes]:
        import base64

        with self._lock:
            return [
                base64.b64decode(r["value"])
                for c in self.calls
                for rs in c.event["records"].values()
                for r in rs
            ]


class RunningPoller:
    """A poller on a background thread."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.poller.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def wait_assigned(self, count: int = 1, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.poller.assigned_partitions) < count:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError(f"not assigned {count} partitions; error={self.error!r}")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 60) -> None:
        self.poller.stop()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "poller did not stop in time"


@contextmanager
def running_poller(
    kafka: ClusterInfo,
    doc: dict[str, Any],
    handler: Callable[[dict[str, Any], Any], Any],
    options: PollerOptions | None = None,
    timeout_s: float = 60,
) -> Iterator[RunningPoller]:
    mapping = parse_mapping(doc)
    invoker = LocalHandlerInvoker(handler, function_name=mapping.function_name, timeout_s=timeout_s)
    running = RunningPoller(
        assemble_poller(mapping, invoker, options or PollerOptions(retry_backoff=FAST_RETRY))
    )
    running.thread.start()
    try:
        yield running
    finally:
        running.stop()


def committed(kafka: ClusterInfo, group: str, topic: str, partitions: int = 1) -> list[int]:
    """The group's committed offsets (-1001 when none) per partition."""
    consumer = Consumer({**kafka.plaintext_config(), "group.id": group})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=15
        )
    finally:
        consumer.close()
    return [tp.offset for tp in found]


def wait_committed(kafka: ClusterInfo, group: str, topic: str, expected: list[int]) -> None:
    """Wait up to 30 s for the group's committed offsets to equal ``expected``."""
    deadline = time.monotonic() + 30
    found: object = None
    while time.monotonic() < deadline:
        try:
            found = committed(kafka, group, topic, len(expected))
        except KafkaException as exc:  # the coordinator may still be loading the group
            found = exc
        if found == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"committed {found}, expected {expected}")


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
