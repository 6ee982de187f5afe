"""Queue mode without a broker: the share consumer's settings, the share-group check, and
`kafka-esm run`'s refusal until the poll loop drives share groups."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import ShareConsumer

from runtime.definition.model import parse_mapping
from runtime.pipeline.share_source import ShareGroupSupport, share_consumer_settings

UUID = "6c7c2b1e-4c1d-4a8e-9d7a-0b6f4f0f2a11"


def request(**kafka_config: str) -> dict[str, Any]:
    return {
        "FunctionName": "orders",
        "Topics": ["orders"],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumptionMode": "Queue", **kafka_config},
        "UUID": UUID,
    }


STREAM_SECURITY = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "alice",
    "sasl.password": "not-a-real-secret",
    "ssl.endpoint.identification.algorithm": "https",
    # Stream-mode tuning that librdkafka refuses on a share consumer:
    "auto.offset.reset": "earliest",
    "enable.auto.commit": "false",
    "isolation.level": "read_committed",
    "partition.assignment.strategy": "cooperative-sticky",
}


def test_share_settings_keep_stream_security_and_drop_classic_consumer_keys() -> None:
    settings = share_consumer_settings(parse_mapping(request()), STREAM_SECURITY)
    assert settings["group.id"] == UUID  # no ConsumerGroupId: the mapping's UUID
    assert settings["share.acknowledgement.mode"] == "explicit"
    assert settings["max.poll.records"] == 100  # BatchSize's default
    for key in ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password"):
        assert settings[key] == STREAM_SECURITY[key]
    for key in ("auto.offset.reset", "enable.auto.commit", "isolation.level"):
        assert key not in settings


def test_librdkafka_accepts_the_share_settings() -> None:
    mapping = parse_mapping(request(ConsumerGroupId="orders-share"))
    settings = share_consumer_settings(mapping, STREAM_SECURITY)
    assert settings["group.id"] == "orders-share"
    started = time.monotonic()
    consumer = ShareConsumer({**settings, "log_level": 0})  # raises on a refused key
    consumer.close()
    assert time.monotonic() - started < 10


def test_a_broker_without_the_share_protocol_names_the_setting_and_the_command() -> None:
    problem = ShareGroupSupport(1, ("classic", "consumer"), 30_000).problem()
    assert problem is not None
    assert "group.coordinator.rebalance.protocols=classic,consumer" in problem
    assert "4.2" in problem and "share.version=1" in problem


def test_a_broker_older_than_4_0_is_named_as_too_old() -> None:
    problem = ShareGroupSupport(3, (), None).problem()
    assert problem is not None and "older than Apache Kafka 4.0" in problem and "4.2" in problem


def test_a_broker_with_the_share_protocol_passes() -> None:
    assert ShareGroupSupport(1, ("classic", "consumer", "share"), 30_000).problem() is None
