"""Queue mode's source: a Kafka share group (KIP-932) read with confluent-kafka's ShareConsumer.

In Queue mode several pollers read the same partitions and the broker hands each record
to one member under a time lock; records are acknowledged one by one (ACCEPT, RELEASE,
REJECT) instead of committing a partition offset. This source owns that state:

* records fetched but not yet handed out (the client's ``max.poll.records`` is a soft
  limit, so a fetch may bring more than one batch asks for);
* records handed out and not yet acknowledged, with their delivery counts.

The share consumer refuses to fetch while a fetched record is unacknowledged, so
:meth:`ShareSource.poll` fetches only when both are empty and otherwise returns what is
buffered, or nothing. Nothing is acknowledged implicitly: a crash leaves records acquired
and the broker redelivers them when their lock expires (at-least-once).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, cast

from confluent_kafka import AcknowledgeType, KafkaError, KafkaException, ShareConsumer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # ConfigResource: re-exported
    AdminClient,
    ConfigResource,
)

from runtime.client_settings import CONSUMER_ONLY_SETTINGS
from runtime.definition.model import EventSourceMapping
from runtime.definition.vocabulary import CLUSTER_FAILED_TO_AUTHORIZE
from runtime.observability.counters import Counters, Metric
from runtime.observability.reachability import STATS_INTERVAL_MS, Reachability
from runtime.observability.scaling import WorkloadMeter
from runtime.observability.state import (
    MappingStatus,
    MappingStopped,
    StateTransitionReason,
    problem,
)
from runtime.pipeline.source import (
    AUTHZ_ERRORS,
    AssignmentListener,
    ClientConnection,
    ClientErrors,
    to_record,
)
from runtime.records import PartitionId, Record

log = logging.getLogger(__name__)

SHARE_PROTOCOLS_SETTING = "group.coordinator.rebalance.protocols"
"""The broker setting whose list must include ``share`` for share groups to work."""
SHARE_FEATURE = "share.version"
"""The cluster feature that turns share groups on (``kafka-features.sh upgrade``)."""
LOCK_SETTING = "share.record.lock.duration.ms"
"""The share group's record lock (group config), overriding the broker's default."""
BROKER_LOCK_SETTING = "group.share.record.lock.duration.ms"
"""The broker-wide default record lock."""

BROKER_DELIVERY_LIMIT_SETTING = "group.share.delivery.count.limit"
"""The broker-wide default of deliveries before a record is archived."""
DELIVERY_LIMIT_SETTING = "share.delivery.count.limit"
"""The share group's own delivery limit (Apache Kafka 4.3+)."""
DEFAULT_LOCK_MS = 30_000
DEFAULT_DELIVERY_LIMIT = 5
"""Apache Kafka's defaults for the two settings above."""

_SHARE_SETTINGS_ALLOWED = frozenset({"client.id", "max.poll.records"})
"""Consumer-only keys the share consumer does accept; every other one it refuses."""
_SHARE_ONLY_SETTINGS = frozenset({"share.acknowledgement.mode", "max.poll.records"})

RecordKey = tuple[str, int, int]
"""``(topic, partition, offset)``: how an acquired record is named to the broker."""


class Acknowledgement(StrEnum):
    """What the poller tells the broker about a record it was given."""

    ACCEPT = "ACCEPT"
    """Processed (or written to the on-failure destination): never delivered again."""
    RELEASE = "RELEASE"
    """Give it back now: redelivered (to any member), counted against the delivery limit."""
    REJECT = "REJECT"
    """Unprocessable: archived, never delivered again."""


_CLIENT_TYPES: Mapping[Acknowledgement, AcknowledgeType] = {
    Acknowledgement.ACCEPT: AcknowledgeType.ACCEPT,
    Acknowledgement.RELEASE: AcknowledgeType.RELEASE,
    Acknowledgement.REJECT: AcknowledgeType.REJECT,
}


class ShareGroupsUnavailable(MappingStopped):
    """The cluster cannot serve share groups: the mapping stops (ESM_CONFIG_NOT_VALID) and
    its LastProcessingResult names the broker and the setting to enable."""

    def __init__(self, message: str) -> None:
        super().__init__(StateTransitionReason.ESM_CONFIG_NOT_VALID, problem(message))


class AcknowledgementError(RuntimeError):
    """A record was acknowledged that this source did not hand out (or acknowledged twice)."""


