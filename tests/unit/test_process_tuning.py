"""The poll loop's memory settings: applied while a loop runs, given back after."""

from __future__ import annotations

import gc
import platform

import pytest

from runtime.process_tuning import POLL_LOOP_THRESHOLDS, _mallopt, poll_loop_tuning
from runtime.records import Record, partition_runs


def test_the_collector_runs_less_often_while_a_loop_runs_and_as_before_after() -> None:
    before = gc.get_threshold()
    with poll_loop_tuning():
        assert gc.get_threshold() == POLL_LOOP_THRESHOLDS
    assert gc.get_threshold() == before


def test_the_collector_settings_come_back_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), poll_loop_tuning():
        raise RuntimeError("the loop failed")
    assert gc.get_threshold() == before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_every_malloc_setting() -> None:
    assert _mallopt({-1: 256 * 1024 * 1024})  # M_TRIM_THRESHOLD
    assert _mallopt({-1: 128 * 1024})  # and back to glibc's default


def test_partition_runs_slice_consecutive_records_of_one_partition() -> None:
    def record(topic: str, partition: int, offset: int) -> Record:
        return Record(topic, partition, offset, 0)

    records = [record("a", 0, 1), record("a", 0, 2), record("a", 1, 1), record("b", 1, 1)]
    records.append(record("a", 0, 3))
    assert list(partition_runs(records)) == [
        (("a", 0), 0, 2),
        (("a", 1), 2, 3),
        (("b", 1), 3, 4),
        (("a", 0), 4, 5),
    ]
    assert list(partition_runs([])) == []
