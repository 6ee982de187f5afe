"""Registry wire formats: Confluent and Glue headers, Protobuf message indexes."""

from __future__ import annotations

import uuid
import zlib

import pytest

from runtime.registry.framing import (
    FramingError,
    confluent_message_indexes,
    glue_message_index,
    split_confluent,
    split_glue,
)

VERSION = uuid.UUID("574f6a9a-9548-4dea-86a3-d82c0479a116")


def test_confluent_header_gives_the_big_endian_id_and_the_body():
    framed = split_confluent(b"\x00\x00\x01\x00\x02body")
    assert (framed.schema_id, framed.body) == ("65538", b"body")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x00\x01", "too short"),
        (b"\x01\x00\x00\x00\x01xx", "not Confluent's magic byte 0"),
        (b'{"a":1}', "not Confluent's magic byte 0"),
    ],
)
def test_confluent_framing_errors_say_what_is_wrong(data, reason):
    with pytest.raises(FramingError, match=reason):
        split_confluent(data)


def test_glue_header_without_compression():
    framed = split_glue(b"\x03\x00" + VERSION.bytes + b"body")
    assert (framed.schema_id, framed.body) == (str(VERSION), b"body")


def test_glue_header_with_zlib_inflates_the_body():
    framed = split_glue(b"\x03\x05" + VERSION.bytes + zlib.compress(b"body" * 100))
    assert framed.body == b"body" * 100


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x03\x00" + b"\x01" * 10, "too short"),
        (b"\x00\x00" + VERSION.bytes + b"x", "not Glue's header version 3"),
        (b"\x03\x07" + VERSION.bytes + b"x", "compression byte is 7"),
        (b"\x03\x05" + VERSION.bytes + b"not zlib", "does not inflate"),
    ],
)
def test_glue_framing_errors_say_what_is_wrong(data, reason):
    with pytest.raises(FramingError, match=reason):
        split_glue(data)


@pytest.mark.parametrize(
    ("body", "indexes", "start"),
    [
        (b"\x00msg", [0], 1),  # the common case: one zero byte means [0]
        (b"\x02\x02msg", [1], 2),  # zigzag: count 1, index 1
        (b"\x04\x00\x00msg", [0, 0], 3),  # a nested message: first message's first nested
        (b"\x04\x02\x04msg", [1, 2], 3),
    ],
)
def test_confluent_message_indexes_are_zigzag_varints(body, indexes, start):
    assert confluent_message_indexes(body) == (indexes, start)


def test_a_truncated_message_index_is_a_framing_error():
    with pytest.raises(FramingError, match="past the end"):
        confluent_message_indexes(b"\x04\x80")


def test_glue_protobuf_index_is_one_unsigned_varint():
    assert glue_message_index(b"\x01msg") == ([1], 1)
