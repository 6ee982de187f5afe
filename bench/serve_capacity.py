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
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cluster import REPO_ROOT, kafka_cluster, new_topic
from runtime.definition.model import parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.lag import LagReader
from runtime.testing.serve import ServeProcess
from tests.fault_harness import LiveProducer
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
            client = serve.client()
            producers: list[LiveProducer] = []
            for step in (int(s) for s in args.steps.split(",") if s):
                while len(producers) < step:
                    topic = new_topic(kafka, 1, "cap")
                    client.create_event_source_mapping(**request(kafka, topic))
                    producers.append(
                        LiveProducer(kafka.plaintext_config(), topic, 1, args.rate).start()
                    )
                load_before = os.getloadavg()[0]
                time.sleep(args.warmup)
                mappings = [
                    m
                    for m in client.list_event_source_mappings(MaxItems=1000)["EventSourceMappings"]
                    if m["FunctionArn"].endswith(":fn")
                ]
                enabled = sum(m["State"] == "Enabled" for m in mappings)
                first = total_lag(kafka, mappings)
                time.sleep(args.window)
                second = total_lag(kafka, mappings)
                print(
                    f"mappings {step:3d} ({enabled} Enabled), {args.rate:g} rec/s each"
                    f" ({step * args.rate:g} rec/s total): lag {first} -> {second}"
                    f" over {args.window:g}s; load1 {load_before:.1f} -> {os.getloadavg()[0]:.1f};"
                    f" pollers RSS {pollers_rss_mib(serve.state_dir):.0f} MiB",
                    flush=True,
                )
            for producer in producers:
                producer.stop()
        finally:
            serve.stop(timeout_s=300)


if __name__ == "__main__":
    main()
