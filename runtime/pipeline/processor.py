"""Settle one batch: invoke, retry, split, and give up on records as the mapping says.

A processor runs on a worker thread and owns its batch until every record in it is
settled: handled by the function, delivered to the on-failure destination, or dropped
under AWS's rules (counted and logged with its offset). A batch is worked on as a queue
of *pieces*, in offset order: the whole batch first, then what bisecting or a partial
batch response leaves to retry. Each settled piece is reported at once to the offsets
ledger with its outcome, so that a poison record does not hold back the records before
it; the ledger alone decides what may be committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from runtime.destinations.documents import Failure
from runtime.destinations.writers import FailureDestination, deliver_until_accepted
from runtime.invokers import MAX_TIMEOUT_S, ErrorKind, Invoker, InvokeResult
from runtime.observability.counters import Counters, Metric
from runtime.observability.scaling import WorkloadMeter
from runtime.observability.state import OK, MappingStatus, MappingStopped, problem
from runtime.pipeline.batch_responses import (
    BatchResponseError,
    failed_items,
    lowest_failed_offsets,
)
from runtime.pipeline.batcher import Batch
from runtime.pipeline.event import assemble_records
from runtime.pipeline.failures import (
    HINT_AFTER_RETRIES,
    UNBOUNDED_RETRY_HINT,
    Condition,
    FailurePolicy,
    RepeatedErrors,
    RetryBackoff,
    describe_failure,
    is_function_error,
    stop_for,
)
from runtime.pipeline.offsets import Outcome
from runtime.records import Record, partition_runs

log = logging.getLogger("runtime.batch")


class SettlementListener(Protocol):
    """Where settled records go: the ledger (offsets, or acknowledgements)."""

    def settle(self, batch: Batch, records: Sequence[Record], outcome: Outcome, /) -> object:
        """``records`` of ``batch`` are settled with ``outcome``."""


class Redelivery(Protocol):
    """Queue mode: the share group delivers a released record again, up to a limit."""

    def last_delivery(self, record: Record) -> bool:
        """True when releasing ``record`` would archive it instead of delivering it again."""


@dataclass(frozen=True)
class BatchOutcome:
    """How a batch came back: every record settled (``complete``), or left partly unsettled."""

    batch: Batch
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


class _Interrupted(Exception):
    """The poller is stopping (or the mapping stopped): leave the rest unsettled."""

    def __init__(self, stopped: MappingStopped | None = None) -> None:
        super().__init__("interrupted")
        self.stopped = stopped


class BatchProcessor:
    """Invokes the function with a batch and applies the mapping's failure policy.

    Without error-handling fields this is AWS's default: retry until the batch
    succeeds. Retries are interrupted (the batch left unsettled) when the poller stops.
    With ``redelivery`` (Queue mode) nothing is retried here: each delivery is invoked
    once and what fails goes back to the share group, which delivers it again.
    """

    def __init__(
        self,
        invoker: Invoker,
        bootstrap_servers: tuple[str, ...],
        counters: Counters,
        status: MappingStatus,
        stopping: threading.Event,
        *,
        ledger: SettlementListener,
        backoff: RetryBackoff | None = None,
        invoke_timeout_s: float = MAX_TIMEOUT_S,
        policy: FailurePolicy | None = None,
        destination: FailureDestination | None = None,
        clock_ms: Callable[[], int] | None = None,
        workload: WorkloadMeter | None = None,
        redelivery: Redelivery | None = None,
    ) -> None:
        self._invoker = invoker
        self._redelivery = redelivery
        self._workload = workload or WorkloadMeter()
        self._servers = bootstrap_servers
        self._counters = counters
        self._status = status
        self._stopping = stopping
        self._backoff = backoff or RetryBackoff()
        self._timeout_s = invoke_timeout_s
        self._policy = policy or FailurePolicy()
        self._errors = RepeatedErrors()
        self._destination = destination
        self._ledger = ledger
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def process(self, batch: Batch) -> BatchOutcome:
        """Settle ``batch`` or give back what is unsettled when the poller stops."""
        if not batch.records:  # every record was filtered out: nothing to invoke
            return BatchOutcome(batch, complete=True)
        whole = _Piece(batch.records, batch.fragments)
        try:
            if batch.oversized:  # its event alone is over 6 MB: Lambda can never take it
                self._give_up(batch, whole, Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED)
            elif self._redelivery is not None:
                self._work_once(batch, deque([whole]), self._redelivery)
            else:
                self._work(batch, deque([self._drop_undecodable(batch, whole)]))
        except _Interrupted as interrupted:
            return BatchOutcome(batch, complete=False, stopped=interrupted.stopped)
        return BatchOutcome(batch, complete=True)

    # -- the work queue --------------------------------------------------------------------
    def _work(self, batch: Batch, pieces: deque[_Piece]) -> None:
        first = True
        while pieces:
            if not first and self._stopping.is_set():
                raise _Interrupted
            first = False
            piece = self._drop_expired(batch, pieces.popleft())
            if piece.records:
                pieces.extendleft(reversed(self._attempt(batch, piece)))

    def _drop_undecodable(self, batch: Batch, piece: _Piece) -> _Piece:
        """Give up on records the schema registry cannot decode (they are never sent)."""
        if all(record.undecodable is None for record in piece.records):
            return piece  # the common case, without splitting the piece record by record
        bad, good = piece.take(lambda record: record.undecodable is not None)
        if bad.records:
            reasons = {f"{r.partition_key}@{r.offset}": r.undecodable for r in bad.records}
            log.warning(
                "records the schema registry cannot decode: %s",
                "; ".join(f"{where}: {why}" for where, why in reasons.items()),
                extra={"reasons": reasons},
            )
            self._give_up(batch, bad, Condition.SCHEMA_DECODING_FAILED)
        return good

    def _drop_expired(self, batch: Batch, piece: _Piece) -> _Piece:
        """Give up on records past MaximumRecordAgeInSeconds before sending the rest."""
        if not self._policy.ages:
            return piece
        now_ms = self._clock_ms()
        expired, live = piece.take(lambda record: self._policy.expired(record, now_ms))
        if expired.records:
            self._give_up(batch, expired, Condition.RECORD_AGE_EXCEEDED)
        return live

    def _attempt(self, batch: Batch, piece: _Piece) -> list[_Piece]:
        """Invoke ``piece`` once; returns the pieces still to work on, in order."""
        result = self._invoke(batch, piece)
        piece = replace(piece, invokes=piece.invokes + 1, last=result)
        lowest: dict[str, int] = {}
        if result.ok and self._policy.report_item_failures:
            lowest, result = self._read_reply(piece, result)
        if result.ok:
            return self._succeeded(batch, piece, lowest)
        resolved = self._failed(batch, piece, result)
        if resolved is not None:
            return resolved
        if self._policy.splits(result, len(piece.records)):
            log.info("bisecting the failed batch", extra=_fields(batch, piece))
            return piece.halves()
        return self._retry(batch, piece, counted=is_function_error(result))

    def _failed(self, batch: Batch, piece: _Piece, result: InvokeResult) -> list[_Piece] | None:
        """Count a failed invocation; what no retry fixes is resolved here (a stop, a
        payload over 6 MB: split, or given up on alone). None: retry or release it."""
        self._count_failure(piece, result)
        stopped = stop_for(result)
        if stopped is not None:
            raise _Interrupted(stopped)
        if result.error_kind is not ErrorKind.PAYLOAD_TOO_LARGE:
            return None
        if len(piece.records) > 1:
            return piece.halves()
        self._give_up(batch, piece, Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED)
        return []

    def _succeeded(self, batch: Batch, piece: _Piece, lowest: Mapping[str, int]) -> list[_Piece]:
        """Settle what the function handled; retry from the lowest failed offsets."""
        self._status.record_result(OK)
        if not lowest:
            self._settle(batch, piece.records, Outcome.HANDLED)
            return []
        handled, rest = piece.take(
            lambda r: r.partition_key not in lowest or r.offset < lowest[r.partition_key]
        )
        self._settle(batch, handled.records, Outcome.HANDLED)
        if not rest.records:
            return []
        log.info(
            "function reported batch item failures; retrying from the lowest failed offsets",
            extra={**_fields(batch, rest), "lowestFailed": dict(lowest)},
        )
        return self._retry(batch, rest, counted=True)

    def _retry(self, batch: Batch, piece: _Piece, *, counted: bool) -> list[_Piece]:
        """Wait and send ``piece`` again, unless its retries are exhausted."""
        retries = piece.retries + 1 if counted else piece.retries
        if counted and self._policy.retries_exhausted(retries):
            self._give_up(batch, piece, Condition.RETRY_ATTEMPTS_EXHAUSTED)
            return []
        if counted and retries == HINT_AFTER_RETRIES and self._policy.unbounded:
            log.warning(UNBOUNDED_RETRY_HINT, extra=_fields(batch, piece))
        if self._stopping.wait(self._backoff.delay(piece.invokes)):
            raise _Interrupted
        return [replace(piece, retries=retries)]

    # -- Queue mode: one invocation per delivery ------------------------------------------
    def _work_once(self, batch: Batch, pieces: deque[_Piece], redelivery: Redelivery) -> None:
        """Invoke each piece once; release what fails, or give it up at its last try."""
        while pieces:
            piece = self._drop_expired(batch, pieces.popleft())
            if piece.records:
                pieces.extendleft(reversed(self._attempt_once(batch, piece, redelivery)))

    def _attempt_once(self, batch: Batch, piece: _Piece, redelivery: Redelivery) -> list[_Piece]:
        """Success → ACCEPT; a function error, throttle or timeout → RELEASE (or the
        destination); a partial batch response releases only the named records."""
        result = self._invoke(batch, piece)
        deliveries = max(record.delivery_count for record in piece.records)
        piece = replace(piece, invokes=deliveries, last=result)
        named: set[tuple[str, int]] = set()
        if result.ok and self._policy.report_item_failures:
            named, result = self._read_items(piece, result)
        if result.ok:
            self._status.record_result(OK)
            failed, handled = piece.take(lambda r: (r.partition_key, r.offset) in named)
            self._settle(batch, handled.records, Outcome.HANDLED)
        else:
            resolved = self._failed(batch, piece, result)
            if resolved is not None:
                return resolved
            failed = piece
        if failed.records:
            self._release(batch, failed, redelivery)
        return []

    def _release(self, batch: Batch, piece: _Piece, redelivery: Redelivery) -> None:
        """Give failed records back to the share group after a backoff; records past
        MaximumRetryAttempts (retries = deliveries - 1) or at the broker's delivery limit
        (a release would archive them unseen) go to the destination instead."""
        last, again = piece.take(
            lambda r: (
                self._policy.retries_exhausted(r.delivery_count) or redelivery.last_delivery(r)
            )
        )
        if last.records:
            self._give_up(batch, last, Condition.RETRY_ATTEMPTS_EXHAUSTED)
        if not again.records:
            return
        if self._stopping.wait(self._backoff.delay(again.invokes)):
            raise _Interrupted  # still held: the stop releases them
        log.info("records released for redelivery", extra=_fields(batch, again))
        self._settle(batch, again.records, Outcome.RELEASED)

    # -- invoking ----------------------------------------------------------------------------
    def _invoke(self, batch: Batch, piece: _Piece) -> InvokeResult:
        payload = assemble_records(piece.records, piece.fragments, self._servers)
        started = time.monotonic()
        result = self._invoker.invoke(payload, deadline_s=self._timeout_s)
        duration_s = time.monotonic() - started
        if result.sent:  # a request that never left did not invoke anything
            self._counters.add(Metric.INVOKED, len(piece.records))
        throttled = result.error_kind is ErrorKind.THROTTLED
        self._workload.invoked(
            len(piece.records), duration_s, ran=result.sent and not throttled, throttled=throttled
        )
        self._log(batch, piece, len(payload), duration_s, result)
        return result

    def _read_reply(
        self, piece: _Piece, result: InvokeResult
    ) -> tuple[dict[str, int], InvokeResult]:
        """The lowest failed offsets; a reply that is not a valid partial batch response
        fails the whole piece, like a function error (AWS)."""
        try:
            return lowest_failed_offsets(result.payload, piece.sent()), result
        except BatchResponseError as exc:
            return {}, _invalid_reply(result, exc)

    def _read_items(
        self, piece: _Piece, result: InvokeResult
    ) -> tuple[set[tuple[str, int]], InvokeResult]:
        """Queue mode's partial batch response: the failed records themselves."""
        try:
            return set(failed_items(result.payload, piece.sent(), queue=True)), result
        except BatchResponseError as exc:
            return set(), _invalid_reply(result, exc)

    def _count_failure(self, piece: _Piece, result: InvokeResult) -> None:
        if result.sent:  # events the function got and failed; an unsent call is an error only
            self._counters.add(Metric.FAILED_INVOKE, len(piece.records))
        self._counters.add(Metric.INVOKE_ERROR)
        self._status.record_result(problem(describe_failure(result)))

    # -- settling ------------------------------------------------------------------------
    def _settle(self, batch: Batch, records: Sequence[Record], outcome: Outcome) -> None:
        self._ledger.settle(batch, records, outcome)

    def _give_up(self, batch: Batch, piece: _Piece, condition: Condition) -> None:
        """Deliver ``piece`` to the destination, or drop it when there is none (AWS)."""
        fields = {**_fields(batch, piece), "condition": condition.value}
        if self._destination is None:
            log.warning("records dropped: no on-failure destination", extra=fields)
            outcome = Outcome.DROPPED
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
            log.warning(
                "records sent to the on-failure destination",
                extra={**fields, "destination": self._destination.target},
            )
            outcome = Outcome.SENT_TO_DESTINATION
        self._settle(batch, piece.records, outcome)

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
            return
        seen, trace = self._errors.note(result)
        if seen == 1 and trace:
            log.warning(
                "batch failed: %s\nthe function's stack trace (logged once per distinct error):"
                "\n%s",
                describe_failure(result),
                trace,
                extra=fields,
            )
        elif seen > 1:
            log.warning(
                "batch failed: %s (seen %d times; its stack trace was logged the first time)",
                describe_failure(result),
                seen,
                extra=fields,
            )
        else:
            log.warning("batch failed: %s", describe_failure(result), extra=fields)


def _invalid_reply(result: InvokeResult, error: BatchResponseError) -> InvokeResult:
    """A reply that is not a valid partial batch response fails the whole piece (AWS)."""
    return InvokeResult.failure(
        ErrorKind.FUNCTION_ERROR,
        f"invalid ReportBatchItemFailures reply: {error}",
        request_id=result.request_id,
        status_code=result.status_code,
        executed_version=result.executed_version,
        payload=result.payload,
    )


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
    for (topic, partition), start, stop in partition_runs(records):
        offsets = grouped.setdefault(f"{topic}-{partition}", [])
        offsets.extend(record.offset for record in records[start:stop])
    return {key: _fold(sorted(offsets)) for key, offsets in grouped.items()}


def _fold(offsets: list[int]) -> str:
    if offsets[-1] - offsets[0] == len(offsets) - 1 == len(set(offsets)) - 1:
        # One run, the usual batch: no walk over thousands of offsets for a log line.
        return str(offsets[0]) if len(offsets) == 1 else f"{offsets[0]}-{offsets[-1]}"
    runs: list[list[int]] = []
    for offset in offsets:
        if runs and offset == runs[-1][1] + 1:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
