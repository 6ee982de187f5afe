"""Unusual records on the real broker: nothing may crash, hang or be lost.

Tombstones and null keys, binary values that are not UTF-8, a thousand headers,
timestamps of -1 and far in the future, and a 7 MB record that no Lambda payload can
carry: the poller must deliver each intact (or, for the one it cannot send, route it
as AWS does without invoking) and carry on with the records after it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from tests.poller_harness import (
    RecordingHandler,
    committed,
    mapping_doc,
    running_poller,
    wait_committed,
)

pytestmark = pytest.mark.integration

SEVEN_MB = 7 * 1024 * 1024
FUTURE_MS = int(time.time() * 1000) + 10 * 365 * 24 * 3600 * 1000  # ten years ahead


def _produce(config: dict[str, Any], topic: str, records: list[dict[str, Any]]) -> None:
    """Produce ``records`` (keyword arguments of ``Producer.produce``) in order, synchronously."""
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            errors.append(error)

    for record in records:
        producer.produce(topic, partition=0, on_delivery=delivered, **record)
    assert producer.flush(60) == 0
    assert not errors, errors


def _records(handler: RecordingHandler) -> list[dict[str, Any]]:
    return [r for call in handler.calls for rs in call.event["records"].values() for r in rs]


def _decoded(record: dict[str, Any], field: str) -> bytes | None:
    return base64.b64decode(record[field]) if field in record else None


@pytest.mark.timeout(120)
def test_tombstones_binary_values_and_a_thousand_headers_arrive_intact(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory()
    binary = bytes(range(256)) + b"\xc3\x28\xff"  # every byte, then invalid UTF-8
    headers: list[tuple[str, bytes | None]] = [
        (f"h{i % 700}", bytes([i % 256, 255 - i % 256])) for i in range(999)
    ]
    headers.append(("null-header", None))
    sent: list[dict[str, Any]] = [
        {"key": None, "value": None},
        {"key": b"", "value": b""},
        {"key": b"\xff\xfe\x00", "value": binary},
        {"key": b"k", "value": b"with headers", "headers": headers},
        {"value": b"after"},
    ]
    _produce(kafka.plaintext_config(), topic, sent)
    handler = RecordingHandler()
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: len(_records(handler)) >= len(sent))
    got = _records(handler)
    assert [r["offset"] for r in got] == list(range(len(sent)))
    tombstone, empty, raw, with_headers, after = got
    assert "key" not in tombstone and "value" not in tombstone  # AWS leaves null fields out
    assert (_decoded(empty, "key"), _decoded(empty, "value")) == (b"", b"")
    assert (_decoded(raw, "key"), _decoded(raw, "value")) == (b"\xff\xfe\x00", binary)
    assert len(with_headers["headers"]) == 1000
    for (key, value), header in zip(headers[:-1], with_headers["headers"][:-1], strict=True):
        assert header == {
            key: [b - 256 if b > 127 else b for b in value or b""]
        }  # Java's signed bytes
    assert with_headers["headers"][-1] == {}  # a null header value
    assert _decoded(after, "value") == b"after"
    assert committed(kafka, f"group-{topic}", topic) == [len(sent)]


@pytest.mark.timeout(120)
def test_timestamps_of_minus_one_and_far_in_the_future_are_delivered(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    # Kafka 4 refuses CreateTime more than an hour ahead unless the topic allows it.
    topic = topic_factory(**{"message.timestamp.after.max.ms": str(2**63 - 1)})
    stamps = [-1, FUTURE_MS, 1]
    _produce(
        kafka.plaintext_config(),
        topic,
        [{"value": b"t%d" % i, "timestamp": stamp} for i, stamp in enumerate(stamps)],
    )
    handler = RecordingHandler()
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler):
        handler.wait_for(lambda calls: len(_records(handler)) >= len(stamps))
    got = _records(handler)
    assert [_decoded(r, "value") for r in got] == [b"t0", b"t1", b"t2"]
    assert got[1]["timestamp"] == FUTURE_MS
    assert got[2]["timestamp"] == 1
    assert got[0]["timestamp"] == -1, got[0]
    assert {r["timestampType"] for r in got} == {"CREATE_TIME"}
    assert all(isinstance(r["timestamp"], int) for r in got)
    assert committed(kafka, f"group-{topic}", topic) == [len(stamps)]


@pytest.mark.timeout(180)
def test_a_seven_megabyte_record_is_dropped_without_an_invocation_and_the_rest_flows(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    limit = str(8 * 1024 * 1024)
    topic = topic_factory(**{"max.message.bytes": limit})
    config = {**kafka.plaintext_config(), "message.max.bytes": 9 * 1024 * 1024}
    _produce(
        config,
        topic,
        [{"value": b"before"}, {"value": b"\x01" * SEVEN_MB}, {"value": b"after"}],
    )
    handler = RecordingHandler()
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    with running_poller(kafka, doc, handler) as running:
        handler.wait_for(
            lambda calls: any(_decoded(r, "value") == b"after" for r in _records(handler)),
            timeout_s=90,
        )
        wait_committed(kafka, f"group-{topic}", topic, [3])
    assert handler.values() == [b"before", b"after"]  # the big one was never invoked
    assert running.poller.counters.get(Metric.DROPPED) == 1  # counted, not silently lost
    assert committed(kafka, f"group-{topic}", topic) == [3]
