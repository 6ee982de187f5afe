"""The Kafka ACLs a mapping's principal needs, as data and as ``kafka-acls.sh`` commands.

The bindings come from the runtime's model (``EventSourceMapping.required_acls``):
DescribeConfigs on the cluster, Describe and Read on the group and the topic, and
Describe and Write on a ``kafka://`` destination topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Final

from runtime.definition.model import AclRequirement, AclResourceType

__all__ = ["PRINCIPAL_PLACEHOLDER", "kafka_acls_commands"]

PRINCIPAL_PLACEHOLDER: Final = "User:<principal>"
"""Written when the principal is unknown at synth time (an imported secret)."""

_RESOURCE_FLAGS: Final = {
    AclResourceType.CLUSTER: "--cluster",
    AclResourceType.GROUP: "--group",
    AclResourceType.TOPIC: "--topic",
}


def kafka_acls_commands(
    acls: Sequence[AclRequirement],
    *,
    principal: str | None,
    bootstrap_server: str,
    command_config: str = "admin.properties",
) -> list[str]:
    """One ``kafka-acls.sh --add`` per resource, with all its operations."""

    def key(acl: AclRequirement) -> tuple[str, str, str]:
        return (acl.resource_type.value, acl.resource_name, acl.pattern_type)

    commands = []
    for (kind, name, pattern), group in groupby(acls, key=key):
        operations = " ".join(f"--operation {acl.operation.value}" for acl in group)
        flag = _RESOURCE_FLAGS[AclResourceType(kind)]
        resource = flag if kind == AclResourceType.CLUSTER else f"{flag} '{name}'"
        commands.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap_server} "
            f"--command-config {command_config} "
            f"--add --allow-principal '{principal or PRINCIPAL_PLACEHOLDER}' {operations} "
            f"{resource} --resource-pattern-type {pattern.lower()}"
        )
    return commands
