"""Per-partition buffers and the rule that turns them into batches.

A batch is cut when BatchSize records are gathered, when the batching window has
passed since the oldest waiting record arrived, or when one more record would take
the event past 6,291,456 bytes (measured exactly: each record's JSON fragment is
encoded once, on arrival). One payload may hold records of several partitions; a
partition with a batch in flight (the offsets ledger knows which) contributes nothing
until that batch resolves, which keeps order and one in-flight batch per partition.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, count, islice, repeat
from operator import attrgetter, itemgetter

from runtime.pipeline.event import MAX_PAYLOAD_BYTES, PayloadSize, encode_record, encode_run
from runtime.records import PartitionId, Record, partition_runs

_batch_ids = count(1)


_Pending = tuple[Record, bytes | None, float]
"""A waiting record: ``(record, fragment, arrived)``. The fragment is the record's encoded
JSON, None when a filter dropped it (it is committed, not sent). A plain tuple, not a
class: one is built per record, and a tuple costs a fifth of a slotted dataclass."""
_RECORD: Callable[[_Pending], Record] = itemgetter(0)
_SENT_FRAGMENT: Callable[[_Pending], bytes] = itemgetter(1)
"""The fragment of a record known to be sent (a buffer without filtered-out records)."""
_OFFSET: Callable[[Record], int] = attrgetter("offset")


@dataclass(slots=True)
class _PartitionBuffer:
    items: deque[_Pending] = field(default_factory=deque)
    sendable: int = 0
    sendable_bytes: int = 0

    def oldest(self) -> float:
        return self.items[0][2]


@dataclass(frozen=True, slots=True)
class Batch:
    """Records to send in one invocation, and the offset ranges they settle."""

    id: int
    records: tuple[Record, ...]
    fragments: tuple[bytes, ...]
    ranges: dict[PartitionId, tuple[int, int]]
    """First and last offset covered per partition, filtered-out records included."""
    opened_at: float
    oversized: bool = False
    """A single record whose event alone is over the payload limit; it cannot be sent."""

    @property
    def partitions(self) -> tuple[PartitionId, ...]:
        """Every partition this batch holds in flight."""
        return tuple(self.ranges)

    def next_offsets(self) -> dict[PartitionId, int]:
        """The offsets to commit once the whole batch is settled."""
        return {partition: last + 1 for partition, (_, last) in self.ranges.items()}


@dataclass(slots=True)
class _Cut:
    """A batch being cut: what it holds so far and its exact payload size."""

    size: PayloadSize
    opened_at: float
    """When the oldest waiting record arrived (the batching window's start)."""
    records: list[Record] = field(default_factory=list)
    fragments: list[bytes] = field(default_factory=list)
    ranges: dict[PartitionId, tuple[int, int]] = field(default_factory=dict)

    def batch(self) -> Batch:
        """The finished batch."""
        return Batch(
            next(_batch_ids),
            tuple(self.records),
            tuple(self.fragments),
            self.ranges,
            self.opened_at,
        )


class Batcher:
    """Collects records per partition and cuts batches by count, window and bytes."""

    def __init__(
        self,
        bootstrap_servers: Sequence[str],
        batch_size: int,
        window_s: float,
        max_bytes: int = MAX_PAYLOAD_BYTES,
        *,
        busy: Callable[[PartitionId], bool],
    ) -> None:
        """``busy`` tells whether a partition has a batch in flight (the ledger owns that)."""
        self._servers = tuple(bootstrap_servers)
        self._busy = busy
        self._batch_size = batch_size
        self._window_s = window_s
        self._max_bytes = max_bytes
        self._buffers: dict[PartitionId, _PartitionBuffer] = {}
        # Backpressure: at most about two batches' worth waiting per partition.
        self.high_water_records = max(2 * batch_size, 500)
        self.high_water_bytes = 2 * max_bytes

    # -- input ---------------------------------------------------------------------------
    def add(self, record: Record, *, now: float, keep: bool = True) -> None:
        """Buffer ``record``; ``keep=False`` means a filter dropped it (commit, don't send)."""
        self.add_all((record,), now=now, dropped=() if keep else (0,))

    def add_all(
        self, records: Sequence[Record], *, now: float, dropped: Collection[int] = ()
    ) -> None:
        """Buffer one poll's ``records`` in order; ``dropped`` holds the indexes of those a
        filter dropped (committed, not sent). One call per poll, working per run of one
        partition: without filtered records a run is encoded and queued by C-level
        ``map``/``zip``, with no Python step per record but the encoding itself."""
        for partition, start, stop in partition_runs(records):
            buffer = self._buffers.get(partition)
            if buffer is None:
                buffer = self._buffers[partition] = _PartitionBuffer()
            run = records[start:stop]
            fragments: Sequence[bytes | None]
            if dropped and any(index in dropped for index in range(start, stop)):
                fragments = [
                    None if index in dropped else encode_record(record)
                    for index, record in enumerate(run, start)
                ]
            else:
                fragments = encode_run(run)
            buffer.items.extend(zip(run, fragments, repeat(now)))
            sent = [fragment for fragment in fragments if fragment is not None]
            buffer.sendable += len(sent)
            buffer.sendable_bytes += sum(map(len, sent))

    def settle_filtered_heads(self) -> dict[PartitionId, int]:
        """Drop filtered-out records that wait at the head of idle partitions.

        They need no invocation, so their offsets can be committed at once; returns
        the next offset to commit per partition that moved.
        """
        moved: dict[PartitionId, int] = {}
        for partition, buffer in self._buffers.items():
            if self._busy(partition):
                continue
            while buffer.items and buffer.items[0][1] is None:
                moved[partition] = buffer.items.popleft()[0].offset + 1
        return moved

    # -- output --------------------------------------------------------------------------
    def next_batch(self, now: float) -> Batch | None:
        """The batch to send now, if a limit has been reached."""
        ready = [(p, b) for p, b in self._buffers.items() if b.items and not self._busy(p)]
        if not ready or not self._triggered(ready, now):
            return None
        ready.sort(key=lambda item: item[1].oldest())
        return self._cut(ready)

    def next_deadline(self) -> float | None:
        """When the window of the oldest waiting record closes (for the poll timeout)."""
        oldest = [b.oldest() for p, b in self._buffers.items() if b.items and not self._busy(p)]
        return min(oldest) + self._window_s if oldest else None

    def drop(self, partitions: Iterable[PartitionId]) -> None:
        """Forget revoked partitions: their records will be read again by the new owner."""
        for partition in partitions:
            self._buffers.pop(partition, None)

    def over_budget(self, assigned: int) -> bool:
        """True when the records waiting would fill each of the ``assigned`` partitions
        (or of those with records, when more) to its high water: fetching more would only
        cost memory until batches take some.

        The budget is shared: one partition may hold more than its share while others
        hold less (librdkafka hands partitions over in fetch-sized runs, one at a time),
        and a partition that has not sent records yet still has its share kept for it.
        """
        partitions = max(assigned, len(self._buffers))
        if not partitions:
            return False
        records = sum(len(b.items) for b in self._buffers.values())
        sendable_bytes = sum(b.sendable_bytes for b in self._buffers.values())
        return (
            records >= partitions * self.high_water_records
            or sendable_bytes >= partitions * self.high_water_bytes
        )

    def idle(self, assigned: Collection[PartitionId]) -> list[PartitionId]:
        """Of the ``assigned`` partitions, those with no record waiting and no batch in
        flight: they wait for records that may sit behind other partitions' in the fetch."""
        buffers = self._buffers
        return [
            p for p in assigned if not self._busy(p) and (p not in buffers or not buffers[p].items)
        ]

    def over_high_water(self, paused: Collection[PartitionId]) -> list[PartitionId]:
        """Partitions to pause: too much waiting, fetching more would only cost memory."""
        return [p for p, b in self._buffers.items() if p not in paused and self._full(b)]

    def under_low_water(self, paused: Collection[PartitionId]) -> list[PartitionId]:
        """Of the ``paused`` partitions, those drained to half their limit."""
        return [p for p in paused if (b := self._buffers.get(p)) is None or self._half(b)]

    def waiting(self) -> int:
        """Records buffered and not yet in a batch."""
        return sum(len(b.items) for b in self._buffers.values())

    # -- internals -----------------------------------------------------------------------
    def _full(self, buffer: _PartitionBuffer) -> bool:
        return (
            len(buffer.items) >= self.high_water_records
            or buffer.sendable_bytes >= self.high_water_bytes
        )

    def _half(self, buffer: _PartitionBuffer) -> bool:
        return (
            len(buffer.items) < self.high_water_records // 2
            and buffer.sendable_bytes < self.high_water_bytes // 2
        )

    def _triggered(self, ready: list[tuple[PartitionId, _PartitionBuffer]], now: float) -> bool:
        if sum(b.sendable for _, b in ready) >= self._batch_size:
            return True
        if sum(b.sendable_bytes for _, b in ready) >= self._max_bytes:
            return True
        return min(b.oldest() for _, b in ready) + self._window_s <= now

    def _cut(self, ready: list[tuple[PartitionId, _PartitionBuffer]]) -> Batch:
        cut = _Cut(PayloadSize(self._servers), opened_at=ready[0][1].oldest())
        for partition, buffer in ready:
            full = self._take(partition, buffer, cut)
            if full and not cut.records and not cut.ranges:  # the first record alone is too big
                return self._oversized(partition, buffer)
            if full:
                break
        return cut.batch()

    def _take(self, partition: PartitionId, buffer: _PartitionBuffer, cut: _Cut) -> bool:
        """Move ``buffer``'s head records into ``cut``; True when the batch is full.

        Filtered-out records are taken into the offset range without being sent. This
        loop runs once per record: the partition's first fragment is counted by
        PayloadSize (it adds the partition's key and brackets); each later one grows the
        payload by its length and a comma, summed here and counted in one call.
        """
        if buffer.sendable == len(buffer.items):
            return self._take_unfiltered(partition, buffer, cut)
        items, records, fragments, size = buffer.items, cut.records, cut.fragments, cut.size
        key, first = items[0][0].partition_key, items[0][0].offset
        room = self._batch_size - len(records)
        budget = grown = taken = taken_bytes = 0
        last = sent = -1
        full = False
        while items:
            record, fragment, _ = items[0]
            if fragment is not None:
                if taken == 0:
                    fits = room > 0 and size.try_add(
                        key, record.offset, len(fragment), self._max_bytes
                    )
                    budget = self._max_bytes - size.size
                else:
                    if record.offset <= sent:
                        raise size.out_of_order(key, record.offset, sent)
                    fits = taken < room and grown + len(fragment) + 1 <= budget
                    grown += len(fragment) + 1 if fits else 0
                if not fits:
                    full = True
                    break
                records.append(record)
                fragments.append(fragment)
                taken += 1
                taken_bytes += len(fragment)
                sent = record.offset
            items.popleft()
            last = record.offset
        if grown:
            size.grow(key, sent, grown)
        buffer.sendable -= taken
        buffer.sendable_bytes -= taken_bytes
        if last >= 0:
            cut.ranges[partition] = (first, last)
        return full

    def _take_unfiltered(self, partition: PartitionId, buffer: _PartitionBuffer, cut: _Cut) -> bool:
        """:meth:`_take` for a buffer without filtered-out records (the usual case), with
        no Python step per record: the count that fits is found by bisecting the running
        sum of fragment sizes, and the records are moved by C-level ``map``."""
        items, size = buffer.items, cut.size
        room = min(self._batch_size - len(cut.records), len(items))
        head, fragment, _ = items[0]
        key = head.partition_key
        if room <= 0 or not size.try_add(key, head.offset, len(fragment or b""), self._max_bytes):
            return True
        budget = self._max_bytes - size.size
        ends = list(accumulate(map(len, map(_SENT_FRAGMENT, islice(items, 1, room)))))

        def growth(count: int) -> int:  # the bytes the ``count`` records after the head add
            return ends[count - 1] + count if count else 0

        # Counts 0, 1, ... of records after the head that fit: the head and that many.
        taken = bisect_right(range(len(ends) + 1), budget, key=growth)
        moved = list(islice(items, taken))
        records = list(map(_RECORD, moved))
        offsets = list(map(_OFFSET, records))
        if offsets != sorted(set(offsets)):  # Lambda's order; checked in C
            raise size.out_of_order(key, min(offsets), max(offsets))
        cut.records.extend(records)
        cut.fragments.extend(map(_SENT_FRAGMENT, moved))
        buffer.items = deque(islice(items, taken, None))
        last = offsets[-1]
        if taken > 1:
            size.grow(key, last, growth(taken - 1))
        buffer.sendable -= taken
        buffer.sendable_bytes -= len(fragment or b"") + (ends[taken - 2] if taken > 1 else 0)
        cut.ranges[partition] = (head.offset, last)
        return taken < len(items)

    def _oversized(self, partition: PartitionId, buffer: _PartitionBuffer) -> Batch:
        record, fragment, arrived = buffer.items.popleft()
        assert fragment is not None
        buffer.sendable -= 1
        buffer.sendable_bytes -= len(fragment)
        offset = record.offset
        return Batch(
            next(_batch_ids),
            (record,),
            (fragment,),
            {partition: (offset, offset)},
            arrived,
            oversized=True,
        )
