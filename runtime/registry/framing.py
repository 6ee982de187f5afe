"""The bytes schema-registry serializers put in front of a record's key or value.

Confluent: magic byte 0, the schema id as a big-endian uint32, then the body; a Protobuf
body starts with its message indexes (a zigzag varint count, then zigzag varint indexes;
a lone 0 means ``[0]``, the first message of the file). AWS Glue: header version 3, a
compression byte (0 none, 5 zlib), the schema version's 16-byte UUID, then the body
(deflated when 5); a Protobuf body starts with one unsigned varint message index.
Pure functions: no registry, no I/O.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from typing import Final

CONFLUENT_MAGIC: Final = 0
GLUE_HEADER_VERSION: Final = 3
GLUE_NO_COMPRESSION: Final = 0
GLUE_ZLIB: Final = 5
_CONFLUENT_HEADER: Final = 5
_GLUE_HEADER: Final = 18


class FramingError(ValueError):
    """The bytes are not in the registry's framing (the reason says what is wrong)."""


@dataclass(frozen=True, slots=True)
class Framed:
    """A key or value split into the schema it names and its body."""

    schema_id: str
    """The Confluent schema id (decimal) or the Glue schema version UUID."""
    body: bytes
    """What follows the header (inflated for Glue zlib); Protobuf indexes included."""


def split_confluent(data: bytes) -> Framed:
    """``data`` in Confluent's wire format: its schema id and body."""
    if len(data) < _CONFLUENT_HEADER:
        raise FramingError(
            f"{len(data)} bytes: too short for the Confluent header (magic 0 + 4-byte id)"
        )
    if data[0] != CONFLUENT_MAGIC:
        raise FramingError(f"first byte is {data[0]}, not Confluent's magic byte 0")
    return Framed(str(int.from_bytes(data[1:5], "big")), bytes(data[5:]))


def split_glue(data: bytes) -> Framed:
    """``data`` in AWS Glue's wire format: its schema version UUID and (inflated) body."""
    if len(data) < _GLUE_HEADER:
        raise FramingError(f"{len(data)} bytes: too short for the Glue header (18 bytes)")
    if data[0] != GLUE_HEADER_VERSION:
        raise FramingError(f"first byte is {data[0]}, not Glue's header version 3")
    version_id = str(uuid.UUID(bytes=bytes(data[2:18])))
    body = bytes(data[18:])
    if data[1] == GLUE_ZLIB:
        try:
            body = zlib.decompress(body)
        except zlib.error as error:
            raise FramingError(f"the zlib-compressed body does not inflate: {error}") from None
    elif data[1] != GLUE_NO_COMPRESSION:
        raise FramingError(f"compression byte is {data[1]}: Glue uses 0 (none) or 5 (zlib)")
    return Framed(version_id, body)


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at ``position``: its value and the position after it."""
    result = shift = 0
    while True:
        if position >= len(data):
            raise FramingError("a varint runs past the end of the data")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise FramingError("a varint is longer than 10 bytes")


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def confluent_message_indexes(body: bytes) -> tuple[list[int], int]:
    """The Protobuf message indexes at the start of a Confluent body, and where the
    message itself starts. ``[0]`` (one byte 0) names the file's first message."""
    count, position = read_varint(body, 0)
    count = _zigzag(count)
    if count == 0:
        return [0], position
    if count < 0 or count > len(body):
        raise FramingError(f"message index count {count} is not valid")
    indexes = []
    for _ in range(count):
        index, position = read_varint(body, position)
        indexes.append(_zigzag(index))
    if any(i < 0 for i in indexes):
        raise FramingError(f"message indexes {indexes} are not valid")
    return indexes, position


def glue_message_index(body: bytes) -> tuple[list[int], int]:
    """The Protobuf message index at the start of a Glue body (one unsigned varint: a
    top-level message of the file), and where the message starts."""
    index, position = read_varint(body, 0)
    return [index], position
