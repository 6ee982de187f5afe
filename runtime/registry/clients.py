"""The registry a SchemaRegistryConfig names, as a :class:`SchemaSource`.

A Glue registry ARN gives a boto3 ``glue`` client in the ARN's region (its endpoint can
be moved with boto3's own ``AWS_ENDPOINT_URL_GLUE``); any other URI is a Confluent-
compatible registry reached with confluent-kafka's ``SchemaRegistryClient``, with the
AccessConfigs' secrets read the way the broker's are (same shapes, same checks). PEM
material goes to owner-only temporary files because that client takes file paths.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from runtime.definition.model import SchemaRegistryConfig
from runtime.definition.vocabulary import SchemaRegistryAuthType
from runtime.registry.decoder import RecordDecoder
from runtime.registry.schemas import ConfluentSchemas, GlueSchemas, SchemaSource
from runtime.security.secrets import (
    ClientCertificate,
    RootCertificate,
    SecretReader,
    UsernamePassword,
    client_tls_material,
)

__all__ = ["client_config", "decoder_for", "schema_source"]


def decoder_for(config: SchemaRegistryConfig, schemas: SchemaSource) -> RecordDecoder:
    """The decoder of a mapping's SchemaRegistryConfig (EventRecordFormat default JSON)."""
    from runtime.definition.vocabulary import EventRecordFormat  # noqa: PLC0415

    return RecordDecoder(
        schemas,
        glue=config.is_glue,
        attributes=config.validated_attributes,
        record_format=config.event_record_format or EventRecordFormat.JSON,
    )


def schema_source(config: SchemaRegistryConfig, secrets: SecretReader) -> SchemaSource:
    """The registry ``config`` names; secrets are read now (bad ones raise SecretError)."""
    if config.is_glue:
        import boto3  # noqa: PLC0415

        region = config.uri.split(":")[3]
        return GlueSchemas(boto3.client("glue", region_name=region))
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

    return ConfluentSchemas(SchemaRegistryClient(client_config(config, secrets)))


def client_config(config: SchemaRegistryConfig, secrets: SecretReader) -> dict[str, Any]:
    """confluent-kafka ``SchemaRegistryClient`` settings: URL, bounded waits, AccessConfigs."""
    # A bounded wait: the poll loop asks the registry (once per new schema id).
    settings: dict[str, Any] = {"url": config.uri.rstrip("/"), "max.retries": 1, "timeout": 10}
    folder: Path | None = None
    for access in config.access:
        secret = secrets.read(access.type.value, access.uri)
        if access.type is SchemaRegistryAuthType.BASIC_AUTH and isinstance(
            secret, UsernamePassword
        ):
            settings["basic.auth.user.info"] = f"{secret.username}:{secret.password}"
            continue
        folder = folder or _private_folder()
        if isinstance(secret, RootCertificate):
            settings["ssl.ca.location"] = _write(folder / "ca.pem", secret.certificate)
        elif isinstance(secret, ClientCertificate):
            certificate, key, password = client_tls_material(secret)
            settings["ssl.certificate.location"] = _write(folder / "client.pem", certificate)
            settings["ssl.key.location"] = _write(folder / "client.key", key)
            if password is not None:
                settings["ssl.key.password"] = password
    return settings


def _private_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="kafka-esm-registry-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _write(path: Path, text: str | None) -> str:
    path.touch(mode=0o600)
    path.write_text(text or "", encoding="ascii")
    return str(path)
