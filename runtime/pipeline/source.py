"""The Kafka side of the poller: one confluent-kafka consumer in the mapping's group.

It joins ConsumerGroupId (else the mapping's UUID) with auto-commit off, places
partitions that have no committed offset at the mapping's StartingPosition, turns
messages into :class:`~runtime.pipeline.records.Record` values, and commits explicit offsets.
Only the poll loop's thread touches the consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from runtime.definition.model import EventSourceMapping, StartingPosition
from runtime.observability.counters import Counters, Metric
from runtime.observability.state import (
    CLUSTER_FAILED_TO_AUTHORIZE,
    SASL_AUTHENTICATION_FAILED,
    MappingStopped,
    StateTransitionReason,
    problem,
)
from runtime.pipeline.records import Record, TimestampType

log = logging.getLogger("runtime.pipeline.source")

PartitionId = tuple[str, int]

_TIMESTAMP_TYPES = {
    TIMESTAMP_LOG_APPEND_TIME: TimestampType.LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE: TimestampType.NO_TIMESTAMP_TYPE,
}
_CREATE_TIME = TimestampType.CREATE_TIME
_AUTHZ_ERRORS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
_QUIET_ERRORS = frozenset({KafkaError._PARTITION_EOF, KafkaError._NO_OFFSET})


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


ClientErrorClassifier = Callable[[KafkaError], MappingStopped | None]
"""Turns a client-level error into the stop AWS would make, or None to keep polling."""


def default_error_classifier(error: KafkaError) -> MappingStopped | None:
    """Authentication failures stop the consumer; the security layer refines messages."""
    if error.code() == KafkaError._AUTHENTICATION:
        return MappingStopped(
            StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR, problem(SASL_AUTHENTICATION_FAILED)
        )
    return None


class AssignmentListener(Protocol):
    """What the poller does when the group gives or takes partitions."""

    def on_assigned(self, partitions: list[PartitionId]) -> None:
        """``partitions`` now belong to this consumer."""

    def on_revoked(self, partitions: list[PartitionId], lost: bool) -> None:
        """``partitions`` are leaving; ``lost`` means commits for them will fail."""


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
    return settings


def to_record(message: Message) -> Record:
    """A consumed message as the immutable value every later stage uses.

    Runs once per record on the poll thread: no per-call enum or empty-tuple work.
    """
    kind, stamp = message.timestamp()
    headers = message.headers()
    return Record(
        message.topic(),  # type: ignore[arg-type]  # set on every consumed message
        message.partition(),  # type: ignore[arg-type]
        message.offset(),  # type: ignore[arg-type]
        stamp,
        _TIMESTAMP_TYPES.get(kind, _CREATE_TIME),
        message.key(),
        message.value(),
        tuple(headers) if headers else (),  # type: ignore[arg-type]  # list of (str, bytes)
    )


class KafkaSource:
    """The consumer: subscribe, poll records, pause and resume, commit explicit offsets."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        listener: AssignmentListener,
        counters: Counters,
        *,
        overrides: Mapping[str, Any] | None = None,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
        error_classifier: ClientErrorClassifier | None = None,
    ) -> None:
        self._mapping = mapping
        self._classify = error_classifier or default_error_classifier
        self._listener = listener
        self._counters = counters
        self._client_errors: list[KafkaError] = []
        settings = consumer_settings(mapping, overrides)
        settings["error_cb"] = self._client_errors.append
        settings["on_commit"] = self._on_commit
        self._cooperative = settings["partition.assignment.strategy"] == "cooperative-sticky"
        self._consumer = consumer_factory(settings)
        self._closed = False

    def subscribe(self) -> None:
        """Join the group on the mapping's one topic."""
        self._consumer.subscribe(
            [self._mapping.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` records; raises MappingStopped on errors AWS stops for.

        librdkafka's ``consume(n, timeout)`` waits the whole timeout unless ``n`` records
        arrive, so the wait is for one record only, then whatever else is queued is taken
        at once: a lone record is handed on as soon as it lands.
        """
        messages = self._consumer.consume(max_records, timeout=0)
        if not messages and timeout_s > 0:
            messages = self._consumer.consume(1, timeout=timeout_s)
            if messages and max_records > 1:
                messages.extend(self._consumer.consume(max_records - 1, timeout=0))
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(to_record(message))
            else:
                self._on_error(error)
        self._raise_client_errors()
        if records:
            self._counters.add(Metric.POLLED, len(records))
        return records

    def pause(self, partitions: list[PartitionId]) -> None:
        """Stop fetching ``partitions`` (backpressure).

        librdkafka drops what it had prefetched for them, and notices a resume only when
        its fetcher next wakes (up to a second): the poller pauses only while other
        partitions keep fetching.
        """
        if partitions:
            self._consumer.pause([TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: list[PartitionId]) -> None:
        """Fetch ``partitions`` again."""
        if partitions:
            self._consumer.resume([TopicPartition(t, p) for t, p in partitions])

    def commit(self, offsets: Mapping[PartitionId, int], *, wait: bool = True) -> bool:
        """Commit ``next offset to read`` per partition; False when a waited commit failed.

        ``wait=False`` sends the commit without a broker round trip in the loop: a failure
        then arrives through ``on_commit`` and only means those records may come again.
        """
        if not offsets:
            return True
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if wait:
                self._consumer.commit(offsets=partitions, asynchronous=False)
            else:
                self._consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as exc:
            self._counters.add(Metric.COMMIT_ERROR)
            log.warning("commit failed: %s", exc.args[0].str(), extra={"offsets": _named(offsets)})
            return False
        return True

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        failed = [tp for tp in partitions if tp.error is not None]
        if error is None and not failed:
            return
        self._counters.add(Metric.COMMIT_ERROR)
        first = error if error is not None else failed[0].error
        cause = first.str() if first is not None else "unknown error"
        log.warning(
            "commit failed: %s",
            cause,
            extra={"offsets": {_name(tp): tp.offset for tp in partitions}},
        )

    def close(self) -> None:
        """Leave the group (revoking partitions through the listener) and free the client."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def watermarks(self, partition: PartitionId, timeout_s: float = 5.0) -> tuple[int, int]:
        """(low, high) offsets of ``partition`` from the broker."""
        low, high = self._consumer.get_watermark_offsets(TopicPartition(*partition), timeout_s)
        return int(low), int(high)

    # -- rebalance callbacks (run on the poll thread, inside consume()) ------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._place_new_partitions(consumer, partitions)
        if self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        log.info("partitions assigned", extra={"partitions": [_name(tp) for tp in partitions]})
        self._listener.on_assigned([(tp.topic, tp.partition) for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._listener.on_revoked([(tp.topic, tp.partition) for tp in partitions], lost=False)
        log.info("partitions revoked", extra={"partitions": [_name(tp) for tp in partitions]})
        # confluent-kafka unassigns (incrementally when cooperative) after this returns.

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._listener.on_revoked([(tp.topic, tp.partition) for tp in partitions], lost=True)
        log.warning("partitions lost", extra={"partitions": [_name(tp) for tp in partitions]})

    def _place_new_partitions(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Committed offsets win; only partitions without one start at StartingPosition."""
        committed = consumer.committed(partitions, timeout=30)
        fresh = [tp for tp in committed if tp.offset == OFFSET_INVALID]
        if not fresh:
            return
        starts = self._starting_offsets(consumer, fresh)
        for tp in partitions:
            if (tp.topic, tp.partition) in starts:
                tp.offset = starts[(tp.topic, tp.partition)]

    def _starting_offsets(
        self, consumer: Consumer, fresh: list[TopicPartition]
    ) -> dict[PartitionId, int]:
        position = self._mapping.starting_position
        if position is StartingPosition.TRIM_HORIZON:
            return {(tp.topic, tp.partition): OFFSET_BEGINNING for tp in fresh}
        if position is StartingPosition.LATEST:
            return {(tp.topic, tp.partition): OFFSET_END for tp in fresh}
        stamp_ms = int((self._mapping.starting_position_timestamp or 0) * 1000)
        found = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, stamp_ms) for tp in fresh], timeout=30
        )
        # No record at or after the timestamp: start at the end, like AWS.
        return {
            (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else OFFSET_END for tp in found
        }

    # -- errors --------------------------------------------------------------------------
    def _on_error(self, error: KafkaError) -> None:
        if error.code() in _QUIET_ERRORS:
            return
        if error.code() in _AUTHZ_ERRORS:
            raise MappingStopped(
                StateTransitionReason.EVENT_SOURCE_AUTHZ_ERROR, problem(CLUSTER_FAILED_TO_AUTHORIZE)
            )
        self._counters.add(Metric.POLLING_ERROR)
        log.warning("polling error: %s", error.str(), extra={"code": error.name()})

    def _raise_client_errors(self) -> None:
        errors, self._client_errors[:] = list(self._client_errors), []
        for error in errors:
            stopped = self._classify(error)
            if stopped is not None:
                raise stopped
            self._counters.add(Metric.POLLING_ERROR)
            log.warning("client error: %s", error.str(), extra={"code": error.name()})


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"


def _named(offsets: Mapping[PartitionId, int]) -> dict[str, int]:
    return {f"{t}-{p}": o for (t, p), o in offsets.items()}
