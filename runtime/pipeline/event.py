"""The event Lambda sends for a self-managed Kafka mapping, byte for byte.

The batcher must cut a batch *before* its payload passes 6 MB, so it needs the exact
size of the payload as each record is added. Serializing the whole batch again for
every record would be quadratic; instead each record is turned into its JSON fragment
once (:func:`encode_record`), :class:`PayloadBuilder` adds up fragment lengths plus the
exact envelope, partition-key, bracket and comma overhead, and :meth:`PayloadBuilder.payload`
only joins the fragments that were already encoded. Output is compact JSON (no spaces):
parsers don't care about AWS's formatting, but our size must match what we send.

How absent values are written. AWS leaves null fields out rather than writing ``null``:

- ``key`` is omitted when the record has none (AWS docs, the reference page).
- ``value`` is omitted for a tombstone (null value). Evidence: Powertools for
  TypeScript fixed tombstones twice: first for ``"value": null`` (issue #4988, PR #4991),
  then, after the reporter saw the real events, for ``value`` missing altogether
  (issue #5016, PR #5017 "handle tombstone events without value"). The Rust crate
  (``value: Option<String>``) and aws-lambda-go (``Value string `json:",omitempty"```)
  read a missing value; an empty value (``b""``) stays ``"value":""``, so the two differ.
- a header whose value is null becomes the empty object ``{}`` in ``headers``: the key is
  dropped with the null. Evidence: Nike-Inc/hal PR #144, a Haskell event library fixing
  its parser for exactly this AWS output (``[{"traceparent":[48,...]},{}]``). Every
  parser we target reads ``{}``: Powertools iterates the header dicts, Go and Rust
  decode it as an empty map.

Known gaps in aws-lambda-powertools (Python, 3.x) that no event shape can avoid: the
parser model ``KafkaRecordModel`` requires ``value`` and decodes it as UTF-8, so it
rejects tombstones and binary values; the ``KafkaEvent`` data class reads both (use
``record.get("value")`` for a tombstone, ``decoded_value`` for binary).
"""

from __future__ import annotations

import json
import sys
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any, Final, cast

try:  # SIMD base64: about 4x faster than binascii on 1 KB values, the same bytes out
    from pybase64 import b64encode as _base64
except ImportError:  # pragma: no cover - the standard library gives the same bytes, slower
    _base64 = partial(b2a_base64, newline=False)

from runtime.records import Header, Record, TimestampType, partition_runs

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "EventEncodingError",
    "PayloadBuilder",
    "assemble",
    "assemble_records",
    "build_event",
    "checked_payload",
    "encode_record",
    "encode_run",
]

MAX_PAYLOAD_BYTES: Final = 6_291_456
"""Lambda's limit for one synchronous invocation payload (6 MB)."""

EVENT_SOURCE: Final = "SelfManagedKafka"

RecordEncoder = Callable[[Record], bytes]
"""Turns one record into its JSON fragment; swappable for a faster implementation."""

# Java writes header bytes as signed: a byte b > 127 becomes b - 256.
_SIGNED: Final = tuple(b"%d" % (b - 256 if b > 127 else b) for b in range(256))
_TIMESTAMP_TYPES: Final[dict[str, bytes]] = {
    name: b'"timestamp":%%d,"timestampType":"%s"' % t.value.encode()
    for t in TimestampType
    for name in (t, t.value)
}
_NO_HEADERS: Final = b',"headers":[]}'
_NULL_HEADER: Final = b"{}"
_TAIL: Final = b"}}"


class EventEncodingError(ValueError):
    """A record or a parameter cannot be written into Lambda's Kafka event."""


def _json_string(text: str) -> bytes:
    """One JSON string literal, UTF-8 like AWS writes it; refuses non-strings."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


@lru_cache(maxsize=1024)
def _record_prefix(topic: str, partition: int) -> bytes:
    """The fragment's start up to the offset; the same for every record of a partition."""
    if not topic:
        raise ValueError("empty topic")
    return b'{"topic":' + _json_string(topic) + b',"partition":%d,"offset":' % partition


