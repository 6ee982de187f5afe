"""A real Kafka cluster for tests: topics, records, mappings, secrets and ACLs.

``KafkaTestCluster`` wraps the local broker (``runtime.devtools.local_kafka``) or an
external cluster named by ``KAFKA_BOOTSTRAP_SERVERS``. Every name it makes is unique,
so tests never share a topic or a group; secrets are written as ``file://`` documents
in the formats AWS requires, which the poller reads like Secrets Manager's.
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

from runtime.definition.model import AclRequirement, EventSourceMapping, parse_mapping
from runtime.devtools.local_kafka.settings import PLAINTEXT, ClusterInfo
from runtime.records import Record
from runtime.testing.events import Data, RecordLike, as_records

__all__ = ["KafkaTestCluster", "acl_bindings"]

_TIMEOUT_S = 30.0
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
_SASL_AUTH = {
    "PLAIN": "BASIC_AUTH",
    "SCRAM-SHA-256": "SASL_SCRAM_256_AUTH",
    "SCRAM-SHA-512": "SASL_SCRAM_512_AUTH",
}


class KafkaTestCluster:
    """One cluster shared by a test session; ``info`` has its listeners and users."""

    def __init__(self, info: ClusterInfo, secrets_dir: Path) -> None:
        self.info = info
        self._secrets_dir = secrets_dir

    @property
    def bootstrap_servers(self) -> str:
        """The PLAINTEXT listener's ``host:port``."""
        return self.info.bootstrap_servers

    def unique_name(self, prefix: str) -> str:
        """``<prefix>-<12 hex digits>``: a topic or group name no other test uses."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    # -- topics and records --------------------------------------------------------------
    def create_topic(self, partitions: int = 1, *, name: str | None = None, **config: str) -> str:
        """A new topic (``config``: topic settings such as ``retention_ms="60000"``)."""
        name = name or self.unique_name("topic")
        settings = {key.replace("_", "."): value for key, value in config.items()}
        admin = AdminClient(self.info.plaintext_config())
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=settings)])
        futures[name].result(timeout=_TIMEOUT_S)
        return name

    def produce(
        self, topic: str, records: Iterable[RecordLike] = (), *, values: Iterable[Data] = ()
    ) -> int:
        """Write to ``topic`` and wait for the broker's acks; return how many were written.

        ``records`` are dicts with ``key``, ``value``, ``partition``, ``headers`` and
        ``timestamp`` (as ``kafka_record`` takes them); ``values`` are bare values
        (bytes, str, a dict or list as JSON, None for a tombstone). The broker assigns
        offsets.
        """
        items = [*records, *({"value": value} for value in values)]
        producer = Producer({**self.info.plaintext_config(), "acks": "all", "linger.ms": 5})
        errors: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                errors.append(error)

        count = 0
        for item in items:
            fields = dict(item) if isinstance(item, Mapping) else _fields(item)
            (record,) = as_records([{**fields, "topic": topic, "offset": 0}])
            extra: dict[str, Any] = {"timestamp": record.timestamp_ms}
            if "partition" in fields:
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
        left = producer.flush(_TIMEOUT_S)
        if errors or left:
            raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
        return count

    # -- mappings ------------------------------------------------------------------------
    def mapping(
        self,
        topic: str,
        *,
        listener: str = PLAINTEXT,
        access: Sequence[Mapping[str, str]] = (),
        **fields: Any,
    ) -> dict[str, Any]:
        """A CreateEventSourceMapping request for ``topic`` on this cluster.

        Starts at TRIM_HORIZON with a unique ConsumerGroupId; ``fields`` add or replace
        top-level keys (``BatchSize=10``, ``FilterCriteria=...``).
        """
        request: dict[str, Any] = {
            "FunctionName": "my-function",
            "Topics": [topic],
            "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [self.info.address(listener)]}
            },
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": self.unique_name("group")},
        }
        if access:
            request["SourceAccessConfigurations"] = [dict(a) for a in access]
        request.update(fields)
        return request

    def sasl_access(
        self, user: str = "alice", mechanism: str = "SCRAM-SHA-512"
    ) -> list[dict[str, str]]:
        """SourceAccessConfigurations for the SASL_SSL listener as ``user``: its
        credentials and the local CA, as ``file://`` secrets. Use with ``listener=SASL_SSL``."""
        if mechanism not in _SASL_AUTH:
            raise ValueError(f"mechanism {mechanism!r} is not one of {', '.join(_SASL_AUTH)}")
        credentials = {"username": user, "password": self.info.passwords[user]}
        return [
            {"Type": _SASL_AUTH[mechanism], "URI": self.write_secret(credentials)},
            self._root_ca_access(),
        ]

    def mtls_access(self, client: str = "alice") -> list[dict[str, str]]:
        """SourceAccessConfigurations for the SSL listener with ``client``'s certificate
        (its CN is the principal) and the local CA. Use with ``listener=SSL``."""
        pki = self.info.pki
        certificate = {
            "certificate": pki.client_cert(client).read_text(encoding="utf-8"),
            "privateKey": pki.client_key(client, "plain").read_text(encoding="utf-8"),
        }
        return [
            {"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": self.write_secret(certificate)},
            self._root_ca_access(),
        ]

    def write_secret(self, document: Mapping[str, Any]) -> str:
        """Write ``document`` (mode 0600) and return its ``file://`` URI."""
        self._secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._secrets_dir / f"secret-{uuid.uuid4().hex[:12]}.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(document), encoding="utf-8")
        return path.as_uri()

    def _root_ca_access(self) -> dict[str, str]:
        ca = {"certificate": self.info.pki.ca.read_text(encoding="utf-8")}
        return {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": self.write_secret(ca)}

    # -- ACLs ----------------------------------------------------------------------------
    def grant(self, principal: str, mapping: Mapping[str, Any] | EventSourceMapping) -> None:
        """Create the ACLs the mapping needs for ``principal`` (``User:alice``), as an
        operator would for Lambda; the secured listeners refuse everything else."""
        model = mapping if isinstance(mapping, EventSourceMapping) else parse_mapping(mapping)
        self.create_acls(acl_bindings(principal, model.required_acls()))

    def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        """Create ``bindings`` over PLAINTEXT, whose principal is a super user, and wait
        until the authorizer applies them."""
        if not bindings:
            return
        admin = AdminClient(self.info.plaintext_config())
        for future in admin.create_acls(list(bindings)).values():
            future.result(timeout=_TIMEOUT_S)
        _await_acls(admin, bindings)


def _fields(record: Record) -> dict[str, Any]:
    return {
        "key": record.key,
        "value": record.value,
        "partition": record.partition,
        "headers": record.headers,
        "timestamp": record.timestamp_ms,
    }


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


def _await_acls(admin: AdminClient, bindings: Sequence[AclBinding]) -> None:
    """The one-node authorizer applies new ACLs from the metadata log: wait for them."""
    deadline = time.monotonic() + _TIMEOUT_S
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
        while not admin.describe_acls(match).result(timeout=_TIMEOUT_S):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ACL {binding} not visible after {_TIMEOUT_S:g} s")
            time.sleep(0.05)
