"""Peak memory (VmHWM) of a process that consumes a filled topic from the start.

The consumer runs in a child process so that its high-water mark is its own; when
it has delivered every record it says so and waits, and the parent reads
``/proc/<pid>/status`` before letting it exit. The bare loop in its own child is
the baseline: the interpreter, confluent-kafka and librdkafka's fetch queue.

Run as a module, this file is the child:
``python -m bench.memory {poller|bare} BOOTSTRAP TOPIC RECORDS BATCH_SIZE``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.cluster import FilledTopics
from bench.harness import DeliveryLog, mapping_for, run_bare_loop, run_poller
from bench.stats import median
from bench.throughput import NoOpHandler
from runtime.devtools.local_kafka import ClusterInfo

MODES = ("poller", "bare")
_READY = "DELIVERED"


@dataclass
class MemoryResult:
    """Peak RSS in MiB per run, for each mode and partition count."""

    batch_size: int
    peaks: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def peak(self, mode: str, partitions: int) -> float:
        """Median peak RSS (MiB) of ``mode`` on the ``partitions``-partition topic."""
        return median(self.peaks.get((mode, partitions), []))


def peak_rss_mib(pid: int) -> float:
    """VmHWM of ``pid`` (the most resident memory it ever had), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def measure(
    kafka: ClusterInfo,
    topics: FilledTopics,
    *,
    partition_counts: list[int],
    records: int,
    batch_size: int,
    runs: int,
    timeout_s: float = 180.0,
) -> MemoryResult:
    """``runs`` children per mode and partition count, each reading a whole topic."""
    result = MemoryResult(batch_size)
    for _ in range(runs):
        for partitions in partition_counts:
            topic = topics.get(partitions, records)
            for mode in MODES:
                peak = _child_peak(kafka, mode, topic, records, batch_size, timeout_s)
                result.peaks.setdefault((mode, partitions), []).append(peak)
    return result


def _child_peak(
    kafka: ClusterInfo, mode: str, topic: str, records: int, batch_size: int, timeout_s: float
) -> float:
    command = [
        sys.executable,
        "-m",
        "bench.memory",
        mode,
        kafka.bootstrap_servers,
        topic,
        str(records),
        str(batch_size),
    ]
    root = str(Path(__file__).resolve().parents[1])
    with subprocess.Popen(
        command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        try:
            line = child.stdout.readline().strip()
            if line != _READY:
                raise RuntimeError(f"memory child ({mode}) ended without delivering: {line!r}")
            return peak_rss_mib(child.pid)
        finally:
            child.stdin.close()
            try:
                child.wait(timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()


def _child(mode: str, bootstrap: str, topic: str, records: int, batch_size: int) -> None:
    kafka = ClusterInfo.external(bootstrap)
    log = DeliveryLog(records)
    mapping = mapping_for(kafka, topic, batch_size, None)
    if mode == "poller":
        run_poller(mapping, NoOpHandler(log), log, timeout_s=600)
    else:
        run_bare_loop(mapping, log, timeout_s=600)
    print(_READY, flush=True)
    sys.stdin.read()  # keep the high-water mark readable until the parent is done


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] not in MODES:
        sys.exit(f"usage: python -m bench.memory {{{'|'.join(MODES)}}} BOOTSTRAP TOPIC N BATCH")
    _child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
