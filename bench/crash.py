"""The cost of a crash: records delivered twice, and how long a killed poller takes back.

    python -m bench.crash [--bootstrap HOST:PORT] [--kills 6] [--batch-size 200]

Two ``kafka-esm run`` members with static membership read a 6-partition topic that a
producer feeds; one of them is killed (SIGKILL) at random moments and started again at
once. Every delivered (partition, offset) is logged by ``bench.delivery_handler``. Reported:
records lost (must be 0), records delivered more than once per kill, against the bound
the poller promises (the batches in flight of the killed member, ``--max-concurrency`` x
BatchSize, plus what settled since its last commit, which the loop commits every turn),
and the time from the restart to the restarted member's first delivery.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import fill_topic, kafka_cluster, new_topic
from bench.takeover import Feed, Poller, mapping_file
from runtime.devtools.local_kafka import ClusterInfo
from runtime.pipeline.poller import PollerOptions

PARTITIONS = 6


@dataclass
class CrashResult:
    """One crash run: what was produced, lost and delivered twice, and each recovery."""

    kills: int
    batch_size: int
    backlog: int
    produced: int
    lost: int
    duplicates: int
    recoveries: list[float]

    @property
    def bound(self) -> int:
        """Duplicates one kill may cause: the killed member's batches in flight."""
        return PollerOptions().max_concurrency * self.batch_size

    @property
    def per_kill(self) -> float:
        """Records delivered more than once, per kill."""
        return self.duplicates / self.kills

    @property
    def recovery_median(self) -> float:
        """Median seconds from a restart to the restarted member's first delivery."""
        ordered = sorted(self.recoveries)
        return ordered[len(ordered) // 2]


def measure(kafka: ClusterInfo, *, kills: int, batch_size: int, backlog: int) -> CrashResult:
    """Kill one of two static members ``kills`` times while a feed runs; count deliveries."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        topic = new_topic(kafka, PARTITIONS, prefix="crash")
        if backlog:
            fill_topic(kafka, topic, backlog, 100, PARTITIONS)
        mapping = mapping_file(kafka, topic, folder, batch_size=batch_size)
        offsets = folder / "offsets.log"
        env = {"BENCH_OFFSETS_LOG": str(offsets)}
        recoveries: list[float] = []
        with Feed(kafka, topic, partitions=PARTITIONS) as feed:
            steady = Poller(folder, mapping, "--group-instance-id", "steady", env=env)
            victim = Poller(folder, mapping, "--group-instance-id", "victim", env=env)
            victim.wait_first()
            for _ in range(kills):
                time.sleep(rng.uniform(1.0, 3.0))
                victim.kill()
                victim = Poller(folder, mapping, "--group-instance-id", "victim", env=env)
                recoveries.append(victim.wait_first() - victim.started)
            time.sleep(3)
            produced = feed.stop() + backlog
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(_seen(offsets)) < produced:
                time.sleep(0.5)
            victim.stop()
            steady.stop()
        seen = _seen(offsets)
    return CrashResult(
        kills,
        batch_size,
        backlog,
        produced,
        lost=produced - len(seen),
        duplicates=sum(count - 1 for count in seen.values()),
        recoveries=recoveries,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument(
        "--backlog", type=int, default=0, help="records written before the pollers start"
    )
    args = parser.parse_args()
    with kafka_cluster(args.bootstrap) as kafka:
        result = measure(kafka, kills=args.kills, batch_size=args.batch_size, backlog=args.backlog)
    load = f"BatchSize {result.batch_size}, {result.kills} kills, {result.produced} records"
    load += f" ({result.backlog} of them a backlog)" if result.backlog else ""
    verdict = "within" if result.per_kill <= result.bound else "OVER"
    print(f"{PARTITIONS} partitions, {load}")
    print(f"  lost                          {result.lost}")
    print(
        f"  delivered twice, per kill     {result.per_kill:.0f} (bound {result.bound}: {verdict})"
    )
    print(
        f"  restart -> first delivery     median {result.recovery_median:.2f} s, "
        f"max {max(result.recoveries):.2f} s"
    )


def _seen(log: Path) -> Counter[tuple[int, int]]:
    if not log.exists():
        return Counter()
    return Counter(tuple(map(int, line.split())) for line in log.read_text().splitlines())  # type: ignore[misc]


if __name__ == "__main__":
    main()
