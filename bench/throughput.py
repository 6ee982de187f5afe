"""Throughput: records/s and MB/s into a no-op handler, against a bare consume loop.

Each case (partitions x BatchSize x where events go) runs the bare loop and then the
poller on the same pre-filled topic, each in a fresh consumer group and a fresh process,
so both read the same bytes from the same page cache; runs are interleaved so that load
from other processes on the machine hits both alike. Events go to a no-op handler in the
poller's process or, for the poller's own cost, to a trivial Invoke API endpoint in
another process (``bench.sink``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import FilledTopics
from bench.harness import (
    DeliveryLog,
    api_invoker,
    mapping_for,
    record_count,
    run_bare_loop,
    run_poller,
)
from bench.sink import invoke_sink
from bench.stats import median, steady_rate
from runtime.devtools.local_kafka import ClusterInfo

MB = 1_000_000


LOCAL = "local handler"
INVOKE_API = "Invoke API"
TARGETS = (LOCAL, INVOKE_API)
"""Where events go: a handler in the poller's process (its JSON decode included), or a
trivial Invoke API endpoint in another process (the poller's own cost)."""


@dataclass(frozen=True)
class Case:
    """One throughput configuration."""

    partitions: int
    batch_size: int
    target: str = LOCAL


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
    def ratios(self) -> list[float]:
        """Per-run poller/baseline ratios (paired, so load drift cancels)."""
        return [p / b for p, b in zip(self.poller, self.baseline, strict=True)]

    @property
    def ratio(self) -> float:
        """Median of the per-run ratios."""
        return median(self.ratios)

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
    kafka: ClusterInfo,
    topic: str,
    case: Case,
    records: int,
    window_s: int | None,
    timeout_s: float,
    sink_url: str | None = None,
) -> float:
    """Steady-state records/s from the topic's start into a no-op handler, or into the
    Invoke API sink at ``sink_url`` for an Invoke API case."""
    log = DeliveryLog(records)
    mapping = mapping_for(kafka, topic, case.batch_size, window_s)
    if case.target == INVOKE_API:
        if sink_url is None:
            raise ValueError("an Invoke API case needs the sink's URL")
        run_poller(mapping, api_invoker(mapping, sink_url, log), log, timeout_s)
    else:
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
    with ExitStack() as stack:
        needs_sink = any(case.target == INVOKE_API for case in cases)
        sink_url = stack.enter_context(invoke_sink()) if needs_sink else None
        for _ in range(runs):
            for result in results:
                partitions = result.case.partitions
                count = min(records, batches_per_case * result.case.batch_size)
                whole = topics.get(partitions, records)
                base = _in_child("bare", kafka, whole, records, timeout_s=timeout_s)
                result.baseline.append(base)
                topic = topics.get(partitions, count)
                rate = _in_child(
                    "poller",
                    kafka,
                    topic,
                    count,
                    case=result.case,
                    window_s=window_s,
                    sink_url=sink_url,
                    timeout_s=timeout_s,
                )
                result.poller.append(rate)
    return results


def _in_child(
    mode: str,
    kafka: ClusterInfo,
    topic: str,
    records: int,
    *,
    timeout_s: float,
    case: Case | None = None,
    window_s: int | None = None,
    sink_url: str | None = None,
) -> float:
    """One rate measured in a fresh process: each side runs with its own interpreter and
    allocator state, as a user runs it (the poller with ``kafka-esm run``'s tuning, the
    bare loop without), and neither inherits the other's heap."""
    job = {
        "mode": mode,
        "bootstrap": kafka.bootstrap_servers,
        "topic": topic,
        "records": records,
        "case": asdict(case) if case else None,
        "window_s": window_s,
        "sink_url": sink_url,
        "timeout_s": timeout_s,
    }
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "bench.throughput", json.dumps(job)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout_s + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"throughput child ({mode}) failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _child(job: dict[str, Any]) -> float:
    kafka = ClusterInfo.external(job["bootstrap"])
    if job["mode"] == "bare":
        return baseline_rate(kafka, job["topic"], job["records"], job["timeout_s"])
    case = Case(**job["case"])
    return poller_rate(
        kafka,
        job["topic"],
        case,
        job["records"],
        job["window_s"],
        job["timeout_s"],
        job["sink_url"],
    )


if __name__ == "__main__":
    print(_child(json.loads(sys.argv[1])))
