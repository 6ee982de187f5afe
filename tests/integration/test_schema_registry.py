"""Records written for a schema registry reach the function decoded as Lambda sends them.

Real parts only: the local Apicurio Registry (Confluent API), the local Kafka, records
written by confluent-kafka's serializers, and the function reading them with Powertools'
``kafka_consumer`` and the matching ``SchemaConfig``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.kafka import ConsumerRecords, SchemaConfig, kafka_consumer

from runtime.devtools.local_kafka.registry import LocalSchemaRegistry, RegistryInfo
from runtime.testing import KafkaTestCluster
from tests.fault_harness import wait_until
from tests.kafka_helpers import consume
from tests.registry_helpers import (
    KEY_AVRO,
    ORDER_AVRO,
    Address,
    Order,
    Producer,
    expected,
    key,
    order,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

RECORDS = 6


def registry_mapping(
    cluster: KafkaTestCluster,
    topic: str,
    registry_uri: str,
    record_format: str,
    attributes: tuple[str, ...] = ("KEY", "VALUE"),
    **fields: Any,
) -> dict[str, Any]:
    request = cluster.mapping(topic, **fields)
    request["SelfManagedKafkaEventSourceConfig"]["SchemaRegistryConfig"] = {
        "SchemaRegistryURI": registry_uri,
        "EventRecordFormat": record_format,
        "SchemaValidationConfigs": [{"Attribute": a} for a in attributes],
    }
    return request


def schema_config(fmt: str, record_format: str) -> SchemaConfig:
    if record_format == "JSON" or fmt == "JSON":
        return SchemaConfig(value_schema_type="JSON", key_schema_type="JSON")
    if fmt == "AVRO":
        return SchemaConfig(
            value_schema_type="AVRO",
            value_schema=ORDER_AVRO,
            key_schema_type="AVRO",
            key_schema=KEY_AVRO,
        )
    return SchemaConfig(
        value_schema_type="PROTOBUF",
        value_schema=Order,
        key_schema_type="PROTOBUF",
        key_schema=Address,
    )


@pytest.mark.parametrize("record_format", ["JSON", "SOURCE"])
@pytest.mark.parametrize("fmt", ["AVRO", "PROTOBUF", "JSON"])
def test_powertools_reads_every_record_as_produced(
    kafka_cluster: KafkaTestCluster,
    schema_registry: RegistryInfo,
    run_mapping,
    fmt: str,
    record_format: str,
):
    topic = kafka_cluster.create_topic()
    producer = Producer(fmt, schema_registry.url, topic)
    written = [
        {"key": producer.key(key(n)), "value": producer.value(order(n))} for n in range(RECORDS)
    ]
    kafka_cluster.produce(topic, written)
    decoded: list[tuple[Any, Any, Any, Any]] = []

    @kafka_consumer(schema_config=schema_config(fmt, record_format))
    def handler(event: ConsumerRecords, context: Any) -> None:
        for record in event.records:
            decoded.append(
                (record.key, record.value, record.key_schema_metadata, record.value_schema_metadata)
            )

    mapping = registry_mapping(kafka_cluster, topic, schema_registry.url, record_format)
    run = run_mapping(mapping, handler).wait_for(
        until=lambda r: len(decoded) >= RECORDS or bool(r.handler_errors)
    )
    assert run.handler_errors == []
    assert [(k, v) for k, v, _, _ in decoded] == [
        (expected(fmt, key(n), is_key=True), expected(fmt, order(n), is_key=False))
        for n in range(RECORDS)
    ]
    data_format = "JSON" if record_format == "JSON" else fmt
    for (_, _, key_meta, value_meta), record in zip(decoded, written, strict=True):
        assert key_meta.data_format == value_meta.data_format == data_format
        assert key_meta.schema_id == str(int.from_bytes(record["key"][1:5], "big"))
        assert value_meta.schema_id == str(int.from_bytes(record["value"][1:5], "big"))


def test_json_delivers_the_decoded_text_and_source_the_body_without_the_header(
    kafka_cluster: KafkaTestCluster, schema_registry: RegistryInfo, run_mapping
):
    topic = kafka_cluster.create_topic()
    producer = Producer("AVRO", schema_registry.url, topic)
    framed = producer.value(order(1))
    kafka_cluster.produce(topic, [{"key": b"plain-key", "value": framed}])
    as_json = run_mapping(
        registry_mapping(kafka_cluster, topic, schema_registry.url, "JSON", ("VALUE",)),
        lambda event, context: None,
    ).wait_for(records=1)
    source = run_mapping(
        registry_mapping(kafka_cluster, topic, schema_registry.url, "SOURCE", ("VALUE",)),
        lambda event, context: None,
    ).wait_for(records=1)
    json_record, source_record = as_json.records[0], source.records[0]
    assert json.loads(base64.b64decode(json_record["value"])) == {**order(1), "note": None}
    assert base64.b64decode(source_record["value"]) == framed[5:]
    for record in (json_record, source_record):
        # KEY is not named in SchemaValidationConfigs: left as it is, without metadata.
        assert base64.b64decode(record["key"]) == b"plain-key"
        assert "keySchemaMetadata" not in record
    assert json_record["valueSchemaMetadata"] == {
        "dataFormat": "JSON",
        "schemaId": str(int.from_bytes(framed[1:5], "big")),
    }
    assert source_record["valueSchemaMetadata"]["dataFormat"] == "AVRO"


@pytest.mark.parametrize("record_format", ["JSON", "SOURCE"])
def test_filters_match_decoded_fields(
    kafka_cluster: KafkaTestCluster, schema_registry: RegistryInfo, run_mapping, record_format
):
    topic = kafka_cluster.create_topic()
    producer = Producer("AVRO", schema_registry.url, topic)
    kafka_cluster.produce(topic, [{"value": producer.value(order(n))} for n in range(10)])
    mapping = registry_mapping(
        kafka_cluster,
        topic,
        schema_registry.url,
        record_format,
        ("VALUE",),
        FilterCriteria={
            "Filters": [{"Pattern": json.dumps({"value": {"zip": ["20003", "20007"]}})}]
        },
    )
    run = run_mapping(mapping, lambda event, context: None).wait_for(
        records=2, until=lambda r: r.counters["CommittedEventCount"] == 10
    )
    assert [r["offset"] for r in run.records] == [3, 7]
    assert run.counters["FilteredOutEventCount"] == 8


def _framed_with_unknown_id() -> bytes:
    return b"\x00" + (999_999).to_bytes(4, "big") + b"\x02x"


@pytest.mark.parametrize("destination", [True, False])
def test_undecodable_records_never_stall_and_are_never_silently_lost(
    kafka_cluster: KafkaTestCluster, schema_registry: RegistryInfo, run_mapping, destination
):
    topic, dlt = kafka_cluster.create_topic(), kafka_cluster.create_topic()
    producer = Producer("AVRO", schema_registry.url, topic)
    bad = {1: b"not framed at all", 3: _framed_with_unknown_id()}
    values = [bad.get(n) or producer.value(order(n)) for n in range(5)]
    kafka_cluster.produce(topic, values=values)
    fields: dict[str, Any] = {"BatchSize": 10}
    if destination:
        fields["DestinationConfig"] = {"OnFailure": {"Destination": f"kafka://{dlt}"}}
    mapping = registry_mapping(
        kafka_cluster, topic, schema_registry.url, "JSON", ("VALUE",), **fields
    )
    run = run_mapping(mapping, lambda event, context: None).wait_for(
        records=3, until=lambda r: r.counters["CommittedEventCount"] == 5
    )
    assert sorted(r["offset"] for r in run.records) == [0, 2, 4]
    outcome = "OnFailureDestinationDeliveredEventCount" if destination else "DroppedEventCount"
    assert run.counters[outcome] == 2
    if not destination:
        return
    landed = consume(kafka_cluster.info.plaintext_config(), dlt, f"reader-{dlt}", 2)
    assert sorted(m.value() for m in landed) == sorted(bad.values())  # as read, replayable
    for message in landed:
        headers = dict(message.headers() or [])
        assert headers["kafka-esm-condition"] == b"SchemaDecodingFailed"
        failure = json.loads(headers["kafka-esm-failure"] or b"{}")
        reason = failure["KafkaBatchInfo"]["recordInfo"]["decodingError"]
        assert ("magic byte" in reason) or ("HTTP 404" in reason)


def test_a_registry_outage_holds_records_until_it_answers_again(
    kafka_cluster: KafkaTestCluster, tmp_path, run_mapping
):
    registry = LocalSchemaRegistry(tmp_path / "registry")
    info = registry.start(die_with_parent=True)
    # The poller reaches the registry through a relay, so that the restarted (in-memory,
    # empty) registry gets its schemas back before the poller can ask it again.
    relay = TcpProxy(_host_port(info.url))
    try:
        topic = kafka_cluster.create_topic()
        before = Producer("AVRO", info.url, topic)
        kafka_cluster.produce(topic, values=[before.value(order(n)) for n in range(3)])
        url = info.url.replace(_host_port(info.url), relay.address)
        mapping = registry_mapping(kafka_cluster, topic, url, "JSON", ("VALUE",))
        run = run_mapping(mapping, lambda event, context: None).wait_for(records=3)
        # Records written with a schema the poller has not seen yet, then the registry dies.
        after = Producer("JSON", info.url, f"{topic}-v2")  # its own subject
        pending = [after.value(order(n)) for n in range(3, 6)]
        registry.stop()
        kafka_cluster.produce(topic, values=pending)
        wait_until(lambda: run.counters["PollingErrorCount"] >= 3, 60, "the registry retried")
        assert "Schema registry unreachable" in run.last_processing_result
        assert len(run.records) == 3 and run.counters["CommittedEventCount"] == 3
        relay.upstream = None
        info = registry.start(die_with_parent=True)
        Producer("AVRO", info.url, topic).value(order(0))  # the same schemas, in order
        Producer("JSON", info.url, f"{topic}-v2").value(order(0))
        relay.upstream = _host_port(info.url)
        run.wait_for(records=6, until=lambda r: r.counters["CommittedEventCount"] == 6, timeout=60)
        values = [json.loads(base64.b64decode(r["value"])) for r in run.records]
        assert values[3:] == [order(n) for n in range(3, 6)]
        assert run.counters["DroppedEventCount"] == 0
    finally:
        relay.close()
        registry.stop()


def _host_port(url: str) -> str:
    return url.split("/")[2]


def test_a_protobuf_schema_registered_as_proto_text_decodes(schema_registry: RegistryInfo):
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    from runtime.definition.vocabulary import EventRecordFormat, SchemaValidationAttribute
    from runtime.records import Record
    from runtime.registry.decoder import RecordDecoder
    from runtime.registry.schemas import ConfluentSchemas

    client = SchemaRegistryClient({"url": schema_registry.url})
    text = (
        'syntax = "proto3";\npackage text;\n'
        "message Parcel { string id = 1; message Box { int32 size = 1; } Box box = 2; }\n"
    )
    schema_id = client.register_schema("proto-text-value", Schema(text, "PROTOBUF"))
    box = b"\x08\x2a"  # Box{size: 42}
    framed = b"\x00" + schema_id.to_bytes(4, "big") + b"\x04\x00\x00" + box  # [0, 0]: Box
    decoder = RecordDecoder(
        ConfluentSchemas(SchemaRegistryClient({"url": schema_registry.url})),
        glue=False,
        attributes=(SchemaValidationAttribute.VALUE,),
        record_format=EventRecordFormat.JSON,
    )
    decoded = decoder.decode(Record("t", 0, 0, 0, value=framed))
    assert decoded.undecodable is None
    assert json.loads(decoded.value or b"") == {"size": 42}


def test_a_registry_over_tls_is_trusted_through_the_root_ca_access_config(
    kafka_cluster: KafkaTestCluster, tmp_path, run_mapping
):
    registry = LocalSchemaRegistry(tmp_path / "tls-registry")
    info = registry.start(die_with_parent=True, tls=True)
    try:
        assert info.url.startswith("https://") and info.ca is not None
        topic = kafka_cluster.create_topic()
        ca_pem = Path(info.ca).read_text(encoding="ascii")
        from confluent_kafka.schema_registry import SchemaRegistryClient

        client = SchemaRegistryClient({"url": info.url, "ssl.ca.location": info.ca})
        producer = Producer("AVRO", client, topic)
        kafka_cluster.produce(topic, values=[producer.value(order(n)) for n in range(3)])
        mapping = registry_mapping(kafka_cluster, topic, info.url, "JSON", ("VALUE",))
        registry_config = mapping["SelfManagedKafkaEventSourceConfig"]["SchemaRegistryConfig"]
        registry_config["AccessConfigs"] = [
            {
                "Type": "SERVER_ROOT_CA_CERTIFICATE",
                "URI": kafka_cluster.write_secret({"certificate": ca_pem}),
            }
        ]
        run = run_mapping(mapping, lambda event, context: None).wait_for(records=3)
        values = [json.loads(base64.b64decode(r["value"])) for r in run.records]
        assert values == [{**order(n), "note": None} for n in range(3)]
    finally:
        registry.stop()
