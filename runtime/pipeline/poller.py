"""The poll loop: wires source, filter, batcher, processors and commits.

One thread owns the consumer. It polls records, buffers them per partition, starts
a worker for each batch the batcher cuts (at most one per partition, at most
``max_concurrency`` at once), and commits the offsets the workers settle. Rebalances
and shutdown drain in-flight batches within a bound and commit what succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.definition.filters import compile_filters
from runtime.definition.model import EventSourceMapping
from runtime.destinations.writers import FailureDestination
from runtime.invokers import Invoker
from runtime.observability.counters import CommitTally, Counters, Metric
from runtime.observability.health import Heartbeat, health_file
from runtime.observability.publishers import Reporter, ReportingOptions
from runtime.observability.state import (
    MappingStatus,
    MappingStopped,
    State,
    StateTransitionReason,
    problem,
)
from runtime.pipeline.batcher import Batch, Batcher, PartitionId
from runtime.pipeline.failures import FailurePolicy, RetryBackoff
from runtime.pipeline.processor import BatchOutcome, BatchProcessor
from runtime.pipeline.source import KafkaSource

log = logging.getLogger("runtime.pipeline.poller")

SourceFactory = Callable[..., KafkaSource]
DestinationFactory = Callable[[Mapping[str, Any]], FailureDestination | None]
"""Builds the on-failure destination from the cluster's resolved client settings."""
_BUSY_POLL_S = 0.005
_HOLD_LIMIT_S = 10.0
_IDLE_POLL_S = 0.05


@dataclass(frozen=True)
class PollerOptions:
    """How the poller runs (not part of AWS's mapping definition)."""

    max_concurrency: int = 8
    """Batches in flight at once across partitions (each partition has at most one)."""
    drain_timeout_s: float = 30.0
    """On stop or revocation, how long in-flight batches may finish before being abandoned."""
    max_poll_records: int = 10_000
    consumer_overrides: Mapping[str, Any] = field(default_factory=dict)
    """librdkafka settings that win over the defaults (security, tuning)."""
    retry_backoff: RetryBackoff = field(default_factory=RetryBackoff)
    """Wait between retries of a failed batch."""
    reporting: ReportingOptions | None = None
    """Metrics (EMF, Prometheus), lag, DesiredPollerCount and the status document; None: off."""


