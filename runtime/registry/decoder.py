"""Decode the key and value of a record as Lambda does for a SchemaRegistryConfig.

For each attribute named in ``SchemaValidationConfigs`` the registry's framing is split
off, the writer schema is looked up (once per id), the body is decoded (Avro with
fastavro, Protobuf generically from the registry's descriptor, JSON Schema validated
with jsonschema), and the record gets what the function will receive:

- ``EventRecordFormat: JSON``: the attribute becomes its JSON text; dataFormat ``JSON``.
- ``SOURCE``: the attribute becomes the body without the registry's header; dataFormat
  the schema's. Confluent Protobuf keeps its message indexes, re-written as plain
  varints (a count, then the indexes) because that is how Powertools' ``kafka_consumer``
  skips them (it reads Confluent's zigzag ``[0]`` byte the same: ``0x00``).

Records and attributes not named are left exactly as read. A record that cannot be
decoded is returned with ``undecodable`` set (the reason); a registry that cannot be
reached raises :class:`RegistryUnavailable` and the caller retries the same record.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import fastavro
import jsonschema
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FileDescriptor

from runtime.definition.vocabulary import EventRecordFormat, SchemaValidationAttribute
from runtime.records import Record, SchemaMetadata
from runtime.registry.framing import (
    Framed,
    FramingError,
    confluent_message_indexes,
    glue_message_index,
    split_confluent,
    split_glue,
)
from runtime.registry.schemas import (
    RegistryUnavailable,
    SchemaFormat,
    SchemaRejected,
    SchemaSource,
    WriterSchema,
)

__all__ = ["RecordDecoder", "RegistryUnavailable"]

Splitter = Callable[[bytes], Framed]


class _Undecodable(Exception):
    """This attribute cannot be decoded; the message says why (never its contents)."""


class RecordDecoder:
    """Turns records read from Kafka into the records a registry-backed mapping sends."""

    def __init__(
        self,
        schemas: SchemaSource,
        *,
        glue: bool,
        attributes: tuple[SchemaValidationAttribute, ...],
        record_format: EventRecordFormat,
    ) -> None:
        self._schemas = schemas
        self._glue = glue
        self._split: Splitter = split_glue if glue else split_confluent
        self._key = SchemaValidationAttribute.KEY in attributes
        self._value = SchemaValidationAttribute.VALUE in attributes
        self._as_json = record_format is EventRecordFormat.JSON
        self._classes: dict[tuple[str, tuple[int, ...]], Any] = {}

    def decode(self, record: Record) -> Record:
        """``record`` as the function receives it; RegistryUnavailable when the registry
        could not be asked (nothing about the record was decided then)."""
        changes: dict[str, Any] = {}
        try:
            if self._key and record.key is not None:
                sent, _, metadata = self._attribute(record.key)
                changes.update(key=sent, key_schema=metadata)
            if self._value and record.value is not None:
                sent, as_json, metadata = self._attribute(record.value)
                changes.update(value=sent, value_schema=metadata)
                if not self._as_json:
                    changes["decoded_value"] = as_json
        except _Undecodable as problem:
            return replace(record, undecodable=str(problem))
        if not changes:
            return record
        return Record(  # not dataclasses.replace: that costs ~10 us per record
            record.topic,
            record.partition,
            record.offset,
            record.timestamp_ms,
            record.timestamp_type,
            changes.get("key", record.key),
            changes.get("value", record.value),
            record.headers,
            record.delivery_count,
            changes.get("key_schema"),
            changes.get("value_schema"),
            changes.get("decoded_value"),
        )

    def _attribute(self, data: bytes) -> tuple[bytes, bytes, SchemaMetadata]:
        """What to send, the JSON text, and the metadata of one key or value."""
        try:
            framed = self._split(data)
            schema = self._schemas.get(framed.schema_id)
            text, source = _DECODERS[schema.format](self, framed, schema)
        except (FramingError, SchemaRejected) as error:
            raise _Undecodable(str(error)) from None
        data_format = SchemaFormat.JSON if self._as_json else schema.format
        metadata = SchemaMetadata(data_format.value, framed.schema_id)
        return (text if self._as_json else source), text, metadata

    # -- one per data format: (JSON text, SOURCE bytes) ----------------------------------
    def _avro(self, framed: Framed, schema: WriterSchema) -> tuple[bytes, bytes]:
        try:
            datum = fastavro.schemaless_reader(io.BytesIO(framed.body), schema.parsed, None)
        except Exception as error:  # fastavro raises many types on corrupt input
            raise _Undecodable(
                f"the Avro body does not match schema {framed.schema_id}: {type(error).__name__}"
            ) from None
        return _json_text(datum), framed.body

    def _protobuf(self, framed: Framed, schema: WriterSchema) -> tuple[bytes, bytes]:
        try:
            if self._glue:
                indexes, start = glue_message_index(framed.body)
                prefix = framed.body[:start]
            else:
                indexes, start = confluent_message_indexes(framed.body)
                prefix = _plain_indexes(indexes)
            message = self._message_class(framed.schema_id, schema.parsed, indexes)()
            message.ParseFromString(framed.body[start:])
        except _Undecodable:
            raise
        except Exception as error:  # DecodeError, FramingError
            raise _Undecodable(
                f"the Protobuf body does not match schema {framed.schema_id}: "
                f"{type(error).__name__}"
            ) from None
        as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
        return _json_text(as_dict), prefix + framed.body[start:]

    def _json(self, framed: Framed, schema: WriterSchema) -> tuple[bytes, bytes]:
        try:
            document = json.loads(framed.body)
        except ValueError:
            raise _Undecodable("the JSON Schema body is not JSON") from None
        validator = schema.parsed
        if not validator.is_valid(document):
            error = jsonschema.exceptions.best_match(validator.iter_errors(document))
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise _Undecodable(
                f"fails JSON Schema {framed.schema_id} at {where}: {error.validator}"
            )
        return framed.body, framed.body

    def _message_class(self, schema_id: str, file: FileDescriptor, indexes: list[int]) -> Any:
        key = (schema_id, tuple(indexes))
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = message_factory.GetMessageClass(_message_at(file, indexes))
        return found


_DECODERS = {
    SchemaFormat.AVRO: RecordDecoder._avro,
    SchemaFormat.PROTOBUF: RecordDecoder._protobuf,
    SchemaFormat.JSON: RecordDecoder._json,
}


def _message_at(file: FileDescriptor, indexes: list[int]) -> Descriptor:
    """The message the indexes name: top-level message, then nested ones."""
    try:
        descriptor = file.message_types_by_name[list(file.message_types_by_name)[indexes[0]]]
        for index in indexes[1:]:
            descriptor = descriptor.nested_types[index]
    except IndexError:
        raise _Undecodable(f"message indexes {indexes} name no message of {file.name}") from None
    return descriptor


def _plain_indexes(indexes: list[int]) -> bytes:
    """Message indexes as Powertools skips them: ``[0]`` is one 0 byte, else a count and
    the indexes, each an unsigned varint."""
    if indexes == [0]:
        return b"\x00"
    return b"".join(_varint(n) for n in (len(indexes), *indexes))


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _json_text(datum: Any) -> bytes:
    return json.dumps(
        datum, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode("utf-8")


def _json_default(value: Any) -> Any:
    """Avro values JSON has no type for: bytes as base64, logical types as text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")
