"""The offsets ledger: the one owner of what each partition has in flight, settled and committed.

Per assigned partition it knows the batch in flight (at most one), which of that batch's
records are settled, the highest contiguous offset that may be committed, the offset last
committed, and the records read but not yet committed (for CommittedEventCount, which counts
records, not offsets: compaction and transaction markers leave gaps).

Batch workers report each settled record with its :class:`Outcome`; the poll loop asks what
to commit and whether a partition is free. Workers and the loop share it, so the state that
both touch sits behind one lock; what only the loop touches (the read-records tally) does
not take it.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from runtime.observability.counters import Counters, Metric
from runtime.pipeline.batcher import Batch
from runtime.records import PartitionId, Record, partition_runs

log = logging.getLogger("runtime.pipeline.offsets")


class Outcome(StrEnum):
    """How a record was settled: each lets its offset be committed."""

    HANDLED = "handled"
    """The function took it (a success, or not named in a partial batch response)."""
    SENT_TO_DESTINATION = "sent-to-destination"
    """Given up on and accepted by the on-failure destination."""
    DROPPED = "dropped"
    """Given up on with no destination: counted and logged, as AWS does."""
    RELEASED = "released"
    """Queue mode only: given back to the share group, which delivers it again."""


_OUTCOME_METRICS = {
    Outcome.SENT_TO_DESTINATION: Metric.ON_FAILURE_DELIVERED,
    Outcome.DROPPED: Metric.DROPPED,
}


class Ledger(Protocol):
    """What the poll loop asks of a ledger, whichever kind of group reads the topic.

    Stream mode's :class:`OffsetLedger` tracks contiguous offsets per partition; Queue
    mode's :class:`~runtime.pipeline.acknowledgements.AcknowledgementLedger` tracks each
    acquired record. Both are the one owner of what is in flight and settled.
    """

    @property
    def assigned(self) -> frozenset[PartitionId]:
        """Partitions this poller owns now (none in Queue mode)."""

    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Start tracking ``partitions``."""

    def revoke(self, partitions: Iterable[PartitionId]) -> None:
        """Forget ``partitions``."""

    def read_all(
        self, records: Sequence[Record], dropped: Collection[int]
    ) -> tuple[Sequence[Record], Collection[int]]:
        """One poll's records were read (``dropped``: indexes of those a filter dropped).

        Returns the records the batcher must place and, among those, the indexes of the
        dropped ones. The poll loop's path: one call per poll, not per record.
        """

    def begin(self, batch: Batch) -> None:
        """``batch`` goes to the function."""

    def busy(self, partition: PartitionId) -> bool:
        """True while ``partition`` may not contribute to a new batch."""

    def holds_any(self, partitions: Collection[PartitionId]) -> bool:
        """True while any of ``partitions`` has a batch in flight."""

    @property
    def in_flight(self) -> int:
        """Batches with the function now."""

    def in_flight_ids(self) -> list[int]:
        """Ids of the batches with the function now."""

    def settle(
        self, batch: Batch, records: Sequence[Record], outcome: Outcome
    ) -> Mapping[PartitionId, int]:
        """A worker settled ``records`` of ``batch``."""

    def settle_skipped(self, offsets: Mapping[PartitionId, int]) -> None:
        """Filtered-out records at the head of idle partitions."""

    def finish(self, batch: Batch, *, complete: bool) -> None:
        """``batch`` came back."""

    def abandon(self) -> None:
        """Stop waiting for the batches in flight."""

    def flush(self, *, wait: bool) -> None:
        """Tell the broker what is settled: commit offsets, or send acknowledgements."""


class OffsetCommits(Protocol):
    """The consumer-group source's commit, as the Stream ledger uses it."""

    def commit(self, offsets: Mapping[PartitionId, int], *, wait: bool = True) -> bool:
        """Make ``offsets`` durable; False when a waited commit failed."""

    def take_failed_commits(self) -> set[PartitionId]:
        """Partitions whose unwaited commit failed since the last call."""