class Poller:
    """Runs one mapping until :meth:`stop` is called or the mapping stops itself."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        invoker: Invoker,
        options: PollerOptions | None = None,
        *,
        counters: Counters | None = None,
        status: MappingStatus | None = None,
        processor: BatchProcessor | None = None,
        source_factory: SourceFactory = KafkaSource,
        destination: FailureDestination | None = None,
        destination_factory: DestinationFactory | None = None,
        client_settings: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.mapping = mapping
        self.options = options or PollerOptions()
        self.counters = counters or Counters()
        self.status = status or MappingStatus()
        self._stopping = threading.Event()
        self._filter = compile_filters(mapping.filter_patterns) if mapping.filter_patterns else None
        self._batcher = Batcher(
            mapping.bootstrap_servers, mapping.batch_size, mapping.batching_window_seconds
        )
        # Offsets a batch settled while still in flight (records before a failed one).
        self._progress: queue.Queue[tuple[Batch, Mapping[PartitionId, int]]] = queue.Queue()
        self._destination = destination
        self._destination_factory = destination_factory
        # The cluster settings other clients (kafka:// destination, lag reader) need; with
        # security they exist only once the source has read the secrets, at subscribe.
        self._client_settings = client_settings or (lambda: self.options.consumer_overrides)
        self._processor = processor or BatchProcessor(
            invoker,
            mapping.bootstrap_servers,
            self.counters,
            self.status,
            self._stopping,
            backoff=self.options.retry_backoff,
            policy=FailurePolicy.for_mapping(mapping),
            destination=destination,
            on_progress=lambda batch, offsets: self._progress.put((batch, offsets)),
        )
        self._heartbeat = Heartbeat(health_file())
        self._last_fetch = time.monotonic()
        self._done: queue.Queue[BatchOutcome] = queue.Queue()
        self._in_flight: dict[int, Batch] = {}
        self._owner: dict[PartitionId, int] = {}  # partition -> id of its in-flight batch
        self._assigned: set[PartitionId] = set()
        self._to_commit: dict[PartitionId, int] = {}
        self._tally = CommitTally()
        self._source = source_factory(
            mapping, self, self.counters, overrides=self.options.consumer_overrides
        )
        self._reporter: Reporter | None = None

    # -- control -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to stop gracefully; safe from signal handlers and other threads."""
        self._stopping.set()

    @property
    def assigned_partitions(self) -> frozenset[PartitionId]:
        """Partitions this poller owns now."""
        return frozenset(self._assigned)

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for."""
        return self._stopping.is_set()

    def run(self) -> None:
        """Consume until stopped. Raises MappingStopped when AWS would disable the mapping."""
        if not self.mapping.enabled:
            self.status.transition(State.DISABLED)
            log.info("mapping is disabled (Enabled: false); nothing to do")
            return
        if self.mapping.schema_registry is not None:
            # Validated like every field, but the poller does not decode Avro, Protobuf or
            # JSON Schema records: the function receives the raw bytes, base64-encoded.
            log.warning(
                "SchemaRegistryConfig is not applied by this poller: records are "
                "sent as they are in Kafka"
            )
        self.status.transition(State.ENABLING)
        try:
            self._source.subscribe()
            self._attach_cluster_clients()
            self.status.transition(State.ENABLED)
            while not self._stopping.is_set():
                self._step()
        except MappingStopped as stopped:
            self.status.stop(stopped)
            self._heartbeat.beat(self.status.snapshot(), force=True)
            log.error(
                "mapping stopped: %s",
                stopped.result,
                extra={"stateTransitionReason": stopped.reason.value},
            )
            self._shutdown(disable=False)
            raise
        self._shutdown(disable=True)

    def _attach_cluster_clients(self) -> None:
        """Start what needs the resolved cluster settings: destination writer, reporter."""
        settings = self._client_settings()
        if self._destination_factory is not None:
            try:
                self._destination = self._destination_factory(settings)
            except ValueError as exc:  # e.g. a FIFO queue, or the source topic itself
                raise MappingStopped(
                    StateTransitionReason.ESM_CONFIG_NOT_VALID, problem(str(exc))
                ) from None
            self._processor.use_destination(self._destination)
        if self.options.reporting is not None:
            self._reporter = Reporter.for_poller(
                self.mapping, self.options.reporting, self.counters, self.status, settings
            )
            self._reporter.start()

    # -- one turn of the loop ------------------------------------------------------------
    def _step(self) -> None:
        self._collect(block_s=0)
        self._dispatch()
        hold = self._apply_backpressure()
        self._commit(wait=False)
        self._heartbeat.beat(self.status.snapshot())
        if hold:  # everything is full: wait for batches instead of fetching more
            self._collect(block_s=_BUSY_POLL_S)
            return
        self._last_fetch = time.monotonic()
        for record in self._source.poll(self.options.max_poll_records, self._poll_timeout()):
            keep = self._filter is None or self._filter.matches(record.value)
            if not keep:
                self.counters.add(Metric.FILTERED_OUT)
            self._tally.polled((record.topic, record.partition), record.offset)
            self._batcher.add(record, now=time.monotonic(), keep=keep)
        if self._reporter is not None:
            self._reporter.observe(self._assigned, self._owner.keys())

    def _poll_timeout(self) -> float:
        """Short while batches are in flight (to commit promptly), else until the window."""
        if self._in_flight:
            return _BUSY_POLL_S
        deadline = self._batcher.next_deadline()
        if deadline is None:
            return _IDLE_POLL_S
        return min(max(deadline - time.monotonic(), 0.0), _IDLE_POLL_S)

    def _dispatch(self) -> None:
        for partition, offset in self._batcher.settle_filtered_heads().items():
            self._settle(partition, offset)
        while len(self._in_flight) < self.options.max_concurrency:
            batch = self._batcher.next_batch(time.monotonic())
            if batch is None:
                return
            self._in_flight[batch.id] = batch
            for partition in batch.partitions:
                self._owner[partition] = batch.id
            worker = threading.Thread(
                target=self._work, args=(batch,), daemon=True, name=f"batch-{batch.id}"
            )
            worker.start()

    def _work(self, batch: Batch) -> None:
        try:
            outcome = self._processor.process(batch)
        except Exception:  # a bug must not lose the batch: it stays unsettled
            log.exception("batch processing crashed", extra={"batch": batch.id})
            outcome = BatchOutcome(batch, {}, complete=False)
        self._done.put(outcome)

    def _collect(self, block_s: float) -> None:
        """Take finished batches off the queue and turn them into offsets to commit."""
        self._collect_progress()
        timeout: float | None = block_s
        while True:
            try:
                outcome = self._done.get(timeout=timeout) if timeout else self._done.get_nowait()
            except queue.Empty:
                return
            timeout = None
            self._finish(outcome)

    def _collect_progress(self) -> None:
        """Settle what in-flight batches already settled, if they still own the partition."""
        while True:
            try:
                batch, offsets = self._progress.get_nowait()
            except queue.Empty:
                return
            for partition, offset in offsets.items():
                if self._owner.get(partition) == batch.id:
                    self._settle(partition, offset)

    def _finish(self, outcome: BatchOutcome) -> None:
        batch = outcome.batch
        self._in_flight.pop(batch.id, None)
        owned = [p for p in batch.partitions if self._owner.get(p) == batch.id]
        for partition in owned:
            del self._owner[partition]
            if partition in outcome.settled:
                self._settle(partition, outcome.settled[partition])
        self._batcher.release(owned)
        if outcome.stopped is not None:
            raise outcome.stopped
        if not outcome.complete and not self._stopping.is_set():
            # Abandoned without a stop (a crash): leave the offsets, re-read from there.
            self._stopping.set()

    def _settle(self, partition: PartitionId, next_offset: int) -> None:
        if partition in self._assigned:
            self._to_commit[partition] = max(next_offset, self._to_commit.get(partition, 0))
            self._tally.settled(partition, next_offset)

    def _commit(self, wait: bool = True) -> None:
        """Commit settled offsets: without waiting in the loop, waiting on revoke and stop."""
        if self._to_commit and self._source.commit(self._to_commit, wait=wait):
            self.counters.add(Metric.COMMITTED, self._tally.committed(self._to_commit))
            self._to_commit.clear()

    def _apply_backpressure(self) -> bool:
        """Pause partitions with too much waiting; True when this turn should not fetch.

        Pausing discards librdkafka's prefetched records and a resume can lag by a second,
        so when no other partition would keep fetching the loop holds off polling instead
        (librdkafka's bounded queue then stops fetching by itself), for at most
        ``_HOLD_LIMIT_S`` so that rebalance callbacks are still served.
        """
        drained = self._batcher.under_low_water()
        self._source.resume(drained)
        self._batcher.mark_paused(drained, False)
        full = self._batcher.over_high_water()
        if not full:
            return False
        paused = set(self._batcher.paused_partitions())
        still_fetching = self._assigned - paused - set(full)
        if not still_fetching and time.monotonic() - self._last_fetch < _HOLD_LIMIT_S:
            return True
        self._source.pause(full)
        self._batcher.mark_paused(full, True)
        return False

    # -- AssignmentListener ----------------------------------------------------------------
    def on_assigned(self, partitions: list[PartitionId]) -> None:
        """Start tracking newly assigned partitions."""
        self._assigned.update(partitions)

    def on_revoked(self, partitions: list[PartitionId], lost: bool) -> None:
        """Let in-flight batches of ``partitions`` finish (bounded), commit, forget them."""
        leaving = set(partitions)
        if not lost:
            self._drain(lambda: any(p in leaving for p in self._owner))
            self._commit()
        for partition in leaving:
            self._owner.pop(partition, None)
            self._to_commit.pop(partition, None)
        self._tally.forget(leaving)
        self._assigned -= leaving
        self._batcher.drop(leaving)

    # -- shutdown --------------------------------------------------------------------------
    def _drain(self, busy: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.options.drain_timeout_s
        while busy() and time.monotonic() < deadline:
            self._collect(block_s=min(0.05, max(deadline - time.monotonic(), 0.001)))
        if busy():
            log.warning(
                "in-flight batches abandoned uncommitted after the drain timeout",
                extra={"batches": sorted(self._in_flight)},
            )

    def _shutdown(self, disable: bool) -> None:
        if disable:
            self.status.transition(State.DISABLING, StateTransitionReason.USER_ACTION)
        self._stopping.set()
        with contextlib.suppress(MappingStopped):  # already stopping: the reason is logged
            self._drain(lambda: bool(self._in_flight))
        # Abandoned batches stay uncommitted: the next owner of their partitions reads
        # them again. Forget them so that leaving the group does not wait a second time.
        self._in_flight.clear()
        self._owner.clear()
        self._commit()
        self._source.close()
        if self._destination is not None:
            self._destination.close()
        if disable:
            self.status.transition(State.DISABLED, StateTransitionReason.USER_ACTION)
        if self._reporter is not None:
            self._reporter.stop()
        log.info(
            "poller stopped",
            extra={"counts": {m.value: v for m, v in self.counters.snapshot().items()}},
        )
