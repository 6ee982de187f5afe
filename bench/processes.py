"""All cores: ``kafka-esm run --processes N`` against one process, on one 8-partition topic.

    python -m bench.processes [--bootstrap HOST:PORT] [--records 200000]

Each run is a real ``kafka-esm run`` (its members write ``time pid count`` lines through
``bench.delivery_handler``, a no-op handler or one that spends CPU per record) reading a
pre-filled topic of 1 KB records from the start in a fresh group; the rate is the steady
state while every member delivers (from the last member's first batch to the first
member's last, at most to 90 % of the records); the two runs alternate so load from
elsewhere hits both alike.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.cluster import fill_topic, kafka_cluster, new_topic
from bench.stats import median
from bench.takeover import Poller, mapping_file
from runtime.devtools.local_kafka import ClusterInfo

PARTITIONS = 8


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when it is unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its living children (the ``--processes`` members)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


def rate(
    kafka_topic: tuple[object, str],
    folder: Path,
    records: int,
    processes: int,
    cpu_us: float = 0.0,
    cores: list[tuple[float, float]] | None = None,
) -> float:
    """Steady records/s of one ``kafka-esm run --processes N``; the handler spends
    ``cpu_us`` of CPU per record. Appends the cores the poller processes and the broker
    used once every member delivered to ``cores``."""
    cores = [] if cores is None else cores
    kafka, topic = kafka_topic
    mapping = mapping_file(kafka, topic, folder, batch_size=1000)  # type: ignore[arg-type]
    env = {"BENCH_CPU_US_PER_RECORD": str(cpu_us)}
    poller = Poller(folder, mapping, "--processes", str(processes), env=env)
    broker = getattr(kafka, "pid", None)

    def usage() -> tuple[float, float, float]:
        return time.monotonic(), tree_cpu_seconds(poller.process.pid), cpu_seconds(broker)

    try:
        deadline = time.monotonic() + 300
        steady: tuple[float, float, float] | None = None  # once every member delivers
        while time.monotonic() < deadline:
            lines = poller.log.read_text().splitlines() if poller.log.exists() else []
            rows = [(float(t), pid, int(c)) for t, pid, c in (line.split() for line in lines)]
            if steady is None and len({pid for _, pid, _ in rows}) >= processes:
                steady = usage()
            if sum(c for _, _, c in rows) >= records:
                if steady is not None:
                    end = usage()
                    wall = end[0] - steady[0]
                    cores.append(((end[1] - steady[1]) / wall, (end[2] - steady[2]) / wall))
                return steady_members_rate(rows, records)
            time.sleep(0.2)
        raise TimeoutError(f"{processes} process(es) did not read {records} records")
    finally:
        poller.stop()


def steady_members_rate(rows: list[tuple[float, str, int]], records: int) -> float:
    """Records/s while every member delivers: from the last member's first batch (at
    least 10 % of the records in, as for one process) to the first member's last batch
    (at most 90 %).

    Joins and rebalances are not throughput, and members never run at exactly the same
    speed: once the faster one has read its partitions the other runs alone, and that
    tail measures one process, not N.
    """
    members = {pid for _, pid, _ in rows}
    ordered = sorted((t, c) for t, _, c in rows)
    start = max(min(t for t, pid, _ in rows if pid == member) for member in members)
    end = min(max(t for t, pid, _ in rows if pid == member) for member in members)
    cumulative = 0
    tenth: float | None = None
    for when, count in ordered:
        cumulative += count
        if tenth is None and cumulative >= 0.1 * records:
            tenth = when
        if cumulative >= 0.9 * records:
            end = min(end, when)
            break
    if tenth is not None:
        start = max(start, tenth)
    before = sum(c for t, c in ordered if t <= start)
    if before > 0.5 * records or end <= start:
        raise RuntimeError(
            f"the members delivered side by side only after {before / records:.0%} of the "
            "records: use more (--records)"
        )
    return sum(c for t, c in ordered if start < t <= end) / (end - start)


@dataclass
class ProcessesResult:
    """Records/s of each run, per process count, on one 8-partition topic."""

    records: int
    cpu_us: float = 0.0
    """CPU time the handler spends per record (0: a no-op handler)."""
    rates: dict[int, list[float]] = field(default_factory=lambda: {1: [], 2: []})
    cores: dict[int, list[tuple[float, float]]] = field(default_factory=lambda: {1: [], 2: []})
    """Per run: cores the poller processes and the broker used (2 cores in all here)."""

    def used(self, processes: int) -> tuple[float, float]:
        """Median (poller, broker) cores with ``processes`` members."""
        runs = self.cores[processes]
        return median([p for p, _ in runs]), median([b for _, b in runs])

    def rate(self, processes: int) -> float:
        """Median records/s with ``processes`` members."""
        return median(self.rates[processes])

    @property
    def ratios(self) -> list[float]:
        """2 processes over 1, per paired run."""
        return [b / a for a, b in zip(self.rates[1], self.rates[2], strict=True)]

    @property
    def speedup(self) -> float:
        """Median of the paired ratios."""
        return median(self.ratios)


def measure(kafka: ClusterInfo, *, records: int, runs: int, cpu_us: float = 0.0) -> ProcessesResult:
    """``runs`` paired runs of 1 and 2 processes on a topic of ``records`` 1 KB records."""
    result = ProcessesResult(records, cpu_us)
    with tempfile.TemporaryDirectory() as tmp:
        topic = new_topic(kafka, PARTITIONS, prefix="processes")
        fill_topic(kafka, topic, records, 1000, PARTITIONS)
        for _ in range(runs):
            for n in (1, 2):
                rates = rate((kafka, topic), Path(tmp), records, n, cpu_us, result.cores[n])
                result.rates[n].append(rates)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processes")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--records", type=int, default=600_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu-us", type=float, default=0.0, help="handler CPU per record")
    args = parser.parse_args()
    with kafka_cluster(args.bootstrap) as kafka:
        result = measure(kafka, records=args.records, runs=args.runs, cpu_us=args.cpu_us)
    rates = result.rates
    work = f"handler CPU {args.cpu_us:g} us/record" if args.cpu_us else "no-op handler"
    print(f"{PARTITIONS} partitions, {args.records} records of 1 KB, BatchSize 1000, {work}")
    print(f"  1 process    {result.rate(1):>9,.0f} rec/s  {[round(r) for r in rates[1]]}")
    print(f"  2 processes  {result.rate(2):>9,.0f} rec/s  {[round(r) for r in rates[2]]}")
    print(f"  ratio        x{result.speedup:.2f} (paired {[round(r, 2) for r in result.ratios]})")


if __name__ == "__main__":
    main()
