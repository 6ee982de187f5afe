"""What a developer does to a local cluster besides starting it: topics, records, ACLs,
secrets. ``kafka-esm local-kafka topic|acl|produce`` and the pytest plugin share it.

Every call goes over the PLAINTEXT listener, whose principal (ANONYMOUS) is a super
user, so it works whatever ACLs the secured listeners enforce.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from runtime.definition.model import AclRequirement
from runtime.devtools.local_kafka.settings import ClusterInfo
from runtime.records import Record

TIMEOUT_S = 30.0
SECRETS_DIR = "secrets"
"""Under the cluster home: ready-made ``file://`` secrets for the local users."""

_RESOURCE = {
    "Cluster": ResourceType.BROKER,
    "Group": ResourceType.GROUP,
    "Topic": ResourceType.TOPIC,
}
_OPERATION = {
    "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    "Describe": AclOperation.DESCRIBE,
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
}
SASL_AUTH_TYPES = {
    "PLAIN": "BASIC_AUTH",
    "SCRAM-SHA-256": "SASL_SCRAM_256_AUTH",
    "SCRAM-SHA-512": "SASL_SCRAM_512_AUTH",
}
"""librdkafka's SASL mechanism to the SourceAccessConfigurations Type that selects it."""


def _admin(info: ClusterInfo) -> AdminClient:
    return AdminClient({**info.plaintext_config(), "log_level": 0})


# -- topics ------------------------------------------------------------------------------
def create_topic(
    info: ClusterInfo, name: str, partitions: int = 1, config: Mapping[str, str] | None = None
) -> None:
    """Create ``name`` (one replica) and wait for the broker; KafkaException on refusal."""
    client = _admin(info)  # held until the result: a collected client cancels its requests
    futures = client.create_topics(
        [NewTopic(name, partitions, 1, config=dict(config or {}))], request_timeout=TIMEOUT_S
    )
    futures[name].result(timeout=TIMEOUT_S)


def list_topics(info: ClusterInfo) -> dict[str, int]:
    """Topic name to partition count, internal topics left out."""
    topics = _admin(info).list_topics(timeout=TIMEOUT_S).topics
    return {
        name: len(meta.partitions)
        for name, meta in sorted(topics.items())
        if not name.startswith("__")
    }


# -- records -----------------------------------------------------------------------------
def produce(info: ClusterInfo, topic: str, records: Iterable[Record]) -> int:
    """Write ``records`` and wait for every ack; their topic and offset are ignored, and
    a partition below 0 leaves the choice to the producer's partitioner (by key)."""
    producer = Producer({**info.plaintext_config(), "acks": "all", "linger.ms": 5})
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            errors.append(error)

    count = 0
    for record in records:
        extra: dict[str, Any] = {"timestamp": record.timestamp_ms}
        if record.partition >= 0:
            extra["partition"] = record.partition
        producer.produce(
            topic,
            value=record.value,
            key=record.key,
            headers=list(record.headers),
            on_delivery=delivered,
            **extra,
        )
        count += 1
    left = producer.flush(TIMEOUT_S)
    if errors or left:
        raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
    return count


# -- ACLs --------------------------------------------------------------------------------
def acl_bindings(
    principal: str,
    acls: Iterable[AclRequirement],
    permission: AclPermissionType = AclPermissionType.ALLOW,
) -> list[AclBinding]:
    """A mapping's ACL requirements (``EventSourceMapping.required_acls``) as bindings."""
    return [
        AclBinding(
            _RESOURCE[acl.resource_type.value],
            acl.resource_name,
            ResourcePatternType.LITERAL,
            principal,
            "*",
            _OPERATION[acl.operation.value],
            permission,
        )
        for acl in acls
    ]


def create_acls(info: ClusterInfo, bindings: Sequence[AclBinding]) -> None:
    """Create ``bindings`` and wait until the authorizer has them."""
    if not bindings:
        return
    admin = _admin(info)
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=TIMEOUT_S)
    deadline = time.monotonic() + TIMEOUT_S
    for binding in bindings:
        match = AclBindingFilter(
            binding.restype,
            binding.name,
            binding.resource_pattern_type,
            binding.principal,
            binding.host,
            binding.operation,
            binding.permission_type,
        )
        while not admin.describe_acls(match).result(timeout=TIMEOUT_S):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ACL {binding} not visible after {TIMEOUT_S:g} s")
            time.sleep(0.05)


def describe_acl(principal: str, acl: AclRequirement) -> str:
    """One line for people: ``ALLOW User:alice Read on Topic orders``."""
    return (
        f"ALLOW {principal} {acl.operation.value} on {acl.resource_type.value} {acl.resource_name}"
    )


# -- secrets -----------------------------------------------------------------------------
def write_secret(folder: Path, document: Mapping[str, Any], name: str | None = None) -> str:
    """Write ``document`` as ``<folder>/<name>.json`` (mode 0600); its ``file://`` URI."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name or 'secret-' + uuid.uuid4().hex[:12]}.json"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path.as_uri()


def root_ca_secret(info: ClusterInfo) -> dict[str, str]:
    """A SERVER_ROOT_CA_CERTIFICATE document: the local CA every listener's cert is from."""
    return {"certificate": info.pki.ca.read_text(encoding="utf-8")}


def client_certificate_secret(
    info: ClusterInfo, client: str, key_form: str = "plain"
) -> dict[str, str]:
    """A CLIENT_CERTIFICATE_TLS_AUTH document for a local client (its CN is the user);
    an encrypted ``key_form`` needs ``privateKeyPassword`` added."""
    return {
        "certificate": info.pki.client_cert(client).read_text(encoding="utf-8"),
        "privateKey": info.pki.client_key(client, key_form).read_text(encoding="utf-8"),
    }


def write_local_secrets(info: ClusterInfo, home: Path) -> dict[str, str]:
    """Ready-made secrets for the local users, by name: ``alice`` (SASL username and
    password, for BASIC_AUTH and both SCRAM types), ``alice-certificate`` (mTLS) and
    ``root-ca``; the values are ``file://`` URIs under ``<home>/secrets``."""
    folder = home / SECRETS_DIR
    written = {"root-ca": write_secret(folder, root_ca_secret(info), "root-ca")}
    for user, password in info.passwords.items():
        written[user] = write_secret(folder, {"username": user, "password": password}, user)
    for client in ("alice", "admin"):
        name = f"{client}-certificate"
        written[name] = write_secret(folder, client_certificate_secret(info, client), name)
    return written


def sasl_access(secret_uri: str, root_ca_uri: str, mechanism: str) -> list[dict[str, str]]:
    """SourceAccessConfigurations for SASL over TLS with a private root CA."""
    if mechanism not in SASL_AUTH_TYPES:
        raise ValueError(f"mechanism {mechanism!r} is not one of {', '.join(SASL_AUTH_TYPES)}")
    return [
        {"Type": SASL_AUTH_TYPES[mechanism], "URI": secret_uri},
        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": root_ca_uri},
    ]
