"""Run the poller and the bare confluent-kafka loop the same way, and log deliveries.

Both join a fresh consumer group with the same librdkafka settings
(``runtime.client_settings.consumer_settings``), so the ratio between them is what the
poller adds on top of the client: records, batching, the event, the invoke.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer

from runtime.cli.launcher import assemble_poller
from runtime.client_settings import consumer_settings
from runtime.definition.model import EventSourceMapping, parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.invokers import HttpInvoker, Invoker, InvokeResult, LocalHandlerInvoker
from runtime.pipeline.poller import Poller, PollerOptions
from runtime.process_tuning import poll_loop_tuning


@dataclass
class DeliveryLog:
    """When records reached the consumer: (monotonic time, how many) per delivery."""

    expected: int
    marks: list[tuple[float, int]] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    """Per-record measurements (the latency benchmark's milliseconds)."""
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: int = 0

    def add(self, when: float, count: int, samples: list[float] | None = None) -> None:
        """Log one delivery; sets ``done`` once ``expected`` records arrived."""
        with self._lock:
            self.marks.append((when, count))
            if samples:
                self.samples.extend(samples)
            self._seen += count
            if self._seen >= self.expected:
                self.done.set()

    def expect(self, expected: int) -> None:
        """Change how many records complete the log (known only after producing)."""
        with self._lock:
            self.expected = expected
            if self._seen >= expected:
                self.done.set()

    @property
    def seen(self) -> int:
        """Records delivered so far."""
        return self._seen


def mapping_for(
    kafka: ClusterInfo, topic: str, batch_size: int, window_s: int | None
) -> EventSourceMapping:
    """A mapping on ``topic`` from the start, in a consumer group of its own."""
    doc: dict[str, Any] = {
        "FunctionName": "bench-function",
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": batch_size,
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"bench-{uuid.uuid4().hex}"},
    }
    if window_s is not None:
        doc["MaximumBatchingWindowInSeconds"] = window_s
    return parse_mapping(doc)


def record_count(event: dict[str, Any]) -> int:
    """Records in a Lambda Kafka event."""
    return sum(len(records) for records in event["records"].values())


Handler = Callable[[dict[str, Any], Any], Any]


class CountingInvoker:
    """An Invoke API invoker that logs each successful delivery's record count (every
    record's JSON object has exactly one ``"offset":`` key; values are base64)."""

    def __init__(self, inner: Invoker, log: DeliveryLog) -> None:
        self._inner = inner
        self._log = log

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        """Invoke, then log the delivery."""
        result = self._inner.invoke(payload, deadline_s=deadline_s)
        if result.ok:
            self._log.add(time.monotonic(), payload.count(b'"offset":'))
        return result


def api_invoker(mapping: EventSourceMapping, endpoint_url: str, log: DeliveryLog) -> Invoker:
    """The invoker ``kafka-esm run --endpoint-url`` builds, counting into ``log``."""
    return CountingInvoker(HttpInvoker(mapping.function_name, endpoint_url=endpoint_url), log)


def run_poller(
    mapping: EventSourceMapping,
    handler: Handler | Invoker,
    log: DeliveryLog,
    timeout_s: float,
    options: PollerOptions | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run a real Poller until ``log`` is complete: with an in-process handler, or an
    invoker (the Invoke API through :func:`api_invoker`)."""
    invoker = (
        handler
        if isinstance(handler, Invoker)
        else LocalHandlerInvoker(handler, function_name=mapping.function_name)
    )
    poller = assemble_poller(mapping, invoker, options or PollerOptions())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with poll_loop_tuning():  # as `kafka-esm run` runs it
                poller.run()
        except BaseException as exc:  # reported below, with the benchmark's context
            errors.append(exc)

    thread = threading.Thread(target=run, name="bench-poller", daemon=True)
    thread.start()
    try:
        if not mapping.is_queue:  # a share group assigns no partitions
            _wait_assigned(poller, thread, timeout_s)
        if on_started is not None:
            on_started()
        finished = log.done.wait(timeout_s)
    finally:
        poller.stop()
        thread.join(60)
    if errors:
        raise RuntimeError(f"poller failed: {errors[0]!r}") from errors[0]
    if not finished:
        raise TimeoutError(f"poller delivered {log.seen} of {log.expected} in {timeout_s} s")


def _wait_assigned(poller: Poller, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not poller.assigned_partitions:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise TimeoutError("the poller got no partition assignment")
        time.sleep(0.01)


def run_bare_loop(
    mapping: EventSourceMapping,
    log: DeliveryLog,
    timeout_s: float,
    *,
    per_record: Callable[[int], float] | None = None,
    max_records: int = 10_000,
    poll_timeout_s: float = 0.1,
    on_started: Callable[[], None] | None = None,
) -> None:
    """The baseline: consume, touch each value, count. No records, batches or events.

    ``per_record`` maps a record's timestamp to a sample (the latency benchmark);
    ``on_started`` runs once partitions are assigned, like ``run_poller``'s.
    """
    assigned = threading.Event()
    consumer = Consumer(consumer_settings(mapping))
    consumer.subscribe([mapping.topic], on_assign=lambda *_: assigned.set())
    deadline = time.monotonic() + timeout_s
    started = False
    try:
        while not log.done.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"bare loop delivered {log.seen} of {log.expected} in {timeout_s} s"
                )
            _consume_once(consumer, log, per_record, max_records, poll_timeout_s)
            if not started and assigned.is_set():
                started = True
                if on_started is not None:
                    on_started()
    finally:
        consumer.close()


def _consume_once(
    consumer: Consumer,
    log: DeliveryLog,
    per_record: Callable[[int], float] | None,
    max_records: int,
    poll_timeout_s: float,
) -> None:
    messages = consumer.consume(max_records, timeout=poll_timeout_s)
    now = time.monotonic()
    count = 0
    size = 0
    samples = []
    for message in messages:
        if message.error() is not None:
            continue
        size += len(message.value() or b"")
        count += 1
        if per_record is not None:
            samples.append(per_record(message.timestamp()[1]))
    if count:
        log.add(now, count, samples)
