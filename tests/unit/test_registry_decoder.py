"""The record decoder: what each attribute becomes, and which failures are whose.

Glue runs against moto's Glue (boto3, in-process); Confluent-framed records use
confluent-kafka's in-process ``mock://`` registry client, standing in for a registry
only in these fast tests (the integration tests use the real local registry).
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import (
    MockSchemaRegistryClient,
)
from moto import mock_aws

from runtime.definition.vocabulary import EventRecordFormat, SchemaValidationAttribute
from runtime.pipeline.event import build_event
from runtime.records import Record
from runtime.registry.decoder import RecordDecoder
from runtime.registry.schemas import (
    ConfluentSchemas,
    GlueSchemas,
    RegistryUnavailable,
    SchemaSource,
    WriterSchema,
)
from tests.registry_helpers import ORDER_AVRO, Producer, order

KEY, VALUE = SchemaValidationAttribute.KEY, SchemaValidationAttribute.VALUE
JSON, SOURCE = EventRecordFormat.JSON, EventRecordFormat.SOURCE


def _record(value: bytes | None, key: bytes | None = None, offset: int = 0) -> Record:
    return Record("orders", 0, offset, 1_700_000_000_000, key=key, value=value)


class CountingSchemas:
    """Counts how often the wrapped registry is asked."""

    def __init__(self, inner: SchemaSource) -> None:
        self.inner = inner
        self.asked: list[str] = []

    def get(self, schema_id: str) -> WriterSchema:
        self.asked.append(schema_id)
        return self.inner.get(schema_id)


@pytest.fixture
def confluent() -> tuple[ConfluentSchemas, MockSchemaRegistryClient]:
    client = MockSchemaRegistryClient({"url": "mock://unit"})
    return ConfluentSchemas(client), client


def _avro_body(data: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(ORDER_AVRO)), data)
    return out.getvalue()


def test_json_format_sends_the_json_text_with_json_metadata(confluent):
    schemas, url = confluent
    framed = Producer("AVRO", url, "orders").value(order(1))
    decoded = RecordDecoder(schemas, glue=False, attributes=(VALUE,), record_format=JSON).decode(
        _record(framed, key=b"k")
    )
    assert json.loads(decoded.value) == {**order(1), "note": None}
    assert decoded.key == b"k" and decoded.key_schema is None
    assert decoded.value_schema is not None
    assert (decoded.value_schema.data_format, decoded.value_schema.schema_id) == (
        "JSON",
        str(int.from_bytes(framed[1:5], "big")),
    )
    assert decoded.filter_value == decoded.value


def test_source_format_sends_the_body_and_filters_see_the_json(confluent):
    schemas, url = confluent
    framed = Producer("AVRO", url, "orders").value(order(2))
    decoded = RecordDecoder(schemas, glue=False, attributes=(VALUE,), record_format=SOURCE).decode(
        _record(framed)
    )
    assert decoded.value == framed[5:]
    assert decoded.value_schema is not None and decoded.value_schema.data_format == "AVRO"
    assert json.loads(decoded.filter_value or b"")["zip"] == "20002"


def test_the_event_carries_the_schema_metadata_after_the_headers(confluent):
    schemas, url = confluent
    producer = Producer("AVRO", url, "orders")
    record = _record(producer.value(order(3)), key=producer.key({"customer": 7}))
    decoded = RecordDecoder(
        schemas, glue=False, attributes=(KEY, VALUE), record_format=SOURCE
    ).decode(record)
    (sent,) = build_event([decoded], ["b:9092"])["records"]["orders-0"]
    assert list(sent)[-3:] == ["headers", "keySchemaMetadata", "valueSchemaMetadata"]
    assert sent["keySchemaMetadata"]["dataFormat"] == "AVRO"


def test_a_protobuf_nested_message_keeps_its_indexes_as_powertools_reads_them(confluent):
    schemas, url = confluent
    framed = Producer("PROTOBUF", url, "orders").key({"customer": 5, "city": "Oslo"})
    assert framed[5:8] == b"\x04\x02\x00"  # Confluent's zigzag [1, 0]: Customer.Address
    decoded = RecordDecoder(schemas, glue=False, attributes=(KEY,), record_format=SOURCE).decode(
        _record(b"v", key=framed)
    )
    assert decoded.key == b"\x02\x01\x00" + framed[8:]  # count 2, then 1 and 0, plain
    as_json = RecordDecoder(schemas, glue=False, attributes=(KEY,), record_format=JSON).decode(
        _record(b"v", key=framed)
    )
    assert json.loads(as_json.key or b"") == {"customer": "5", "city": "Oslo"}


def test_each_schema_is_fetched_once(confluent):
    schemas, url = confluent
    counting = CountingSchemas(schemas)
    producer = Producer("AVRO", url, "orders")
    decoder = RecordDecoder(counting, glue=False, attributes=(VALUE,), record_format=JSON)
    for n in range(5):
        decoder.decode(_record(producer.value(order(n)), offset=n))
    assert len(counting.asked) == 5 and len(set(counting.asked)) == 1
    assert len(schemas._cache) == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"plain text", "not Confluent's magic byte 0"),
        (b"\x00\x00\x00\x03\xe7" + b"x", "the registry refused: HTTP 404"),
    ],
)
def test_undecodable_records_are_marked_with_the_reason(confluent, value, reason):
    schemas, _ = confluent
    decoded = RecordDecoder(schemas, glue=False, attributes=(VALUE,), record_format=JSON).decode(
        _record(value)
    )
    assert decoded.undecodable is not None and reason in decoded.undecodable
    assert decoded.value == value  # sent on to the failure path as it was read


def test_a_corrupt_avro_body_is_undecodable(confluent):
    schemas, url = confluent
    framed = Producer("AVRO", url, "orders").value(order(1))
    decoded = RecordDecoder(schemas, glue=False, attributes=(VALUE,), record_format=JSON).decode(
        _record(framed[:8])
    )
    assert decoded.undecodable is not None and "does not match schema" in decoded.undecodable


def test_json_schema_validation_failure_is_undecodable(confluent):
    schemas, url = confluent
    framed = Producer("JSON", url, "orders").value(order(1))
    broken = framed[:5] + json.dumps({"id": 5, "amount": 1}).encode()
    decoded = RecordDecoder(schemas, glue=False, attributes=(VALUE,), record_format=JSON).decode(
        _record(broken)
    )
    assert decoded.undecodable is not None and "fails JSON Schema" in decoded.undecodable


def test_an_unreachable_registry_raises_instead_of_deciding():
    schemas = ConfluentSchemas(
        SchemaRegistryClient({"url": "http://127.0.0.1:9", "max.retries": 0})
    )
    decoder = RecordDecoder(schemas, glue=False, attributes=(VALUE,), record_format=JSON)
    with pytest.raises(RegistryUnavailable):
        decoder.decode(_record(b"\x00\x00\x00\x00\x01body"))


# -- AWS Glue, against moto ---------------------------------------------------------------
@pytest.fixture
def glue() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("glue", region_name="eu-west-1")
        client.create_registry(RegistryName="shop")
        yield client


def _glue_version(client: Any, fmt: str, definition: str) -> uuid.UUID:
    created = client.create_schema(
        RegistryId={"RegistryName": "shop"},
        SchemaName=f"orders-{fmt.lower()}",
        DataFormat=fmt,
        Compatibility="NONE",
        SchemaDefinition=definition,
    )
    return uuid.UUID(created["SchemaVersionId"])


@pytest.mark.parametrize("compression", [b"\x00", b"\x05"])
def test_glue_avro_with_and_without_zlib(glue, compression):
    version = _glue_version(glue, "AVRO", ORDER_AVRO)
    body = _avro_body({**order(4), "note": "n"})
    payload = zlib.compress(body) if compression == b"\x05" else body
    record = _record(b"\x03" + compression + version.bytes + payload)
    decoder = RecordDecoder(GlueSchemas(glue), glue=True, attributes=(VALUE,), record_format=SOURCE)
    decoded = decoder.decode(record)
    assert decoded.value == body  # inflated, header gone
    assert decoded.value_schema is not None
    assert (decoded.value_schema.data_format, decoded.value_schema.schema_id) == (
        "AVRO",
        str(version),
    )
    assert json.loads(decoded.filter_value or b"") == {**order(4), "note": "n"}


def test_glue_json_schema_as_json(glue):
    version = _glue_version(glue, "JSON", json.dumps({"type": "object", "required": ["id"]}))
    record = _record(b"\x03\x00" + version.bytes + b'{"id":"a"}')
    decoded = RecordDecoder(
        GlueSchemas(glue), glue=True, attributes=(VALUE,), record_format=JSON
    ).decode(record)
    assert decoded.value == b'{"id":"a"}'
    assert decoded.value_schema is not None and decoded.value_schema.schema_id == str(version)


def test_an_unknown_glue_schema_version_is_undecodable(glue):
    record = _record(b"\x03\x00" + uuid.uuid4().bytes + b"x")
    decoded = RecordDecoder(
        GlueSchemas(glue), glue=True, attributes=(VALUE,), record_format=JSON
    ).decode(record)
    assert decoded.undecodable is not None and "Glue has no schema version" in decoded.undecodable


def test_the_failure_document_says_why_each_record_could_not_be_decoded():
    from runtime.destinations.documents import DocumentContext, Failure, failure_document
    from runtime.pipeline.event import encode_record
    from runtime.pipeline.failures import Condition

    bad = _record(b"junk", offset=7)
    bad = Record(bad.topic, 0, 7, 0, value=b"junk", undecodable="not Confluent's magic byte 0")
    failure = Failure.of(
        Condition.SCHEMA_DECODING_FAILED, [bad], [encode_record(bad)], invoke_count=0, result=None
    )
    context = DocumentContext("arn:aws:lambda:us-east-1:1:function:f", "u", ("b:9092",), "u")
    document = failure_document(failure, context)
    assert document["requestContext"]["condition"] == "SchemaDecodingFailed"
    assert document["responseContext"] is None  # the function never saw the record
    assert document["KafkaBatchInfo"]["decodingErrors"] == {
        "orders-0@7": "not Confluent's magic byte 0"
    }
