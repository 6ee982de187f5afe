"""The processes benchmark measures N members only while all N deliver."""

from __future__ import annotations

import pytest

from bench.processes import steady_members_rate


def _member(pid: str, start: float, stop: float, per_s: int) -> list[tuple[float, str, int]]:
    """Deliveries of ``per_s / 10`` records every 0.1 s from ``start`` up to ``stop``."""
    steps = round((stop - start) * 10)
    return [(start + i / 10, pid, per_s // 10) for i in range(1, steps + 1)]


def test_the_join_stall_and_the_lone_tail_are_left_out() -> None:
    rows = (
        _member("a", 0.0, 1.0, 100_000)  # alone before the other member joins
        + _member("a", 2.0, 6.0, 100_000)  # the join stalled it from 1 s to 2 s
        + _member("b", 2.0, 8.0, 80_000)  # slower: runs alone once "a" is done
    )
    records = sum(c for _, _, c in rows)
    assert steady_members_rate(rows, records) == pytest.approx(180_000, rel=0.02)


def test_one_member_is_measured_from_a_tenth_to_nine_tenths() -> None:
    rows = _member("a", 0.0, 10.0, 50_000)
    assert steady_members_rate(rows, 500_000) == pytest.approx(50_000, rel=0.02)


def test_a_member_that_joins_too_late_is_refused() -> None:
    rows = _member("a", 0.0, 9.0, 100_000) + _member("b", 9.0, 10.0, 100_000)
    with pytest.raises(RuntimeError, match="use more"):
        steady_members_rate(rows, sum(c for _, _, c in rows))
