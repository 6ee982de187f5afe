"""Latency from a record's produce timestamp (CreateTime) to the handler's start.

At light load (about 100 records/s) three consumers read the same stream at once,
each in its own group: the poller with MaximumBatchingWindowInSeconds 0, the
poller with the default window (500 ms), and the bare loop as the floor. Reading
one stream together means all three see exactly the same records and load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import PacedProducer, new_topic
from bench.harness import DeliveryLog, mapping_for, record_count, run_bare_loop, run_poller
from bench.stats import median, percentile
from runtime.devtools.local_kafka import ClusterInfo

WINDOWS: dict[str, int | None] = {"window 0": 0, "window 500 ms (default)": None}
BASELINE = "bare loop"


@dataclass
class LatencyResult:
    """Per-run p50 and p99 in milliseconds, per consumer."""

    p50: dict[str, list[float]] = field(default_factory=dict)
    p99: dict[str, list[float]] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, samples: list[float]) -> None:
        """One run's samples of consumer ``name``."""
        self.p50.setdefault(name, []).append(percentile(samples, 0.50))
        self.p99.setdefault(name, []).append(percentile(samples, 0.99))
        self.samples[name] = self.samples.get(name, 0) + len(samples)

    def median_p50(self, name: str) -> float:
        """Median over runs of the p50 of ``name``."""
        return median(self.p50.get(name, []))

    def median_p99(self, name: str) -> float:
        """Median over runs of the p99 of ``name``."""
        return median(self.p99.get(name, []))


def wall_ms() -> float:
    """Now, in epoch milliseconds: the clock Kafka's CreateTime uses."""
    return time.time() * 1000.0


class LatencyHandler:
    """Samples, at its start, how old every record of the event is."""

    def __init__(self, log: DeliveryLog) -> None:
        self.log = log

    def __call__(self, event: dict[str, Any], _context: Any) -> None:
        now = wall_ms()
        ages = [now - r["timestamp"] for rs in event["records"].values() for r in rs]
        self.log.add(time.monotonic(), record_count(event), ages)


def measure(
    kafka: ClusterInfo,
    *,
    rate_per_s: float,
    duration_s: float,
    record_size: int,
    runs: int,
    timeout_s: float = 60.0,
) -> LatencyResult:
    """``runs`` rounds, each on a fresh topic with the three consumers reading at once."""
    result = LatencyResult()
    for _ in range(runs):
        for name, samples in _one_round(
            kafka, rate_per_s, duration_s, record_size, timeout_s
        ).items():
            result.add(name, samples)
    return result


def _one_round(
    kafka: ClusterInfo, rate_per_s: float, duration_s: float, record_size: int, timeout_s: float
) -> dict[str, list[float]]:
    topic = new_topic(kafka, 1, prefix="latency")
    expected = int(rate_per_s * duration_s) + 1
    logs = {name: DeliveryLog(expected) for name in [*WINDOWS, BASELINE]}
    ready = threading.Barrier(len(logs) + 1)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_guard(errors, _poller_round, kafka, topic, window, logs[name], ready, timeout_s)
        )
        for name, window in WINDOWS.items()
    ]
    threads.append(
        threading.Thread(
            target=_guard(errors, _bare_round, kafka, topic, logs[BASELINE], ready, timeout_s)
        )
    )
    for thread in threads:
        thread.start()
    ready.wait(timeout_s)
    time.sleep(0.5)  # every consumer has its partition and is polling an empty topic
    sent = PacedProducer(kafka, topic).run(rate_per_s, duration_s, record_size)
    for log in logs.values():
        log.expect(sent)
    for thread in threads:
        thread.join(timeout_s + 60)
    if errors:
        raise RuntimeError(f"latency round failed: {errors[0]!r}") from errors[0]
    return {name: log.samples for name, log in logs.items()}


def _meet(barrier: threading.Barrier, timeout_s: float) -> Callable[[], None]:
    """Wait at ``barrier``: every consumer is assigned before anything is produced."""

    def wait() -> None:
        barrier.wait(timeout_s)

    return wait


def _guard(errors: list[BaseException], target: Any, *args: Any) -> Any:
    def run() -> None:
        try:
            target(*args)
        except BaseException as exc:  # surfaced by the caller with context
            errors.append(exc)
            args_barrier = [a for a in args if isinstance(a, threading.Barrier)]
            for barrier in args_barrier:
                barrier.abort()

    return run


def _poller_round(
    kafka: ClusterInfo,
    topic: str,
    window: int | None,
    log: DeliveryLog,
    ready: threading.Barrier,
    timeout_s: float,
) -> None:
    mapping = mapping_for(kafka, topic, 100, window)
    run_poller(
        mapping, LatencyHandler(log), log, timeout_s + 60, on_started=_meet(ready, timeout_s)
    )


def _bare_round(
    kafka: ClusterInfo, topic: str, log: DeliveryLog, ready: threading.Barrier, timeout_s: float
) -> None:
    run_bare_loop(
        mapping_for(kafka, topic, 100, None),
        log,
        timeout_s + 60,
        per_record=lambda stamp_ms: wall_ms() - stamp_ms,
        max_records=1,  # hand each record over as soon as it arrives
        poll_timeout_s=0.05,
        on_started=_meet(ready, timeout_s),
    )
