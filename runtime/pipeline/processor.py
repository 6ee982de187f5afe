"""Settle one batch: invoke, retry, split, and give up on records as the mapping says.

A processor runs on a worker thread and owns its batch until every record in it is
settled: handled by the function, delivered to the on-failure destination, or dropped
under AWS's rules (counted and logged with its offset). A batch is worked on as a queue
of *pieces*, in offset order: the whole batch first, then what bisecting or a partial
batch response leaves to retry. Offsets only move past a record once it is settled;
``on_progress`` reports the offsets that became committable while the batch is still
being worked on, so that a poison record does not hold back the records before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from runtime.destinations.documents import Failure
from runtime.destinations.writers import FailureDestination, deliver_until_accepted
from runtime.invokers import ErrorKind, Invoker, InvokeResult
from runtime.observability.counters import Counters, Metric
from runtime.observability.state import OK, MappingStatus, MappingStopped, problem
from runtime.pipeline.batch_responses import BatchResponseError, lowest_failed_offsets
from runtime.pipeline.batcher import Batch, PartitionId
from runtime.pipeline.event import assemble_records
from runtime.pipeline.failures import (
    Condition,
    FailurePolicy,
    RetryBackoff,
    describe_failure,
    is_function_error,
    stop_for,
)
from runtime.pipeline.records import Record

log = logging.getLogger("runtime.batch")

ProgressCallback = Callable[[Batch, Mapping[PartitionId, int]], None]
"""Receives a batch and the next offset to commit for partitions that moved forward."""


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch settled. ``settled`` maps partitions to the next offset to commit."""

    batch: Batch
    settled: dict[PartitionId, int]
    complete: bool
    stopped: MappingStopped | None = None


@dataclass(frozen=True)
class _Piece:
    """Records sent together, and their history across retries and splits."""

    records: tuple[Record, ...]
    fragments: tuple[bytes, ...]
    invokes: int = 0
    """Invocations that carried these records (a split's halves inherit the count)."""
    retries: int = 0
    """Failed attempts of this very piece after its first; splitting resets it (AWS)."""
    last: InvokeResult | None = None

    def take(self, keep: Callable[[Record], bool]) -> tuple[_Piece, _Piece]:
        """(records ``keep`` accepts, the others), both keeping this piece's history."""
        kept: list[tuple[Record, bytes]] = []
        others: list[tuple[Record, bytes]] = []
        for pair in zip(self.records, self.fragments, strict=True):
            (kept if keep(pair[0]) else others).append(pair)
        return self._with(kept), self._with(others)

    def halves(self) -> list[_Piece]:
        """The two halves of a bisect; a split does not count as a retry."""
        middle = (len(self.records) + 1) // 2
        pairs = list(zip(self.records, self.fragments, strict=True))
        return [
            replace(self._with(pairs[:middle]), retries=0),
            replace(self._with(pairs[middle:]), retries=0),
        ]

    def sent(self) -> dict[str, set[int]]:
        """The offsets this piece's event carries, per ``<topic>-<partition>``."""
        offsets: dict[str, set[int]] = {}
        for record in self.records:
            offsets.setdefault(record.partition_key, set()).add(record.offset)
        return offsets

    def _with(self, pairs: Sequence[tuple[Record, bytes]]) -> _Piece:
        return replace(
            self, records=tuple(r for r, _ in pairs), fragments=tuple(f for _, f in pairs)
        )


class _Progress:
    """Which offsets of a batch are settled; commits stay contiguous per partition."""

    def __init__(self, batch: Batch) -> None:
        self._offsets: dict[PartitionId, list[int]] = {p: [] for p in batch.ranges}
        for record in batch.records:
            self._offsets[(record.topic, record.partition)].append(record.offset)
        self._ends = batch.next_offsets()
        self._cursor = dict.fromkeys(batch.ranges, 0)
        self._settled: set[tuple[str, int, int]] = set()
        self._starts = {p: first for p, (first, _) in batch.ranges.items()}
        self._reported = dict(self._starts)

    def settle(self, records: Sequence[Record]) -> dict[PartitionId, int]:
        """Mark ``records`` settled; returns partitions whose committable offset advanced."""
        self._settled.update((r.topic, r.partition, r.offset) for r in records)
        moved = {}
        for partition in {(r.topic, r.partition) for r in records}:
            offset = self._next(partition)
            if offset > self._reported[partition]:
                self._reported[partition] = moved[partition] = offset
        return moved

    def committable(self) -> dict[PartitionId, int]:
        """The next offset to commit for every partition that moved past its range's start."""
        return {p: offset for p in self._offsets if (offset := self._next(p)) > self._starts[p]}

    def _next(self, partition: PartitionId) -> int:
        offsets, index = self._offsets[partition], self._cursor[partition]
        topic, number = partition
        while index < len(offsets) and (topic, number, offsets[index]) in self._settled:
            index += 1
        self._cursor[partition] = index
        return offsets[index] if index < len(offsets) else self._ends[partition]


