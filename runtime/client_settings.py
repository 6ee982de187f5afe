"""librdkafka settings every client of the mapping's cluster shares, and the consumer's own.

The consumer, the lag reader and the kafka:// destination's producer reach the same
cluster with the same connection and security settings; this module is below all three.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from confluent_kafka import Consumer, ShareConsumer

from runtime.definition.model import EventSourceMapping, StartingPosition

CONSUMER_ONLY_SETTINGS: frozenset[str] = frozenset(
    {
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "check.crcs",
        "consume.callback.max.messages",
        "coordinator.query.interval.ms",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.partition.eof",
        "fetch.error.backoff.ms",
        "fetch.max.bytes",
        "fetch.message.max.bytes",
        "fetch.min.bytes",
        "fetch.queue.backoff.ms",
        "fetch.wait.max.ms",
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "heartbeat.interval.ms",
        "isolation.level",
        "max.partition.fetch.bytes",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "queued.max.messages.kbytes",
        "queued.min.messages",
        "session.timeout.ms",
    }
)
"""librdkafka properties only a consumer understands: a producer or admin client that
shares the consumer's connection and security settings must drop them (it warns otherwise)."""


def consumer_settings(
    mapping: EventSourceMapping, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """librdkafka settings for the mapping; ``overrides`` (security, tuning) win."""
    reset = "latest" if mapping.starting_position is StartingPosition.LATEST else "earliest"
    settings: dict[str, Any] = {
        "bootstrap.servers": ",".join(mapping.bootstrap_servers),
        "group.id": mapping.consumer_group_id,
        "client.id": f"kafka-esm-{mapping.uuid[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": reset,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10_000,
        # Members learn that a rebalance started at their next heartbeat, and a join
        # with cooperative-sticky takes two rounds: with the default 3 s, a new member
        # (another --processes slot, a scaled-out task) got partitions ~6 s after joining.
        "heartbeat.interval.ms": 1_000,
        # Fetch tuning (bench/: python -m bench.run_all). librdkafka keeps fetched
        # responses alive while any of their messages is queued, and pausing a
        # partition for backpressure throws its queue away: a small queue and
        # small responses cost little throughput and cut peak RSS by ~60 MB.
        "queued.max.messages.kbytes": 8_192,
        "max.partition.fetch.bytes": 2_097_152,
        "fetch.max.bytes": 16_777_216,
        # Once its queue was full, librdkafka waits this long before fetching again
        # (default 1 s); 8 MB of 1 KB records drain in a fraction of that.
        "fetch.queue.backoff.ms": 20,
    }
    settings.update(overrides or {})
    if settings.get("group.protocol") == "consumer":
        # KIP-848: the broker assigns partitions incrementally and owns the session;
        # librdkafka refuses the classic protocol's assignment and timing settings.
        for key in CLASSIC_PROTOCOL_ONLY:
            settings.pop(key, None)
    return settings


CLASSIC_PROTOCOL_ONLY = (
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
)
"""Settings of the classic group protocol that ``group.protocol=consumer`` refuses."""


def consumer_class(mapping: EventSourceMapping) -> Callable[[dict[str, Any]], Consumer]:
    """The client a mapping reads with: a consumer-group member in Stream mode, a
    share-group member in Queue mode (typed as the consumer every connection builds)."""
    if mapping.is_queue:
        return cast(Callable[[dict[str, Any]], Consumer], ShareConsumer)
    return Consumer
