"""FilterCriteria on the real broker: filtered-out records are never sent, yet committed."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from tests.kafka_helpers import produce
from tests.poller_harness import RecordingHandler, mapping_doc, running_poller, wait_committed

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., str]

ORDERS_OVER_100 = {"value": {"kind": ["order"], "amount": [{"numeric": [">", 100]}]}}
PLAIN_TEXT = {"value": [{"prefix": "plain"}]}


def test_only_matching_records_are_sent_and_every_offset_is_committed(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=2)
    sent = [
        json.dumps({"kind": "order", "amount": 150}).encode(),  # 0: first filter
        json.dumps({"kind": "order", "amount": 50}).encode(),  # 1: too small
        b"plain text",  # 2: second filter (a string, not JSON)
        b"\xff\xfe not utf-8",  # 3: no value to match
        None,  # 4: tombstone
        json.dumps({"kind": "refund", "amount": 500}).encode(),  # 5: wrong kind
        b"plain again",  # 6: second filter
        json.dumps({"kind": "order", "amount": 100.5}).encode(),  # 7: first filter
        json.dumps({"kind": "other"}).encode(),  # 8: filtered tail ...
        b"not plain",  # 9: ... must still be committed
    ]
    produce(kafka.plaintext_config(), topic, sent, partition=0)
    # A partition where nothing matches: the function never hears of it.
    produce(kafka.plaintext_config(), topic, [b"nothing %d" % i for i in range(5)], partition=1)
    handler = RecordingHandler()
    doc = mapping_doc(
        kafka,
        topic,
        MaximumBatchingWindowInSeconds=0,
        FilterCriteria={
            "Filters": [
                {"Pattern": json.dumps(ORDERS_OVER_100)},
                {"Pattern": json.dumps(PLAIN_TEXT)},
            ]
        },
    )
    with running_poller(kafka, doc, handler) as running:
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 4)
        wait_committed(kafka, f"group-{topic}", topic, [10, 5])
    assert handler.values() == [sent[0], sent[2], sent[6], sent[7]]
    assert [key for key, _ in handler.delivered()] == [f"{topic}-0"] * 4
    counts = running.poller.counters
    assert counts.get(Metric.POLLED) == 15
    assert counts.get(Metric.FILTERED_OUT) == 11
    assert counts.get(Metric.INVOKED) == 4
    assert counts.get(Metric.COMMITTED) == 15


def test_a_filter_of_tombstones_sends_only_the_tombstones(
    kafka: ClusterInfo, topic_factory: TopicFactory
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b'{"a": 1}', None, b"text", None])
    handler = RecordingHandler()
    doc = mapping_doc(
        kafka,
        topic,
        MaximumBatchingWindowInSeconds=0,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": [{"exists": False}]})}]},
    )
    with running_poller(kafka, doc, handler) as running:
        handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 2)
        wait_committed(kafka, f"group-{topic}", topic, [4])
    assert [offset for _, offset in handler.delivered()] == [1, 3]
    records = [r for c in handler.calls for rs in c.event["records"].values() for r in rs]
    assert all("value" not in r for r in records), "a tombstone is sent without a value"
    assert running.poller.counters.get(Metric.FILTERED_OUT) == 2
