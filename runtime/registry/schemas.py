"""Writer schemas from a registry, fetched once per id and kept.

Two registries: a Confluent-compatible one through confluent-kafka's
``SchemaRegistryClient`` (HTTP, auth, TLS), and AWS Glue through boto3's ``glue``
client. Each answers "which schema wrote id X" as a :class:`WriterSchema` ready to
decode with (a parsed Avro schema, a Protobuf file descriptor, a JSON Schema), and sorts
failures into two kinds: the registry could not be asked (:class:`RegistryUnavailable`,
retried, never skipped) and the registry has no usable schema (:class:`SchemaRejected`,
the record cannot be decoded).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import fastavro
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

__all__ = [
    "ConfluentSchemas",
    "GlueSchemas",
    "RegistryUnavailable",
    "SchemaFormat",
    "SchemaRejected",
    "SchemaSource",
    "WriterSchema",
]


class SchemaFormat(StrEnum):
    """The ``dataFormat`` Lambda writes in ``keySchemaMetadata``/``valueSchemaMetadata``."""

    AVRO = "AVRO"
    PROTOBUF = "PROTOBUF"
    JSON = "JSON"


class RegistryUnavailable(Exception):
    """The registry did not answer (network, 5xx, throttling, credentials refused)."""


class SchemaRejected(Exception):
    """The registry answered, but has no schema this record can be decoded with."""


@dataclass(frozen=True)
class WriterSchema:
    """A schema ready to decode with: ``parsed`` is fastavro's parsed schema (AVRO), a
    ``FileDescriptor`` (PROTOBUF) or a jsonschema validator (JSON)."""

    format: SchemaFormat
    parsed: Any


class SchemaSource(Protocol):
    """Looks up writer schemas by the id the framing names."""

    def get(self, schema_id: str) -> WriterSchema:
        """The schema; RegistryUnavailable or SchemaRejected when there is none now."""
        ...


_RETRIABLE_STATUS = frozenset({401, 403, 408, 429})


class ConfluentSchemas:
    """A Confluent-compatible registry (Confluent, Apicurio's ccompat API, Karapace)."""

    def __init__(self, client: Any) -> None:
        """``client``: a confluent-kafka ``SchemaRegistryClient``."""
        self._client = client
        self._cache: dict[str, WriterSchema] = {}

    def get(self, schema_id: str) -> WriterSchema:
        """The writer schema of ``schema_id``, asking the registry once."""
        found = self._cache.get(schema_id)
        if found is None:
            found = self._cache[schema_id] = self._fetch(int(schema_id))
        return found

    def _fetch(self, schema_id: int) -> WriterSchema:
        schema = self._ask(lambda: self._client.get_schema(schema_id))
        kind = (schema.schema_type or _guess_type(schema.schema_str)).upper()
        if kind == "AVRO":
            return WriterSchema(SchemaFormat.AVRO, _avro(schema.schema_str, self._named(schema)))
        if kind == "JSON":
            return WriterSchema(SchemaFormat.JSON, _json_document(schema.schema_str))
        if kind == "PROTOBUF":
            return WriterSchema(SchemaFormat.PROTOBUF, self._protobuf(schema_id, schema))
        raise SchemaRejected(f"schema {schema_id} has type {kind}: not AVRO, PROTOBUF or JSON")

    def _ask(self, call: Any) -> Any:
        from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: PLC0415

        try:
            return call()
        except SchemaRegistryError as error:
            status = error.http_status_code
            if 400 <= status < 500 and status not in _RETRIABLE_STATUS:
                raise SchemaRejected(
                    f"the registry refused: HTTP {status} {error.error_message}"
                ) from None
            raise RegistryUnavailable(f"HTTP {status} {error.error_message}") from None
        except Exception as error:  # httpx and socket errors: the registry was not reached
            raise RegistryUnavailable(f"{type(error).__name__}: {error}") from None

    def _named(self, schema: Any) -> dict[str, Any]:
        """Named types the Avro schema references (other subjects), parsed."""
        named: dict[str, Any] = {}
        for reference in schema.references or ():
            version = self._ask(lambda r=reference: self._client.get_version(r.subject, r.version))
            fastavro.parse_schema(json.loads(version.schema.schema_str), named_schemas=named)
        return named

    def _protobuf(self, schema_id: int, schema: Any) -> FileDescriptor:
        pool = descriptor_pool.DescriptorPool()
        for reference in schema.references or ():
            self._add_dependency(pool, reference.name, reference.subject, reference.version)
        proto = _descriptor_proto(schema.schema_str)
        if proto is None:  # a .proto text: ask for the compiled descriptor instead
            proto = _descriptor_proto(self._serialized(schema_id))
        if proto is None:
            raise SchemaRejected(f"schema {schema_id}: the registry gave no readable descriptor")
        return _add_file(pool, proto)

    def _serialized(self, schema_id: int) -> str:
        """The schema as a serialized descriptor (``?format=serialized``).

        Not ``get_schema(fmt=...)``: the client caches schemas by id whatever the format,
        so it would hand back the ``.proto`` text it already holds."""
        rest = self._client._rest_client
        reply = self._ask(lambda: rest.get(f"schemas/ids/{schema_id}", {"format": "serialized"}))
        return str(reply.get("schema", "")) if isinstance(reply, dict) else ""

    def _add_dependency(
        self, pool: descriptor_pool.DescriptorPool, name: str, subject: str, version: int
    ) -> None:
        if _well_known(pool, name):
            return
        registered = self._ask(lambda: self._client.get_version(subject, version))
        for reference in registered.schema.references or ():
            self._add_dependency(pool, reference.name, reference.subject, reference.version)
        proto = _descriptor_proto(registered.schema.schema_str)
        if proto is None:
            raise SchemaRejected(f"dependency {name}: the registry gave no readable descriptor")
        _add_file(pool, proto)


class GlueSchemas:
    """An AWS Glue Schema Registry, read with boto3 (``glue:GetSchemaVersion``)."""

    def __init__(self, glue: Any) -> None:
        """``glue``: a boto3 ``glue`` client (its endpoint URL may be moto's)."""
        self._glue = glue
        self._cache: dict[str, WriterSchema] = {}

    def get(self, schema_id: str) -> WriterSchema:
        """The writer schema of schema version ``schema_id`` (a UUID), asked once."""
        found = self._cache.get(schema_id)
        if found is None:
            found = self._cache[schema_id] = self._fetch(schema_id)
        return found

    def _fetch(self, version_id: str) -> WriterSchema:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            reply = self._glue.get_schema_version(SchemaVersionId=version_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in {"EntityNotFoundException", "InvalidInputException"}:
                raise SchemaRejected(f"Glue has no schema version {version_id}: {code}") from None
            raise RegistryUnavailable(f"Glue: {code}") from None
        except BotoCoreError as error:
            raise RegistryUnavailable(f"Glue: {type(error).__name__}: {error}") from None
        kind, definition = reply.get("DataFormat", ""), reply.get("SchemaDefinition", "")
        if kind == "AVRO":
            return WriterSchema(SchemaFormat.AVRO, _avro(definition, {}))
        if kind == "JSON":
            return WriterSchema(SchemaFormat.JSON, _json_document(definition))
        raise SchemaRejected(
            f"Glue schema version {version_id} is {kind}: this poller decodes Glue AVRO and "
            "JSON (Glue keeps Protobuf schemas as .proto text, which needs a compiler)"
        )


def _guess_type(text: str) -> str:
    """The type of a schema the registry sent without ``schemaType``.

    Confluent leaves it out for AVRO; Apicurio's ccompat API sometimes leaves it out for a
    JSON Schema too, so a JSON object that reads as a JSON Schema and not as an Avro record
    is taken as one."""
    try:
        document = json.loads(text)
    except ValueError:
        return "AVRO"
    if not isinstance(document, dict) or document.get("type") in {"record", "enum", "fixed"}:
        return "AVRO"
    json_schema = "$schema" in document or "properties" in document
    return "JSON" if json_schema or document.get("type") == "object" else "AVRO"


def _avro(text: str, named: dict[str, Any]) -> Any:
    try:
        return fastavro.parse_schema(json.loads(text), named_schemas=named)
    except (ValueError, fastavro.schema.SchemaParseException) as error:
        raise SchemaRejected(f"the Avro schema does not parse: {str(error)[:200]}") from None


def _json_document(text: str) -> Any:
    """A validator for the JSON Schema ``text``, built once (building it costs far more
    than validating a record)."""
    import jsonschema  # noqa: PLC0415

    try:
        document = json.loads(text)
        validator = jsonschema.validators.validator_for(document)
        validator.check_schema(document)
    except ValueError as error:
        raise SchemaRejected(f"the JSON Schema is not JSON: {error}") from None
    except jsonschema.SchemaError as error:
        raise SchemaRejected(f"the JSON Schema is not valid: {error.message}") from None
    return validator(document)


def _descriptor_proto(text: str) -> descriptor_pb2.FileDescriptorProto | None:
    """A FileDescriptorProto from base64 (Confluent) or raw bytes in a string (Apicurio)."""
    candidates: list[bytes] = []
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(text, validate=True))
    with contextlib.suppress(UnicodeEncodeError):
        candidates.append(text.encode("latin-1"))
    for raw in candidates:
        proto = descriptor_pb2.FileDescriptorProto()
        try:
            proto.ParseFromString(raw)
        except Exception:  # noqa: S112 - DecodeError: try the next reading
            continue
        if proto.message_type:
            return proto
    return None


def _add_file(
    pool: descriptor_pool.DescriptorPool, proto: descriptor_pb2.FileDescriptorProto
) -> FileDescriptor:
    for dependency in proto.dependency:
        _well_known(pool, dependency)
    try:
        pool.Add(proto)
        return pool.FindFileByName(proto.name)
    except (TypeError, KeyError) as error:
        raise SchemaRejected(f"the Protobuf schema {proto.name} does not load: {error}") from None


def _well_known(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    """Add a google/protobuf/*.proto file to ``pool`` from protobuf's own; True if it is one."""
    if not name.startswith("google/protobuf/"):
        return False
    try:
        pool.FindFileByName(name)
        return True
    except KeyError:
        pass
    module = "google.protobuf." + name.removeprefix("google/protobuf/").replace(".proto", "_pb2")
    try:
        importlib.import_module(module)  # loads the file into protobuf's default pool
        builtin = descriptor_pool.Default().FindFileByName(name)
    except (ImportError, KeyError):
        return False
    proto = descriptor_pb2.FileDescriptorProto()
    builtin.CopyToProto(proto)
    pool.Add(proto)
    return True
