"""``kafka-esm demo``: the whole runtime on a laptop, start to finish, in one command.

Starts the local Kafka (unless one runs), creates a topic, produces sample orders,
runs a mapping with a sample handler until every record is handled and committed,
then stops the poller and (if it started it) the broker.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from runtime.cli.launcher import assemble_poller
from runtime.definition.model import load_mapping
from runtime.devtools.local_kafka.broker import LocalKafka
from runtime.devtools.local_kafka.commands import default_home
from runtime.devtools.local_kafka.settings import ClusterInfo
from runtime.invokers import LocalHandlerInvoker
from runtime.observability.counters import Metric
from runtime.observability.logs import configure_logging
from runtime.pipeline.poller import PollerOptions

PARTITIONS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm demo``."""
    parser.add_argument("--records", type=int, default=30, help="sample orders to produce")
    parser.add_argument(
        "--keep-kafka", action="store_true", help="leave the local Kafka running afterwards"
    )
    parser.add_argument("--verbose", action="store_true", help="show the poller's JSON logs")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="give up when the records are not all handled by then",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the demo; exit code 0 when every record was handled and committed."""
    configure_logging("INFO" if args.verbose else "WARNING")
    broker = LocalKafka(default_home())
    started_here = not broker.is_running()
    say = _printer(out)
    say("1. starting the local Kafka" if started_here else "1. using the running local Kafka")
    info = broker.start() if started_here else broker.info()
    assert info is not None
    try:
        return _demo(info, broker.home, args, say)
    finally:
        if started_here and not args.keep_kafka:
            say("5. stopping the local Kafka")
            broker.stop()


def _demo(info: ClusterInfo, home: Path, args: argparse.Namespace, say: Any) -> int:
    topic = f"demo-orders-{uuid.uuid4().hex[:6]}"
    say(f"2. creating topic {topic} with {PARTITIONS} partitions")
    admin = AdminClient(info.plaintext_config())
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
    say(f"3. producing {args.records} sample orders")
    _produce_orders(info, topic, args.records)
    mapping_path = _write_mapping(info, home, topic)
    say(f"4. running the mapping {mapping_path} with handler runtime.devtools.demo_handler:handler")
    say(
        f"   (the same as: kafka-esm run --mapping {mapping_path} "
        "--handler runtime.devtools.demo_handler:handler)"
    )
    mapping = load_mapping(mapping_path)
    invoker = LocalHandlerInvoker(
        "runtime.devtools.demo_handler:handler", function_name=mapping.function_name, timeout_s=30
    )
    poller = assemble_poller(mapping, invoker, PollerOptions(max_concurrency=PARTITIONS))
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + args.timeout
    while poller.counters.get(Metric.COMMITTED) < args.records and time.monotonic() < deadline:
        if not thread.is_alive():
            break
        time.sleep(0.05)
    poller.stop()
    thread.join(60)
    counts = poller.counters.snapshot()
    say(
        f"   handled {counts[Metric.INVOKED]} records, committed {counts[Metric.COMMITTED]}; "
        f"state {poller.status.snapshot().state.value}"
    )
    return 0 if counts[Metric.COMMITTED] >= args.records else 1


def _produce_orders(info: ClusterInfo, topic: str, count: int) -> None:
    producer = Producer({**info.plaintext_config(), "linger.ms": 5})
    for number in range(count):
        order = {
            "order": number,
            "item": ["book", "lamp", "mug"][number % 3],
            "qty": 1 + number % 4,
        }
        producer.produce(
            topic,
            json.dumps(order).encode(),
            key=f"customer-{number % 5}".encode(),
            headers=[("source", b"demo")],
        )
    producer.flush(30)


def _write_mapping(info: ClusterInfo, home: Path, topic: str) -> Path:
    doc = {
        "FunctionName": "demo-orders-function",
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 1,
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [info.bootstrap_servers]}
        },
    }
    path = home / "demo-mapping.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def _printer(out: TextIO) -> Any:
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, file=out, flush=True)

    return say
