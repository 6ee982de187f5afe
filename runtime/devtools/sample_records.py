"""Kafka records from plain values: what people type, as the poller's ``Record``.

``kafka-esm local-kafka produce``, ``kafka-esm generate-event`` and the pytest plugin
take records as dicts (``topic``, ``partition``, ``offset``, ``key``, ``value``,
``headers``, ``timestamp``, ``timestamp_type``); a key or value is bytes, str (UTF-8),
a dict or list (compact JSON), or None (no key; a tombstone value).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from runtime.records import Header, Record, TimestampType

__all__ = ["FIELDS", "Data", "RecordLike", "as_records", "kafka_record"]

RecordLike = Record | Mapping[str, Any]
"""A ``Record``, or a dict with any of ``kafka_record``'s keyword arguments."""

Data = bytes | str | Mapping[str, Any] | Sequence[Any] | None
"""A key or value: bytes as they are, str as UTF-8, dict or list as compact JSON."""

DEFAULT_TOPIC = "my-topic"
FIELDS = frozenset(
    {"topic", "partition", "offset", "key", "value", "headers", "timestamp", "timestamp_type"}
)


def kafka_record(
    *,
    topic: str = DEFAULT_TOPIC,
    partition: int = 0,
    offset: int = 0,
    key: Data = None,
    value: Data = None,
    headers: Mapping[str, bytes | str | None] | Iterable[Sequence[Any]] = (),
    timestamp: int | datetime | None = None,
    timestamp_type: TimestampType | str = TimestampType.CREATE_TIME,
) -> Record:
    """One record as the poller reads it from Kafka.

    ``value=None`` is a tombstone (the event leaves ``value`` out), ``key=None`` a record
    without a key; ``timestamp`` is epoch milliseconds or a datetime (default: now);
    ``headers`` a dict or ``(name, value)`` pairs, a value None, bytes or str.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=_epoch_ms(timestamp),
        timestamp_type=_timestamp_type(timestamp_type),
        key=_data(key, "key"),
        value=_data(value, "value"),
        headers=tuple(_header(pair) for pair in pairs),
    )


def as_records(records: Iterable[RecordLike], *, partition: int = 0) -> list[Record]:
    """``records`` as ``Record`` values; dicts without ``offset`` numbered from 0 within
    their partition, dicts without ``partition`` in ``partition``. ValueError or
    TypeError names a field that is unknown or of the wrong kind."""
    next_offset: dict[tuple[str, int], int] = {}
    built = []
    for item in records:
        if isinstance(item, Record):
            record = item
        elif isinstance(item, Mapping):
            record = _from_mapping(item, next_offset, partition)
        else:
            raise TypeError(f"a record must be a dict of {', '.join(sorted(FIELDS))}: {item!r}")
        next_offset[(record.topic, record.partition)] = record.offset + 1
        built.append(record)
    return built


def _from_mapping(
    item: Mapping[str, Any], next_offset: Mapping[tuple[str, int], int], partition: int
) -> Record:
    unknown = set(item) - FIELDS
    if unknown:
        raise ValueError(
            f"record field(s) {', '.join(sorted(unknown))} not known: use "
            f"{', '.join(sorted(FIELDS))}"
        )
    fields = dict(item)
    fields.setdefault("partition", partition)
    for name in ("partition", "offset"):
        if name in fields and (not isinstance(fields[name], int) or isinstance(fields[name], bool)):
            raise TypeError(f"record {name} {fields[name]!r} must be a whole number")
    where = (fields.get("topic", DEFAULT_TOPIC), fields["partition"])
    fields.setdefault("offset", next_offset.get(where, 0))
    return kafka_record(**fields)


def _data(data: Data, what: str) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, Mapping | list | tuple):
        return json.dumps(data, separators=(",", ":")).encode("utf-8")
    raise TypeError(f"record {what} {data!r} must be bytes, str, a dict or a list, or None")


def _header(pair: Sequence[Any]) -> Header:
    name, data = pair
    if not isinstance(name, str):
        raise TypeError(f"header name {name!r} must be a str")
    if data is not None and not isinstance(data, bytes | str):
        raise TypeError(f"header {name} value {data!r} must be bytes, str or None")
    return (name, data.encode("utf-8") if isinstance(data, str) else data)


def _epoch_ms(timestamp: int | datetime | None) -> int:
    if timestamp is None:
        return time.time_ns() // 1_000_000
    if isinstance(timestamp, datetime):
        return int(timestamp.timestamp() * 1000)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise TypeError(f"record timestamp {timestamp!r} must be epoch milliseconds")
    return timestamp


def _timestamp_type(value: TimestampType | str) -> TimestampType:
    try:
        return TimestampType(value)
    except ValueError:
        names = ", ".join(t.value for t in TimestampType)
        raise ValueError(f"record timestamp_type {value!r} must be one of {names}") from None