@dataclass(frozen=True)
class ShareGroupSupport:
    """What a broker says about share groups (librdkafka cannot read feature levels)."""

    broker_id: int
    protocols: tuple[str, ...]
    """The broker's ``group.coordinator.rebalance.protocols``; empty when unknown."""
    record_lock_ms: int | None
    """The broker's default record lock; None on brokers older than 4.0 (no share groups)."""
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    """The broker's ``group.share.delivery.count.limit``."""

    @property
    def enabled(self) -> bool:
        """True when the broker lists the share protocol."""
        return "share" in self.protocols

    def problem(self) -> str | None:
        """Why share groups cannot work here, naming the version and the setting; or None."""
        if self.enabled:
            return None
        if self.record_lock_ms is None:
            return (
                f"broker {self.broker_id} has no share groups: it is older than Apache Kafka 4.0 "
                "(it lacks group.share.* settings); Queue mode needs Apache Kafka 4.2 or newer"
            )
        listed = ",".join(self.protocols) or "(unset)"
        return (
            f"broker {self.broker_id} does not serve share groups: "
            f"{SHARE_PROTOCOLS_SETTING}={listed} lacks 'share'. Queue mode needs Apache Kafka "
            f"4.2+ with {SHARE_PROTOCOLS_SETTING} including share and the feature enabled "
            f"(kafka-features.sh --bootstrap-server HOST:PORT upgrade --feature {SHARE_FEATURE}=1)"
        )


def share_group_support(admin: AdminClient, timeout_s: float = 10.0) -> ShareGroupSupport:
    """Ask one broker (DescribeConfigs) whether it serves share groups."""
    metadata = admin.list_topics(timeout=timeout_s)
    broker_id = min(metadata.brokers)
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    configs = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(
        timeout=timeout_s
    )
    protocols = configs.get(SHARE_PROTOCOLS_SETTING)
    lock = configs.get(BROKER_LOCK_SETTING)
    limit = configs.get(BROKER_DELIVERY_LIMIT_SETTING)
    return ShareGroupSupport(
        broker_id=broker_id,
        protocols=tuple(p.strip() for p in (protocols.value or "").split(",") if p.strip())
        if protocols is not None
        else (),
        record_lock_ms=int(lock.value) if lock is not None and lock.value else None,
        delivery_limit=int(limit.value)
        if limit is not None and limit.value
        else DEFAULT_DELIVERY_LIMIT,
    )


def require_share_groups(admin: AdminClient, timeout_s: float = 10.0) -> ShareGroupSupport:
    """:func:`share_group_support`, raising :class:`ShareGroupsUnavailable` when they are off."""
    support = share_group_support(admin, timeout_s)
    problem = support.problem()
    if problem is not None:
        raise ShareGroupsUnavailable(problem)
    return support


@dataclass(frozen=True)
class ShareGroupTerms:
    """What the broker will do with a record this group holds: lock it, count deliveries."""

    record_lock_ms: int
    """How long a handed-out record stays with its member before the broker takes it back."""
    delivery_limit: int
    """Deliveries after which a released or expired record is archived, not redelivered."""
    lock_source: str
    """Where ``record_lock_ms`` comes from: the group's config, or the broker's default."""

    def lock_problem(self, function_timeout_s: float) -> str | None:
        """Why the lock is too short for the function, with the numbers; or None."""
        if self.record_lock_ms >= function_timeout_s * 1000:
            return None
        return (
            f"the share group's record lock ({self.record_lock_ms} ms, {self.lock_source}) is "
            f"shorter than the function timeout ({function_timeout_s * 1000:.0f} ms): a record "
            "whose function runs past the lock is handed to another poller while it still runs "
            f"(a duplicate). Raise the group's {LOCK_SETTING} (and the broker's "
            "group.share.max.record.lock.duration.ms) or lower the function timeout"
        )


def read_share_group_terms(
    admin: AdminClient, group: str, timeout_s: float = 10.0
) -> ShareGroupTerms:
    """Check the cluster serves share groups, then read ``group``'s lock and delivery limit.

    The group's own configs win over the broker's defaults; a group that cannot be
    described (new, or no DescribeConfigs ACL on it) uses the broker's.
    """
    support = require_share_groups(admin, timeout_s)
    group_configs = _group_configs(admin, group, timeout_s)
    lock = group_configs.get(LOCK_SETTING)
    limit = group_configs.get(DELIVERY_LIMIT_SETTING)
    return ShareGroupTerms(
        record_lock_ms=int(lock) if lock else support.record_lock_ms or DEFAULT_LOCK_MS,
        delivery_limit=int(limit) if limit else support.delivery_limit,
        lock_source=f"group {group}" if lock else f"broker {BROKER_LOCK_SETTING}",
    )


def _group_configs(admin: AdminClient, group: str, timeout_s: float) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.GROUP, group)
    try:
        described = admin.describe_configs([resource], request_timeout=timeout_s)[resource]
        configs = described.result(timeout=timeout_s)
    except KafkaException as exc:
        log.info("group %s's configs not readable (%s): using the broker's", group, exc)
        return {}
    # Only values set on the group itself: a described default repeats the broker's.
    return {
        name: entry.value
        for name, entry in configs.items()
        if entry.value is not None and not entry.is_default
    }


