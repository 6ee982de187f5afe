"""The poll loop: owns the consumer's thread and the timing of every stage.

One thread polls records from the source, filters them, buffers them per partition,
starts a worker for each batch the batcher cuts (at most one per partition, at most
``max_concurrency`` at once), and commits what the offsets ledger says is settled.
Rebalances and shutdown drain in-flight batches within a bound and commit what
succeeded. The loop builds nothing: :func:`runtime.cli.launcher.assemble_poller` gives
it its parts.
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

from runtime.definition.filters import RecordFilter
from runtime.definition.model import EventSourceMapping
from runtime.destinations.writers import FailureDestination
from runtime.observability.counters import Counters, Metric
from runtime.observability.health import Heartbeat
from runtime.observability.publishers import Reporter, ReportingOptions
from runtime.observability.state import (
    MappingStatus,
    MappingStopped,
    State,
    StateTransitionReason,
)
from runtime.pipeline.batcher import Batch, Batcher
from runtime.pipeline.failures import RetryBackoff
from runtime.pipeline.offsets import Ledger
from runtime.pipeline.processor import BatchOutcome, BatchProcessor
from runtime.pipeline.source import Source
from runtime.records import PartitionId, Record

log = logging.getLogger("runtime.pipeline.poller")

_BUSY_POLL_S = 0.005
_HOLD_LIMIT_S = 10.0
_STARVED_GRACE_S = 0.1
"""How long an idle partition may wait over the budget, fetching on, before the full
partitions are paused for it: about a fetch round trip and a batch."""
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


@dataclass(frozen=True)
class PollerParts:
    """The collaborators of one poller, built by the launcher (the one wiring point)."""

    source: Source
    ledger: Ledger
    """Stream: the offsets ledger; Queue: the acknowledgement ledger."""
    batcher: Batcher
    processor: BatchProcessor
    counters: Counters
    status: MappingStatus
    stopping: threading.Event
    """Shared with the processor: a stop interrupts retries."""
    record_filter: RecordFilter | None = None
    destination: FailureDestination | None = None
    """Closed on shutdown; the processor delivers to it."""
    reporter: Callable[[], Reporter] | None = None
    """Builds the metrics reporter once the source has connected (it reads lag with the
    cluster's resolved settings)."""
    heartbeat: Heartbeat = field(default_factory=lambda: Heartbeat(None))


class Poller:
    """Runs one mapping until :meth:`stop` is called or the mapping stops itself."""

    def __init__(
        self, mapping: EventSourceMapping, parts: PollerParts, options: PollerOptions
    ) -> None:
        self.mapping = mapping
        self.options = options
        self.counters = parts.counters
        self.status = parts.status
        self._parts = parts
        self._source = parts.source
        self._ledger = parts.ledger
        self._batcher = parts.batcher
        self._processor = parts.processor
        self._filter = parts.record_filter
        self._stopping = parts.stopping
        self._heartbeat = parts.heartbeat
        self._done: queue.Queue[BatchOutcome] = queue.Queue()
        self._workers = _Workers(self._work)
        self._last_fetch = time.monotonic()
        self._starved_since: float | None = None
        self._reporter: Reporter | None = None

    # -- control -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to stop gracefully; safe from signal handlers and other threads."""
        self._stopping.set()

    @property
    def assigned_partitions(self) -> frozenset[PartitionId]:
        """Partitions this poller owns now."""
        return self._ledger.assigned

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
        self.status.transition(State.ENABLING)
        self._build_reporter()  # a setup error here leaves nothing to stop
        try:
            self._source.subscribe(self)
            if self._reporter is not None:
                self._reporter.start()
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
        except BaseException:
            # Any other error still leaves the group and stops the reporter: otherwise the
            # client's threads keep the process alive after the error was reported.
            self._shutdown(disable=False)
            raise
        self._shutdown(disable=True)

    def _build_reporter(self) -> None:
        if self._parts.reporter is not None:
            self._reporter = self._parts.reporter()

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
        records = self._source.poll(self.options.max_poll_records, self._poll_timeout())
        if records:
            self._place(records)
        elif self._ledger.in_flight:
            # A share consumer answers at once while it holds records: wait for a batch.
            self._collect(block_s=_BUSY_POLL_S)
        if self._reporter is not None:
            busy = [p for p in self._ledger.assigned if self._ledger.busy(p)]
            self._reporter.observe(self._ledger.assigned, busy)

    def _place(self, records: list[Record]) -> None:
        """Filter one poll's records, tell the ledger, and buffer what it gives back."""
        placed, dropped = self._ledger.read_all(records, self._dropped(records))
        self._batcher.add_all(placed, now=time.monotonic(), dropped=dropped)

    def _dropped(self, records: list[Record]) -> set[int]:
        """Indexes of the records the mapping's filters drop (counted FilteredOutEventCount)."""
        record_filter = self._filter
        if record_filter is None:
            return set()
        dropped = {
            index
            for index, record in enumerate(records)
            # a registry failure is never filtered away: it goes to the on-failure path
            if record.undecodable is None and not record_filter.matches(record.filter_value)
        }
        if dropped:
            self.counters.add(Metric.FILTERED_OUT, len(dropped))
        return dropped

    def _poll_timeout(self) -> float:
        """Short while batches are in flight (to commit promptly), else until the window."""
        if self._ledger.in_flight:
            return _BUSY_POLL_S
        deadline = self._batcher.next_deadline()
        if deadline is None:
            return _IDLE_POLL_S
        return min(max(deadline - time.monotonic(), 0.0), _IDLE_POLL_S)

    def _dispatch(self) -> None:
        self._ledger.settle_skipped(self._batcher.settle_filtered_heads())
        while self._ledger.in_flight < self.options.max_concurrency:
            batch = self._batcher.next_batch(time.monotonic())
            if batch is None:
                return
            self._ledger.begin(batch)
            self._workers.submit(batch, in_flight=self._ledger.in_flight)

    def _work(self, batch: Batch) -> None:
        try:
            outcome = self._processor.process(batch)
        except Exception:  # a bug must not lose the batch: it stays unsettled
            log.exception("batch processing crashed", extra={"batch": batch.id})
            outcome = BatchOutcome(batch, complete=False)
        self._done.put(outcome)

    def _collect(self, block_s: float) -> None:
        """Take finished batches off the queue and tell the ledger."""
        timeout: float | None = block_s
        while True:
            try:
                outcome = self._done.get(timeout=timeout) if timeout else self._done.get_nowait()
            except queue.Empty:
                return
            timeout = None
            self._finish(outcome)

    def _finish(self, outcome: BatchOutcome) -> None:
        self._ledger.finish(outcome.batch, complete=outcome.complete)
        if outcome.stopped is not None:
            raise outcome.stopped
        if not outcome.complete and not self._stopping.is_set():
            # Abandoned without a stop (a crash): leave the offsets, re-read from there.
            self._stopping.set()

    def _commit(self, wait: bool = True) -> None:
        """Tell the broker what is settled: without waiting in the loop, waiting on revoke
        and stop."""
        self._ledger.flush(wait=wait)

    def _apply_backpressure(self) -> bool:
        """True when this turn should not fetch: the records waiting fill the budget.

        Over the budget the loop holds off polling (librdkafka's bounded queue then stops
        fetching by itself) rather than pausing full partitions: librdkafka hands
        partitions over in fetch-sized runs, so one poll often overfills one partition,
        and a pause throws away that partition's prefetched records and resumes a fetch
        round trip later. Pausing every full partition starved the others (4 partitions,
        BatchSize 1000: 2.4 of 4 had a batch in flight on average; holding: 3.7).

        A partition with nothing waiting and no batch in flight is starved: its records
        may sit behind the full partitions' in the fetch, so the loop fetches on, and
        after ``_STARVED_GRACE_S`` pauses the full partitions (a stuck batch must not
        stop the other partitions). After ``_HOLD_LIMIT_S`` of holding it pauses them
        too, so that rebalance callbacks are still served.
        """
        source, batcher = self._source, self._batcher
        source.resume(batcher.under_low_water(source.paused))
        assigned = self._ledger.assigned
        if not batcher.over_budget(len(assigned)):
            self._starved_since = None
            return False
        now = time.monotonic()
        if batcher.idle(assigned - source.paused):
            self._starved_since = self._starved_since or now
            if now - self._starved_since >= _STARVED_GRACE_S:
                source.pause(batcher.over_high_water(source.paused))
            return False
        self._starved_since = None
        if now - self._last_fetch < _HOLD_LIMIT_S:
            return True
        source.pause(batcher.over_high_water(source.paused))
        return False

    # -- AssignmentListener ----------------------------------------------------------------
    def on_assigned(self, partitions: list[PartitionId]) -> None:
        """Start tracking newly assigned partitions."""
        self._ledger.assign(partitions)

    def on_revoked(self, partitions: list[PartitionId], lost: bool) -> None:
        """Let in-flight batches of ``partitions`` finish (bounded), commit, forget them."""
        leaving = set(partitions)
        if not lost:
            self._drain(lambda: self._ledger.holds_any(leaving))
            self._commit()
        self._ledger.revoke(leaving)
        self._batcher.drop(leaving)

    # -- shutdown --------------------------------------------------------------------------
    def _drain(self, busy: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.options.drain_timeout_s
        while busy() and time.monotonic() < deadline:
            self._collect(block_s=min(0.05, max(deadline - time.monotonic(), 0.001)))
        if busy():
            log.warning(
                "in-flight batches abandoned uncommitted after the drain timeout",
                extra={"batches": self._ledger.in_flight_ids()},
            )

    def _shutdown(self, disable: bool) -> None:
        if disable:
            self.status.transition(State.DISABLING, StateTransitionReason.USER_ACTION)
        self._stopping.set()
        with contextlib.suppress(MappingStopped):  # already stopping: the reason is logged
            self._drain(lambda: self._ledger.in_flight > 0)
        # Abandoned batches stay uncommitted: the next owner of their partitions reads
        # them again. Forget them so that leaving the group does not wait a second time.
        self._ledger.abandon()
        self._workers.close()
        self._commit()
        self._source.close()
        if self._parts.destination is not None:
            self._parts.destination.close()
        if disable:
            self.status.transition(State.DISABLED, StateTransitionReason.USER_ACTION)
        if self._reporter is not None:
            self._reporter.stop()
        log.info(
            "poller stopped",
            extra={"counts": {m.value: v for m, v in self.counters.snapshot().items()}},
        )


class _Workers:
    """The daemon threads that run batches, started as batches need them and reused.

    A thread per batch costs ~0.2 ms to start, and more while another thread holds the
    GIL (``Thread.start`` waits for the new thread to run): at BatchSize 1000 that was a
    tenth of the loop's time. Threads are daemons, so a batch stuck in a hung function
    never keeps the process from exiting.
    """

    def __init__(self, work: Callable[[Batch], None]) -> None:
        self._work = work
        self._queue: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, batch: Batch, *, in_flight: int) -> None:
        """Run ``batch`` on a free thread. A thread is busy only with a batch in flight, so
        ``in_flight`` threads (this batch counted) always leave one free for it."""
        if len(self._threads) < in_flight:
            thread = threading.Thread(
                target=self._serve, daemon=True, name=f"batch-worker-{len(self._threads)}"
            )
            thread.start()
            self._threads.append(thread)
        self._queue.put(batch)

    def close(self) -> None:
        """Let idle threads end (a busy one ends after its batch; none is waited for)."""
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []

    def _serve(self) -> None:
        while (batch := self._queue.get()) is not None:
            self._work(batch)
