"""The local broker is a real Kafka: listeners, SASL, mTLS, ACLs, offsets_for_times."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from runtime.devtools.local_kafka import ClusterInfo
from tests.kafka_helpers import connection_error, consume, produce

pytestmark = pytest.mark.integration

AUTH_FAILURES = {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError._TRANSPORT}


def _round_trip(config: dict[str, str], topic: str, group: str) -> list[bytes]:
    produce(config, topic, [b"one", b"two", b"three"])
    return [m.value() for m in consume(config, topic, group, expected=3)]


def test_plaintext_produce_and_consume(
    kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = topic_factory()
    assert _round_trip(kafka.plaintext_config(), topic, unique("g")) == [b"one", b"two", b"three"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_produce_and_consume(
    secured_kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    unique: Callable[[str], str],
    mechanism: str,
) -> None:
    config = secured_kafka.sasl_config("admin", mechanism)
    assert _round_trip(config, topic_factory(), unique("g")) == [b"one", b"two", b"three"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_right_password_connects(secured_kafka: ClusterInfo, mechanism: str) -> None:
    assert connection_error(secured_kafka.sasl_config("alice", mechanism)) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_wrong_password_is_refused(secured_kafka: ClusterInfo, mechanism: str) -> None:
    error = connection_error(secured_kafka.sasl_config("alice", mechanism, password="wrong"))
    assert error is not None
    assert error.code() == KafkaError._AUTHENTICATION


def test_sasl_unknown_user_is_refused(secured_kafka: ClusterInfo) -> None:
    config = {**secured_kafka.sasl_config("alice"), "sasl.username": "nobody"}
    error = connection_error(config)
    assert error is not None
    assert error.code() == KafkaError._AUTHENTICATION


def test_mtls_produce_and_consume(
    secured_kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    config = secured_kafka.mtls_config("admin")
    assert _round_trip(config, topic_factory(), unique("g")) == [b"one", b"two", b"three"]


@pytest.mark.parametrize("key_form", ["plain", "pbes1", "pbes2"])
def test_mtls_valid_certificate_connects(secured_kafka: ClusterInfo, key_form: str) -> None:
    assert connection_error(secured_kafka.mtls_config("alice", key_form)) is None


def test_mtls_without_certificate_is_refused(secured_kafka: ClusterInfo) -> None:
    error = connection_error(secured_kafka.mtls_config(client=None))
    assert error is not None
    assert error.code() in AUTH_FAILURES


def test_mtls_certificate_from_unrelated_ca_is_refused(secured_kafka: ClusterInfo) -> None:
    error = connection_error(secured_kafka.mtls_config("mallory"))
    assert error is not None
    assert error.code() in AUTH_FAILURES


def _lambda_acls(principal: str, topic: str, group: str) -> list[AclBinding]:
    """Exactly the ACLs Lambda's mapping needs (esm-semantics.md, State and errors)."""
    wanted = [
        (ResourceType.BROKER, "kafka-cluster", AclOperation.DESCRIBE_CONFIGS),
        (ResourceType.GROUP, group, AclOperation.DESCRIBE),
        (ResourceType.GROUP, group, AclOperation.READ),
        (ResourceType.TOPIC, topic, AclOperation.DESCRIBE),
        (ResourceType.TOPIC, topic, AclOperation.READ),
    ]
    return [
        AclBinding(
            kind,
            name,
            ResourcePatternType.LITERAL,
            f"User:{principal}",
            "*",
            operation,
            AclPermissionType.ALLOW,
        )
        for kind, name, operation in wanted
    ]


def test_principal_without_acls_cannot_consume_as_group(
    secured_kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = topic_factory()
    produce(secured_kafka.plaintext_config(), topic, [b"secret"])
    with pytest.raises(KafkaException) as refused:
        consume(secured_kafka.sasl_config("bob"), topic, unique("g"), expected=1, timeout_s=15)
    assert refused.value.args[0].code() in {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    }


def test_principal_with_exactly_lambdas_acls_consumes(
    secured_kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic, group = topic_factory(), unique("g")
    produce(secured_kafka.plaintext_config(), topic, [b"allowed"])
    admin = AdminClient(secured_kafka.plaintext_config())
    for future in admin.create_acls(_lambda_acls("bob", topic, group)).values():
        future.result(timeout=30)
    messages = consume(secured_kafka.sasl_config("bob"), topic, group, expected=1)
    assert [m.value() for m in messages] == [b"allowed"]


def test_offsets_for_times_answers_like_a_real_broker(
    kafka: ClusterInfo, topic_factory: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = topic_factory()
    base = int(time.time() * 1000) - 60_000  # recent: old stamps fall to retention
    stamps = [base, base + 1_000, base + 2_000]
    produce(kafka.plaintext_config(), topic, [b"a", b"b", b"c"], timestamps=stamps, partition=0)
    consumer = Consumer({**kafka.plaintext_config(), "group.id": unique("g")})
    try:
        # One query per call: librdkafka merges repeated partitions of one request.
        found = [
            consumer.offsets_for_times([TopicPartition(topic, 0, when)], timeout=15)[0]
            for when in (stamps[0] - 1, stamps[1], stamps[1] + 1, stamps[2] + 1)
        ]
    finally:
        consumer.close()
    assert [tp.offset for tp in found] == [0, 1, 2, -1]
