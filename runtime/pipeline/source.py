"""Where records come from: the :class:`Source` protocol the poll loop depends on, and the
consumer-group source that implements it (Stream mode).

:class:`ConsumerGroupSource` joins ConsumerGroupId (else the mapping's UUID) with
auto-commit off, places partitions that have no committed offset at the mapping's
StartingPosition, turns messages into :class:`~runtime.records.Record` values, and
commits explicit offsets. How it reaches the cluster (settings, secrets, sign-in, error
policy) is a :class:`ClientConnection` it is given: security composes in, it does not
subclass. Only the poll loop's thread touches the consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from itertools import repeat
from operator import itemgetter
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

from runtime.client_settings import consumer_settings
from runtime.definition.model import EventSourceMapping, StartingPosition
from runtime.definition.vocabulary import (
    CLUSTER_FAILED_TO_AUTHORIZE,
    SASL_AUTHENTICATION_FAILED,
)
from runtime.observability.client_errors import RepeatLimiter
from runtime.observability.counters import Counters, Metric
from runtime.observability.reachability import STATS_INTERVAL_MS, Reachability
from runtime.observability.scaling import WorkloadMeter
from runtime.observability.state import (
    MappingStatus,
    MappingStopped,
    StateTransitionReason,
    problem,
)
from runtime.records import PartitionId, Record, TimestampType

log = logging.getLogger("runtime.pipeline.source")

_TIMESTAMP_TYPES = {
    TIMESTAMP_LOG_APPEND_TIME: TimestampType.LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE: TimestampType.NO_TIMESTAMP_TYPE,
}
_CREATE_TIME = TimestampType.CREATE_TIME
_FIRST: Callable[[tuple[int, int]], int] = itemgetter(0)
_SECOND: Callable[[tuple[int, int]], int] = itemgetter(1)
AUTHZ_ERRORS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
_QUIET_ERRORS = frozenset({KafkaError._PARTITION_EOF, KafkaError._NO_OFFSET})


class AssignmentListener(Protocol):
    """What the poller does when the group gives or takes partitions."""

    def on_assigned(self, partitions: list[PartitionId]) -> None:
        """``partitions`` now belong to this consumer."""

    def on_revoked(self, partitions: list[PartitionId], lost: bool) -> None:
        """``partitions`` are leaving; ``lost`` means commits for them will fail."""


class Source(Protocol):
    """What the poll loop needs from Kafka, whichever kind of group reads the topic.

    Telling the broker what is settled (committing offsets, acknowledging records) is
    the ledger's :meth:`~runtime.pipeline.offsets.Ledger.flush`, through the source.
    """

    def subscribe(self, listener: AssignmentListener) -> None:
        """Connect and join; ``listener`` hears of partitions given and taken.

        Raises MappingStopped when the cluster refuses the mapping (as AWS would stop it).
        """

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first."""

    def pause(self, partitions: Collection[PartitionId]) -> None:
        """Stop fetching ``partitions`` (backpressure)."""

    def resume(self, partitions: Collection[PartitionId]) -> None:
        """Fetch ``partitions`` again."""

    @property
    def paused(self) -> frozenset[PartitionId]:
        """Partitions paused now."""

    def close(self) -> None:
        """Leave the group (revoking through the listener) and free the client."""


class ClientConnection(Protocol):
    """How a source reaches the cluster: settings, the client, and the error policy."""

    def connect(self) -> Mapping[str, Any]:
        """The client settings, once the cluster may be used (secrets read, sign-in checked).

        Raises MappingStopped when it may not.
        """

    def consumer_factory(self, settings: dict[str, Any]) -> Consumer:
        """Build the consumer for ``settings``."""

    def classify(self, error: KafkaError) -> MappingStopped | None:
        """The stop AWS would make for a client-level error, or None to keep polling."""


