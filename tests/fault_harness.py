"""In-process pollers and a live producer for the reliability scenarios.

A :class:`Fleet` runs pollers of one mapping on threads, each a *run* of its own in
the ledger, with a function the test shapes (fail, stall, pace). The ledger records
each invocation as the poller saw it (a timeout is a failure even if the handler
finishes later; with ReportBatchItemFailures, records from the lowest failed offset on
are failed), read independently of the processor from AWS's rules. A
:class:`LiveProducer` writes records at a steady rate until stopped, riding out broker
faults with the idempotent producer; what counts as produced is what the topic holds
at the end (its high watermarks), not what the producer believes it sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from runtime.cli.launcher import assemble_poller
from runtime.definition.model import parse_mapping
from runtime.invokers import Invoker, InvokeResult, LocalHandlerInvoker
from runtime.pipeline.batch_responses import BatchResponseError, lowest_failed_offsets
from runtime.pipeline.poller import PollerOptions
from tests.delivery_ledger import Delivery, Ledger
from tests.poller_harness import FAST_RETRY, RunningPoller

Function = Callable[[dict[str, Any], Any], Any]
"""The function's body: may raise (a function error), sleep (a timeout) or reply."""


class LedgerInvoker:
    """Wraps an invoker: every record of every invocation goes to the ledger, with its
    outcome as AWS defines it."""

    def __init__(self, inner: Invoker, ledger: Ledger, run: int, partial: bool) -> None:
        self._inner = inner
        self._ledger = ledger
        self._run = run
        self._partial = partial

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        """Invoke, then record each record as handled or failed."""
        received = time.time()
        result = self._inner.invoke(payload, deadline_s=deadline_s)
        event = json.loads(payload)
        failed_from = self._failed_from(event, result)
        self._ledger.extend(
            Delivery(
                self._run,
                record["partition"],
                record["offset"],
                received,
                ok=result.ok and record["offset"] < failed_from.get(key, record["offset"] + 1),
            )
            for key, records in event["records"].items()
            for record in records
        )
        return result

    def _failed_from(self, event: dict[str, Any], result: InvokeResult) -> dict[str, int]:
        if not (self._partial and result.ok):
            return {}
        sent = {key: {r["offset"] for r in records} for key, records in event["records"].items()}
        try:
            return lowest_failed_offsets(result.payload, sent)
        except BatchResponseError:  # the whole batch failed
            return {key: min(offsets) for key, offsets in sent.items()}


class Fleet:
    """Pollers of one mapping in this process; every poller is a run of the ledger."""

    def __init__(
        self,
        doc: dict[str, Any],
        ledger: Ledger,
        *,
        function: Function | None = None,
        options: PollerOptions | None = None,
        function_timeout_s: float = 60.0,
        poller_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.mapping = parse_mapping(doc)
        self.ledger = ledger
        self.function = function or (lambda _event, _context: None)
        self.options = options or PollerOptions(retry_backoff=FAST_RETRY)
        self.function_timeout_s = function_timeout_s
        self.poller_kwargs = dict(poller_kwargs or {})
        self.running: list[RunningPoller] = []
        self.stopped: list[RunningPoller] = []
        self._runs = 0

    def start(self) -> RunningPoller:
        """One more poller joins the group."""
        run = self._runs
        self._runs += 1
        local = LocalHandlerInvoker(
            self.function,
            function_name=self.mapping.function_name,
            timeout_s=self.function_timeout_s,
        )
        invoker = LedgerInvoker(
            local, self.ledger, run, partial=self.mapping.report_batch_item_failures
        )
        poller = assemble_poller(self.mapping, invoker, self.options, **self.poller_kwargs)
        running = RunningPoller(poller)
        running.thread.start()
        self.running.append(running)
        return running

    def stop(self, running: RunningPoller | None = None, timeout_s: float = 60) -> None:
        """The oldest poller (or ``running``) leaves the group gracefully."""
        target = running or self.running[0]
        self.running.remove(target)
        target.stop(timeout_s)
        self.stopped.append(target)
        if target.error is not None:
            raise AssertionError(f"a poller failed: {target.error!r}") from target.error

    def stop_all(self) -> None:
        """Every poller leaves; raises the first poller error."""
        while self.running:
            self.stop()
        errors = [r.error for r in self.stopped if r.error is not None]
        if errors:
            raise AssertionError(f"a poller failed: {errors[0]!r}") from errors[0]

    def check_alive(self) -> None:
        """Fail when a poller thread ended on its own."""
        for running in self.running:
            if not running.thread.is_alive():
                raise AssertionError(f"a poller ended by itself: {running.error!r}")


class LiveProducer:
    """Produces small records round-robin over partitions at ``rate`` per second."""

    def __init__(self, config: Mapping[str, Any], topic: str, partitions: int, rate: float) -> None:
        self._producer = Producer(
            {
                **config,
                "enable.idempotence": True,
                "linger.ms": 20,
                "log_level": 0,
                # Reconnect at once after a fault, so that recovery times measure the poller.
                "reconnect.backoff.max.ms": 250,
            }
        )
        self._topic = topic
        self._partitions = partitions
        self._rate = rate
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="live-producer", daemon=True)

    def start(self) -> LiveProducer:
        self._thread.start()
        return self

    def stop(self, flush_s: float = 60) -> None:
        """Stop producing and wait for every pending record to be acknowledged or fail."""
        self._stop.set()
        self._thread.join(30)
        self._producer.flush(flush_s)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self._rate)
            while self.sent < due:
                self._produce(self.sent)
            self._producer.poll(0.01)

    def _produce(self, number: int) -> None:
        try:
            self._producer.produce(
                self._topic,
                value=b"live-%08d" % number,
                partition=number % self._partitions,
            )
        except BufferError:
            self._producer.poll(0.1)
            return
        self.sent += 1


def end_offsets(config: Mapping[str, Any], topic: str, partitions: int) -> dict[int, int]:
    """The high watermark of every partition: what the topic holds (from offset 0)."""
    consumer = Consumer({**config, "group.id": "end-offsets"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def committed_offsets(
    config: Mapping[str, Any], group: str, topic: str, partitions: int
) -> dict[int, int]:
    """The group's committed offsets, per partition that has one."""
    consumer = Consumer({**config, "group.id": group})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=15
        )
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 0.2 s; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(0.2)
