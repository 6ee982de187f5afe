"""Failure records and their writers: the documents field by field, SQS, SNS and S3
through moto, the Kafka writer through a fake producer (the real broker is covered by
tests/integration/test_failure_handling.py), and delivery that never gives up."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.definition.model import parse_mapping
from runtime.destinations.documents import (
    DocumentContext,
    Failure,
    failure_document,
    function_arn,
    iso_ms,
    kafka_failure_records,
    records_info,
    s3_object_key,
)
from runtime.destinations.writers import (
    DeliveryError,
    KafkaDestination,
    S3Destination,
    SnsDestination,
    SqsDestination,
    deliver_until_accepted,
    destination_for,
    producer_settings,
)
from runtime.invokers import ErrorKind, InvokeResult
from runtime.observability.counters import Counters, Metric
from runtime.observability.state import MappingStatus
from runtime.pipeline.batcher import Batch
from runtime.pipeline.event import encode_record
from runtime.pipeline.failures import Condition, FailurePolicy, RetryBackoff
from runtime.pipeline.processor import BatchProcessor
from runtime.records import Record
from tests.unit.ledger_view import RecordingLedger

REGION = "us-east-1"
ACCOUNT = "123456789012"
UUID = "6f1f7c35-1d6c-4a0e-9b0e-2b0e7c1d9a11"
FAILED_AT = 1_573_691_886_021  # 2019-11-14T00:38:06.021Z
NO_WAIT = RetryBackoff(first_s=0.0, cap_s=0.0, jitter=False)
CONTEXT = DocumentContext(
    function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:myfunction",
    event_source_arn=UUID,
    bootstrap_servers=("b-1:9092", "b-2:9092"),
    mapping_uuid=UUID,
)
FUNCTION_ERROR = InvokeResult.failure(
    ErrorKind.FUNCTION_ERROR,
    "boom",
    request_id="316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
    status_code=200,
    function_error="Unhandled",
    executed_version="$LATEST",
)


def rec(
    offset: int, partition: int = 0, stamp: int = 1_573_691_884_835, key: bytes = b"k"
) -> Record:
    return Record("Topic", partition, offset, stamp, key=key, value=b"value-%d" % offset)


def failure_of(
    records: list[Record],
    condition: Condition = Condition.RETRY_ATTEMPTS_EXHAUSTED,
    result: InvokeResult | None = FUNCTION_ERROR,
    invoke_count: int = 1,
) -> Failure:
    return Failure.of(
        condition,
        records,
        [encode_record(r) for r in records],
        invoke_count=invoke_count,
        result=result,
        now_ms=FAILED_AT,
    )


def batch_records() -> list[Record]:
    return [
        rec(49, 0, 1_573_691_884_835),
        rec(57, 0, 1_573_691_885_580),
        rec(3, 1, 1_573_691_885_000),
    ]


def event_of(failure: Failure) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(failure.event(CONTEXT.bootstrap_servers))
    return parsed


# --------------------------------------------------------------------------- documents
def test_sqs_and_sns_document_matches_aws_field_by_field() -> None:
    failure = failure_of(batch_records())
    document = failure_document(failure, CONTEXT)
    assert document == {
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:myfunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 1,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": "2019-11-14T00:38:06.021Z",
        "KafkaBatchInfo": {
            "batchSize": 3,
            "eventSourceArn": UUID,
            "bootstrapServers": "b-1:9092,b-2:9092",
            "payloadSize": len(failure.event(CONTEXT.bootstrap_servers)),
            "recordsInfo": {
                "Topic-0": {
                    "firstRecordOffset": "49",
                    "lastRecordOffset": "57",
                    "firstRecordTimestamp": "2019-11-14T00:38:04.835Z",
                    "lastRecordTimestamp": "2019-11-14T00:38:05.580Z",
                },
                "Topic-1": {
                    "firstRecordOffset": "3",
                    "lastRecordOffset": "3",
                    "firstRecordTimestamp": "2019-11-14T00:38:05.000Z",
                    "lastRecordTimestamp": "2019-11-14T00:38:05.000Z",
                },
            },
        },
    }
    assert "payload" not in document


def test_s3_document_adds_the_whole_event_as_an_escaped_json_string() -> None:
    failure = failure_of(batch_records())
    document = failure_document(failure, CONTEXT, include_payload=True)
    assert isinstance(document["payload"], str)
    assert json.loads(document["payload"]) == event_of(failure)
    assert document["payload"].encode() == failure.event(CONTEXT.bootstrap_servers)
    without = failure_document(failure, CONTEXT)
    assert {k: v for k, v in document.items() if k != "payload"} == without


def test_payload_size_exceeded_has_a_null_response_context() -> None:
    failure = failure_of([rec(7)], Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED, None, 0)
    document = failure_document(failure, CONTEXT)
    assert document["requestContext"]["condition"] == "MaximumPayloadSizeExceeded"
    assert document["requestContext"]["approximateInvokeCount"] == 0
    assert re.fullmatch(r"[0-9a-f-]{36}", document["requestContext"]["requestId"])
    assert document["responseContext"] is None
    refused = InvokeResult.failure(ErrorKind.PAYLOAD_TOO_LARGE, "413", status_code=413)
    too_large = failure_of([rec(7)], Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED, refused, 1)
    assert failure_document(too_large, CONTEXT)["responseContext"] is None


def test_record_age_before_any_invocation_has_a_null_response_context() -> None:
    failure = failure_of([rec(1)], Condition.RECORD_AGE_EXCEEDED, None, 0)
    document = failure_document(failure, CONTEXT)
    assert document["requestContext"]["condition"] == "RecordAgeExceeded"
    assert document["responseContext"] is None


def test_a_partial_failure_reply_has_no_function_error() -> None:
    ok = InvokeResult(
        ok=True, error_kind=ErrorKind.NONE, request_id="r", status_code=200, executed_version="7"
    )
    document = failure_document(failure_of([rec(1)], result=ok), CONTEXT)
    assert document["responseContext"] == {"statusCode": 200, "executedVersion": "7"}


def test_a_kafka_destination_gets_each_failed_record_itself_with_metadata_headers() -> None:
    tombstone = Record("Topic", 0, 50, 1_573_691_884_835, key=b"b", headers=(("trace", b"t1"),))
    failure = failure_of([rec(49, key=b"a"), tombstone], invoke_count=3)
    first, second = kafka_failure_records(failure, CONTEXT)
    assert (first.key, first.value, second.key, second.value) == (b"a", b"value-49", b"b", None)
    assert second.headers[0] == ("trace", b"t1")  # the record's own headers first, unchanged
    assert {k: v for k, v in first.headers if k != "kafka-esm-failure"} == {
        "kafka-esm-condition": b"RetryAttemptsExhausted",
        "kafka-esm-source-topic": b"Topic",
        "kafka-esm-source-partition": b"0",
        "kafka-esm-source-offset": b"49",
        "kafka-esm-source-timestamp": b"2019-11-14T00:38:04.835Z",
        "kafka-esm-function-arn": CONTEXT.function_arn.encode(),
        "kafka-esm-mapping-uuid": UUID.encode(),
        "kafka-esm-approximate-invoke-count": b"3",
        "kafka-esm-request-id": b"316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
    }
    assert json.loads(first.header("kafka-esm-failure") or b"") == {
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": CONTEXT.function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": "2019-11-14T00:38:06.021Z",
        "KafkaBatchInfo": {
            "batchSize": 1,
            "eventSourceArn": UUID,
            "bootstrapServers": "b-1:9092,b-2:9092",
            "recordInfo": {
                "topic": "Topic",
                "partition": "0",
                "offset": "49",
                "timestamp": "2019-11-14T00:38:04.835Z",
            },
        },
    }


def test_every_destination_spells_the_condition_the_same_way() -> None:
    for condition in Condition:
        failure = failure_of([rec(1)], condition)
        [record] = kafka_failure_records(failure, CONTEXT)
        sqs = failure_document(failure, CONTEXT)["requestContext"]["condition"]
        assert record.header("kafka-esm-condition") == sqs.encode() == condition.value.encode()


def test_iso_timestamps_have_milliseconds_and_z() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_573_691_886_021) == "2019-11-14T00:38:06.021Z"
    assert iso_ms(-1) is None
    info = records_info([Record("t", 0, 5, -1)])
    assert info["t-0"]["firstRecordTimestamp"] is None


def test_s3_object_key_follows_the_documented_layout() -> None:
    failure = failure_of([rec(3, 1), rec(9, 0)])
    key = s3_object_key(failure, CONTEXT)
    assert re.fullmatch(
        rf"aws/lambda/{UUID}/Topic-1/2019/11/14/2019-11-14T00\.38\.06-[0-9a-f-]{{36}}", key
    )
    assert s3_object_key(failure, CONTEXT) != key  # a random suffix: never overwritten


def test_failure_refuses_inconsistent_input() -> None:
    with pytest.raises(ValueError, match=r"^Failure.records is empty"):
        failure_of([])
    with pytest.raises(ValueError, match=r"Failure.fragments has 0 item\(s\) for 1 record"):
        Failure(Condition.RECORD_AGE_EXCEEDED, (rec(1),), (), 0, None, 0, "r")
    with pytest.raises(ValueError, match=r"Failure.invoke_count=-1 is not valid"):
        failure_of([rec(1)], invoke_count=-1)


def test_failure_only_keeps_what_is_left_with_the_same_identity() -> None:
    failure = failure_of([rec(1), rec(2), rec(3)])
    left = failure.only([rec(2)])
    assert [r.offset for r in left.records] == [2]
    assert left.fragments == (encode_record(rec(2)),)
    assert (left.request_id, left.failed_at_ms) == (failure.request_id, failure.failed_at_ms)


@pytest.mark.parametrize(
    ("name", "region", "account", "expected"),
    [
        ("f", "eu-west-1", "111122223333", "arn:aws:lambda:eu-west-1:111122223333:function:f"),
        ("f:prod", "eu-west-1", "1", "arn:aws:lambda:eu-west-1:1:function:f:prod"),
        (
            "111122223333:function:f",
            "eu-west-1",
            None,
            "arn:aws:lambda:eu-west-1:111122223333:function:f",
        ),
        (
            "arn:aws:lambda:us-east-2:1:function:f",
            None,
            None,
            "arn:aws:lambda:us-east-2:1:function:f",
        ),
        ("f", None, "111122223333", "arn:aws:lambda:us-east-1:111122223333:function:f"),
        ("f", "eu-west-1", None, "arn:aws:lambda:eu-west-1:000000000000:function:f"),
        ("f", None, None, "arn:aws:lambda:us-east-1:000000000000:function:f"),
    ],
)
def test_function_arn(name: str, region: str | None, account: str | None, expected: str) -> None:
    assert function_arn(name, region, account) == expected


def mapping_doc(destination: str | None = None, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "UUID": UUID,
        "FunctionName": "myfunction",
        "Topics": ["orders"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9092"]}},
        **fields,
    }
    if destination:
        doc["DestinationConfig"] = {"OnFailure": {"Destination": destination}}
    return doc


def test_context_takes_region_and_account_from_the_destination_arn() -> None:
    mapping = parse_mapping(mapping_doc(f"arn:aws:sqs:eu-west-1:{ACCOUNT}:dlq"))
    context = DocumentContext.for_mapping(mapping)
    assert context.function_arn == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:myfunction"
    assert context.event_source_arn == context.mapping_uuid == UUID
    assert context.bootstrap_servers == ("b-1:9092",)
    s3 = parse_mapping(mapping_doc("arn:aws:s3:::bucket"))
    # an S3 ARN names no account: the documented placeholder, never a bare name
    assert DocumentContext.for_mapping(s3, region="eu-west-1").function_arn == (
        "arn:aws:lambda:eu-west-1:000000000000:function:myfunction"
    )


# --------------------------------------------------------------------------- AWS writers (moto)
@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def create_queue(name: str = "dlq") -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return sqs, url, arn


def receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_sqs_destination_sends_the_document(aws: None) -> None:
    sqs, url, arn = create_queue()
    failure = failure_of(batch_records())
    SqsDestination(arn, CONTEXT).deliver(failure)
    assert receive(sqs, url) == [failure_document(failure, CONTEXT)]


def test_sqs_destination_fails_while_the_queue_is_gone_and_recovers(aws: None) -> None:
    sqs, url, arn = create_queue()
    destination = SqsDestination(arn, CONTEXT)
    destination.deliver(failure_of([rec(1)]))
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(DeliveryError, match=rf"^SQS SendMessage to {arn} failed: "):
        destination.deliver(failure_of([rec(2)]))
    sqs, url, _ = create_queue()
    destination.deliver(failure_of([rec(3)]))
    [document] = receive(sqs, url)
    assert document["KafkaBatchInfo"]["recordsInfo"]["Topic-0"]["firstRecordOffset"] == "3"


def test_sns_destination_publishes_the_document(aws: None) -> None:
    sqs, url, queue_arn = create_queue("sns-sink")
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="failures")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    failure = failure_of(batch_records())
    SnsDestination(topic, CONTEXT).deliver(failure)
    assert receive(sqs, url) == [failure_document(failure, CONTEXT)]


def test_sns_destination_reports_a_missing_topic(aws: None) -> None:
    destination = SnsDestination(f"arn:aws:sns:{REGION}:{ACCOUNT}:gone", CONTEXT)
    with pytest.raises(DeliveryError, match=r"^SNS Publish to .*:gone failed: NotFound"):
        destination.deliver(failure_of([rec(1)]))


def test_s3_destination_puts_the_document_with_payload_under_the_layout(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="failures")
    failure = failure_of(batch_records())
    S3Destination("arn:aws:s3:::failures", CONTEXT, region=REGION).deliver(failure)
    [item] = s3.list_objects_v2(Bucket="failures")["Contents"]
    assert item["Key"].startswith(f"aws/lambda/{UUID}/Topic-0/2019/11/14/2019-11-14T00.38.06-")
    stored = s3.get_object(Bucket="failures", Key=item["Key"])
    assert stored["ContentType"] == "application/json"
    body = json.loads(stored["Body"].read())
    assert body == failure_document(failure, CONTEXT, include_payload=True)


def test_s3_destination_reports_a_missing_bucket(aws: None) -> None:
    destination = S3Destination("arn:aws:s3:::nobucket", CONTEXT, region=REGION)
    with pytest.raises(DeliveryError, match=r"PutObject to arn:aws:s3:::nobucket .*NoSuchBucket"):
        destination.deliver(failure_of([rec(1)]))


@pytest.mark.parametrize(
    ("factory", "arn", "message"),
    [
        (
            SqsDestination,
            "arn:aws:sqs:us-east-1:1:q.fifo",
            "Lambda does not deliver failure records to FIFO queues",
        ),
        (SnsDestination, "arn:aws:sns:us-east-1:1:t.fifo", "to FIFO topics"),
        (SqsDestination, "arn:aws:sns:us-east-1:1:t", "is not an SQS ARN"),
        (SnsDestination, "arn:aws:sns:us-east-1::t", "is not an SNS ARN"),
        (S3Destination, "arn:aws:s3:::a:b", "is not an S3 bucket ARN"),
    ],
)
def test_writers_refuse_destinations_lambda_would_not_use(
    aws: None, factory: Any, arn: str, message: str
) -> None:
    with pytest.raises(
        ValueError, match=rf"^DestinationConfig.OnFailure.Destination='{re.escape(arn)}'.*{message}"
    ):
        factory(arn, CONTEXT)


def test_processor_delivers_from_a_worker_thread(aws: None) -> None:
    sqs, url, arn = create_queue()
    mapping = parse_mapping(mapping_doc(arn, MaximumRetryAttempts=0))
    destination = destination_for(mapping)
    assert isinstance(destination, SqsDestination)

    class Failing:
        def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
            return FUNCTION_ERROR

    counters = Counters()
    ledger = RecordingLedger(counters)
    processor = BatchProcessor(
        Failing(),
        mapping.bootstrap_servers,
        counters,
        MappingStatus(),
        threading.Event(),
        ledger=ledger,
        backoff=NO_WAIT,
        policy=FailurePolicy.for_mapping(mapping),
        destination=destination,
    )
    records = (Record("orders", 0, 4, FAILED_AT), Record("orders", 0, 5, FAILED_AT))
    batch = Batch(
        1, records, tuple(encode_record(r) for r in records), {("orders", 0): (4, 5)}, 0.0
    )
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(ledger.process(processor, batch)))
    worker.start()
    worker.join(30)
    assert outcomes[0].complete and outcomes[0].settled == {("orders", 0): 6}
    [document] = receive(sqs, url)
    assert document["KafkaBatchInfo"]["recordsInfo"] == {
        "orders-0": {
            "firstRecordOffset": "4",
            "lastRecordOffset": "5",
            "firstRecordTimestamp": "2019-11-14T00:38:06.021Z",
            "lastRecordTimestamp": "2019-11-14T00:38:06.021Z",
        }
    }
    assert document["requestContext"]["functionArn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:myfunction"
    )
    assert counters.get(Metric.ON_FAILURE_DELIVERED) == 2


# ------------------------------------------------------------------ Kafka writer (fake producer)
class FakeProducer:
    """Acknowledges every record except those whose offset is in ``refuse``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.refuse: set[str] = set()
        self.produced: list[tuple[str, bytes | None, bytes | None, dict[str, bytes | None]]] = []
        self._pending: list[tuple[Any, str]] = []

    def produce(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        on_delivery: Any,
    ) -> None:
        named = dict(headers)
        offset = (named["kafka-esm-source-offset"] or b"").decode()
        if offset in self.refuse:
            self._pending.append((on_delivery, offset))
            return
        self.produced.append((topic, key, value, named))
        self._pending.append((on_delivery, ""))

    def flush(self, timeout: float) -> int:
        for callback, refused in self._pending:
            callback(FakeError(f"Broker: refused {refused}") if refused else None, None)
        self._pending.clear()
        return 0


