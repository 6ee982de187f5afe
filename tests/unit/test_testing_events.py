"""The plugin's broker-free half: events and failure records from plain Python values."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from runtime.pipeline.event import MAX_PAYLOAD_BYTES, EventEncodingError, build_event
from runtime.records import Record
from runtime.testing import failure_document, kafka_event, kafka_record


def test_the_event_is_the_pollers_byte_for_byte() -> None:
    records = [
        kafka_record(topic="t", offset=3, key=b"k", value=b"\xff\x00", headers={"h": b"\x80"}),
        kafka_record(topic="t", partition=1, offset=9, value=None, timestamp=1_700_000_000_000),
    ]
    assert kafka_event(records, "b:9092") == build_event(records, ["b:9092"])


def test_plain_values_become_lambdas_fields() -> None:
    event = kafka_event(
        [
            {"topic": "orders", "key": "k1", "value": {"n": 1}, "headers": {"trace": "a"}},
            {"topic": "orders", "value": "two"},
            {"topic": "orders", "partition": 2, "value": None},
        ],
        bootstrap_servers=["b1:9092", "b2:9092"],
    )
    assert event["eventSource"] == "SelfManagedKafka"
    assert event["bootstrapServers"] == "b1:9092,b2:9092"
    first, second = event["records"]["orders-0"]
    [tombstone] = event["records"]["orders-2"]
    assert (first["offset"], second["offset"], tombstone["offset"]) == (0, 1, 0)
    assert base64.b64decode(first["value"]) == b'{"n":1}'
    assert base64.b64decode(first["key"]) == b"k1"
    assert first["headers"] == [{"trace": [97]}]
    assert "key" not in second
    assert "value" not in tombstone


def test_header_bytes_are_signed_as_java_writes_them() -> None:
    event = kafka_event([kafka_record(value=b"v", headers=[("h", b"\xff\x01"), ("n", None)])])
    assert event["records"]["my-topic-0"][0]["headers"] == [{"h": [-1, 1]}, {}]


def test_powertools_reads_the_event() -> None:
    event = KafkaEvent(kafka_event([{"value": {"id": 7}, "key": "a", "headers": {"x": "y"}}]))
    [record] = list(event.records)
    assert record.json_value == {"id": 7}
    assert record.decoded_key == b"a"
    assert record.decoded_headers == {"x": b"y"}


def test_an_event_over_6_mb_is_refused_as_the_poller_would_never_send_it() -> None:
    big = b"x" * (MAX_PAYLOAD_BYTES // 2)
    with pytest.raises(EventEncodingError, match="6 MB"):
        kafka_event([{"value": big}, {"value": big}])


def test_offsets_must_ascend_within_a_partition() -> None:
    with pytest.raises(EventEncodingError, match="offset 1 must be greater"):
        kafka_event([{"offset": 2, "value": "a"}, {"offset": 1, "value": "b"}])


def test_unknown_fields_and_values_are_named() -> None:
    with pytest.raises(ValueError, match="record field\\(s\\) colour not known"):
        kafka_event([{"colour": "red"}])
    with pytest.raises(TypeError, match="record value 3 must be bytes"):
        kafka_event([{"value": 3}])


def test_the_failure_document_is_aws_s() -> None:
    records = [{"topic": "t", "offset": 4, "value": "a", "timestamp": 1_700_000_000_123}]
    document = failure_document(records)
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 1
    assert document["requestContext"]["functionArn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:my-function"
    )
    assert document["responseContext"]["functionError"] == "Unhandled"
    assert document["KafkaBatchInfo"]["recordsInfo"] == {
        "t-0": {
            "firstRecordOffset": "4",
            "lastRecordOffset": "4",
            "firstRecordTimestamp": "2023-11-14T22:13:20.123Z",
            "lastRecordTimestamp": "2023-11-14T22:13:20.123Z",
        }
    }
    assert "payload" not in document


def test_the_s3_document_carries_the_event_and_unseen_records_no_response() -> None:
    record = Record("t", 0, 1, 1_700_000_000_000, value=b"v")
    document = failure_document(
        [record], condition="RecordAgeExceeded", invoke_count=0, include_payload=True
    )
    assert document["responseContext"] is None
    assert json.loads(document["payload"]) == kafka_event([record])
    assert document["KafkaBatchInfo"]["payloadSize"] == len(document["payload"])


def test_the_plugin_is_found_by_its_entry_point_without_a_conftest(tmp_path: Path) -> None:
    # A folder outside this repository, as a user's project is: nothing imports a conftest.
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    for fixture in ("kafka_cluster", "kafka_secured_cluster", "kafka_topic", "run_mapping"):
        assert fixture in shown.stdout
    assert "A real Kafka cluster for the whole test session." in shown.stdout