def _admin_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The share consumer's connection and security settings, for an admin client."""
    return {
        key: value
        for key, value in settings.items()
        if key not in CONSUMER_ONLY_SETTINGS and key not in _SHARE_ONLY_SETTINGS
    }


def share_group_id(mapping: EventSourceMapping) -> str:
    """The share group's id: the mapping's ConsumerGroupId, else its UUID (as AWS does)."""
    return mapping.consumer_group_id


def share_consumer_settings(
    mapping: EventSourceMapping,
    security: Mapping[str, Any] | None = None,
    *,
    max_poll_records: int | None = None,
) -> dict[str, Any]:
    """librdkafka settings for the share consumer: Stream mode's security, explicit acks.

    ``security`` is what Stream mode uses (:meth:`SecuritySession.client_settings`);
    keys only a classic consumer understands are dropped, since librdkafka refuses
    them on a share consumer ("not applicable for share consumer").
    """
    kept = {
        key: value
        for key, value in (security or {}).items()
        if key not in CONSUMER_ONLY_SETTINGS or key in _SHARE_SETTINGS_ALLOWED
    }
    return {
        "bootstrap.servers": ",".join(mapping.bootstrap_servers),
        "client.id": f"kafka-esm-{mapping.uuid[:8]}",
        **kept,
        "group.id": share_group_id(mapping),
        "share.acknowledgement.mode": "explicit",
        "max.poll.records": max_poll_records or mapping.batch_size,
    }