class FakeError:
    def __init__(self, text: str) -> None:
        self.text = text

    def str(self) -> str:
        return self.text


def kafka_destination(producer: list[FakeProducer]) -> KafkaDestination:
    """The destination builds its producer on first delivery: the fake exists already, so
    that a test can script it first, and takes its configuration when it is built."""
    producer.append(FakeProducer({}))

    def factory(config: dict[str, Any]) -> FakeProducer:
        producer[-1].config = config
        return producer[-1]

    return KafkaDestination(
        "dlt",
        CONTEXT,
        lambda: {"bootstrap.servers": "b-1:9092"},
        source_topic="Topic",
        producer_factory=factory,
    )


def test_kafka_destination_produces_one_record_per_failed_record_with_its_key() -> None:
    producers: list[FakeProducer] = []
    destination = kafka_destination(producers)
    failure = failure_of([rec(1, key=b"a"), rec(2, key=b"b")])
    destination.deliver(failure)
    [producer] = producers
    assert [(t, k, v) for t, k, v, _ in producer.produced] == [
        ("dlt", b"a", b"value-1"),
        ("dlt", b"b", b"value-2"),
    ]
    expected = [dict(r.headers) for r in kafka_failure_records(failure, CONTEXT)]
    assert [h for *_, h in producer.produced] == expected
    assert producer.config["acks"] == "all"
    assert producer.config["message.timeout.ms"] == 15_000
    assert destination.target == "kafka://dlt"


