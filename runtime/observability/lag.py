"""Offset lag: how far the mapping's consumer group is behind the end of each partition.

AWS defines OffsetLag as the last offset written to the topic minus the last offset
the consumer group processed. It is read from the broker, not from a poller's memory,
so that every process of a group (each sees all partitions, owned or not) and
``kafka-esm status`` compute the same numbers. One admin client does it in three
batched requests: committed offsets of the group, start offsets, end offsets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    OffsetSpec,
)

from runtime.client_settings import CONSUMER_ONLY_SETTINGS, consumer_settings
from runtime.definition.model import EventSourceMapping, StartingPosition

_EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


class LagReadError(RuntimeError):
    """The broker did not answer a lag query; the message names the query and the topic."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition's offsets as the group sees them."""

    partition: int
    committed: int | None
    """Next offset the group will read; None when it never committed on this partition."""
    start: int
    """First offset still in the log (the low watermark)."""
    end: int
    """Offset the next record written will get (the high watermark, or the last stable
    offset when the consumer reads committed transactions only)."""
    lag: int


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    """Every partition of the topic at one moment."""

    topic: str
    group: str
    partitions: tuple[PartitionLag, ...]
    read_at: float
    """Epoch seconds of the reading."""

    @property
    def total(self) -> int:
        """OffsetLag of the topic (and SumOffsetLag): the sum over its partitions."""
        return sum(p.lag for p in self.partitions)

    @property
    def maximum(self) -> int:
        """MaxOffsetLag: the largest lag of one partition (0 for no partition)."""
        return max((p.lag for p in self.partitions), default=0)

    @property
    def partition_count(self) -> int:
        """How many partitions the topic has."""
        return len(self.partitions)


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A consumer in the group and the partitions of the topic it owns."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupView:
    """The group's state as the coordinator reports it (Stable, PreparingRebalance, …)."""

    state: str
    members: tuple[GroupMember, ...]

    def owner(self, partition: int) -> GroupMember | None:
        """The member that owns ``partition``, if any."""
        for member in self.members:
            if partition in member.partitions:
                return member
        return None


def offset_lag(committed: int | None, start: int, end: int, *, count_from_start: bool) -> int:
    """Records between the group's position and the end of a partition.

    Without a committed offset the position is where the mapping would start: the log
    start for TRIM_HORIZON and AT_TIMESTAMP (``count_from_start``), the end for
    LATEST. A committed offset that retention already deleted counts from the start.
    """
    if committed is None or committed < 0:
        position = start if count_from_start else end
    else:
        position = max(committed, start)
    return max(end - position, 0)


def admin_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without consumer-only properties (connection and security stay)."""
    return {k: v for k, v in settings.items() if k not in CONSUMER_ONLY_SETTINGS}


AdminFactory = Callable[[dict[str, Any]], AdminClient]


class LagReader:
    """Reads the group's committed offsets and the topic's watermarks from the broker."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        overrides: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = 10.0,
        admin_factory: AdminFactory = AdminClient,
        positions: Callable[[], dict[int, int]] | None = None,
    ) -> None:
        """``positions`` replace the group's committed offsets (Queue mode's delivered
        front: a share group has no committed offsets to list)."""
        settings = consumer_settings(mapping, overrides)
        self._positions = positions
        self._topic = mapping.topic
        self._group = mapping.consumer_group_id
        self._from_start = mapping.starting_position is not StartingPosition.LATEST
        self._isolation = (
            IsolationLevel.READ_UNCOMMITTED
            if settings.get("isolation.level") == "read_uncommitted"
            else IsolationLevel.READ_COMMITTED
        )
        self._timeout_s = timeout_s
        self._admin: AdminClient | None = admin_factory(admin_settings(settings))

    def read(self) -> LagSnapshot:
        """Lag of every partition of the topic; raises LagReadError when the broker fails."""
        partitions = self.partition_ids()
        committed = self._positions() if self._positions else self._committed(partitions)
        starts = self._offsets(partitions, _EARLIEST, "start offsets")
        ends = self._offsets(partitions, _LATEST, "end offsets")
        lags = tuple(
            PartitionLag(
                p,
                committed.get(p),
                starts[p],
                ends[p],
                offset_lag(committed.get(p), starts[p], ends[p], count_from_start=self._from_start),
            )
            for p in partitions
        )
        return LagSnapshot(self._topic, self._group, lags, time.time())

    def close(self) -> None:
        """Free the client now (AdminClient has no close: dropping it destroys it)."""
        self._admin = None

    def partition_ids(self) -> list[int]:
        """The topic's partitions, sorted."""
        try:
            metadata = self._client().list_topics(topic=self._topic, timeout=self._timeout_s)
        except KafkaException as exc:
            raise self._error("topic metadata", exc) from None
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            reason = topic.error.str() if topic is not None and topic.error else "not found"
            raise LagReadError(f"topic {self._topic!r}: {reason}")
        return sorted(topic.partitions)

    def group(self) -> GroupView:
        """Who in the group owns which partition of the topic."""
        futures = self._client().describe_consumer_groups(
            [self._group], request_timeout=self._timeout_s
        )
        try:
            description = futures[self._group].result(timeout=self._timeout_s)
        except (KafkaException, TimeoutError) as exc:
            raise self._error("group description", exc) from None
        members = tuple(
            GroupMember(
                m.member_id,
                m.client_id,
                m.host,
                tuple(
                    sorted(
                        tp.partition
                        for tp in (m.assignment.topic_partitions or [])
                        if tp.topic == self._topic
                    )
                ),
            )
            for m in description.members
        )
        state = getattr(description.state, "name", str(description.state))
        return GroupView(state, members)

    def _committed(self, partitions: list[int]) -> dict[int, int]:
        request = ConsumerGroupTopicPartitions(
            self._group, [TopicPartition(self._topic, p) for p in partitions]
        )
        futures = self._client().list_consumer_group_offsets(
            [request], request_timeout=self._timeout_s
        )
        try:
            answer = futures[self._group].result(timeout=self._timeout_s)
        except (KafkaException, TimeoutError) as exc:
            raise self._error("committed offsets", exc) from None
        return {tp.partition: tp.offset for tp in answer.topic_partitions if tp.offset >= 0}

    def _offsets(self, partitions: list[int], spec: OffsetSpec, what: str) -> dict[int, int]:
        futures = self._client().list_offsets(
            {TopicPartition(self._topic, p): spec for p in partitions},
            isolation_level=self._isolation,
            request_timeout=self._timeout_s,
        )
        try:
            return {
                tp.partition: future.result(timeout=self._timeout_s).offset
                for tp, future in futures.items()
            }
        except (KafkaException, TimeoutError) as exc:
            raise self._error(what, exc) from None

    def _client(self) -> AdminClient:
        if self._admin is None:
            raise LagReadError(f"the lag reader of topic {self._topic!r} is closed")
        return self._admin

    def _error(self, what: str, exc: Exception) -> LagReadError:
        detail = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        return LagReadError(
            f"reading {what} of topic {self._topic!r} for group {self._group!r}: {detail}"
        )
