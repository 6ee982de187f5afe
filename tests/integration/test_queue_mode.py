"""Queue mode end to end: real pollers on a share group of the real broker (Apache Kafka 4.4).

Every test uses a fresh topic and share group that starts at the earliest record, with
a short record lock so that expired locks are awaited in seconds.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka.admin import AdminClient
from moto import mock_aws

from runtime.cli.launcher import assemble_poller
from runtime.definition.model import parse_mapping
from runtime.destinations.writers import destination_for
from runtime.devtools.local_kafka import ClusterInfo
from runtime.invokers import LocalHandlerInvoker
from runtime.observability.counters import Metric
from runtime.pipeline.poller import PollerOptions
from runtime.pipeline.share_source import configure_share_group
from tests.conftest import REPO_ROOT
from tests.fault_harness import wait_until
from tests.kafka_helpers import consume, produce
from tests.poller_harness import FAST_RETRY, RecordingHandler, RunningPoller

pytestmark = pytest.mark.integration

LOCK_MS = 2000
REGION = "us-east-1"
Key = tuple[str, int]  # (topic-partition, offset)


def queue_doc(kafka: ClusterInfo, topic: str, group: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "FunctionName": "queue-test",
        "Topics": [topic],
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "BatchSize": 10,
        "SelfManagedKafkaEventSourceConfig": {"ConsumptionMode": "Queue", "ConsumerGroupId": group},
    }
    doc.update(fields)
    return doc


@pytest.fixture
def group(kafka: ClusterInfo, unique: Callable[[str], str]) -> str:
    """A new share group: earliest start, a 2 s lock."""
    name = unique("queue")
    configure_share_group(
        AdminClient(kafka.plaintext_config()),
        name,
        {"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": str(LOCK_MS)},
    )
    return name


@contextmanager
def queue_poller(
    kafka: ClusterInfo,
    doc: dict[str, Any],
    handler: Callable[[dict[str, Any], Any], Any],
    *,
    max_concurrency: int = 2,
    with_destination: bool = True,
) -> Iterator[RunningPoller]:
    mapping = parse_mapping(doc)
    destination = (
        destination_for(mapping, consumer_overrides=kafka.plaintext_config())
        if with_destination
        else None
    )
    invoker = LocalHandlerInvoker(handler, function_name=mapping.function_name, timeout_s=1.5)
    poller = assemble_poller(
        mapping,
        invoker,
        PollerOptions(retry_backoff=FAST_RETRY, max_concurrency=max_concurrency),
        destination=destination,
        function_timeout_s=1.5,
    )
    run = RunningPoller(poller)
    run.thread.start()
    try:
        yield run
    finally:
        run.stop()
    assert run.error is None, run.error


def keys(event: dict[str, Any]) -> list[Key]:
    return [(k, r["offset"]) for k, rs in event["records"].items() for r in rs]


def handled(handler: RecordingHandler, ok: Callable[[int], bool] = lambda _n: True) -> set[Key]:
    return {key for n, call in enumerate(list(handler.calls)) if ok(n) for key in keys(call.event)}


def all_keys(topic: str, count: int) -> set[Key]:
    return {(f"{topic}-0", offset) for offset in range(count)}


def test_three_pollers_share_one_partition_and_every_record_is_handled(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic = topic_factory(partitions=1)
    # At most 100 records of the partition locked at once (the broker's minimum), and a
    # poller fetches again only once all it holds are acknowledged: the others find work.
    configure_share_group(
        AdminClient(kafka.plaintext_config()), group, {"share.partition.max.record.locks": "100"}
    )
    total = 600
    produce(kafka.plaintext_config(), topic, (b"r%d" % i for i in range(total)))
    handlers = [RecordingHandler(behaviour=lambda _e, _n: time.sleep(0.2)) for _ in range(3)]
    doc = queue_doc(kafka, topic, group, BatchSize=10)
    with ExitStack() as stack:
        runs = [stack.enter_context(queue_poller(kafka, doc, h)) for h in handlers]
        wait_until(
            lambda: set().union(*(handled(h) for h in handlers)) >= all_keys(topic, total),
            60,
            "every record handled",
        )
    assert all(h.calls for h in handlers), [len(h.calls) for h in handlers]
    accepted = sum(r.poller.counters.get(Metric.ACKNOWLEDGED) for r in runs)
    assert accepted >= total
    assert all(r.poller.counters.get(Metric.COMMITTED) == 0 for r in runs)


def test_a_failed_batch_is_released_and_comes_back_with_a_higher_delivery_count(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, (b"v%d" % i for i in range(5)))

    def fail_first(_event: dict[str, Any], number: int) -> None:
        if number == 0:
            raise RuntimeError("first delivery fails")

    handler = RecordingHandler(behaviour=fail_first)
    with queue_poller(kafka, queue_doc(kafka, topic, group), handler) as run:
        wait_until(lambda: handled(handler, lambda n: n > 0) >= all_keys(topic, 5), 30, "retried")
        counters = run.poller.counters
        wait_until(lambda: counters.get(Metric.ACKNOWLEDGED) == 5, 10, "accepted")
    first = set(keys(handler.calls[0].event))
    assert first and counters.get(Metric.RELEASED) == len(first)
    assert counters.get(Metric.REDELIVERED) == len(first)
    assert counters.get(Metric.FAILED_INVOKE) == len(first)


def test_partial_batch_response_releases_only_the_named_records(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, (b"v%d" % i for i in range(10)))
    named: set[Key] = set()

    def fail_two(event: dict[str, Any], _number: int) -> dict[str, Any]:
        first_time = [key for key in keys(event) if key[1] in (3, 7) and key not in named]
        named.update(first_time)
        # Both identifier forms: the object Stream mode uses and AWS's Queue-sample string.
        items = [
            {"itemIdentifier": {"partition": p, "offset": o}}
            if o == 3
            else {"itemIdentifier": f"{p}-{o}"}
            for p, o in first_time
        ]
        return {"batchItemFailures": items}

    handler = RecordingHandler(behaviour=fail_two)
    doc = queue_doc(kafka, topic, group, FunctionResponseTypes=["ReportBatchItemFailures"])
    with queue_poller(kafka, doc, handler) as run:
        wait_until(lambda: run.poller.counters.get(Metric.ACKNOWLEDGED) == 10, 30, "all accepted")
        counts = Counter(key for call in list(handler.calls) for key in keys(call.event))
    part = f"{topic}-0"
    assert {key for key, seen in counts.items() if seen > 1} == {(part, 3), (part, 7)}
    assert run.poller.counters.get(Metric.RELEASED) == 2


def test_exhausted_retries_go_to_a_kafka_destination_with_the_record_itself(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic, dlt = topic_factory(), topic_factory(prefix="dlt")
    produce(kafka.plaintext_config(), topic, [b"poison"], key=b"k1")
    handler = RecordingHandler(behaviour=lambda _e, _n: (_ for _ in ()).throw(ValueError("bad")))
    doc = queue_doc(
        kafka,
        topic,
        group,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlt}"}},
    )
    with queue_poller(kafka, doc, handler) as run:
        counters = run.poller.counters
        wait_until(lambda: counters.get(Metric.ON_FAILURE_DELIVERED) == 1, 30, "sent to the DLT")
        wait_until(lambda: counters.get(Metric.ACKNOWLEDGED) == 1, 10, "accepted after the DLT")
    # MaximumRetryAttempts 2: three deliveries, then the destination; none after it.
    assert len(handler.calls) == 3
    [message] = consume(kafka.plaintext_config(), dlt, "dlt-reader", expected=1)
    assert message.key() == b"k1" and message.value() == b"poison"
    headers = dict(message.headers() or [])
    assert headers["kafka-esm-condition"] == b"RetryAttemptsExhausted"
    assert headers["kafka-esm-approximate-invoke-count"] == b"3"


def test_the_brokers_delivery_limit_sends_records_to_an_sqs_destination_not_to_the_archive(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic = topic_factory()
    configure_share_group(
        AdminClient(kafka.plaintext_config()), group, {"share.delivery.count.limit": "2"}
    )
    produce(kafka.plaintext_config(), topic, [b"poison"])
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="queue-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # Retries are unbounded by the mapping (-1 → 10 with a destination); the broker's
        # limit of 2 deliveries comes first.
        doc = queue_doc(kafka, topic, group, DestinationConfig={"OnFailure": {"Destination": arn}})
        handler = RecordingHandler(behaviour=lambda _e, _n: 1 / 0)
        with queue_poller(kafka, doc, handler) as run:
            counters = run.poller.counters
            wait_until(lambda: counters.get(Metric.ON_FAILURE_DELIVERED) == 1, 30, "sent to SQS")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(handler.calls) == 2
    [document] = [json.loads(m["Body"]) for m in messages]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 2
    info = document["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]
    assert info["firstRecordOffset"] == "0"


def test_without_a_destination_a_given_up_record_is_rejected_and_counted_dropped(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"poison", b"good"])

    def fail_poison(event: dict[str, Any], _number: int) -> None:
        values = [base64.b64decode(r["value"]) for rs in event["records"].values() for r in rs]
        if b"poison" in values:
            raise ValueError("poison")

    handler = RecordingHandler(behaviour=fail_poison)
    doc = queue_doc(kafka, topic, group, BatchSize=1, MaximumRetryAttempts=0)
    with queue_poller(kafka, doc, handler, with_destination=False) as run:
        counters = run.poller.counters
        wait_until(lambda: counters.get(Metric.REJECTED) == 1, 30, "rejected")
        wait_until(lambda: counters.get(Metric.ACKNOWLEDGED) == 1, 30, "the good one accepted")
    assert counters.get(Metric.DROPPED) == 1
    assert Counter(k for c in handler.calls for k in keys(c.event))[(f"{topic}-0", 0)] == 1


def test_filtered_records_are_accepted_without_an_invocation(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str
) -> None:
    topic = topic_factory()
    values = [json.dumps({"kind": "keep" if i % 2 else "skip", "i": i}).encode() for i in range(6)]
    produce(kafka.plaintext_config(), topic, values)
    handler = RecordingHandler()
    pattern = json.dumps({"value": {"kind": ["keep"]}})
    doc = queue_doc(kafka, topic, group, FilterCriteria={"Filters": [{"Pattern": pattern}]})
    with queue_poller(kafka, doc, handler) as run:
        counters = run.poller.counters
        wait_until(lambda: counters.get(Metric.ACKNOWLEDGED) == 6, 30, "all six accepted")
    assert {o for _, o in handled(handler)} == {1, 3, 5}
    assert counters.get(Metric.FILTERED_OUT) == 3


def test_a_graceful_stop_releases_held_records_at_once(
    kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic, group = topic_factory(), unique("queue")
    # A lock far longer than the test: only a release can bring the records back in time.
    configure_share_group(
        AdminClient(kafka.plaintext_config()),
        group,
        {"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": "60000"},
    )
    produce(kafka.plaintext_config(), topic, (b"v%d" % i for i in range(3)))
    release = threading.Event()

    def fail_when_released(_event: dict[str, Any], _number: int) -> None:
        release.wait(30)
        raise RuntimeError("failed while the poller stops")

    stuck = RecordingHandler(behaviour=fail_when_released)
    doc = queue_doc(kafka, topic, group)
    with queue_poller(kafka, doc, stuck) as first:
        stuck.wait_for(lambda calls: len(calls) >= 1)
        first.poller.stop()
        release.set()  # the batch fails; the stopping poller releases what it held
    again = RecordingHandler()
    with queue_poller(kafka, doc, again):
        again.wait_for(lambda _calls: handled(again) >= all_keys(topic, 3), timeout_s=20)


def test_a_poller_killed_mid_batch_loses_nothing(
    kafka: ClusterInfo, topic_factory: Callable[..., str], group: str, tmp_path: Path
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, (b"v%d" % i for i in range(4)))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(queue_doc(kafka, topic, group)), encoding="utf-8")
    seen = tmp_path / "seen.txt"
    env = {
        **os.environ,
        "CRASH_LOG": str(seen),
        "CRASH_AT_OFFSET": "0",  # the handler SIGKILLs its own poller, mid-batch
        "CRASH_MARKER": str(tmp_path / "crashed"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [sys.executable, "-m", "runtime.cli.main", "run", "--mapping", str(mapping)]
    command += ["--handler", "tests.integration.crash_handler:handler", "--metrics", "none"]
    process = subprocess.run(
        command, check=False, env=env, cwd=REPO_ROOT, capture_output=True, timeout=60
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()[-2000:]
    assert "0" in seen.read_text().split()
    # Nothing was acknowledged: every record comes back once its lock (2 s) expires.
    handler = RecordingHandler()
    with queue_poller(kafka, queue_doc(kafka, topic, group), handler):
        handler.wait_for(lambda _calls: handled(handler) >= all_keys(topic, 4), timeout_s=30)


def test_batches_finishing_out_of_order_lose_no_acknowledgement(
    kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    # librdkafka's share consumer drops acknowledgements given out of offset order: the
    # broker keeps those records locked until the lock (30 s here, Kafka's default)
    # expires, and once a partition holds its maximum of locked records it hands out
    # nothing more. Measured before the fix: 30 s stalls after about 8,000 records.
    topic, group = topic_factory(), unique("queue")
    configure_share_group(
        AdminClient(kafka.plaintext_config()), group, {"share.auto.offset.reset": "earliest"}
    )
    total = 20_000
    produce(kafka.plaintext_config(), topic, (b"%05d" % i + b"." * 995 for i in range(total)))
    handler = RecordingHandler(behaviour=lambda _e, _n: time.sleep(0.02))
    doc = queue_doc(kafka, topic, group, BatchSize=100)
    with queue_poller(kafka, doc, handler, max_concurrency=8) as run:
        counters = run.poller.counters
        # Well under the 30 s lock: only lost acknowledgements make this wait for it.
        wait_until(lambda: counters.get(Metric.ACKNOWLEDGED) >= total, 25, "all accepted")
    assert counters.get(Metric.REDELIVERED) == 0