def test_kafka_destination_returns_only_the_unacknowledged_records() -> None:
    producers: list[FakeProducer] = []
    destination = kafka_destination(producers)
    producers[0].refuse = {"2"}
    failure = failure_of([rec(1), rec(2), rec(3)])
    with pytest.raises(DeliveryError) as caught:
        destination.deliver(failure)
    assert str(caught.value) == (
        "produce to kafka://dlt failed for 1 of 3 record(s): Broker: refused 2"
    )
    assert caught.value.remaining is not None
    assert [r.offset for r in caught.value.remaining.records] == [2]
    producers[0].refuse = set()
    destination.deliver(caught.value.remaining)
    assert [h["kafka-esm-source-offset"] for *_, h in producers[0].produced] == [b"1", b"3", b"2"]


def test_kafka_destination_refuses_the_source_topic() -> None:
    with pytest.raises(ValueError, match=r"='kafka://Topic' is not valid: must not be the source"):
        KafkaDestination(
            "Topic", CONTEXT, dict, source_topic="Topic", producer_factory=FakeProducer
        )


def test_producer_settings_reuse_the_connection_but_not_consumer_settings() -> None:
    mapping = parse_mapping(mapping_doc("kafka://dlt"))
    settings = producer_settings(
        mapping,
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "group.id": "g",
            "fetch.max.bytes": 1,
            "session.timeout.ms": 1,
            "client.id": "consumer",
        },
    )
    assert settings == {
        "bootstrap.servers": "b-1:9092",
        "client.id": f"kafka-esm-{UUID[:8]}-on-failure",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
    }


