"""The batcher: when a batch is cut, what it holds, and what it leaves for later."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.pipeline.batcher import Batch, Batcher
from runtime.pipeline.event import PayloadSize, assemble_records, encode_record
from runtime.records import PartitionId, Record

SERVERS = ("b1:9092",)


class _LoopBatcher(Batcher):
    """A batcher with the poll loop's part (the ledger's, in the poller): a cut batch's
    partitions are busy until it is released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.in_flight: set[PartitionId] = set()
        super().__init__(*args, busy=self.in_flight.__contains__, **kwargs)  # type: ignore[arg-type]

    def next_batch(self, now: float) -> Batch | None:
        batch = super().next_batch(now)
        if batch is not None:
            self.in_flight.update(batch.partitions)
        return batch

    def release(self, partitions: tuple[PartitionId, ...]) -> None:
        self.in_flight.difference_update(partitions)


def _record(partition: int, offset: int, size: int = 10, topic: str = "t") -> Record:
    return Record(topic, partition, offset, 1_700_000_000_000, value=b"v" * size)


def _fill(batcher: Batcher, partition: int, offsets: range, now: float = 0.0, **kw: int) -> None:
    for offset in offsets:
        batcher.add(_record(partition, offset, **kw), now=now)


def test_nothing_is_cut_before_a_limit_is_reached() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10, window_s=1.0)
    _fill(batcher, 0, range(9))
    assert batcher.next_batch(now=0.5) is None
    assert batcher.next_deadline() == 1.0


def test_batch_size_cuts_a_full_batch_and_leaves_the_rest() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10, window_s=60.0)
    _fill(batcher, 0, range(25))
    batch = batcher.next_batch(now=0.0)
    assert batch is not None
    assert [r.offset for r in batch.records] == list(range(10))
    assert batch.ranges == {("t", 0): (0, 9)}
    assert batcher.waiting() == 15


def test_the_window_sends_a_partial_batch_once_its_oldest_record_is_old_enough() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=100, window_s=0.5)
    _fill(batcher, 0, range(3), now=10.0)
    assert batcher.next_batch(now=10.4) is None
    batch = batcher.next_batch(now=10.5)
    assert batch is not None and len(batch.records) == 3


def test_a_partition_in_flight_contributes_nothing_until_released() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=5, window_s=0.0)
    _fill(batcher, 0, range(5))
    first = batcher.next_batch(now=0.0)
    assert first is not None
    _fill(batcher, 0, range(5, 10))
    assert batcher.next_batch(now=1.0) is None  # one batch in flight per partition
    batcher.release(first.partitions)
    second = batcher.next_batch(now=1.0)
    assert second is not None and [r.offset for r in second.records] == list(range(5, 10))


def test_partitions_share_a_payload_oldest_first() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=100, window_s=0.0)
    _fill(batcher, 1, range(2), now=2.0)
    _fill(batcher, 0, range(3), now=1.0)
    batch = batcher.next_batch(now=3.0)
    assert batch is not None
    assert batch.ranges == {("t", 0): (0, 2), ("t", 1): (0, 1)}
    assert [r.partition for r in batch.records] == [0, 0, 0, 1, 1]


def test_bytes_cut_the_batch_before_the_payload_would_pass_the_limit() -> None:
    limit = 2_000
    batcher = _LoopBatcher(SERVERS, batch_size=1000, window_s=60.0, max_bytes=limit)
    _fill(batcher, 0, range(40), size=90)
    batch = batcher.next_batch(now=0.0)
    assert batch is not None
    size = PayloadSize(SERVERS)
    for record in batch.records:
        assert size.try_add(record.partition_key, record.offset, len(encode_record(record)))
    assert size.size <= limit
    following = _record(0, batch.records[-1].offset + 1, size=90)
    fragment = encode_record(following)
    assert not size.try_add(following.partition_key, following.offset, len(fragment), limit)


def test_filtered_records_are_covered_by_the_range_but_not_sent() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10, window_s=0.0)
    batcher.add(_record(0, 0), now=0.0)
    batcher.add(_record(0, 1), now=0.0, keep=False)
    batcher.add(_record(0, 2), now=0.0)
    batch = batcher.next_batch(now=0.0)
    assert batch is not None
    assert [r.offset for r in batch.records] == [0, 2]
    assert batch.next_offsets() == {("t", 0): 3}


def test_filtered_records_at_the_head_of_an_idle_partition_settle_at_once() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10, window_s=60.0)
    batcher.add(_record(0, 0), now=0.0, keep=False)
    batcher.add(_record(0, 1), now=0.0, keep=False)
    batcher.add(_record(0, 2), now=0.0)
    assert batcher.settle_filtered_heads() == {("t", 0): 2}
    assert batcher.waiting() == 1


def test_a_single_record_over_the_limit_is_cut_alone_as_oversized() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10, window_s=0.0, max_bytes=500)
    batcher.add(_record(0, 0, size=1_000), now=0.0)
    batcher.add(_record(0, 1), now=0.0)
    batch = batcher.next_batch(now=0.0)
    assert batch is not None and batch.oversized
    assert [r.offset for r in batch.records] == [0]


def test_backpressure_pauses_at_high_water_and_resumes_at_half() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=250, window_s=60.0)
    _fill(batcher, 0, range(batcher.high_water_records))
    assert batcher.over_high_water(paused=set()) == [("t", 0)]
    paused = {("t", 0)}
    assert batcher.over_high_water(paused) == []  # a paused partition is not paused again
    assert batcher.under_low_water(paused) == []
    while batcher.waiting() >= batcher.high_water_records // 2:
        batch = batcher.next_batch(now=0.0)
        assert batch is not None
        batcher.release(batch.partitions)
    assert batcher.under_low_water(paused) == [("t", 0)]


