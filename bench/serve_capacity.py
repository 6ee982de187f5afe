"""How many mappings one ``kafka-esm serve`` holds before lag grows, and create -> first record.

``python -m bench.serve_capacity [--steps 5,10,20,30,40] [--rate 20]``: a fresh local broker,
one ``serve``, and for each step N mappings (one topic of one partition each, a local
Python handler that writes each record to a file) fed ``--rate`` records/s per topic. After
a warm-up it reads every mapping's OffsetLag twice, ``--window`` seconds apart: lag that
grows in the window means the mappings no longer keep up. Prints one line per step with
CPU load, the pollers' memory and the total lag at both readings.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.cluster import REPO_ROOT, kafka_cluster, new_topic
from runtime.definition.model import parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.lag import LagReader
from runtime.testing.serve import ServeProcess
from tests.kafka_helpers import produce

HANDLER = "tests.integration.serve_handler:record"


def request(kafka: ClusterInfo, topic: str) -> dict[str, Any]:
    return {
        "FunctionName": "fn",
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
    }


def total_lag(kafka: ClusterInfo, mappings: list[dict[str, Any]]) -> int:
    total = 0
    for answer in mappings:
        doc = {
            k: v
            for k, v in answer.items()
            if k in ("FunctionName", "Topics", "StartingPosition", "SelfManagedEventSource")
        }
        doc["FunctionName"] = "fn"
        doc["SelfManagedKafkaEventSourceConfig"] = answer["SelfManagedKafkaEventSourceConfig"]
        total += LagReader(parse_mapping(doc), kafka.plaintext_config()).read().total
    return total


def pollers_rss_mib(state_dir: Path) -> float:
    """Resident memory of every poller process ``serve`` runs (their pid files are the
    status documents)."""
    total = 0
    for status in state_dir.glob("mappings/*/status/*.json"):
        pid = status.stem.rsplit("-", 1)[-1]
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def first_delivery_s(kafka: ClusterInfo, serve: ServeProcess, deliveries: Path) -> float:
    topic = new_topic(kafka, 1, "first")
    produce(kafka.plaintext_config(), topic, [b"first"])
    started = time.monotonic()
    serve.client().create_event_source_mapping(**{**request(kafka, topic), "FunctionName": "first"})
    log = deliveries / "first.log"
    while not log.exists():
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    log.unlink()
    return elapsed


class Feed:
    """One producer thread for every topic: ``rate`` records/s to each (one client, so the
    benchmark's own load stays small next to the pollers')."""

    def __init__(self, kafka: ClusterInfo, rate: float) -> None:
        self._producer = Producer({**kafka.plaintext_config(), "linger.ms": 20, "log_level": 0})
        self._rate = rate
        self._topics: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def topics(self) -> int:
        return len(self._topics)

    def add(self, topic: str) -> None:
        self._topics = [*self._topics, topic]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._producer.flush(60)

    def _run(self) -> None:
        tick = 0.05
        while not self._stop.wait(tick):
            for topic in self._topics:
                for _ in range(max(1, round(self._rate * tick))):
                    with contextlib.suppress(BufferError):
                        self._producer.produce(topic, value=b"x" * 100)
            self._producer.poll(0)


def measure_step(
    kafka: ClusterInfo, serve: ServeProcess, feed: Feed, step: int, args: argparse.Namespace
) -> None:
    """Grow to ``step`` mappings, wait until all are Enabled, then read the lag twice."""
    client = serve.client()
    started = time.monotonic()
    while feed.topics < step:
        topic = new_topic(kafka, 1, "cap")
        client.create_event_source_mapping(**request(kafka, topic))
        feed.add(topic)

    def mappings() -> list[dict[str, Any]]:
        listed = client.list_event_source_mappings(MaxItems=1000)["EventSourceMappings"]
        return [m for m in listed if m["FunctionArn"].endswith(":fn")]

    while sum(m["State"] == "Enabled" for m in mappings()) < step:
        time.sleep(0.5)
    enabled_s = time.monotonic() - started
    time.sleep(args.warmup)
    load_before = os.getloadavg()[0]
    first = total_lag(kafka, mappings())
    time.sleep(args.window)
    second = total_lag(kafka, mappings())
    print(
        f"mappings {step:3d} (all Enabled {enabled_s:.0f}s after the first create of the step),"
        f" {args.rate:g} rec/s each ({step * args.rate:g} rec/s total): lag {first} -> {second}"
        f" over {args.window:g}s; load1 {load_before:.1f} -> {os.getloadavg()[0]:.1f};"
        f" pollers RSS {pollers_rss_mib(serve.state_dir):.0f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="5,10,20,30,40", help="'' for none")
    parser.add_argument("--rate", type=float, default=20.0, help="records/s per topic")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--first", type=int, default=1, help="create -> first record, N times")
    args = parser.parse_args()
    with kafka_cluster() as kafka, tempfile.TemporaryDirectory(prefix="serve-bench-") as home:
        deliveries = Path(home) / "deliveries"
        deliveries.mkdir()
        serve = ServeProcess(
            Path(home) / "state",
            {"fn": HANDLER, "first": HANDLER},
            env={"SERVE_DELIVERY_DIR": str(deliveries)},
            cwd=REPO_ROOT,
        ).start()
        try:
            times = sorted(first_delivery_s(kafka, serve, deliveries) for _ in range(args.first))
            print(
                f"create -> first record delivered (idle serve, {args.first}x): min"
                f" {times[0]:.2f}s median {times[len(times) // 2]:.2f}s max {times[-1]:.2f}s",
                flush=True,
            )
            feed = Feed(kafka, args.rate)
            try:
                for step in (int(s) for s in args.steps.split(",") if s):
                    measure_step(kafka, serve, feed, step, args)
            finally:
                feed.stop()
        finally:
            serve.stop(timeout_s=300)


if __name__ == "__main__":
    main()