@lru_cache(maxsize=4096)
def _header_prefix(key: str) -> bytes:
    """``{"key":[``: header keys repeat across records, so they are escaped once."""
    return b"{" + _json_string(key) + b":["


@lru_cache(maxsize=1024)
def _partition_key_json(partition_key: str) -> bytes:
    return _json_string(partition_key)


def _encode_header(header: Header) -> bytes:
    key, value = header
    prefix = _header_prefix(key)
    if value is None:
        return _NULL_HEADER
    return prefix + b",".join(map(_SIGNED.__getitem__, value)) + b"]}"


@lru_cache(maxsize=4096)
def _template(
    topic: str, partition: int, timestamp_type: str, present: tuple[bool, bool, bool]
) -> bytes:
    """The fragment with ``%d`` for offset and timestamp and ``%b`` for key and value.

    Everything else is the same for every record of a partition, so one ``%`` call
    writes a whole record. ``present`` says whether the record has a key, a value
    and headers; with headers, the template leaves the list (and the brace) open.
    """
    has_key, has_value, has_headers = present
    parts = [
        _record_prefix(topic, partition).replace(b"%", b"%%"),
        b"%d,",
        _TIMESTAMP_TYPES[timestamp_type],
    ]
    if has_key:
        parts.append(b',"key":"%b"')
    if has_value:
        parts.append(b',"value":"%b"')
    parts.append(b',"headers":[' if has_headers else _NO_HEADERS)
    return b"".join(parts)


def _encode(record: Record) -> bytes:
    partition, offset, timestamp = record.partition, record.offset, record.timestamp_ms
    # bool is an int and "%d" truncates floats: check types exactly, it costs ~100 ns.
    if not (
        type(partition) is int
        and type(offset) is int
        and type(timestamp) is int
        and partition >= 0
        and offset >= 0
    ):
        raise _explain(record)
    key, value, headers = record.key, record.value, record.headers
    present = (key is not None, value is not None, bool(headers))
    template = _template(record.topic, partition, record.timestamp_type, present)
    fields: tuple[int | bytes, ...]
    if key is None:
        fields = (offset, timestamp) if value is None else (offset, timestamp, _base64(value))
    elif value is None:
        fields = (offset, timestamp, _base64(key))
    else:
        fields = (offset, timestamp, _base64(key), _base64(value))
    if not headers:
        return template % fields
    return b"".join((template % fields, b",".join(map(_encode_header, headers)), b"]}"))


def encode_record(record: Record) -> bytes:
    """The record's JSON object in Lambda's event, as UTF-8 bytes.

    Raises EventEncodingError naming the field when the record cannot be encoded.
    """
    try:
        fragment = _encode(record)
    except EventEncodingError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise _explain(record) from exc
    if record.key_schema is None and record.value_schema is None:
        return fragment
    return fragment[:-1] + _schema_metadata(record) + b"}"


