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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import AcknowledgeType, KafkaError, KafkaException, ShareConsumer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # ConfigResource: re-exported
    AdminClient,
    ConfigResource,
)

from runtime.client_settings import CONSUMER_ONLY_SETTINGS
from runtime.definition.model import EventSourceMapping
from runtime.pipeline.source import to_record
from runtime.records import Record

log = logging.getLogger(__name__)

SHARE_PROTOCOLS_SETTING = "group.coordinator.rebalance.protocols"
"""The broker setting whose list must include ``share`` for share groups to work."""
SHARE_FEATURE = "share.version"
"""The cluster feature that turns share groups on (``kafka-features.sh upgrade``)."""
LOCK_SETTING = "share.record.lock.duration.ms"
"""The share group's record lock (group config), overriding the broker's default."""
BROKER_LOCK_SETTING = "group.share.record.lock.duration.ms"
"""The broker-wide default record lock."""

_SHARE_SETTINGS_ALLOWED = frozenset({"client.id", "max.poll.records"})
"""Consumer-only keys the share consumer does accept; every other one it refuses."""

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


class ShareGroupsUnavailable(RuntimeError):
    """The cluster cannot serve share groups; the message says what to enable."""


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
    return ShareGroupSupport(
        broker_id=broker_id,
        protocols=tuple(p.strip() for p in (protocols.value or "").split(",") if p.strip())
        if protocols is not None
        else (),
        record_lock_ms=int(lock.value) if lock is not None and lock.value else None,
    )


def require_share_groups(admin: AdminClient, timeout_s: float = 10.0) -> ShareGroupSupport:
    """:func:`share_group_support`, raising :class:`ShareGroupsUnavailable` when they are off."""
    support = share_group_support(admin, timeout_s)
    problem = support.problem()
    if problem is not None:
        raise ShareGroupsUnavailable(problem)
    return support


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
    """Share-group consumer: subscribe, poll records, acknowledge each, commit, close."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        security: Mapping[str, Any] | None = None,
        *,
        consumer_factory: Callable[[dict[str, Any]], ShareConsumer] = ShareConsumer,
    ) -> None:
        self._mapping = mapping
        self._consumer = consumer_factory(share_consumer_settings(mapping, security))
        self._fetched: deque[tuple[Record, int]] = deque()
        self._unacknowledged: dict[RecordKey, int] = {}
        self._closed = False

    @property
    def group_id(self) -> str:
        """The share group this source reads as."""
        return share_group_id(self._mapping)

    def subscribe(self) -> None:
        """Join the share group on the mapping's one topic."""
        self._consumer.subscribe([self._mapping.topic])

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` acquired records, across partitions and in no set order.

        Fetches from the broker only once every record handed out was acknowledged
        (the share consumer's rule); until then returns what is buffered, or ``[]``.
        """
        if not self._fetched and not self._unacknowledged:
            self._fetch(timeout_s)
        handed: list[Record] = []
        while self._fetched and len(handed) < max_records:
            record, deliveries = self._fetched.popleft()
            self._unacknowledged[_key(record)] = deliveries
            handed.append(record)
        return handed

    def delivery_count(self, record: Record) -> int:
        """How many times the broker has delivered ``record`` (1 on its first delivery)."""
        key = _key(record)
        if key in self._unacknowledged:
            return self._unacknowledged[key]
        raise AcknowledgementError(f"record {_name(key)} is not held by this source")

    def unacknowledged(self) -> int:
        """Records handed out and not yet acknowledged."""
        return len(self._unacknowledged)

    def acknowledge(self, records: Iterable[Record], kind: Acknowledgement) -> None:
        """Mark ``records`` ACCEPT, RELEASE or REJECT; sent with the next commit or fetch."""
        client_type = _CLIENT_TYPES[kind]
        for record in records:
            key = _key(record)
            if self._unacknowledged.pop(key, None) is None:
                raise AcknowledgementError(
                    f"record {_name(key)} cannot be acknowledged {kind}: it is not held by "
                    "this source (never handed out, or already acknowledged)"
                )
            self._consumer.acknowledge_offset(*key, client_type)

    def commit(self, timeout_s: float = 30.0) -> bool:
        """Send the acknowledgements now and wait; False when a partition refused them.

        A refused acknowledgement is not lost work: the records stay acquired until
        their lock expires and are then delivered again.
        """
        results = self._consumer.commit_sync(timeout_s)
        failed = {tp: error for tp, error in (results or {}).items() if error is not None}
        for tp, error in failed.items():
            log.warning("acknowledgement for %s-%s failed: %s", tp.topic, tp.partition, error)
        return not failed

    def close(self) -> None:
        """Release what was fetched but never handed out, send acknowledgements, leave."""
        if self._closed:
            return
        self._closed = True
        leftovers = [record for record, _ in self._fetched]
        self._fetched.clear()
        for record in leftovers:
            self._consumer.acknowledge_offset(*_key(record), AcknowledgeType.RELEASE)
        # Records handed out but unacknowledged stay acquired: the broker redelivers
        # them when their lock expires, so a stop never loses one.
        self._consumer.close()

    def _fetch(self, timeout_s: float) -> None:
        for message in self._consumer.poll(timeout_s):
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            self._fetched.append((to_record(message), message.delivery_count() or 1))

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in (
            KafkaError.UNSUPPORTED_VERSION,
            KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        ):
            raise ShareGroupsUnavailable(
                f"the cluster refused the share-group protocol ({error.str()}): Queue mode needs "
                f"Apache Kafka 4.2+ with {SHARE_PROTOCOLS_SETTING} including share"
            )
        if error.fatal():
            raise KafkaException(error)
        log.warning("share polling error: %s", error.str(), extra={"code": error.name()})


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
