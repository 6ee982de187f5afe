"""The offsets ledger: one owner for in flight, settled, committable and committed.

The record tally behind CommittedEventCount counts records, not offsets; those tests
drive the ledger the way the poll loop does (read, settle, commit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st

from runtime.observability.counters import Counters, Metric
from runtime.pipeline.batcher import Batch
from runtime.pipeline.offsets import OffsetLedger, Outcome
from runtime.records import PartitionId, Record

P0 = ("orders", 0)
P1 = ("orders", 1)


def _record(partition: PartitionId, offset: int) -> Record:
    return Record(partition[0], partition[1], offset, 0)


def _batch(batch_id: int, partition: PartitionId, offsets: list[int]) -> Batch:
    records = tuple(_record(partition, o) for o in offsets)
    return Batch(
        batch_id,
        records,
        tuple(b"{}" for _ in records),
        {partition: (offsets[0], offsets[-1])},
        0.0,
    )


class _Tally:
    """The loop's calls around CommittedEventCount: read, settle (idle), commit."""

    def __init__(self) -> None:
        self.counters = Counters()
        self.ledger = OffsetLedger(self.counters)
        self.ledger.assign([P0, P1])

    def polled(self, partition: PartitionId, offset: int) -> None:
        self.ledger.read(_record(partition, offset))

    def settled(self, partition: PartitionId, next_offset: int) -> None:
        self.ledger.settle_skipped({partition: next_offset})

    def committed(self, partitions: Iterable[PartitionId]) -> int:
        committable = self.ledger.committable()
        before = self.counters.get(Metric.COMMITTED)
        self.ledger.committed({p: committable[p] for p in partitions if p in committable})
        return self.counters.get(Metric.COMMITTED) - before

    def forget(self, partitions: Iterable[PartitionId]) -> None:
        self.ledger.revoke(partitions)


# --------------------------------------------------------------------------- batches in flight
def test_a_partition_is_busy_from_begin_to_finish() -> None:
    ledger = OffsetLedger(Counters())
    ledger.assign([P0, P1])
    batch = _batch(1, P0, [0, 1, 2])
    ledger.begin(batch)
    assert ledger.busy(P0) and not ledger.busy(P1)
    assert ledger.in_flight == 1 and ledger.holds_any({P0, P1})
    ledger.finish(batch, complete=True)
    assert not ledger.busy(P0) and ledger.in_flight == 0
    assert ledger.committable() == {P0: 3}


def test_only_the_contiguous_settled_prefix_is_committable() -> None:
    ledger = OffsetLedger(Counters())
    ledger.assign([P0])
    batch = _batch(1, P0, [0, 1, 2, 3])
    ledger.begin(batch)
    assert ledger.settle(batch, [_record(P0, 2)], Outcome.DROPPED) == {}
    assert ledger.committable() == {}
    assert ledger.settle(batch, [_record(P0, 0), _record(P0, 1)], Outcome.HANDLED) == {P0: 3}
    assert ledger.committable() == {P0: 3}


def test_an_incomplete_batch_leaves_its_unsettled_records_uncommitted() -> None:
    ledger = OffsetLedger(Counters())
    ledger.assign([P0])
    batch = _batch(1, P0, [5, 6, 7])
    ledger.begin(batch)
    ledger.settle(batch, [_record(P0, 5)], Outcome.HANDLED)
    ledger.finish(batch, complete=False)
    assert ledger.committable() == {P0: 6}
    assert not ledger.busy(P0)


def test_settles_of_a_revoked_or_superseded_batch_are_ignored() -> None:
    ledger = OffsetLedger(Counters())
    ledger.assign([P0])
    old = _batch(1, P0, [0, 1])
    ledger.begin(old)
    ledger.revoke([P0])
    ledger.assign([P0])
    new = _batch(2, P0, [0, 1])
    ledger.begin(new)
    assert ledger.settle(old, list(old.records), Outcome.HANDLED) == {}
    ledger.finish(old, complete=True)
    assert ledger.busy(P0) and ledger.committable() == {}


def test_outcomes_count_destination_deliveries_and_drops() -> None:
    counters = Counters()
    ledger = OffsetLedger(counters)
    ledger.assign([P0])
    batch = _batch(1, P0, [0, 1, 2])
    ledger.begin(batch)
    ledger.settle(batch, [_record(P0, 0)], Outcome.HANDLED)
    ledger.settle(batch, [_record(P0, 1)], Outcome.SENT_TO_DESTINATION)
    ledger.settle(batch, [_record(P0, 2)], Outcome.DROPPED)
    assert counters.get(Metric.ON_FAILURE_DELIVERED) == 1
    assert counters.get(Metric.DROPPED) == 1


