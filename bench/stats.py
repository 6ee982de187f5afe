"""Small statistics: medians of runs, percentiles of samples, steady-state rates."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values (a run that produced nothing shows as such)."""
    return statistics.median(values) if values else math.nan


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with ``fraction`` of them at or below it."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def steady_rate(
    marks: Sequence[tuple[float, int]], total: int, low: float = 0.1, high: float = 0.9
) -> float:
    """Records per second between ``low`` and ``high`` of ``total`` delivered.

    ``marks`` are (time, records delivered at that time). Measuring between 10 % and
    90 % leaves out the group join and the first fetch at the start, and a last
    partial batch waiting for its window at the end, for the poller and the
    baseline alike.
    """
    ordered = sorted(marks)
    cumulative = 0
    start: tuple[float, int] | None = None
    for when, count in ordered:
        cumulative += count
        if start is None and cumulative >= low * total:
            start = (when, cumulative)
        elif start is not None and cumulative >= high * total:
            if when > start[0]:
                return (cumulative - start[1]) / (when - start[0])
            break
    raise ValueError(
        f"marks={len(ordered)} deliveries of {total} records are too few to measure a rate "
        "between 10% and 90%: use more records (--records) or a smaller batch"
    )