def encode_run(records: Sequence[Record]) -> list[bytes]:
    """The fragments of consecutive records of one partition: :func:`encode_record`'s
    bytes, each.

    Records read from Kafka share a shape (a key or none, a value, no headers, no schema),
    so the checks run over whole columns in C and one template formats every record: half
    the cost of a call per record. A run that mixes shapes is encoded record by record.
    """
    if not records:
        return []
    first = records[0]
    offsets = list(map(_OFFSET, records))
    stamps = list(map(_TIMESTAMP, records))
    values = list(map(_VALUE, records))
    keys = list(map(_KEY, records))
    keyless = keys.count(None) == len(keys)
    if not (
        set(map(type, values)) == {bytes}
        and (keyless or set(map(type, keys)) == {bytes})
        and not any(map(_HEADERS, records))
        and not any(map(_KEY_SCHEMA, records))
        and not any(map(_VALUE_SCHEMA, records))
        and {type(first.partition), *map(type, offsets), *map(type, stamps)} == {int}
        and first.partition >= 0
        and min(offsets) >= 0
        and len(set(map(_TIMESTAMP_TYPE, records))) == 1
    ):
        return [encode_record(record) for record in records]
    try:
        template = _template(
            first.topic, first.partition, first.timestamp_type, (not keyless, True, False)
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise _explain(first) from exc
    encoded = map(_base64, cast("list[bytes]", values))  # all bytes: checked above
    if keyless:
        return [template % fields for fields in zip(offsets, stamps, encoded, strict=True)]
    encoded_keys = map(_base64, cast("list[bytes]", keys))
    columns = zip(offsets, stamps, encoded_keys, encoded, strict=True)
    return [template % fields for fields in columns]


_OFFSET: Final[Callable[[Record], int]] = attrgetter("offset")
_TIMESTAMP: Final[Callable[[Record], int]] = attrgetter("timestamp_ms")
_TIMESTAMP_TYPE: Final[Callable[[Record], str]] = attrgetter("timestamp_type")
_KEY: Final[Callable[[Record], bytes | None]] = attrgetter("key")
_VALUE: Final[Callable[[Record], bytes | None]] = attrgetter("value")
_HEADERS: Final[Callable[[Record], tuple[Header, ...]]] = attrgetter("headers")
_KEY_SCHEMA: Final[Callable[[Record], object]] = attrgetter("key_schema")
_VALUE_SCHEMA: Final[Callable[[Record], object]] = attrgetter("value_schema")


def _schema_metadata(record: Record) -> bytes:
    """``,"keySchemaMetadata":{...},"valueSchemaMetadata":{...}`` after the headers."""
    parts = [
        b',"%s":{"dataFormat":%s,"schemaId":%s}'
        % (name, _json_string(meta.data_format), _json_string(meta.schema_id))
        for name, meta in (
            (b"keySchemaMetadata", record.key_schema),
            (b"valueSchemaMetadata", record.value_schema),
        )
        if meta is not None
    ]
    return b"".join(parts)


def _explain(record: Record) -> EventEncodingError:
    """Find the field that broke encoding; slow, so only run after a failure."""
    if not isinstance(record, Record):
        return EventEncodingError(
            f"record must be a runtime.records.Record, got {type(record).__name__}"
        )
    where = f"record {record.topic!r} partition {record.partition!r} offset {record.offset!r}"
    problem = _field_problem(record) or "cannot be encoded as JSON"
    return EventEncodingError(f"{where}: {problem}")


def _field_problem(record: Record) -> str | None:
    if not isinstance(record.topic, str) or not record.topic:
        return f"topic must be a non-empty string, got {record.topic!r}"
    for name in ("partition", "offset"):
        number = getattr(record, name)
        if type(number) is not int or number < 0:
            return f"{name} must be a non-negative int, got {number!r}"
    if type(record.timestamp_ms) is not int:
        return f"timestamp_ms must be an int (epoch milliseconds), got {record.timestamp_ms!r}"
    if not isinstance(record.timestamp_type, str) or record.timestamp_type not in _TIMESTAMP_TYPES:
        allowed = ", ".join(t.value for t in TimestampType)
        return f"timestamp_type must be one of {allowed}, got {record.timestamp_type!r}"
    for name in ("key", "value"):
        if not isinstance(getattr(record, name), bytes | bytearray | memoryview | None):
            # Never echo record contents: they may be sensitive, and they can be large.
            return f"{name} must be bytes or None, got {type(getattr(record, name)).__name__}"
    return _headers_problem(record.headers)


def _headers_problem(headers: object) -> str | None:
    if not isinstance(headers, tuple | list):
        return f"headers must be a tuple of (str, bytes | None) pairs, got {type(headers).__name__}"
    for index, header in enumerate(headers):
        if not isinstance(header, tuple | list) or len(header) != 2:
            return f"headers[{index}] must be a (str, bytes | None) pair"
        key, value = header
        if not isinstance(key, str):
            return f"headers[{index}] key must be a string, got {type(key).__name__}"
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return f"headers[{index}] key {key!r} must be valid Unicode (no lone surrogates)"
        if not isinstance(value, bytes | bytearray | memoryview | None):
            return f"headers[{index}] value must be bytes or None, got {type(value).__name__}"
    return None


def _envelope_head(bootstrap_servers: Sequence[str]) -> bytes:
    """``{"eventSource":...,"bootstrapServers":"...","records":{``, servers checked."""
    if isinstance(bootstrap_servers, str | bytes) or not bootstrap_servers:
        raise EventEncodingError(
            f"bootstrap_servers must be a non-empty list of host:port strings, "
            f"got {bootstrap_servers!r}"
        )
    for index, server in enumerate(bootstrap_servers):
        if not isinstance(server, str) or not server or "," in server:
            raise EventEncodingError(
                f"bootstrap_servers[{index}] must be a non-empty host:port string "
                f"without commas (Lambda joins them with ','), got {server!r}"
            )
    servers = _json_string(",".join(bootstrap_servers))
    return b'{"eventSource":"%s","bootstrapServers":%s,"records":{' % (
        EVENT_SOURCE.encode(),
        servers,
    )


def _join(head: bytes, groups: Mapping[str, Sequence[bytes]]) -> bytes:
    """``head``, ``"<key>":[<fragments>]`` per partition, the tail: in ONE join.

    A payload is up to 6 MB. Every intermediate bytes object that large is a fresh
    allocation whose pages the kernel faults in and zeroes, milliseconds each, so
    the brackets, keys, head and tail are glued onto the small neighbouring pieces
    and only the final ``b",".join`` allocates the payload's size (4x faster).
    """
    pieces: list[bytes] = []
    for key, fragments in groups.items():
        opening = _partition_key_json(key) + b":["
        if len(fragments) <= 1:
            pieces.append(opening + b"".join(fragments) + b"]")
        else:
            pieces.append(opening + fragments[0])
            pieces.extend(fragments[1:-1])
            pieces.append(fragments[-1] + b"]")
    if not pieces:
        return head + _TAIL
    pieces[0] = head + pieces[0]
    pieces[-1] += _TAIL
    return b",".join(pieces)


def assemble(
    fragments_by_partition: Mapping[str, Sequence[bytes]], bootstrap_servers: Sequence[str]
) -> bytes:
    """The whole event from already-encoded fragments, keyed ``<topic>-<partition>``.

    Fragments are joined as they are (no re-serialization), partitions in mapping order.
    """
    return _join(_envelope_head(bootstrap_servers), fragments_by_partition)


def assemble_records(
    records: Sequence[Record], fragments: Sequence[bytes], bootstrap_servers: Sequence[str]
) -> bytes:
    """The whole event from records and their already-encoded fragments, in order."""
    if len(records) != len(fragments):
        raise ValueError(f"{len(records)} records but {len(fragments)} fragments")
    groups: dict[str, list[bytes]] = {}
    for (topic, partition), start, stop in partition_runs(records):
        groups.setdefault(f"{topic}-{partition}", []).extend(fragments[start:stop])
    return assemble(groups, bootstrap_servers)


class PayloadSize:
    """The exact size of the payload a batch will become, without building it.

    The batcher asks it, record by record, whether one more fragment still fits, so a
    batch is cut before it would pass MAX_PAYLOAD_BYTES; the payload itself is assembled
    once, when the batch is sent. Within a partition offsets must ascend (Lambda's order).
    """

    __slots__ = ("_last_offsets", "_size")

    def __init__(self, bootstrap_servers: Sequence[str]) -> None:
        self._last_offsets: dict[str, int] = {}
        self._size = len(_envelope_head(bootstrap_servers)) + len(_TAIL)

    @property
    def size(self) -> int:
        """Exact length of the payload of what was added so far."""
        return self._size

    def try_add(
        self, partition_key: str, offset: int, fragment_size: int, limit: int = MAX_PAYLOAD_BYTES
    ) -> bool:
        """Count a fragment in; False (and nothing counted) when it would pass ``limit``.

        The batcher's path: one call per record and no ``Record`` needed.
        """
        last = self._last_offsets.get(partition_key)
        if last is None:  # "key":[ ... ] and the comma before it
            growth = fragment_size + len(_partition_key_json(partition_key)) + 3
            growth += 1 if self._last_offsets else 0
        else:
            if offset <= last:
                raise self.out_of_order(partition_key, offset, last)
            growth = fragment_size + 1  # the comma before it
        if self._size + growth > limit:
            return False
        self._size += growth
        self._last_offsets[partition_key] = offset
        return True

    def grow(self, partition_key: str, last_offset: int, growth: int) -> None:
        """Count in later fragments of a partition already added, ``growth`` bytes in all
        (their lengths and commas), ending at ``last_offset``; the caller checked the limit
        and the order (the batcher's loop, which must not pay a call per record)."""
        if partition_key not in self._last_offsets:
            raise ValueError(f"grow({partition_key!r}): the partition has no fragment yet")
        self._size += growth
        self._last_offsets[partition_key] = last_offset

    @staticmethod
    def out_of_order(partition_key: str, offset: int, last: int) -> EventEncodingError:
        """The error for an offset not above the one before it in the same partition."""
        return EventEncodingError(
            f"record {partition_key} offset {offset} must be greater than the offset "
            f"before it in the same partition ({last}): Lambda sends offsets ascending"
        )


class PayloadBuilder:
    """One invocation payload, built record by record, that knows its exact size."""

    __slots__ = ("_encoder", "_groups", "_head", "_size")

    def __init__(
        self, bootstrap_servers: Sequence[str], encoder: RecordEncoder = encode_record
    ) -> None:
        self._head = _envelope_head(bootstrap_servers)
        self._encoder = encoder
        self._groups: dict[str, list[bytes]] = {}
        self._size = PayloadSize(bootstrap_servers)

    @property
    def size(self) -> int:
        """Exact ``len(self.payload())`` right now."""
        return self._size.size

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def add(self, record: Record, fragment: bytes | None = None) -> None:
        """Add a record; pass its fragment when it was encoded before."""
        if fragment is None:
            fragment = self._encoder(record)
        key = record.partition_key
        self._size.try_add(key, record.offset, len(fragment), limit=sys.maxsize)
        self._groups.setdefault(key, []).append(fragment)

    def payload(self) -> bytes:
        """The event as sent to Lambda; ``len(payload()) == size``."""
        return _join(self._head, self._groups)


def checked_payload(
    records: Iterable[Record], bootstrap_servers: Sequence[str], limit: int = MAX_PAYLOAD_BYTES
) -> bytes:
    """The event for ``records`` as one invocation; EventEncodingError when it would pass
    ``limit`` (the poller cuts its batches below it, so it never sends such an event)."""
    builder = PayloadBuilder(bootstrap_servers)
    for record in records:
        builder.add(record)
    if builder.size > limit:
        raise EventEncodingError(
            f"the event is {builder.size} bytes: Lambda's limit for one invocation is "
            f"{limit} bytes (6 MB), and the poller cuts batches below it"
        )
    return builder.payload()


def build_event(records: Iterable[Record], bootstrap_servers: Sequence[str]) -> dict[str, Any]:
    """The event as the function receives it (parsed JSON); for tests and tools."""
    builder = PayloadBuilder(bootstrap_servers)
    for record in records:
        builder.add(record)
    event: dict[str, Any] = json.loads(builder.payload())
    return event
