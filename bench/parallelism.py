"""Parallelism: a handler that takes 50 ms, 8 partitions against 1.

With one batch in flight per partition, one partition settles at most
BatchSize / 50 ms records per second; eight can run eight batches at once. The
one-partition run is the baseline, measured in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import FilledTopics
from bench.harness import DeliveryLog, mapping_for, record_count, run_poller
from bench.stats import median, steady_rate
from runtime.devtools.local_kafka import ClusterInfo


@dataclass
class ParallelismResult:
    """Steady-state records/s per run, for each partition count."""

    handler_s: float
    batch_size: int
    rates: dict[int, list[float]] = field(default_factory=dict)

    def rate(self, partitions: int) -> float:
        """Median records/s with ``partitions`` partitions."""
        return median(self.rates.get(partitions, []))

    def speedup(self, many: int, one: int = 1) -> float:
        """Median of per-run rate ratios ``many`` / ``one`` partitions."""
        pairs = zip(self.rates.get(many, []), self.rates.get(one, []), strict=True)
        return median([m / o for m, o in pairs])

    def ideal(self, partitions: int) -> float:
        """Records/s if every batch took exactly the handler's time and nothing else."""
        return partitions * self.batch_size / self.handler_s


class SlowHandler:
    """Sleeps ``seconds`` (an I/O-bound function) after noting its start."""

    def __init__(self, log: DeliveryLog, seconds: float) -> None:
        self.log = log
        self.seconds = seconds

    def __call__(self, event: dict[str, Any], _context: Any) -> None:
        self.log.add(time.monotonic(), record_count(event))
        time.sleep(self.seconds)


def measure(
    kafka: ClusterInfo,
    topics: FilledTopics,
    *,
    partition_counts: tuple[int, ...] = (1, 8),
    handler_s: float,
    batch_size: int,
    batches_per_partition: int,
    runs: int,
    timeout_s: float = 120.0,
) -> ParallelismResult:
    """``runs`` rounds per partition count, each reading a whole topic from the start."""
    result = ParallelismResult(handler_s, batch_size)
    for _ in range(runs):
        for partitions in partition_counts:
            records = partitions * batch_size * batches_per_partition
            topic = topics.get(partitions, records)
            log = DeliveryLog(records)
            mapping = mapping_for(kafka, topic, batch_size, None)
            run_poller(mapping, SlowHandler(log, handler_s), log, timeout_s)
            result.rates.setdefault(partitions, []).append(steady_rate(log.marks, records))
    return result