class PlainConnection:
    """A cluster reached with the given settings only (no SourceAccessConfigurations)."""

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
    ) -> None:
        self._overrides = dict(overrides or {})
        self._consumer_factory = consumer_factory

    def connect(self) -> Mapping[str, Any]:
        """The settings as given."""
        return self._overrides

    def consumer_factory(self, settings: dict[str, Any]) -> Consumer:
        """A consumer built with ``settings``."""
        return self._consumer_factory(settings)

    def classify(self, error: KafkaError) -> MappingStopped | None:
        """Authentication failures stop the consumer; the security layer refines messages."""
        if error.code() == KafkaError._AUTHENTICATION:
            return MappingStopped(
                StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR, problem(SASL_AUTHENTICATION_FAILED)
            )
        return None


class ClientErrors:
    """librdkafka's client-level errors (its ``error_cb``), acted on in the poll thread:
    a stop AWS would make is raised, the rest counted, fed to the reachability tracker
    and logged once per distinct error and interval. Both sources use it."""

    def __init__(
        self, connection: ClientConnection, counters: Counters, reach: Reachability
    ) -> None:
        self._connection = connection
        self._counters = counters
        self._reach = reach
        self._said = RepeatLimiter(log)
        self._pending: list[KafkaError] = []

    def append(self, error: KafkaError) -> None:
        """librdkafka's ``error_cb``: keep the error for the poll thread."""
        self._pending.append(error)

    def raise_pending(self) -> None:
        """Act on the errors collected since the last call."""
        errors, self._pending[:] = list(self._pending), []
        for error in errors:
            stopped = self._connection.classify(error)
            if stopped is not None:
                raise stopped
            self._counters.add(Metric.POLLING_ERROR)
            self._reach.on_error(error)
            self._said.warning(error.name(), f"client error: {error.str()}")

    def polling(self, error: KafkaError, what: str) -> None:
        """A message-level error that does not stop the mapping: counted and logged."""
        self._counters.add(Metric.POLLING_ERROR)
        self._said.warning(error.name(), f"{what}: {error.str()}")


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


def to_records(messages: list[Message]) -> list[Record]:
    """:func:`to_record` for one poll's messages (none an error), column by column: each
    accessor is mapped in C over the poll, leaving the record's constructor as the one
    Python call per record."""
    stamps = list(map(Message.timestamp, messages))
    headers = list(map(Message.headers, messages))
    return list(
        map(
            Record,
            map(Message.topic, messages),
            map(Message.partition, messages),
            map(Message.offset, messages),
            map(_SECOND, stamps),
            map(_TIMESTAMP_TYPES.get, map(_FIRST, stamps), repeat(_CREATE_TIME)),
            map(Message.key, messages),
            map(Message.value, messages),
            [tuple(h) if h else () for h in headers] if any(headers) else repeat(()),
        )
    )


