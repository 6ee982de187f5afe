"""Queue mode against Stream mode on the same topic, and Queue pollers in parallel.

    python -m bench.queue [--records 20000] [--bootstrap HOST:PORT]

Measures, on one pre-filled 1-partition topic of 1 KB records (BatchSize 100):

* a no-op handler: one Stream poller against one Queue poller (what acknowledging
  record by record costs against committing an offset);
* a 20 ms handler: one Stream poller (one batch in flight: the partition is ordered),
  one Queue process, and three Queue processes (a share group lets several pollers
  read the one partition).

Each rate is the steady state between 10 % and 90 % of the records delivered; the
processes report their deliveries through files (``time count`` lines).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench.cluster import REPO_ROOT, fill_topic, kafka_cluster, new_topic
from bench.harness import DeliveryLog, record_count, run_poller
from bench.stats import steady_rate
from runtime.cli.launcher import assemble_poller, run_until_signalled
from runtime.definition.model import EventSourceMapping, parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.invokers import LocalHandlerInvoker
from runtime.pipeline.poller import PollerOptions
from runtime.pipeline.share_source import configure_share_group

BATCH = 100
SLOW_S = 0.02


def mapping(kafka: ClusterInfo, topic: str, *, queue: bool) -> dict[str, Any]:
    group = f"bench-{uuid.uuid4().hex[:10]}"
    doc: dict[str, Any] = {
        "FunctionName": "bench-function",
        "Topics": [topic],
        "BatchSize": BATCH,
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
    }
    if queue:
        doc["SelfManagedKafkaEventSourceConfig"]["ConsumptionMode"] = "Queue"
        configure_share_group(
            AdminClient(kafka.plaintext_config()), group, {"share.auto.offset.reset": "earliest"}
        )
    else:
        doc["StartingPosition"] = "TRIM_HORIZON"
        doc["MaximumBatchingWindowInSeconds"] = 0
    return doc


def in_process(doc: dict[str, Any], records: int, delay_s: float) -> float:
    """Records/s of one poller in this process."""
    log = DeliveryLog(records)

    def handler(event: dict[str, Any], _context: Any) -> None:
        if delay_s:
            time.sleep(delay_s)
        log.add(time.monotonic(), record_count(event))

    parsed: EventSourceMapping = parse_mapping(doc)
    run_poller(parsed, handler, log, timeout_s=300, options=PollerOptions())
    return steady_rate(log.marks, records)


def processes(doc: dict[str, Any], records: int, count: int, delay_s: float) -> float:
    """Records/s of ``count`` Queue pollers, each a process of its own."""
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as folder:
        path = Path(folder) / "mapping.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        logs = [Path(folder) / f"member-{i}.log" for i in range(count)]
        members = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.queue", "--member", str(path), str(log)],
                cwd=REPO_ROOT,
                env={**os.environ, "BENCH_DELAY_S": str(delay_s)},
            )
            for log in logs
        ]
        try:
            deadline = time.monotonic() + 300
            while _delivered(logs) < records and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            for member in members:
                member.terminate()
            for member in members:
                member.wait(60)
        marks = [
            (float(when), int(seen))
            for log in logs
            if log.exists()
            for when, seen in (line.split() for line in log.read_text().splitlines())
        ]
    return steady_rate(marks, records)


def _delivered(logs: list[Path]) -> int:
    return sum(
        int(line.split()[1])
        for log in logs
        if log.exists()
        for line in log.read_text().splitlines()
    )


def member(mapping_path: str, log_path: str) -> None:
    """One Queue poller process: appends ``monotonic-time count`` per invocation."""
    delay_s = float(os.environ.get("BENCH_DELAY_S", "0"))
    out = Path(log_path).open("a", encoding="utf-8")  # noqa: SIM115 - open for the process

    def handler(event: dict[str, Any], _context: Any) -> None:
        if delay_s:
            time.sleep(delay_s)
        out.write(f"{time.monotonic()} {record_count(event)}\n")
        out.flush()

    parsed = parse_mapping(json.loads(Path(mapping_path).read_text(encoding="utf-8")))
    invoker = LocalHandlerInvoker(handler, function_name=parsed.function_name)
    run_until_signalled(assemble_poller(parsed, invoker, PollerOptions()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queue")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--member", nargs=2, metavar=("MAPPING", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.member:
        member(*args.member)
        return
    with kafka_cluster(args.bootstrap) as kafka:
        topic = new_topic(kafka, 1, prefix="bench-queue")
        fill_topic(kafka, topic, args.records, 1000, 1)
        n = args.records
        rows = [
            ("no-op, Stream, 1 poller", in_process(mapping(kafka, topic, queue=False), n, 0)),
            ("no-op, Queue, 1 poller", in_process(mapping(kafka, topic, queue=True), n, 0)),
            ("20 ms, Stream, 1 poller", in_process(mapping(kafka, topic, queue=False), n, SLOW_S)),
            ("20 ms, Queue, 1 process", processes(mapping(kafka, topic, queue=True), n, 1, SLOW_S)),
            (
                "20 ms, Queue, 3 processes",
                processes(mapping(kafka, topic, queue=True), n, 3, SLOW_S),
            ),
        ]
    print(f"1 partition, {n} records of 1 KB, BatchSize {BATCH}")
    for name, rate in rows:
        print(f"  {name:<28} {rate:>10,.0f} rec/s")


if __name__ == "__main__":
    main()
