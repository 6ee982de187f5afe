"""OffsetLag: end offset minus the group's committed offset, read in batched admin calls."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from runtime.definition.model import parse_mapping
from runtime.observability.lag import LagReader, LagReadError, admin_settings, offset_lag


def _mapping(**fields: Any) -> Any:
    doc = {
        "FunctionName": "fn",
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9092"]}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g1"},
    }
    doc.update(fields)
    return parse_mapping(doc)


@pytest.mark.parametrize(
    ("committed", "start", "end", "from_start", "expected"),
    [
        (5, 0, 12, True, 7),
        (12, 0, 12, True, 0),
        (None, 3, 12, True, 9),  # never committed, TRIM_HORIZON: everything still there
        (None, 3, 12, False, 0),  # never committed, LATEST: it would start at the end
        (1, 4, 12, True, 8),  # retention deleted past the commit: count from the log start
        (15, 0, 12, True, 0),  # never negative
        (-1001, 0, 4, True, 4),  # librdkafka's "no offset"
    ],
)
def test_offset_lag(
    committed: int | None, start: int, end: int, from_start: bool, expected: int
) -> None:
    assert offset_lag(committed, start, end, count_from_start=from_start) == expected


def test_admin_settings_keep_connection_and_security_only() -> None:
    settings = {
        "bootstrap.servers": "b:9092",
        "security.protocol": "SASL_SSL",
        "sasl.username": "u",
        "group.id": "g",
        "enable.auto.commit": False,
        "fetch.max.bytes": 1,
    }
    assert admin_settings(settings) == {
        "bootstrap.servers": "b:9092",
        "security.protocol": "SASL_SSL",
        "sasl.username": "u",
    }


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _failed(error: Exception) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


class FakeAdmin:
    """Answers like AdminClient for a topic of three partitions."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.committed = {0: 10, 2: 30}
        self.starts = {0: 0, 1: 5, 2: 0}
        self.ends = {0: 15, 1: 9, 2: 30}
        self.calls: list[str] = []
        self.fail_offsets = False

    def list_topics(self, topic: str, timeout: float) -> Any:
        self.calls.append("list_topics")
        partitions = {p: object() for p in (2, 0, 1)}
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions=partitions, error=None)})

    def list_consumer_group_offsets(self, requests: list[Any], **_: Any) -> dict[str, Future[Any]]:
        self.calls.append("list_consumer_group_offsets")
        request = requests[0]
        answer = [
            TopicPartition(tp.topic, tp.partition, self.committed.get(tp.partition, -1001))
            for tp in request.topic_partitions
        ]
        return {request.group_id: _done(SimpleNamespace(topic_partitions=answer))}

    def list_offsets(self, request: dict[TopicPartition, Any], **kwargs: Any) -> Any:
        self.calls.append("list_offsets")
        if self.fail_offsets:
            error = KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out"))
            return {tp: _failed(error) for tp in request}
        table = (
            self.starts if len([c for c in self.calls if c == "list_offsets"]) == 1 else self.ends
        )
        return {tp: _done(SimpleNamespace(offset=table[tp.partition])) for tp in request}

    def describe_consumer_groups(self, groups: list[str], **_: Any) -> dict[str, Future[Any]]:
        member = SimpleNamespace(
            member_id="m-1",
            client_id="kafka-esm-1",
            host="/10.0.0.1",
            assignment=SimpleNamespace(
                topic_partitions=[TopicPartition("orders", 2), TopicPartition("other", 0)]
            ),
        )
        state = SimpleNamespace(name="STABLE")
        return {groups[0]: _done(SimpleNamespace(members=[member], state=state))}


def _reader(**fields: Any) -> tuple[LagReader, FakeAdmin]:
    made: list[FakeAdmin] = []

    def factory(settings: dict[str, Any]) -> Any:
        made.append(FakeAdmin(settings))
        return made[0]

    reader = LagReader(_mapping(**fields), {"sasl.username": "u"}, admin_factory=factory)
    return reader, made[0]


def test_reader_computes_lag_per_partition_and_for_the_topic() -> None:
    reader, admin = _reader()
    snapshot = reader.read()
    assert [(p.partition, p.committed, p.start, p.end, p.lag) for p in snapshot.partitions] == [
        (0, 10, 0, 15, 5),
        (1, None, 5, 9, 4),
        (2, 30, 0, 30, 0),
    ]
    assert (snapshot.total, snapshot.maximum, snapshot.partition_count) == (9, 5, 3)
    assert (snapshot.topic, snapshot.group) == ("orders", "g1")
    # one metadata call and three batched requests, whatever the partition count
    assert admin.calls == [
        "list_topics",
        "list_consumer_group_offsets",
        "list_offsets",
        "list_offsets",
    ]


def test_reader_uses_the_mapping_cluster_and_overrides_without_consumer_settings() -> None:
    _, admin = _reader()
    assert admin.settings["bootstrap.servers"] == "b-1:9092"
    assert admin.settings["sasl.username"] == "u"
    assert "group.id" not in admin.settings


def test_a_latest_mapping_counts_an_uncommitted_partition_as_caught_up() -> None:
    reader, _ = _reader(StartingPosition="LATEST")
    assert [p.lag for p in reader.read().partitions] == [5, 0, 0]


def test_a_broker_error_names_the_query_the_topic_and_the_group() -> None:
    reader, admin = _reader()
    admin.fail_offsets = True
    with pytest.raises(
        LagReadError, match="reading start offsets of topic 'orders' for group 'g1'"
    ):
        reader.read()


def test_a_missing_topic_is_named() -> None:
    reader, admin = _reader()
    admin.list_topics = lambda topic, timeout: SimpleNamespace(topics={})  # type: ignore[method-assign]
    with pytest.raises(LagReadError, match="topic 'orders': not found"):
        reader.read()


def test_group_view_names_the_owner_of_each_partition_of_the_topic() -> None:
    reader, _ = _reader()
    group = reader.group()
    assert group.state == "STABLE"
    assert group.members[0].partitions == (2,)
    owner = group.owner(2)
    assert owner is not None and owner.client_id == "kafka-esm-1"
    assert group.owner(0) is None