class ShareSource:
    """Queue mode's :class:`~runtime.pipeline.source.Source`: a share-group member.

    Share groups assign no partitions to a member, so the assignment listener hears
    nothing and pause/resume do nothing: the share consumer itself stops fetching while
    records it handed out are unacknowledged. The :class:`AcknowledgementLedger` tells
    it what to acknowledge (:meth:`acknowledge`, :meth:`commit`).
    """

    def __init__(
        self,
        mapping: EventSourceMapping,
        counters: Counters,
        connection: ClientConnection,
        *,
        status: MappingStatus | None = None,
        workload: WorkloadMeter | None = None,
        max_poll_records: int | None = None,
        function_timeout_s: float | None = None,
    ) -> None:
        self._mapping = mapping
        self._function_timeout_s = function_timeout_s
        self._counters = counters
        self._connection = connection
        self._status = status or MappingStatus()
        self._workload = workload or WorkloadMeter()
        self._max_poll_records = max_poll_records
        self._reach = Reachability(self._status)
        self._errors = ClientErrors(connection, counters, self._reach)
        self._consumer: ShareConsumer | None = None
        self._terms: ShareGroupTerms | None = None
        self._fetched: deque[Record] = deque()
        self._unacknowledged: set[RecordKey] = set()

    @property
    def group_id(self) -> str:
        """The share group this source reads as."""
        return share_group_id(self._mapping)

    @property
    def terms(self) -> ShareGroupTerms:
        """The group's record lock and delivery limit, read when the source subscribed."""
        if self._terms is None:
            raise RuntimeError("the source is used before subscribe()")
        return self._terms

    def subscribe(self, listener: AssignmentListener | None = None) -> None:
        """Connect (secrets, sign-in), check the cluster serves share groups, read the
        group's lock and delivery limit (warning when the lock is shorter than the
        function timeout), and join on the mapping's one topic.

        Raises ShareGroupsUnavailable when the cluster has no share groups.
        """
        security = dict(self._connection.connect())
        settings = share_consumer_settings(
            self._mapping, security, max_poll_records=self._max_poll_records
        )
        self._terms = read_share_group_terms(AdminClient(_admin_settings(settings)), self.group_id)
        settings["error_cb"] = self._errors.append
        settings.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        settings["stats_cb"] = self._reach.on_stats
        # The launcher built the connection with the share-consumer class.
        consumer = cast(ShareConsumer, self._connection.consumer_factory(settings))
        consumer.subscribe([self._mapping.topic])
        self._consumer = consumer

    @property
    def _client(self) -> ShareConsumer:
        if self._consumer is None:
            raise RuntimeError("the source is used before subscribe()")
        return self._consumer

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` acquired records, across partitions and in no set order.

        Fetches from the broker only once every record handed out was acknowledged
        (the share consumer's rule); until then returns what is buffered, or ``[]`` at
        once. Raises MappingStopped on errors AWS stops for.
        """
        if not self._fetched and not self._unacknowledged:
            self._fetch(timeout_s)
            self._errors.raise_pending()
        handed: list[Record] = []
        while self._fetched and len(handed) < max_records:
            record = self._fetched.popleft()
            self._unacknowledged.add(_key(record))
            handed.append(record)
        return handed

    def last_delivery(self, record: Record) -> bool:
        """True when releasing ``record`` would archive it: the broker's delivery limit."""
        return record.delivery_count >= self.terms.delivery_limit

    def unacknowledged(self) -> int:
        """Records handed out and not yet acknowledged."""
        return len(self._unacknowledged)

    def acknowledge(self, records: Iterable[Record], kind: Acknowledgement) -> None:
        """Mark ``records`` ACCEPT, RELEASE or REJECT; sent with the next commit or fetch."""
        client_type = _CLIENT_TYPES[kind]
        for record in records:
            key = _key(record)
            if key not in self._unacknowledged:
                raise AcknowledgementError(
                    f"record {_name(key)} cannot be acknowledged {kind}: it is not held by "
                    "this source (never handed out, or already acknowledged)"
                )
            self._unacknowledged.discard(key)
            self._client.acknowledge_offset(*key, client_type)

    def commit(self, *, wait: bool = True, timeout_s: float = 30.0) -> bool:
        """Send the acknowledgements; with ``wait``, wait and return False when a
        partition refused them.

        A refused acknowledgement is not lost work: the records stay acquired until
        their lock expires and are then delivered again.
        """
        if not wait:
            self._client.commit_async()
            return True
        results = self._client.commit_sync(timeout_s)
        failed = {tp: error for tp, error in (results or {}).items() if error is not None}
        for tp, error in failed.items():
            self._counters.add(Metric.COMMIT_ERROR)
            log.warning("acknowledgement for %s-%s failed: %s", tp.topic, tp.partition, error)
        return not failed

    def pause(self, partitions: Collection[PartitionId]) -> None:
        """Nothing to pause: the share consumer fetches only once everything is acknowledged."""

    def resume(self, partitions: Collection[PartitionId]) -> None:
        """Nothing was paused."""

    @property
    def paused(self) -> frozenset[PartitionId]:
        """Always empty (see :meth:`pause`)."""
        return frozenset()

    def close(self) -> None:
        """Release what was fetched but never handed out, send acknowledgements, leave."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        leftovers = list(self._fetched)
        self._fetched.clear()
        for record in leftovers:
            consumer.acknowledge_offset(*_key(record), AcknowledgeType.RELEASE)
        # Records handed out but unacknowledged stay acquired: the broker redelivers
        # them when their lock expires, so a stop never loses one.
        consumer.close()

    def _fetch(self, timeout_s: float) -> None:
        polled = 0
        try:
            messages = self._client.poll(timeout_s)
        except KafkaException as exc:  # a fatal client error (authorization, say)
            self._on_error(exc.args[0])
            return
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            record = to_record(message)
            deliveries = message.delivery_count() or 1
            if deliveries > 1:
                record = replace(record, delivery_count=deliveries)
                self._counters.add(Metric.REDELIVERED)
            self._fetched.append(record)
            polled += 1
        if polled:
            self._counters.add(Metric.POLLED, polled)
            self._workload.polled(self._fetched)
            self._workload.delivered(self._fetched)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in (
            KafkaError.UNSUPPORTED_VERSION,
            KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        ):
            raise ShareGroupsUnavailable(
                f"the cluster refused the share-group protocol ({error.str()}): Queue mode needs "
                f"Apache Kafka 4.2+ with {SHARE_PROTOCOLS_SETTING} including share"
            )
        if error.code() in AUTHZ_ERRORS:
            raise MappingStopped(
                StateTransitionReason.EVENT_SOURCE_AUTHZ_ERROR, problem(CLUSTER_FAILED_TO_AUTHORIZE)
            )
        if error.fatal():
            raise KafkaException(error)
        self._errors.polling(error, "share polling error")


def _key(record: Record) -> RecordKey:
    return (record.topic, record.partition, record.offset)


def _name(key: RecordKey) -> str:
    return f"{key[0]}-{key[1]}-{key[2]}"


def configure_share_group(
    admin: AdminClient, group: str, settings: Mapping[str, str], timeout_s: float = 10.0
) -> None:
    """Set group configs on the broker (``share.auto.offset.reset``, the record lock...).

    Queue mode has no StartingPosition: where a new share group starts is its
    ``share.auto.offset.reset`` (``latest`` unless set, ``earliest``, or
    ``by_duration:<ISO 8601>``). Set it before the first poller joins.
    """
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # noqa: PLC0415
        AlterConfigOpType,
        ConfigEntry,
    )

    entries = [
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        for key, value in settings.items()
    ]
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=entries)
    admin.incremental_alter_configs([resource], request_timeout=timeout_s)[resource].result(
        timeout=timeout_s
    )
