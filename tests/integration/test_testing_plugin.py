"""The plugin's fixtures against the real broker, as a user's tests meet them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from runtime.testing import SASL_SSL, SSL, KafkaTestCluster, MappingRun
from runtime.testing import run_mapping as start_mapping

pytestmark = pytest.mark.integration


def _committed(cluster: KafkaTestCluster, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({**cluster.info.plaintext_config(), "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 15)
    finally:
        consumer.close()
    return [tp.offset for tp in found]


def _ignore(event: Any, context: Any) -> None:
    """A handler that accepts every batch."""


def test_kafka_topic_makes_fresh_topics_with_their_partitions(
    kafka_cluster: KafkaTestCluster, kafka_topic: Callable[..., str]
) -> None:
    first, second = kafka_topic(partitions=3), kafka_topic()
    assert first != second
    topics = AdminClient(kafka_cluster.info.plaintext_config()).list_topics(timeout=15).topics
    assert len(topics[first].partitions) == 3
    assert len(topics[second].partitions) == 1


def test_produced_records_arrive_as_written_and_a_stop_commits(
    kafka_cluster: KafkaTestCluster, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=2)
    written = kafka_cluster.produce(
        topic,
        [
            {"partition": 0, "key": "k", "value": {"n": 1}, "headers": {"h": "v"}},
            {"partition": 1, "value": None},
        ],
        values=[b"raw"],
    )
    assert written == 3
    mapping = kafka_cluster.mapping(topic)
    group = mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]
    with start_mapping(mapping, _ignore) as run:  # the plain function, as a context manager
        run.wait_for(records=3)
        assert run.state == "Enabled"
    keyed = next(r for r in run.records if "key" in r)
    assert keyed["headers"] == [{"h": [118]}]
    assert sorted(v or b"" for v in run.values()) == sorted([b'{"n":1}', b"", b"raw"])
    assert run.counters["InvokedEventCount"] >= 3
    # the stop committed everything delivered: a restart would not see them again
    assert sum(_committed(kafka_cluster, group, topic, 2)) == 3


def test_a_handler_error_shows_its_traceback_in_the_failure_message(
    kafka_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
) -> None:
    def broken(event: object, context: object) -> None:
        raise ZeroDivisionError("the handler divided by zero")

    topic = kafka_topic()
    kafka_cluster.produce(topic, values=["x"])
    run = run_mapping(kafka_cluster.mapping(topic, MaximumRetryAttempts=0), broken)
    run.wait_for(until=lambda r: r.counters["DroppedEventCount"] == 1)
    [error] = run.handler_errors
    assert isinstance(error.error, ZeroDivisionError)
    assert 'raise ZeroDivisionError("the handler divided by zero")' in error.traceback
    with pytest.raises(AssertionError) as failed:
        run.wait_for(records=2, timeout=0.2)
    message = str(failed.value)
    assert "0.2 s passed before 2 record(s)" in message
    assert "ZeroDivisionError: the handler divided by zero" in message
    assert "LastProcessingResult: PROBLEM" in message


def test_a_mapping_aws_would_disable_ends_the_wait_at_once(
    kafka_secured_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
) -> None:
    listener, access, _ = _access(kafka_secured_cluster, "SCRAM-SHA-512")
    wrong = {"username": "bob", "password": "not-his-password"}
    access[0]["URI"] = kafka_secured_cluster.write_secret(wrong)
    mapping = kafka_secured_cluster.mapping(kafka_topic(), listener=listener, access=access)
    run = run_mapping(mapping, _ignore)
    with pytest.raises(AssertionError, match="the poller stopped before 1 record"):
        run.wait_for(records=1, timeout=120)
    assert run.status.state_transition_reason == "EVENT_SOURCE_AUTHN_ERROR"
    assert run.state == "Disabled"


def _access(cluster: KafkaTestCluster, how: str) -> tuple[str, list[dict[str, str]], str]:
    """Listener, SourceAccessConfigurations and principal for ``how`` (a SASL mechanism,
    or ``mTLS``)."""
    if how == "mTLS":
        return SSL, cluster.mtls_access("alice"), "User:alice"
    return SASL_SSL, cluster.sasl_access("bob", how), "User:bob"


@pytest.mark.parametrize("how", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "mTLS"])
def test_secured_access_and_grant_make_a_working_mapping(
    kafka_secured_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
    how: str,
) -> None:
    cluster = kafka_secured_cluster
    topic = kafka_topic()
    cluster.produce(topic, values=["secured"])
    listener, access, principal = _access(cluster, how)
    mapping = cluster.mapping(topic, listener=listener, access=access)
    cluster.grant(principal, mapping)
    assert run_mapping(mapping, _ignore).wait_for(records=1).values() == [b"secured"]


def test_without_the_acls_the_secured_listener_refuses_the_mapping(
    kafka_secured_cluster: KafkaTestCluster,
    kafka_topic: Callable[..., str],
    run_mapping: Callable[..., MappingRun],
) -> None:
    # grant() is what makes the tests above pass: the authorizer refuses everything else.
    listener, access, _ = _access(kafka_secured_cluster, "mTLS")
    run = run_mapping(
        kafka_secured_cluster.mapping(kafka_topic(), listener=listener, access=access), _ignore
    )
    with pytest.raises(AssertionError, match="the poller stopped"):
        run.wait_for(records=1, timeout=120)
    assert run.status.state_transition_reason == "EVENT_SOURCE_AUTHZ_ERROR"


def test_secrets_are_private_files(kafka_cluster: KafkaTestCluster) -> None:
    path = Path(urlparse(kafka_cluster.write_secret({"username": "u", "password": "p"})).path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o077 == 0