@dataclass(slots=True)
class _Partition:
    settled: int = -1
    """Next offset to commit: everything below it is settled (-1: nothing yet)."""
    committed: int = -1
    batch: int | None = None
    """Id of the batch in flight on this partition."""
    start: int = 0
    """First offset the batch in flight covers."""
    end: int = 0
    """The offset after the last one the batch in flight covers."""
    pending: deque[int] = field(default_factory=deque)
    """Offsets the batch in flight sends and that are not settled yet, ascending."""
    done: set[int] = field(default_factory=set)
    """Offsets settled ahead of ``pending[0]`` (an expired record, a later piece)."""
    unread: list[int] = field(default_factory=list)
    """Offsets read and not yet committed, ascending (the loop's thread only)."""

    def note_read(self, offset: int) -> None:
        """A record was read: one read again after a seek replaces the later reads."""
        unread = self.unread
        if unread and unread[-1] >= offset:
            del unread[bisect_left(unread, offset) :]
        unread.append(offset)

    def settle_offsets(self, offsets: list[int]) -> bool:
        """``offsets`` (ascending, of the batch in flight) are settled; True when
        ``settled`` moved. Settling all that is pending, the usual case, is one C-level
        comparison instead of a set insertion and a deque pop per record."""
        if not self.done and offsets == list(self.pending):
            self.pending.clear()
        else:
            self.done.update(offsets)
        return self.advance()

    def advance(self) -> bool:
        """Move ``settled`` to the first unsettled offset; True when it moved."""
        pending, done = self.pending, self.done
        while pending and pending[0] in done:
            done.discard(pending.popleft())
        reached = pending[0] if pending else self.end
        if reached > self.start and reached > self.settled:
            self.settled = reached
            return True
        return False


