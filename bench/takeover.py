"""Takeover after a crash, and the pause a rebalance costs the other members.

    python -m bench.takeover [--bootstrap HOST:PORT]

Every poller is a real ``kafka-esm run`` process on one 4-partition topic that a producer
thread feeds at about 400 records/s; each poller's handler appends ``time pid count`` to a
file (``bench.delivery_handler``).

* restart to first delivery: two pollers run; one is killed (SIGKILL) and started again at
  once. Measured from the new process's start to its first delivery, with static
  membership (``--group-instance-id``) and without. The process's own start-up (Python
  imports, the group join) is part of the figure.
* pause during a rebalance: one poller runs alone, a second joins; the longest gap
  between two deliveries of the first one while the second joins, with the classic
  protocol (cooperative-sticky) and with KIP-848's consumer protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.cluster import REPO_ROOT, kafka_cluster, new_topic
from runtime.devtools.local_kafka import ClusterInfo

PARTITIONS = 4
RATE_PER_S = 400


class Feed:
    """A producer thread writing small records round-robin until stopped."""

    def __init__(self, kafka: ClusterInfo, topic: str, partitions: int = PARTITIONS) -> None:
        self._producer = Producer({**kafka.plaintext_config(), "linger.ms": 5})
        self._topic = topic
        self._partitions = partitions
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.produced = 0

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop producing; every record written so far is acknowledged. Returns how many."""
        self._stop.set()
        self._thread.join(10)
        self._producer.flush(30)
        return self.produced

    def _run(self) -> None:
        while not self._stop.wait(1 / RATE_PER_S * 10):
            for _ in range(10):
                partition = self.produced % self._partitions
                self._producer.produce(self._topic, b"x" * 100, partition=partition)
                self.produced += 1
            self._producer.poll(0)


class Poller:
    """One ``kafka-esm run`` process and the deliveries it logs."""

    def __init__(
        self, folder: Path, mapping: Path, *flags: str, env: dict[str, str] | None = None
    ) -> None:
        self.log = folder / f"deliveries-{uuid.uuid4().hex[:6]}.log"
        env = {**os.environ, **(env or {}), "BENCH_DELIVERY_LOG": str(self.log)}
        command = [sys.executable, "-m", "runtime.cli.main", "run", "--mapping", str(mapping)]
        command += ["--handler", "bench.delivery_handler:handler", "--metrics", "none", *flags]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)

    def times(self) -> list[float]:
        if not self.log.exists():
            return []
        return [float(line.split()[0]) for line in self.log.read_text().splitlines()]

    def wait_first(self, timeout_s: float = 60) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            times = self.times()
            if times:
                return times[0]
            time.sleep(0.05)
        raise TimeoutError("no delivery")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def mapping_file(kafka: ClusterInfo, topic: str, folder: Path, batch_size: int = 10) -> Path:
    doc: dict[str, Any] = {
        "FunctionName": "bench-function",
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": batch_size,
        "MaximumBatchingWindowInSeconds": 0,
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"takeover-{uuid.uuid4().hex}"},
    }
    path = folder / f"mapping-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def restart_to_first_delivery(kafka: ClusterInfo, folder: Path, static: bool) -> float:
    topic = new_topic(kafka, PARTITIONS, prefix="takeover")
    mapping = mapping_file(kafka, topic, folder)
    ids = (["--group-instance-id", "a"], ["--group-instance-id", "b"]) if static else ([], [])
    with Feed(kafka, topic):
        first, second = Poller(folder, mapping, *ids[0]), Poller(folder, mapping, *ids[1])
        try:
            first.wait_first()
            second.wait_first()
            second.kill()
            again = Poller(folder, mapping, *ids[1])
            try:
                return again.wait_first() - again.started
            finally:
                again.stop()
        finally:
            first.stop()
            second.stop()


def rebalance_pause(kafka: ClusterInfo, folder: Path, protocol: str) -> float:
    topic = new_topic(kafka, PARTITIONS, prefix="rebalance")
    mapping = mapping_file(kafka, topic, folder)
    flags = ["--group-protocol", protocol]
    with Feed(kafka, topic):
        first = Poller(folder, mapping, *flags)
        try:
            first.wait_first()
            time.sleep(2)  # steady state: the gaps are the feed's own
            joined_at = time.monotonic()
            second = Poller(folder, mapping, *flags)
            try:
                second.wait_first()
                time.sleep(2)
                times = [t for t in first.times() if t >= joined_at - 1]
                return max(b - a for a, b in pairwise(times))
            finally:
                second.stop()
        finally:
            first.stop()


@dataclass
class TakeoverResult:
    """Seconds per run: restart to first delivery (static, dynamic member) and the longest
    pause of a running member while another joins (classic, consumer protocol)."""

    restart: dict[str, list[float]] = field(default_factory=lambda: {"static": [], "dynamic": []})
    pause: dict[str, list[float]] = field(default_factory=lambda: {"classic": [], "consumer": []})

    @staticmethod
    def median(values: list[float]) -> float:
        """The middle value (the upper one of an even count)."""
        ordered = sorted(values)
        return ordered[len(ordered) // 2] if ordered else float("nan")


def measure(kafka: ClusterInfo, runs: int) -> TakeoverResult:
    """``runs`` rounds of the four measurements, interleaved."""
    result = TakeoverResult()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(runs):
            for static in (True, False):
                seconds = restart_to_first_delivery(kafka, folder, static)
                result.restart["static" if static else "dynamic"].append(seconds)
            for protocol in ("classic", "consumer"):
                result.pause[protocol].append(rebalance_pause(kafka, folder, protocol))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with kafka_cluster(args.bootstrap) as kafka:
        result = measure(kafka, args.runs)
    rows = {f"restart to first delivery, {k} member": v for k, v in result.restart.items()}
    rows |= {f"longest pause of the other member, {k} protocol": v for k, v in result.pause.items()}
    print(f"{PARTITIONS} partitions, {RATE_PER_S} records/s, {args.runs} runs (median, all):")
    for name, values in rows.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<52} {result.median(values):6.2f} s  ({shown})")


if __name__ == "__main__":
    main()
