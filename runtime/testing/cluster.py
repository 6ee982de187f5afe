"""A real Kafka cluster for tests: topics, records, mappings, secrets and ACLs.

``KafkaTestCluster`` wraps the local broker (``runtime.devtools.local_kafka``) or an
external cluster named by ``KAFKA_BOOTSTRAP_SERVERS``. Every name it makes is unique,
so tests never share a topic or a group; secrets are written as ``file://`` documents
in the formats AWS requires, which the poller reads like Secrets Manager's. The work is
``runtime.devtools.local_kafka.admin``'s, which ``kafka-esm local-kafka`` uses too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime.definition.model import EventSourceMapping, parse_mapping
from runtime.devtools.local_kafka import admin
from runtime.devtools.local_kafka.settings import PLAINTEXT, ClusterInfo
from runtime.devtools.sample_records import Data, RecordLike, as_records

__all__ = ["KafkaTestCluster"]


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
        admin.create_topic(self.info, name, partitions, settings)
        return name

    def produce(
        self, topic: str, records: Iterable[RecordLike] = (), *, values: Iterable[Data] = ()
    ) -> int:
        """Write to ``topic`` and wait for the broker's acks; return how many were written.

        ``records`` are dicts with ``key``, ``value``, ``partition``, ``headers`` and
        ``timestamp`` (as ``kafka_record`` takes them); ``values`` are bare values
        (bytes, str, a dict or list as JSON, None for a tombstone). Without a partition
        the producer's partitioner chooses (by key); the broker assigns offsets.
        """
        items = [*records, *({"value": value} for value in values)]
        fields = [
            {**item, "topic": topic, "offset": 0} if isinstance(item, Mapping) else item
            for item in items
        ]
        return admin.produce(self.info, topic, as_records(fields, partition=-1))

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
        credentials = {"username": user, "password": self.info.passwords[user]}
        return admin.sasl_access(
            self.write_secret(credentials), self._root_ca_uri(), mechanism=mechanism
        )

    def mtls_access(self, client: str = "alice") -> list[dict[str, str]]:
        """SourceAccessConfigurations for the SSL listener with ``client``'s certificate
        (its CN is the principal) and the local CA. Use with ``listener=SSL``."""
        certificate = admin.client_certificate_secret(self.info, client)
        return [
            {"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": self.write_secret(certificate)},
            {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": self._root_ca_uri()},
        ]

    def write_secret(self, document: Mapping[str, Any]) -> str:
        """Write ``document`` (mode 0600) and return its ``file://`` URI."""
        return admin.write_secret(self._secrets_dir, document)

    def _root_ca_uri(self) -> str:
        return self.write_secret(admin.root_ca_secret(self.info))

    # -- ACLs ----------------------------------------------------------------------------
    def grant(self, principal: str, mapping: Mapping[str, Any] | EventSourceMapping) -> None:
        """Create the ACLs the mapping needs for ``principal`` (``User:alice``), as an
        operator would for Lambda, and wait until the authorizer applies them; the
        secured listeners refuse everything else."""
        model = mapping if isinstance(mapping, EventSourceMapping) else parse_mapping(mapping)
        admin.create_acls(self.info, admin.acl_bindings(principal, model.required_acls()))