class ConsumerGroupSource:
    """Stream mode: the mapping's consumer group, explicit offsets, pause and resume."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        counters: Counters,
        connection: ClientConnection,
        *,
        status: MappingStatus | None = None,
        workload: WorkloadMeter | None = None,
    ) -> None:
        self._mapping = mapping
        self._counters = counters
        self._workload = workload or WorkloadMeter()
        self._connection = connection
        self._status = status or MappingStatus()
        self._reach = Reachability(self._status)
        self._errors = ClientErrors(connection, counters, self._reach)
        self._consumer: Consumer | None = None
        self._listener: AssignmentListener | None = None
        self._cooperative = True
        self._paused: set[PartitionId] = set()
        self._failed_commits: set[PartitionId] = set()
        """Filled by librdkafka's commit callback, on the poll thread, like every use."""

    def subscribe(self, listener: AssignmentListener) -> None:
        """Connect (secrets, sign-in), build the consumer and join on the mapping's topic."""
        settings = consumer_settings(self._mapping, self._connection.connect())
        settings["error_cb"] = self._errors.append
        settings["on_commit"] = self._on_commit
        settings.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        settings["stats_cb"] = self._reach.on_stats
        # KIP-848's consumer protocol assigns incrementally, as cooperative-sticky does.
        self._cooperative = settings.get("group.protocol") == "consumer" or (
            settings.get("partition.assignment.strategy") == "cooperative-sticky"
        )
        self._listener = listener
        self._consumer = self._connection.consumer_factory(settings)
        self._consumer.subscribe(
            [self._mapping.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    @property
    def _client(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("the source is used before subscribe()")
        return self._consumer

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` records; raises MappingStopped on errors AWS stops for.

        librdkafka's ``consume(n, timeout)`` waits the whole timeout unless ``n`` records
        arrive, so the wait is for one record only, then whatever else is queued is taken
        at once: a lone record is handed on as soon as it lands.
        """
        consumer = self._client
        messages = consumer.consume(max_records, timeout=0)
        if not messages and timeout_s > 0:
            messages = consumer.consume(1, timeout=timeout_s)
            if messages and max_records > 1:
                messages.extend(consumer.consume(max_records - 1, timeout=0))
        errors = [e for e in map(Message.error, messages) if e is not None]
        for error in errors:
            self._on_error(error)
        if errors:
            messages = [message for message in messages if message.error() is None]
        records = to_records(messages)
        self._errors.raise_pending()
        if records:
            self._counters.add(Metric.POLLED, len(records))
            self._workload.polled(records)
        return records

    def pause(self, partitions: Collection[PartitionId]) -> None:
        """Stop fetching ``partitions`` (backpressure).

        librdkafka drops what it had prefetched for them, and notices a resume only when
        its fetcher next wakes (up to a second): the poller pauses only while other
        partitions keep fetching.
        """
        if partitions:
            self._client.pause([TopicPartition(t, p) for t, p in partitions])
            self._paused.update(partitions)

    def resume(self, partitions: Collection[PartitionId]) -> None:
        """Fetch ``partitions`` again."""
        if partitions:
            self._client.resume([TopicPartition(t, p) for t, p in partitions])
            self._paused.difference_update(partitions)

    @property
    def paused(self) -> frozenset[PartitionId]:
        """Partitions paused for backpressure (librdkafka offers no way to ask it)."""
        return frozenset(self._paused)

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
                self._client.commit(offsets=partitions, asynchronous=False)
            else:
                self._client.commit(offsets=partitions, asynchronous=True)
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
        self._failed_commits.update((tp.topic, tp.partition) for tp in (failed or partitions))

    def take_failed_commits(self) -> set[PartitionId]:
        """Partitions whose commit sent without waiting failed since the last call (the
        ledger offers their offsets again: otherwise an idle partition's last commit,
        lost in a broker restart, would never be retried)."""
        failed, self._failed_commits = self._failed_commits, set()
        return failed

    def close(self) -> None:
        """Leave the group (revoking partitions through the listener) and free the client.

        The client stays usable until ``close`` returns: the revocation it triggers
        commits what settled (an earlier commit may have failed during a rebalance and be
        offered again), as librdkafka allows inside its rebalance callback.
        """
        consumer = self._consumer
        if consumer is not None:
            try:
                consumer.close()
            finally:
                self._consumer = None

    # -- rebalance callbacks (run on the poll thread, inside consume()) ------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._place_new_partitions(consumer, partitions)
        if self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        log.info("partitions assigned", extra={"partitions": [_name(tp) for tp in partitions]})
        self._heard().on_assigned([(tp.topic, tp.partition) for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget_paused(partitions)
        self._heard().on_revoked([(tp.topic, tp.partition) for tp in partitions], lost=False)
        log.info("partitions revoked", extra={"partitions": [_name(tp) for tp in partitions]})
        # confluent-kafka unassigns (incrementally when cooperative) after this returns.

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget_paused(partitions)
        self._heard().on_revoked([(tp.topic, tp.partition) for tp in partitions], lost=True)
        log.warning("partitions lost", extra={"partitions": [_name(tp) for tp in partitions]})

    def _heard(self) -> AssignmentListener:
        assert self._listener is not None  # callbacks run only after subscribe()
        return self._listener

    def _forget_paused(self, partitions: list[TopicPartition]) -> None:
        self._paused.difference_update((tp.topic, tp.partition) for tp in partitions)

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
        if error.code() in AUTHZ_ERRORS:
            raise MappingStopped(
                StateTransitionReason.EVENT_SOURCE_AUTHZ_ERROR, problem(CLUSTER_FAILED_TO_AUTHORIZE)
            )
        self._errors.polling(error, "polling error")


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"


def _named(offsets: Mapping[PartitionId, int]) -> dict[str, int]:
    return {f"{t}-{p}": o for (t, p), o in offsets.items()}