class OffsetLedger:
    """What may be committed, per partition, and which partitions are busy."""

    def __init__(self, counters: Counters, source: OffsetCommits | None = None) -> None:
        self._counters = counters
        self._source = source
        self._lock = threading.Lock()
        self._partitions: dict[PartitionId, _Partition] = {}
        self._batches: dict[int, Batch] = {}

    # -- the group gives and takes partitions (the loop's thread) ------------------------
    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Start tracking ``partitions``."""
        with self._lock:
            for partition in partitions:
                self._partitions.setdefault(partition, _Partition())

    def revoke(self, partitions: Iterable[PartitionId]) -> None:
        """Forget ``partitions``: what is uncommitted belongs to their next owner."""
        with self._lock:
            for partition in partitions:
                self._partitions.pop(partition, None)

    @property
    def assigned(self) -> frozenset[PartitionId]:
        """Partitions this poller owns now."""
        return frozenset(self._partitions)

    def read(self, record: Record, *, keep: bool = True) -> bool:
        """A record was read; a record read again (after a seek) counts once.

        Always True: a filtered-out record keeps its place in the batcher, so that its
        offset commits in order with its neighbours.
        """
        self.read_all((record,), ())
        return True

    def read_all(
        self, records: Sequence[Record], dropped: Collection[int]
    ) -> tuple[Sequence[Record], Collection[int]]:
        """Note one poll's records; the batcher places them all, dropped ones included
        (their offsets commit in order with their neighbours)."""
        for (topic, partition), offsets in _runs(records):
            entry = self._partitions.get((topic, partition))
            if entry is None:
                continue
            after_unread = not entry.unread or entry.unread[-1] < offsets[0]
            if after_unread and sorted(set(offsets)) == offsets:  # in C: no per-record step
                entry.unread.extend(offsets)
            else:  # a seek read some again
                for offset in offsets:
                    entry.note_read(offset)
        return records, dropped

    # -- batches in flight ---------------------------------------------------------------
    def begin(self, batch: Batch) -> None:
        """``batch`` goes to the function: its partitions are busy until it finishes."""
        sent: dict[PartitionId, list[int]] = {p: [] for p in batch.ranges}
        for partition, offsets in _runs(batch.records):
            sent[partition].extend(offsets)
        with self._lock:
            self._batches[batch.id] = batch
            for partition, (first, last) in batch.ranges.items():
                entry = self._partitions.get(partition)
                if entry is None:  # revoked between the read and the cut
                    continue
                entry.batch, entry.start, entry.end = batch.id, first, last + 1
                entry.pending = deque(sent[partition])
                entry.done = set()

    def busy(self, partition: PartitionId) -> bool:
        """True while a batch of ``partition`` is with the function."""
        entry = self._partitions.get(partition)
        return entry is not None and entry.batch is not None

    def holds_any(self, partitions: Collection[PartitionId]) -> bool:
        """True while any of ``partitions`` has a batch in flight."""
        return any(self.busy(p) for p in partitions)

    @property
    def in_flight(self) -> int:
        """Batches with the function now."""
        return len(self._batches)

    def in_flight_ids(self) -> list[int]:
        """Ids of the batches with the function now (for logs)."""
        return sorted(self._batches)

    def settle(
        self, batch: Batch, records: Sequence[Record], outcome: Outcome
    ) -> dict[PartitionId, int]:
        """A worker settled ``records`` of ``batch``; returns what became committable.

        Records of a partition that was revoked (or taken over by a newer batch) since
        are ignored: the partition's next owner reads them again.
        """
        metric = _OUTCOME_METRICS.get(outcome)
        if metric is not None:
            self._counters.add(metric, len(records))
        moved: dict[PartitionId, int] = {}
        settled: dict[PartitionId, list[int]] = {}
        for partition, offsets in _runs(records):
            settled.setdefault(partition, []).extend(offsets)
        with self._lock:
            for partition, offsets in settled.items():
                entry = self._partitions.get(partition)
                if entry is None or entry.batch != batch.id:
                    continue
                if entry.settle_offsets(sorted(offsets)):
                    moved[partition] = entry.settled
        return moved

    def settle_skipped(self, offsets: Mapping[PartitionId, int]) -> None:
        """Filtered-out records at the head of idle partitions: committable at once."""
        with self._lock:
            for partition, next_offset in offsets.items():
                entry = self._partitions.get(partition)
                if entry is not None and entry.batch is None:
                    entry.settled = max(entry.settled, next_offset)

    def finish(self, batch: Batch, *, complete: bool) -> None:
        """``batch`` came back; when ``complete`` its whole range is settled."""
        with self._lock:
            self._batches.pop(batch.id, None)
            for partition in batch.ranges:
                entry = self._partitions.get(partition)
                if entry is None or entry.batch != batch.id:
                    continue
                if complete:
                    entry.settled = max(entry.settled, entry.end)
                entry.batch = None
                entry.pending.clear()
                entry.done.clear()

    def abandon(self) -> None:
        """Stop waiting for the batches in flight; their records stay uncommitted."""
        with self._lock:
            self._batches.clear()
            for entry in self._partitions.values():
                entry.batch = None

    # -- committing (the loop's thread) --------------------------------------------------
    def flush(self, *, wait: bool) -> None:
        """Commit what settled past the last commit: without waiting in the loop, waiting
        on revoke and stop."""
        if self._source is None:
            raise RuntimeError("this ledger was built without a source to commit to")
        self._offer_again(self._source.take_failed_commits())
        offsets = self.committable()
        if not offsets:
            return
        if self._source.commit(offsets, wait=wait):
            self.committed(offsets)

    def _offer_again(self, partitions: Iterable[PartitionId]) -> None:
        """A commit of ``partitions`` failed: their settled offsets are committable again."""
        with self._lock:
            for partition in partitions:
                entry = self._partitions.get(partition)
                if entry is not None:
                    entry.committed = -1

    def committable(self) -> dict[PartitionId, int]:
        """The next offset to commit, per partition that settled past its last commit."""
        with self._lock:
            return {p: e.settled for p, e in self._partitions.items() if e.settled > e.committed}

    def committed(self, offsets: Mapping[PartitionId, int]) -> None:
        """The broker took ``offsets``: count the records they cover (once)."""
        records = 0
        with self._lock:
            for partition, offset in offsets.items():
                entry = self._partitions.get(partition)
                if entry is None:
                    continue
                entry.committed = max(entry.committed, offset)
                below = bisect_left(entry.unread, offset)
                del entry.unread[:below]
                records += below
        self._counters.add(Metric.COMMITTED, records)


def _runs(records: Sequence[Record]) -> Iterator[tuple[PartitionId, list[int]]]:
    """The records' offsets per run of one partition (the ledger works per partition)."""
    for partition, start, stop in partition_runs(records):
        yield partition, [record.offset for record in records[start:stop]]
