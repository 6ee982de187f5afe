"""Counters, their MetricsConfig groups, and the record tally behind CommittedEventCount."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from runtime.definition.vocabulary import EsmMetric
from runtime.observability.counters import CommitTally, Counters, Metric

P0 = ("orders", 0)
P1 = ("orders", 1)


def test_metric_names_are_aws_names() -> None:
    assert [m.value for m in Metric] == [
        "PolledEventCount",
        "FilteredOutEventCount",
        "InvokedEventCount",
        "FailedInvokeEventCount",
        "DroppedEventCount",
        "OnFailureDestinationDeliveredEventCount",
        "CommittedEventCount",
        "PollingErrorCount",
        "InvokeErrorCount",
        "CommitErrorCount",
    ]


def test_error_counts_belong_to_the_error_group_and_the_rest_to_event_count() -> None:
    errors = {m for m in Metric if m.group is EsmMetric.ERROR_COUNT}
    assert errors == {Metric.POLLING_ERROR, Metric.INVOKE_ERROR, Metric.COMMIT_ERROR}
    assert {m.group for m in Metric} - {EsmMetric.ERROR_COUNT} == {EsmMetric.EVENT_COUNT}


def test_counters_add_from_many_threads_without_losing_a_count() -> None:
    counters = Counters()

    def bump() -> None:
        for _ in range(10_000):
            counters.add(Metric.POLLED)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.get(Metric.POLLED) == 40_000
    assert counters.snapshot()[Metric.INVOKED] == 0


def test_tally_counts_records_not_offsets_across_gaps() -> None:
    tally = CommitTally()
    for offset in (3, 7, 8, 20):  # a compacted topic: offsets with holes
        tally.polled(P0, offset)
    tally.settled(P0, 21)
    assert tally.committed([P0]) == 4
    assert tally.committed([P0]) == 0, "a commit counts its records once"


def test_tally_counts_a_partial_settle_then_the_rest() -> None:
    tally = CommitTally()
    for offset in range(10):
        tally.polled(P0, offset)
    tally.settled(P0, 4)  # records 0-3 succeeded, 4 failed and is retried
    assert tally.committed([P0]) == 4
    tally.settled(P0, 10)
    assert tally.committed([P0]) == 6


def test_tally_commits_only_the_partitions_committed() -> None:
    tally = CommitTally()
    tally.polled(P0, 0)
    tally.polled(P1, 0)
    tally.polled(P1, 1)
    tally.settled(P0, 1)
    tally.settled(P1, 2)
    assert tally.committed([P1]) == 2
    assert tally.committed([P0, P1]) == 1


def test_tally_forgets_revoked_partitions() -> None:
    tally = CommitTally()
    tally.polled(P0, 0)
    tally.settled(P0, 1)
    tally.polled(P0, 1)
    tally.forget([P0])
    assert tally.committed([P0]) == 0
    tally.settled(P0, 5)
    assert tally.committed([P0]) == 0, "records of the old assignment are gone"


def test_tally_counts_a_record_read_again_after_a_seek_once() -> None:
    tally = CommitTally()
    for offset in (0, 1, 2, 1, 2, 3):  # 1 and 2 fetched again
        tally.polled(P0, offset)
    tally.settled(P0, 4)
    assert tally.committed([P0]) == 4


def test_tally_ignores_a_settle_below_what_it_holds() -> None:
    tally = CommitTally()
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
    tally = CommitTally()
    for offset in offsets:
        tally.polled(P0, offset)
    total = 0
    for cut in [*cuts, 10_001]:
        tally.settled(P0, cut)
        total += tally.committed([P0])
    assert total == len(offsets)
