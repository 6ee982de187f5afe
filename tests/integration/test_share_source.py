"""Queue mode's share-group source on the real local broker (Apache Kafka 4.4)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import ShareConsumer
from confluent_kafka.admin import AdminClient

from runtime.definition.model import parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Counters
from runtime.pipeline.share_source import (
    Acknowledgement,
    AcknowledgementError,
    ShareSource,
    configure_share_group,
    require_share_groups,
)
from runtime.pipeline.source import PlainConnection
from runtime.records import Record
from tests.conftest import REPO_ROOT
from tests.kafka_helpers import produce

pytestmark = pytest.mark.integration

LOCK_MS = 2000
"""The test groups' record lock: short, so expired locks are awaited in seconds."""


def queue_request(kafka: ClusterInfo, topic: str, group: str, batch: int = 10) -> dict[str, Any]:
    return {
        "FunctionName": "share-test",
        "Topics": [topic],
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers.split(",")}
        },
        "BatchSize": batch,
        "SelfManagedKafkaEventSourceConfig": {"ConsumptionMode": "Queue", "ConsumerGroupId": group},
    }


@pytest.fixture
def share_group(kafka: ClusterInfo, unique: Callable[[str], str]) -> str:
    """A new share group that starts at the earliest record (the broker's 30 s lock)."""
    group = unique("share")
    configure_share_group(
        AdminClient(kafka.plaintext_config()), group, {"share.auto.offset.reset": "earliest"}
    )
    return group


@dataclass
class ShareSetup:
    """A fresh 1-partition topic and share group; the sources a test opens are closed."""

    kafka: ClusterInfo
    topic: str
    group: str
    opened: list[ShareSource] = field(default_factory=list)

    def open(self, batch: int = 10) -> ShareSource:
        mapping = parse_mapping(queue_request(self.kafka, self.topic, self.group, batch))
        source = ShareSource(mapping, Counters(), PlainConnection(consumer_factory=ShareConsumer))
        source.subscribe()
        self.opened.append(source)
        return source


@pytest.fixture
def share(
    kafka: ClusterInfo, topic_factory: Callable[..., str], share_group: str
) -> Iterator[ShareSetup]:
    setup = ShareSetup(kafka, topic_factory(partitions=1), share_group)
    yield setup
    for source in setup.opened:
        source.close()


def poll_until(source: ShareSource, want: Callable[[list[Record]], bool]) -> list[Record]:
    """Poll (1 s at a time, 60 s at most) until ``want`` holds for what one poll returned."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = source.poll(100, 1.0)
        if want(records):
            return records
        source.acknowledge(records, Acknowledgement.RELEASE)
    raise AssertionError("the share group did not deliver what the test waited for in 60 s")


def test_the_local_broker_serves_share_groups(kafka: ClusterInfo) -> None:
    support = require_share_groups(AdminClient(kafka.plaintext_config()))
    assert support.enabled and "share" in support.protocols


def test_three_members_share_one_partition_and_see_every_record_once(share: ShareSetup) -> None:
    kafka, topic, share_group = share.kafka, share.topic, share.group
    total = 600
    # At most 100 records of the partition in flight: one member cannot take them all.
    in_flight = {"share.partition.max.record.locks": "100"}
    configure_share_group(AdminClient(kafka.plaintext_config()), share_group, in_flight)
    members = [share.open(batch=100) for _ in range(3)]
    seen: dict[int, list[int]] = {i: [] for i in range(3)}
    produced = 0
    deadline = time.monotonic() + 120
    while sum(map(len, seen.values())) < total and time.monotonic() < deadline:
        if produced < total:  # a trickle, so members that join later still find work
            batch = range(produced, produced + 20)
            produced += produce(kafka.plaintext_config(), topic, (f"r{i}".encode() for i in batch))
        held = [(i, m, m.poll(100, 0.5)) for i, m in enumerate(members)]
        for i, member, records in held:  # every member holds its batch before any acks
            seen[i].extend(r.offset for r in records)
            member.acknowledge(records, Acknowledgement.ACCEPT)
            member.commit()
    everything = sorted(o for offsets in seen.values() for o in offsets)
    assert everything == list(range(total)), "a record was lost or delivered twice"
    assert all(seen[i] for i in range(3)), {i: len(o) for i, o in seen.items()}


def test_released_records_come_back_with_a_rising_delivery_count(share: ShareSetup) -> None:
    kafka, topic = share.kafka, share.topic
    produce(kafka.plaintext_config(), topic, [b"a", b"b", b"c"])
    source = share.open()
    first = poll_until(source, lambda got: len(got) == 3)
    assert [r.delivery_count for r in first] == [1, 1, 1]
    source.acknowledge(first, Acknowledgement.RELEASE)
    source.commit()
    again = poll_until(source, lambda got: len(got) == 3)
    assert [r.offset for r in again] == [r.offset for r in first]
    assert [r.value for r in again] == [b"a", b"b", b"c"]
    assert [r.delivery_count for r in again] == [2, 2, 2]
    source.acknowledge(again, Acknowledgement.ACCEPT)
    with pytest.raises(AcknowledgementError, match="already acknowledged"):
        source.acknowledge(again[:1], Acknowledgement.ACCEPT)
    assert source.commit()
    assert source.poll(10, 3.0) == []  # accepted records are never delivered again


def test_rejected_records_are_not_delivered_again(share: ShareSetup) -> None:
    kafka, topic = share.kafka, share.topic
    produce(kafka.plaintext_config(), topic, [b"bad", b"good"])
    source = share.open()
    bad, good = poll_until(source, lambda got: len(got) == 2)
    source.acknowledge([bad], Acknowledgement.REJECT)
    source.acknowledge([good], Acknowledgement.RELEASE)
    source.commit()
    back = poll_until(source, lambda got: len(got) > 0)
    assert [r.offset for r in back] == [good.offset]
    source.acknowledge(back, Acknowledgement.ACCEPT)


def test_a_member_killed_mid_batch_loses_nothing_its_records_return_after_the_lock(
    share: ShareSetup,
) -> None:
    kafka, topic, share_group = share.kafka, share.topic, share.group
    lock = {"share.record.lock.duration.ms": str(LOCK_MS)}
    configure_share_group(AdminClient(kafka.plaintext_config()), share_group, lock)
    produce(kafka.plaintext_config(), topic, (f"k{i}".encode() for i in range(5)))
    request = json.dumps(queue_request(kafka, topic, share_group))
    member = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.share_member", request],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert member.stdout is not None
        line = member.stdout.readline()  # blocks until the member holds its batch
        held = [int(o) for o in line.split()[1:]]
        assert line.startswith("offsets") and held == list(range(5))
    finally:
        os.kill(member.pid, signal.SIGKILL)
        member.wait()
    source = share.open()
    killed_at = time.monotonic()
    back = poll_until(source, lambda got: len(got) == 5)
    assert [r.offset for r in back] == held
    assert all(r.delivery_count == 2 for r in back)
    assert time.monotonic() - killed_at < 30  # the 2 s lock, not a session timeout of minutes
    source.acknowledge(back, Acknowledgement.ACCEPT)
