"""Lambda's Kafka event and failure records, built from plain Python values.

For unit tests of a handler or of a dead-letter consumer, without a broker: the bytes
come from the same encoder the poller sends with (``runtime.pipeline.event``) and the
same document builder its destinations write with (``runtime.destinations.documents``),
so a test that passes here sees exactly what the function sees under the poller.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from runtime.definition.model import parse_mapping
from runtime.destinations.documents import DocumentContext, Failure
from runtime.destinations.documents import failure_document as _document
from runtime.invokers import ErrorKind, InvokeResult
from runtime.pipeline.event import MAX_PAYLOAD_BYTES, EventEncodingError, PayloadBuilder
from runtime.pipeline.event import encode_record as _encode
from runtime.pipeline.failures import Condition
from runtime.records import Header, Record, TimestampType

__all__ = ["RecordLike", "failure_document", "kafka_event", "kafka_record"]

RecordLike = Record | Mapping[str, Any]
"""A ``Record``, or a dict with any of ``kafka_record``'s keyword arguments."""

Data = bytes | str | Mapping[str, Any] | Sequence[Any] | None
"""A key or value: bytes as they are, str as UTF-8, dict or list as compact JSON."""

DEFAULT_SERVERS = ("127.0.0.1:9092",)
_RECORD_FIELDS = frozenset(
    {"topic", "partition", "offset", "key", "value", "headers", "timestamp", "timestamp_type"}
)


def kafka_record(
    *,
    topic: str = "my-topic",
    partition: int = 0,
    offset: int = 0,
    key: Data = None,
    value: Data = None,
    headers: Mapping[str, bytes | str | None] | Iterable[tuple[str, bytes | str | None]] = (),
    timestamp: int | datetime | None = None,
    timestamp_type: TimestampType | str = TimestampType.CREATE_TIME,
) -> Record:
    """One record as the poller reads it from Kafka.

    ``value=None`` is a tombstone (the event leaves ``value`` out), ``key=None`` a record
    without a key; ``timestamp`` is epoch milliseconds or a datetime (default: now).
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=_epoch_ms(timestamp),
        timestamp_type=TimestampType(timestamp_type),
        key=_data(key, "key"),
        value=_data(value, "value"),
        headers=tuple(_header(name, data) for name, data in pairs),
    )


def kafka_event(
    records: Iterable[RecordLike], bootstrap_servers: str | Sequence[str] = DEFAULT_SERVERS
) -> dict[str, Any]:
    """The event the poller sends for ``records``, parsed as the handler receives it.

    Dict records without an ``offset`` are numbered from 0 within their partition.
    EventEncodingError (a ValueError) when the event would pass Lambda's 6 MB limit, or
    when offsets do not ascend within a partition: the poller never sends such a batch.
    """
    servers = [bootstrap_servers] if isinstance(bootstrap_servers, str) else bootstrap_servers
    builder = PayloadBuilder(servers)
    for record in as_records(records):
        builder.add(record)
    if builder.size > MAX_PAYLOAD_BYTES:
        raise EventEncodingError(
            f"the event is {builder.size} bytes: Lambda's limit for one invocation is "
            f"{MAX_PAYLOAD_BYTES} bytes (6 MB), and the poller cuts batches below it"
        )
    event: dict[str, Any] = json.loads(builder.payload())
    return event


def failure_document(
    records: Iterable[RecordLike],
    *,
    mapping: Mapping[str, Any] | None = None,
    condition: Condition | str = Condition.RETRY_ATTEMPTS_EXHAUSTED,
    invoke_count: int = 1,
    function_error: str | None = "Unhandled",
    include_payload: bool = False,
) -> dict[str, Any]:
    """The on-failure record an SQS queue or SNS topic receives for ``records``.

    ``mapping`` is a CreateEventSourceMapping request (default: function ``my-function``
    on ``127.0.0.1:9092``, destination-less); ``include_payload`` adds the whole event
    as S3 destinations receive it. ``invoke_count=0`` (or condition
    MaximumPayloadSizeExceeded) describes records the function never saw.
    """
    parsed = parse_mapping(dict(mapping) if mapping is not None else _default_mapping())
    chosen = as_records(records)
    result = None
    if invoke_count > 0:
        result = InvokeResult.failure(
            ErrorKind.FUNCTION_ERROR,
            "the function failed",
            status_code=200,
            function_error=function_error,
            executed_version="$LATEST",
        )
    failure = Failure.of(
        Condition(condition),
        chosen,
        [_encode(r) for r in chosen],
        invoke_count=invoke_count,
        result=result,
    )
    return _document(failure, DocumentContext.for_mapping(parsed), include_payload=include_payload)


def as_records(records: Iterable[RecordLike]) -> list[Record]:
    """``records`` as ``Record`` values; dicts without ``offset`` numbered per partition."""
    next_offset: dict[tuple[str, int], int] = {}
    built = []
    for item in records:
        record = item if isinstance(item, Record) else _from_mapping(item, next_offset)
        next_offset[(record.topic, record.partition)] = record.offset + 1
        built.append(record)
    return built


def _from_mapping(item: Mapping[str, Any], next_offset: Mapping[tuple[str, int], int]) -> Record:
    unknown = set(item) - _RECORD_FIELDS
    if unknown:
        raise ValueError(
            f"record field(s) {', '.join(sorted(unknown))} not known: use "
            f"{', '.join(sorted(_RECORD_FIELDS))}"
        )
    fields = dict(item)
    where = (fields.get("topic", "my-topic"), fields.get("partition", 0))
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


def _header(name: str, data: bytes | str | None) -> Header:
    return (name, data.encode("utf-8") if isinstance(data, str) else data)


def _epoch_ms(timestamp: int | datetime | None) -> int:
    if timestamp is None:
        return time.time_ns() // 1_000_000
    if isinstance(timestamp, datetime):
        return int(timestamp.timestamp() * 1000)
    return timestamp


def _default_mapping() -> dict[str, Any]:
    servers = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(DEFAULT_SERVERS)}}
    return {
        "FunctionName": "my-function",
        "Topics": ["my-topic"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": servers,
    }