def test_destination_for_picks_the_writer_by_kind(aws: None) -> None:
    assert destination_for(parse_mapping(mapping_doc())) is None
    sns = destination_for(parse_mapping(mapping_doc(f"arn:aws:sns:{REGION}:{ACCOUNT}:t")))
    assert isinstance(sns, SnsDestination) and sns.target.endswith(":t")
    s3 = destination_for(parse_mapping(mapping_doc("arn:aws:s3:::bucket")), region=REGION)
    assert isinstance(s3, S3Destination)
    kafka = destination_for(
        parse_mapping(mapping_doc("kafka://dlt")),
        consumer_overrides={"group.id": "x"},
    )
    assert isinstance(kafka, KafkaDestination) and kafka.target == "kafka://dlt"


# --------------------------------------------------------------------------- never giving up
class Flaky:
    def __init__(self, refusals: int, stop: threading.Event | None = None) -> None:
        self.refusals, self.stop = refusals, stop
        self.seen: list[list[int]] = []

    @property
    def target(self) -> str:
        return "memory://flaky"

    def deliver(self, failure: Failure) -> None:
        self.seen.append([r.offset for r in failure.records])
        if len(self.seen) <= self.refusals:
            if self.stop is not None and len(self.seen) == 2:
                self.stop.set()
            raise DeliveryError(
                "down", remaining=failure.only(failure.records[1:] or failure.records)
            )

    def close(self) -> None:
        pass


def test_delivery_is_retried_with_what_remains_until_accepted() -> None:
    flaky = Flaky(refusals=2)
    accepted = deliver_until_accepted(
        flaky, failure_of([rec(1), rec(2), rec(3)]), threading.Event(), NO_WAIT
    )
    assert accepted
    assert flaky.seen == [[1, 2, 3], [2, 3], [3]]


def test_delivery_retries_stop_only_when_the_poller_stops() -> None:
    stop = threading.Event()
    flaky = Flaky(refusals=10**6, stop=stop)
    assert not deliver_until_accepted(flaky, failure_of([rec(1), rec(2)]), stop, NO_WAIT)
    assert len(flaky.seen) == 2