def test_the_budget_is_shared_by_the_partitions_with_records() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=250, window_s=60.0)
    high = batcher.high_water_records
    assert not batcher.over_budget(assigned=0)  # nothing assigned or read: never hold
    _fill(batcher, 0, range(high + high // 2))  # one partition over its own high water
    _fill(batcher, 1, range(high // 4))
    assert not batcher.over_budget(assigned=2)  # ... but the two are under 2 x high water
    assert not batcher.over_budget(assigned=0)  # (Queue mode: the partitions with records)
    assert batcher.over_budget(assigned=1) is False  # more partitions have records
    _fill(batcher, 1, range(high // 4, high // 2))
    assert batcher.over_budget(assigned=2)  # 2 x high water waiting
    assert not batcher.over_budget(assigned=3)  # a third partition's share is kept for it
    batch = batcher.next_batch(now=0.0)
    assert batch is not None
    assert not batcher.over_budget(assigned=2)  # a batch taken: fetching may go on


def test_idle_partitions_have_nothing_waiting_and_nothing_in_flight() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10, window_s=60.0)
    assigned = {("t", 0), ("t", 1), ("t", 2)}
    _fill(batcher, 0, range(25))
    assert sorted(batcher.idle(assigned)) == [("t", 1), ("t", 2)]  # never sent a record
    batch = batcher.next_batch(now=0.0)
    assert batch is not None
    _fill(batcher, 1, range(10))
    batch_1 = batcher.next_batch(now=0.0)
    assert batch_1 is not None and batch_1.partitions == (("t", 1),)
    # 0 has a batch in flight and records waiting, 1 a batch in flight, 2 nothing at all
    assert batcher.idle(assigned) == [("t", 2)]
    batcher.release(batch_1.partitions)
    assert sorted(batcher.idle(assigned)) == [("t", 1), ("t", 2)]  # drained and free


def test_the_budget_counts_bytes_too() -> None:
    batcher = _LoopBatcher(SERVERS, batch_size=10_000, window_s=60.0, max_bytes=10_000)
    _fill(batcher, 0, range(5), size=1_000)
    assert not batcher.over_budget(assigned=1)
    _fill(batcher, 0, range(5, 40), size=1_000)  # far fewer records than the limit, but 2 x 10 kB
    assert batcher.waiting() < batcher.high_water_records
    assert batcher.over_budget(assigned=1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 300), st.booleans()), max_size=80),
    st.integers(1, 20),
    st.integers(600, 4_000),
)
def test_every_record_is_settled_once_in_order(
    plan: list[tuple[int, int, bool]], batch_size: int, max_bytes: int
) -> None:
    """Whatever the mix, batches hand out every offset once, per partition in order."""
    batcher = _LoopBatcher(SERVERS, batch_size=batch_size, window_s=0.0, max_bytes=max_bytes)
    next_offset = [0, 0, 0, 0]
    for partition, size, keep in plan:
        batcher.add(_record(partition, next_offset[partition], size=size), now=0.0, keep=keep)
        next_offset[partition] += 1
    settled: dict[int, list[int]] = {p: [] for p in range(4)}
    for (_, partition), offset in batcher.settle_filtered_heads().items():
        settled[partition].extend(range(len(settled[partition]), offset))
    while (batch := batcher.next_batch(now=1.0)) is not None:
        assert len(batch.records) <= batch_size
        for (_, partition), (first, last) in batch.ranges.items():
            assert first == len(settled[partition])
            settled[partition].extend(range(first, last + 1))
        batcher.release(batch.partitions)
        for (_, partition), offset in batcher.settle_filtered_heads().items():
            settled[partition].extend(range(len(settled[partition]), offset))
    assert settled == {p: list(range(next_offset[p])) for p in range(4)}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 400), min_size=1, max_size=60),
    st.integers(1, 30),
    st.integers(700, 5_000),
)
def test_a_buffer_without_filtered_records_is_cut_like_one_with_them(
    sizes: list[int], batch_size: int, max_bytes: int
) -> None:
    """The bulk path (no filtered record waits) cuts exactly where the record-by-record
    path does, and every payload is at most the limit, and as full as the limit allows."""
    bulk = _LoopBatcher(SERVERS, batch_size=batch_size, window_s=0.0, max_bytes=max_bytes)
    stepwise = _LoopBatcher(SERVERS, batch_size=batch_size, window_s=0.0, max_bytes=max_bytes)
    records = [_record(0, offset, size=size) for offset, size in enumerate(sizes)]
    bulk.add_all(records, now=0.0)
    # One filtered record behind the rest sends this batcher down the stepwise path.
    stepwise.add_all([*records, _record(0, len(records))], now=0.0, dropped={len(records)})
    while (expected := bulk.next_batch(now=1.0)) is not None:
        got = stepwise.next_batch(now=1.0)
        assert got is not None
        assert got.records == expected.records
        assert got.fragments == expected.fragments
        payload = assemble_records(expected.records, expected.fragments, SERVERS)
        assert len(payload) <= max_bytes or expected.oversized
        following = expected.records[-1].offset + 1
        if following < len(records) and len(expected.records) < batch_size:
            more = (*expected.records, records[following])
            wider = assemble_records(more, [encode_record(r) for r in more], SERVERS)
            assert len(wider) > max_bytes
        bulk.release(expected.partitions)
        stepwise.release(got.partitions)
