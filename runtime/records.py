"""The Kafka record as the poller sees it, independent of the client library.

confluent-kafka's ``Message`` cannot be built in tests and carries client state;
every stage after the source (filter, batcher, event builder, destinations) works
on this small immutable value instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a topic partition."""

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
