"""Throughput: records/s and MB/s into a no-op handler, against a bare consume loop.

Each case (partitions x BatchSize) runs the bare loop and then the poller on the
same pre-filled topic, each in a fresh consumer group, so both read the same
bytes from the same page cache; runs are interleaved so that load from other
processes on the machine hits both alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import FilledTopics
from bench.harness import DeliveryLog, mapping_for, record_count, run_bare_loop, run_poller
from bench.stats import median, steady_rate
from runtime.devtools.local_kafka import ClusterInfo

MB = 1_000_000


@dataclass(frozen=True)
class Case:
    """One throughput configuration."""

    partitions: int
    batch_size: int


@dataclass
class CaseResult:
    """Steady-state rates (records/s) of every run of one case."""

    case: Case
    record_size: int
    poller: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    @property
    def poller_rate(self) -> float:
        """Median records/s through the poller."""
        return median(self.poller)

    @property
    def baseline_rate(self) -> float:
        """Median records/s through the bare loop."""
        return median(self.baseline)

    @property
    def ratio(self) -> float:
        """Median of per-run poller/baseline ratios (paired, so load drift cancels)."""
        return median([p / b for p, b in zip(self.poller, self.baseline, strict=True)])

    def megabytes(self, rate: float) -> float:
        """MB/s of record values at ``rate`` records/s."""
        return rate * self.record_size / MB


class NoOpHandler:
    """A handler that only counts records; marks when each invocation starts."""

    def __init__(self, log: DeliveryLog) -> None:
        self.log = log

    def __call__(self, event: dict[str, Any], _context: Any) -> None:
        self.log.add(time.monotonic(), record_count(event))


def poller_rate(
    kafka: ClusterInfo, topic: str, case: Case, records: int, window_s: int | None, timeout_s: float
) -> float:
    """Steady-state records/s from the topic's start into a no-op handler."""
    log = DeliveryLog(records)
    mapping = mapping_for(kafka, topic, case.batch_size, window_s)
    run_poller(mapping, NoOpHandler(log), log, timeout_s)
    return steady_rate(log.marks, records)


def baseline_rate(kafka: ClusterInfo, topic: str, records: int, timeout_s: float) -> float:
    """Steady-state records/s of the bare loop on the same topic.

    It takes up to ``records / 50`` messages per call (at most 10,000, as the
    poller does), so that even a short case has enough deliveries to time.
    """
    log = DeliveryLog(records)
    per_call = max(100, min(10_000, records // 50))
    run_bare_loop(mapping_for(kafka, topic, 100, None), log, timeout_s, max_records=per_call)
    return steady_rate(log.marks, records)


def measure(
    kafka: ClusterInfo,
    topics: FilledTopics,
    cases: list[Case],
    *,
    records: int,
    batches_per_case: int,
    record_size: int,
    runs: int,
    window_s: int | None = None,
    timeout_s: float = 180.0,
) -> list[CaseResult]:
    """``runs`` paired runs of every case, each reading a whole topic from the start.

    The poller reads ``min(records, batches_per_case x BatchSize)`` records: enough
    batches for a steady state, without reading 100,000 records 100 at a time. The
    bare loop, whose speed does not depend on BatchSize, reads ``records``.
    """
    results = [CaseResult(case, record_size) for case in cases]
    for _ in range(runs):
        for result in results:
            partitions = result.case.partitions
            count = min(records, batches_per_case * result.case.batch_size)
            whole = topics.get(partitions, records)
            result.baseline.append(baseline_rate(kafka, whole, records, timeout_s))
            topic = topics.get(partitions, count)
            result.poller.append(poller_rate(kafka, topic, result.case, count, window_s, timeout_s))
    return results
