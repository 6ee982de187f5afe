"""The Kafka record as the poller sees it, independent of the client library.

confluent-kafka's ``Message`` cannot be built in tests and carries client state;
every stage after the source (filter, batcher, event builder, destinations) works
on this small immutable value instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from operator import attrgetter
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _immutable(cls: type[_T]) -> type[_T]:
    """A slotted dataclass that mypy treats as frozen, but that is not frozen at run time.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``:
    ~2 us for a record, six times a plain one, paid once per record on the poll thread.
    Type checking (mypy --strict in CI) still refuses any assignment to a field.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


class TimestampType(StrEnum):
    """Kafka's timestamp types, spelled as Lambda's event spells them."""

    CREATE_TIME = "CREATE_TIME"
    LOG_APPEND_TIME = "LOG_APPEND_TIME"
    NO_TIMESTAMP_TYPE = "NO_TIMESTAMP_TYPE"


Header = tuple[str, bytes | None]
PartitionId = tuple[str, int]
"""``(topic, partition)``: how every stage names a partition."""


@dataclass(frozen=True, slots=True)
class SchemaMetadata:
    """``keySchemaMetadata``/``valueSchemaMetadata``: how a schema registry decoded a part."""

    data_format: str
    """AVRO, PROTOBUF or JSON (JSON too for any schema when EventRecordFormat is JSON)."""
    schema_id: str
    """The Confluent schema id (decimal) or the Glue schema version UUID."""


@_immutable
class Record:
    """One record read from a topic partition.

    Immutable by contract: mypy --strict refuses an assignment to a field; a stage that
    changes a record makes a copy with ``dataclasses.replace``. The runtime class is
    not frozen because the poll loop builds one per record (see ``_immutable``).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: TimestampType = TimestampType.CREATE_TIME
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[Header, ...] = field(default_factory=tuple)
    delivery_count: int = 1
    """How many times the broker has handed this record out: always 1 in Stream mode;
    in Queue mode a share group counts every acquisition (a release or an expired lock
    brings the record back with the count raised)."""
    key_schema: SchemaMetadata | None = None
    value_schema: SchemaMetadata | None = None
    decoded_value: bytes | None = None
    """The value as JSON text when a registry decoded it and ``value`` is not that text
    (EventRecordFormat SOURCE): filters read this."""
    undecodable: str | None = None
    """Why a registry could not decode this record: it goes to the on-failure path."""

    @property
    def filter_value(self) -> bytes | None:
        """What filters match: the decoded value when there is one, else the value."""
        return self.value if self.decoded_value is None else self.decoded_value

    @property
    def partition_key(self) -> str:
        """``<topic>-<partition>``: how Lambda's event and failure reports name a partition."""
        return f"{self.topic}-{self.partition}"


def partition_runs(records: Sequence[Record]) -> Iterator[tuple[PartitionId, int, int]]:
    """``(partition, start, stop)`` for each run of consecutive records of one partition.

    A poll, a batch and a retried piece hold long runs, so the stages that work per
    partition slice ``records[start:stop]`` instead of taking a step per record (the
    grouping itself runs in C: ``groupby`` over ``attrgetter``).
    """
    if not records:
        return
    first, count = records[0], len(records)
    partitions = list(map(_PARTITION, records))
    if partitions.count(first.partition) == count:  # usually one partition, one topic
        topics = list(map(_TOPIC, records))
        if topics.count(first.topic) == count:
            yield (first.topic, first.partition), 0, count
            return
    start = 0
    for partition, run in groupby(map(_PARTITION_ID, records)):
        stop = start + len(list(run))
        yield partition, start, stop
        start = stop


_PARTITION_ID: Callable[[Record], PartitionId] = attrgetter("topic", "partition")
_PARTITION: Callable[[Record], int] = attrgetter("partition")
_TOPIC: Callable[[Record], str] = attrgetter("topic")