class _Interrupted(Exception):
    """The poller is stopping (or the mapping stopped): leave the rest unsettled."""

    def __init__(self, stopped: MappingStopped | None = None) -> None:
        super().__init__("interrupted")
        self.stopped = stopped


class BatchProcessor:
    """Invokes the function with a batch and applies the mapping's failure policy.

    Without error-handling fields this is AWS's default: retry until the batch
    succeeds. Retries are interrupted (the batch left unsettled) when the poller stops.
    """

    def __init__(
        self,
        invoker: Invoker,
        bootstrap_servers: tuple[str, ...],
        counters: Counters,
        status: MappingStatus,
        stopping: threading.Event,
        *,
        backoff: RetryBackoff | None = None,
        invoke_timeout_s: float = 840.0,
        policy: FailurePolicy | None = None,
        destination: FailureDestination | None = None,
        on_progress: ProgressCallback | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._invoker = invoker
        self._servers = bootstrap_servers
        self._counters = counters
        self._status = status
        self._stopping = stopping
        self._backoff = backoff or RetryBackoff()
        self._timeout_s = invoke_timeout_s
        self._policy = policy or FailurePolicy()
        self._destination = destination
        self._on_progress = on_progress
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def use_destination(self, destination: FailureDestination | None) -> None:
        """Set the on-failure destination once the cluster's settings are resolved."""
        self._destination = destination

    def process(self, batch: Batch) -> BatchOutcome:
        """Settle ``batch`` or give back what is unsettled when the poller stops."""
        if not batch.records:  # every record was filtered out: nothing to invoke
            return BatchOutcome(batch, batch.next_offsets(), complete=True)
        progress = _Progress(batch)
        whole = _Piece(batch.records, batch.fragments)
        try:
            if batch.oversized:  # its event alone is over 6 MB: Lambda can never take it
                self._give_up(batch, progress, whole, Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED)
            else:
                self._work(batch, progress, deque([whole]))
        except _Interrupted as interrupted:
            return BatchOutcome(
                batch, progress.committable(), complete=False, stopped=interrupted.stopped
            )
        return BatchOutcome(batch, batch.next_offsets(), complete=True)

    # -- the work queue --------------------------------------------------------------------
    def _work(self, batch: Batch, progress: _Progress, pieces: deque[_Piece]) -> None:
        first = True
        while pieces:
            if not first and self._stopping.is_set():
                raise _Interrupted
            first = False
            piece = self._drop_expired(batch, progress, pieces.popleft())
            if piece.records:
                pieces.extendleft(reversed(self._attempt(batch, progress, piece)))

    def _drop_expired(self, batch: Batch, progress: _Progress, piece: _Piece) -> _Piece:
        """Give up on records past MaximumRecordAgeInSeconds before sending the rest."""
        now_ms = self._clock_ms()
        expired, live = piece.take(lambda record: self._policy.expired(record, now_ms))
        if expired.records:
            self._give_up(batch, progress, expired, Condition.RECORD_AGE_EXCEEDED)
        return live

    def _attempt(self, batch: Batch, progress: _Progress, piece: _Piece) -> list[_Piece]:
        """Invoke ``piece`` once; returns the pieces still to work on, in order."""
        result = self._invoke(batch, piece)
        piece = replace(piece, invokes=piece.invokes + 1, last=result)
        lowest: dict[str, int] = {}
        if result.ok and self._policy.report_item_failures:
            lowest, result = self._read_reply(piece, result)
        if result.ok:
            return self._succeeded(batch, progress, piece, lowest)
        self._count_failure(piece, result)
        stopped = stop_for(result)
        if stopped is not None:
            raise _Interrupted(stopped)
        if result.error_kind is ErrorKind.PAYLOAD_TOO_LARGE:
            if len(piece.records) > 1:
                return piece.halves()
            self._give_up(batch, progress, piece, Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED)
            return []
        if self._policy.splits(result, len(piece.records)):
            log.info("bisecting the failed batch", extra=_fields(batch, piece))
            return piece.halves()
        return self._retry(batch, progress, piece, counted=is_function_error(result))

    def _succeeded(
        self, batch: Batch, progress: _Progress, piece: _Piece, lowest: Mapping[str, int]
    ) -> list[_Piece]:
        """Settle what the function handled; retry from the lowest failed offsets."""
        self._status.record_result(OK)
        handled, rest = piece.take(
            lambda r: r.partition_key not in lowest or r.offset < lowest[r.partition_key]
        )
        self._settle(batch, progress, handled.records)
        if not rest.records:
            return []
        log.info(
            "function reported batch item failures; retrying from the lowest failed offsets",
            extra={**_fields(batch, rest), "lowestFailed": dict(lowest)},
        )
        return self._retry(batch, progress, rest, counted=True)

    def _retry(
        self, batch: Batch, progress: _Progress, piece: _Piece, *, counted: bool
    ) -> list[_Piece]:
        """Wait and send ``piece`` again, unless its retries are exhausted."""
        retries = piece.retries + 1 if counted else piece.retries
        if counted and self._policy.retries_exhausted(retries):
            self._give_up(batch, progress, piece, Condition.RETRY_ATTEMPTS_EXHAUSTED)
            return []
        if self._stopping.wait(self._backoff.delay(piece.invokes)):
            raise _Interrupted
        return [replace(piece, retries=retries)]

    # -- invoking ----------------------------------------------------------------------------
    def _invoke(self, batch: Batch, piece: _Piece) -> InvokeResult:
        payload = assemble_records(piece.records, piece.fragments, self._servers)
        started = time.monotonic()
        result = self._invoker.invoke(payload, deadline_s=self._timeout_s)
        self._counters.add(Metric.INVOKED, len(piece.records))
        self._log(batch, piece, len(payload), time.monotonic() - started, result)
        return result

    def _read_reply(
        self, piece: _Piece, result: InvokeResult
    ) -> tuple[dict[str, int], InvokeResult]:
        """The lowest failed offsets; a reply that is not a valid partial batch response
        fails the whole piece, like a function error (AWS)."""
        try:
            return lowest_failed_offsets(result.payload, piece.sent()), result
        except BatchResponseError as exc:
            return {}, InvokeResult.failure(
                ErrorKind.FUNCTION_ERROR,
                f"invalid ReportBatchItemFailures reply: {exc}",
                request_id=result.request_id,
                status_code=result.status_code,
                executed_version=result.executed_version,
                payload=result.payload,
            )

    def _count_failure(self, piece: _Piece, result: InvokeResult) -> None:
        self._counters.add(Metric.FAILED_INVOKE, len(piece.records))
        self._counters.add(Metric.INVOKE_ERROR)
        self._status.record_result(problem(describe_failure(result)))

    # -- settling ------------------------------------------------------------------------
    def _settle(self, batch: Batch, progress: _Progress, records: Sequence[Record]) -> None:
        moved = progress.settle(records)
        if moved and self._on_progress is not None:
            self._on_progress(batch, moved)

    def _give_up(
        self, batch: Batch, progress: _Progress, piece: _Piece, condition: Condition
    ) -> None:
        """Deliver ``piece`` to the destination, or drop it when there is none (AWS)."""
        fields = {**_fields(batch, piece), "condition": condition.value}
        if self._destination is None:
            self._counters.add(Metric.DROPPED, len(piece.records))
            log.warning("records dropped: no on-failure destination", extra=fields)
        else:
            failure = Failure.of(
                condition,
                piece.records,
                piece.fragments,
                invoke_count=piece.invokes,
                result=piece.last,
                now_ms=self._clock_ms(),
            )
            if not deliver_until_accepted(
                self._destination, failure, self._stopping, self._backoff
            ):
                raise _Interrupted
            self._counters.add(Metric.ON_FAILURE_DELIVERED, len(piece.records))
            log.warning(
                "records sent to the on-failure destination",
                extra={**fields, "destination": self._destination.target},
            )
        self._settle(batch, progress, piece.records)

    def _log(
        self, batch: Batch, piece: _Piece, size: int, duration_s: float, result: InvokeResult
    ) -> None:
        fields = {
            **_fields(batch, piece),
            "bytes": size,
            "durationMs": round(duration_s * 1000, 1),
            "attempt": piece.retries + 1,
            "outcome": "OK" if result.ok else result.error_kind.value,
            "requestId": result.request_id,
        }
        if result.ok:
            log.info("batch invoked", extra=fields)
        else:
            log.warning("batch failed: %s", describe_failure(result), extra=fields)


def _fields(batch: Batch, piece: _Piece) -> dict[str, object]:
    """Log fields naming the records by ``<topic>-<partition>`` and offsets."""
    return {
        "batch": batch.id,
        "records": len(piece.records),
        "offsets": offset_ranges(piece.records),
    }


def offset_ranges(records: Sequence[Record]) -> dict[str, str]:
    """``{"t-0": "3-5,9"}``: every offset, with runs of consecutive offsets folded."""
    grouped: dict[str, list[int]] = {}
    for record in records:
        grouped.setdefault(record.partition_key, []).append(record.offset)
    return {key: _fold(sorted(offsets)) for key, offsets in grouped.items()}


def _fold(offsets: list[int]) -> str:
    runs: list[list[int]] = []
    for offset in offsets:
        if runs and offset == runs[-1][1] + 1:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
