"""Failure handling end to end: the real broker as source and ``kafka://`` destination,
moto for SQS. Poison records among good ones, partial batch responses, and a
destination that is down while a batch fails: nothing is lost, nothing skipped."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord
from confluent_kafka import Consumer, Producer, TopicPartition
from moto import mock_aws

from runtime.cli.launcher import assemble_poller
from runtime.definition.model import parse_mapping
from runtime.destinations.documents import Failure
from runtime.destinations.writers import DeliveryError, FailureDestination, destination_for
from runtime.devtools.local_kafka import ClusterInfo
from runtime.invokers import LocalHandlerInvoker
from runtime.observability.counters import Metric
from runtime.pipeline.poller import PollerOptions
from tests.kafka_helpers import consume
from tests.poller_harness import FAST_RETRY, RecordingHandler, RunningPoller, committed, mapping_doc

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., str]
REGION = "us-east-1"


def produce_keyed(kafka: ClusterInfo, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    """Each record with its key and a ``trace`` header naming it."""
    producer = Producer({**kafka.plaintext_config(), "acks": "all"})
    for key, value in items:
        producer.produce(topic, key=key, value=value, headers=[("trace", b"t-" + key)])
    assert producer.flush(30) == 0


@contextmanager
def running(
    kafka: ClusterInfo,
    doc: dict[str, Any],
    handler: Callable[[dict[str, Any], Any], Any],
    destination: FailureDestination | str | None = "from-mapping",
) -> Iterator[RunningPoller]:
    mapping = parse_mapping(doc)
    if destination == "from-mapping":
        destination = destination_for(mapping, consumer_overrides=kafka.plaintext_config())
    assert not isinstance(destination, str)
    invoker = LocalHandlerInvoker(handler, function_name=mapping.function_name, timeout_s=60)
    poller = assemble_poller(
        mapping, invoker, PollerOptions(retry_backoff=FAST_RETRY), destination=destination
    )
    run = RunningPoller(poller)
    run.thread.start()
    try:
        yield run
    finally:
        run.stop()
    assert run.error is None, run.error


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.1)


def end_offset(kafka: ClusterInfo, topic: str, partition: int = 0) -> int:
    consumer = Consumer({**kafka.plaintext_config(), "group.id": "watermarks"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), 15)[1])
    finally:
        consumer.close()


def handled_values(handler: RecordingHandler, ok: Callable[[dict[str, Any]], bool]) -> list[bytes]:
    """Values of the records in invocations that succeeded."""
    return [
        base64.b64decode(r["value"])
        for call in list(handler.calls)
        if ok(call.event)
        for rs in call.event["records"].values()
        for r in rs
    ]


def has_poison(event: dict[str, Any]) -> bool:
    return any(
        base64.b64decode(r["value"]).startswith(b"poison")
        for rs in event["records"].values()
        for r in rs
    )


def fail_on_poison(event: dict[str, Any], _number: int) -> None:
    if has_poison(event):
        raise ValueError("poison record")


def test_poison_records_go_to_a_kafka_destination_and_everything_is_committed(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic, dlt = topic_factory(), topic_factory(prefix="dlt")
    poison = {4, 17, 18, 29}
    items = [(b"key-%d" % i, (b"poison-%d" if i in poison else b"good-%d") % i) for i in range(30)]
    produce_keyed(kafka, topic, items)
    doc = mapping_doc(
        kafka,
        topic,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=0,
        MaximumRetryAttempts=1,
        BisectBatchOnFunctionError=True,
        DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlt}"}},
    )
    group = f"group-{topic}"
    handler = RecordingHandler(behaviour=fail_on_poison)
    with running(kafka, doc, handler) as run:
        wait_until(lambda: committed(kafka, group, topic) == [30], "all 30 offsets committed")
        counters = run.poller.counters
    good = [value for _, value in items if value.startswith(b"good")]
    assert sorted(set(handled_values(handler, lambda e: not has_poison(e)))) == sorted(good)
    assert counters.get(Metric.ON_FAILURE_DELIVERED) == 4
    assert counters.get(Metric.DROPPED) == 0

    assert end_offset(kafka, dlt) == 4
    landed = consume(kafka.plaintext_config(), dlt, f"reader-{dlt}", 4)
    assert sorted(m.value() or b"" for m in landed) == sorted(b"poison-%d" % i for i in poison)
    for message in landed:  # the record itself, replayable as it is, with its metadata
        headers = dict(message.headers() or [])
        offset = int(headers["kafka-esm-source-offset"] or b"-1")
        assert message.key() == b"key-%d" % offset and message.value() == b"poison-%d" % offset
        assert (message.headers() or [])[0] == ("trace", b"t-key-%d" % offset)
        assert headers["kafka-esm-condition"] == b"RetryAttemptsExhausted"
        assert headers["kafka-esm-source-topic"] == topic.encode()
        assert (headers["kafka-esm-function-arn"] or b"").startswith(b"arn:aws:lambda:")
        failure = json.loads(headers["kafka-esm-failure"] or b"{}")
        assert failure["KafkaBatchInfo"]["recordInfo"]["offset"] == str(offset)

    # A restart resumes after everything committed: only new records are delivered.
    produce_keyed(kafka, topic, [(b"key-30", b"good-30")])
    again = RecordingHandler()
    with running(kafka, doc, again):
        again.wait_for(lambda calls: len(calls) >= 1)
        wait_until(lambda: committed(kafka, group, topic) == [31], "the new record committed")
    assert again.values() == [b"good-30"]


def powertools_function(failing: Callable[[KafkaEventRecord, int], bool]) -> Any:
    """A function built on Powertools' BatchProcessor; ``failing(record, call)`` picks
    which records fail in invocation number ``call``."""

    def behaviour(event: dict[str, Any], number: int) -> Any:
        def record_handler(record: KafkaEventRecord) -> None:
            if failing(record, number):
                raise ValueError("cannot process")

        processor = BatchProcessor(event_type=EventType.Kafka)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor
        )

    return behaviour


def test_partial_batch_response_commits_the_head_and_resumes_at_the_failure(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce_keyed(kafka, topic, [(b"k", b"r-%d" % i) for i in range(10)])
    doc = mapping_doc(
        kafka,
        topic,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=0,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    release = threading.Event()

    def behaviour(event: dict[str, Any], number: int) -> Any:
        if number == 1:  # hold the retry until the head's commit was observed
            release.wait(60)
        return powertools_function(lambda r, n: n == 0 and r.offset in (6, 8))(event, number)

    handler = RecordingHandler(behaviour=behaviour)
    group = f"group-{topic}"
    with running(kafka, doc, handler, destination=None):
        handler.wait_for(lambda calls: len(calls) >= 2)
        wait_until(lambda: committed(kafka, group, topic) == [6], "the head (0-5) committed")
        release.set()
        wait_until(lambda: committed(kafka, group, topic) == [10], "the rest committed")
    assert [c.offsets()[f"{topic}-0"] for c in handler.calls] == [list(range(10)), [6, 7, 8, 9]]


class CountingDestination:
    """Wraps a real destination and counts refused and accepted deliveries."""

    def __init__(self, inner: FailureDestination) -> None:
        self.inner, self.refused, self.accepted = inner, 0, 0

    @property
    def target(self) -> str:
        return self.inner.target

    def deliver(self, failure: Failure) -> None:
        try:
            self.inner.deliver(failure)
        except DeliveryError:
            self.refused += 1
            raise
        self.accepted += 1

    def close(self) -> None:
        self.inner.close()


def test_a_destination_that_is_down_holds_the_offsets_until_it_accepts(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    items = [(b"k", (b"poison-%d" if i == 5 else b"good-%d") % i) for i in range(10)]
    produce_keyed(kafka, topic, items)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sqs.delete_queue(QueueUrl=url)  # the destination is down from the start
        doc = mapping_doc(
            kafka,
            topic,
            BatchSize=10,
            MaximumBatchingWindowInSeconds=0,
            MaximumRetryAttempts=0,
            BisectBatchOnFunctionError=True,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
        destination = destination_for(parse_mapping(doc))
        assert destination is not None
        counting = CountingDestination(destination)
        handler = RecordingHandler(behaviour=fail_on_poison)
        group = f"group-{topic}"
        with running(kafka, doc, handler, destination=counting) as run:
            wait_until(lambda: counting.refused >= 3, "three refused deliveries")
            # Records before the poison one are committed; nothing past it.
            wait_until(lambda: committed(kafka, group, topic) == [5], "the head committed")
            assert counting.accepted == 0
            url = sqs.create_queue(QueueName="dlq")["QueueUrl"]  # back up
            wait_until(lambda: committed(kafka, group, topic) == [10], "everything committed")
            assert counting.accepted == 1
            assert run.poller.counters.get(Metric.ON_FAILURE_DELIVERED) == 1
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    [document] = [json.loads(m["Body"]) for m in messages]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["KafkaBatchInfo"]["recordsInfo"] == {
        f"{topic}-0": {
            "firstRecordOffset": "5",
            "lastRecordOffset": "5",
            "firstRecordTimestamp": document["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"][
                "firstRecordTimestamp"
            ],
            "lastRecordTimestamp": document["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"][
                "lastRecordTimestamp"
            ],
        }
    }
    good = [value for _, value in items if value.startswith(b"good")]
    assert sorted(set(handled_values(handler, lambda e: not has_poison(e)))) == sorted(good)
