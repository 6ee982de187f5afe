"""The doctor's fix commands: complete, with the cluster's address and the real principal.

On a loopback address the first command is kafka-esm's own helper for its local cluster
(``kafka-esm local-kafka``); the Apache Kafka tool follows for any other cluster (a
loopback address may be a tunnel). ``admin.properties`` stands for the settings of a
client allowed to change ACLs and topics: the doctor never has those credentials.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from runtime.definition.model import AclRequirement, AclResourceType, EventSourceMapping
from runtime.security.plan import is_loopback

__all__ = ["acl_command", "topic_command"]

ADMIN_PROPERTIES = "admin.properties"


def acl_command(
    acl: AclRequirement, mapping: EventSourceMapping, principal: str, mapping_path: Path | None
) -> str:
    """How to grant ``acl`` to ``principal`` on the mapping's cluster."""
    resource = {
        AclResourceType.CLUSTER: "--cluster",
        AclResourceType.GROUP: f"--group {shlex.quote(acl.resource_name)}",
        AclResourceType.TOPIC: f"--topic {shlex.quote(acl.resource_name)}",
    }[acl.resource_type]
    kafka_tool = (
        f"kafka-acls.sh {_connection(mapping)} --add --allow-principal {shlex.quote(principal)} "
        f"--operation {acl.operation.value} {resource}"
    )
    if not _local(mapping):
        return kafka_tool
    mapping_flag = f" --mapping {shlex.quote(str(mapping_path))}" if mapping_path else ""
    helper = f"kafka-esm local-kafka acl grant{mapping_flag} --principal {shlex.quote(principal)}"
    return f"{helper} (every ACL the mapping needs); on another cluster: {kafka_tool}"


def topic_command(mapping: EventSourceMapping) -> str:
    """How to create the mapping's topic (or correct ``Topics``)."""
    topic = shlex.quote(mapping.topic)
    kafka_tool = f"kafka-topics.sh {_connection(mapping)} --create --topic {topic}"
    if not _local(mapping):
        return f"{kafka_tool}, or correct Topics"
    helper = f"kafka-esm local-kafka topic create {topic}"
    return f"{helper}; on another cluster: {kafka_tool}; or correct Topics"


def _connection(mapping: EventSourceMapping) -> str:
    server = shlex.quote(mapping.bootstrap_servers[0])
    return f"--bootstrap-server {server} --command-config {ADMIN_PROPERTIES}"


def _local(mapping: EventSourceMapping) -> bool:
    return all(is_loopback(s) for s in mapping.bootstrap_servers)