def test_filtered_heads_settle_only_idle_partitions() -> None:
    ledger = OffsetLedger(Counters())
    ledger.assign([P0, P1])
    ledger.begin(_batch(1, P0, [0]))
    ledger.settle_skipped({P0: 9, P1: 4})
    assert ledger.committable() == {P1: 4}


def test_settling_from_many_workers_loses_nothing() -> None:
    ledger = OffsetLedger(Counters())
    partitions = [("t", p) for p in range(8)]
    ledger.assign(partitions)
    batches = [_batch(i + 1, p, list(range(500))) for i, p in enumerate(partitions)]
    for batch in batches:
        ledger.begin(batch)

    def work(batch: Batch) -> None:
        for record in reversed(batch.records):  # worst order: nothing moves until the end
            ledger.settle(batch, [record], Outcome.HANDLED)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.committable() == dict.fromkeys(partitions, 500)


# --------------------------------------------------------------------------- CommittedEventCount
def test_tally_counts_records_not_offsets_across_gaps() -> None:
    tally = _Tally()
    for offset in (3, 7, 8, 20):  # a compacted topic: offsets with holes
        tally.polled(P0, offset)
    tally.settled(P0, 21)
    assert tally.committed([P0]) == 4
    assert tally.committed([P0]) == 0, "a commit counts its records once"


def test_tally_counts_a_partial_settle_then_the_rest() -> None:
    tally = _Tally()
    for offset in range(10):
        tally.polled(P0, offset)
    tally.settled(P0, 4)  # records 0-3 succeeded, 4 failed and is retried
    assert tally.committed([P0]) == 4
    tally.settled(P0, 10)
    assert tally.committed([P0]) == 6


def test_tally_commits_only_the_partitions_committed() -> None:
    tally = _Tally()
    tally.polled(P0, 0)
    tally.polled(P1, 0)
    tally.polled(P1, 1)
    tally.settled(P0, 1)
    tally.settled(P1, 2)
    assert tally.committed([P1]) == 2
    assert tally.committed([P0, P1]) == 1


def test_tally_forgets_revoked_partitions() -> None:
    tally = _Tally()
    tally.polled(P0, 0)
    tally.settled(P0, 1)
    tally.polled(P0, 1)
    tally.forget([P0])
    assert tally.committed([P0]) == 0
    tally.settled(P0, 5)
    assert tally.committed([P0]) == 0, "records of the old assignment are gone"


def test_tally_counts_a_record_read_again_after_a_seek_once() -> None:
    tally = _Tally()
    for offset in (0, 1, 2, 1, 2, 3):  # 1 and 2 fetched again
        tally.polled(P0, offset)
    tally.settled(P0, 4)
    assert tally.committed([P0]) == 4


def test_tally_ignores_a_settle_below_what_it_holds() -> None:
    tally = _Tally()
    tally.polled(P0, 5)
    tally.settled(P0, 5)
    assert tally.committed([P0]) == 0


@given(
    offsets=st.lists(st.integers(0, 10_000), unique=True, max_size=60).map(sorted),
    cuts=st.lists(st.integers(0, 10_001), max_size=10).map(sorted),
)
def test_tally_commits_every_polled_record_exactly_once(
    offsets: list[int], cuts: list[int]
) -> None:
    tally = _Tally()
    for offset in offsets:
        tally.polled(P0, offset)
    total = 0
    for cut in [*cuts, 10_001]:
        tally.settled(P0, cut)
        total += tally.committed([P0])
    assert total == len(offsets)


class _Commits:
    """A source whose unwaited commits fail when told to."""

    def __init__(self) -> None:
        self.sent: list[dict[PartitionId, int]] = []
        self.failed: set[PartitionId] = set()

    def commit(self, offsets: dict[PartitionId, int], *, wait: bool = True) -> bool:
        self.sent.append(dict(offsets))
        return True

    def take_failed_commits(self) -> set[PartitionId]:
        failed, self.failed = self.failed, set()
        return failed


def test_a_failed_unwaited_commit_is_sent_again_even_when_nothing_new_settles() -> None:
    source = _Commits()
    ledger = OffsetLedger(Counters(), source)
    ledger.assign([P0])
    batch = _batch(1, P0, [0, 1, 2])
    for offset in range(3):
        ledger.read(_record(P0, offset))
    ledger.begin(batch)
    ledger.finish(batch, complete=True)
    ledger.flush(wait=False)
    ledger.flush(wait=False)
    assert source.sent == [{P0: 3}], "a commit is sent once"
    source.failed = {P0}  # librdkafka's commit callback reported the failure
    ledger.flush(wait=False)
    assert source.sent == [{P0: 3}, {P0: 3}]
