"""``PollerGroupName``: AWS's limits on mappings that share provisioned capacity, at synth.

AWS lets up to 100 event source mappings of one VPC share Event Poller Units under one
poller group name, and the ``MaximumPollers`` of a group's mappings add up to at most
2,000. CreateEventSourceMapping refuses the mapping that breaks either; here every
trigger and poller service of a group is checked against the whole app, per account
and region, when the app synthesizes. A poller service counts its ``max_tasks``.

Fargate tasks do not share compute, so for poller services the group is expressed as
what can be shared: one ECS cluster per group and stack (its Container Insights show
the group's tasks together) and a ``kafka-esm:poller-group`` tag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct, IValidation

MAX_GROUP_MAPPINGS: Final = 100
MAX_GROUP_POLLERS: Final = 2000
GROUP_TAG: Final = "kafka-esm:poller-group"
_MEMBERSHIP: Final = "_kafka_esm_poller_group"


@dataclass(frozen=True)
class PollerGroupMember:
    """One mapping's share of a group: where it runs and the pollers it may take."""

    name: str
    environment: str
    """``account/region`` of its stack (tokens for environment-agnostic stacks)."""
    vpc: str | None
    """The VPC id (a token for a VPC of this app); None outside a VPC."""
    maximum_pollers: int
    path: str


def join_poller_group(
    construct: Construct, name: str | None, vpc: ec2.IVpc | None, maximum_pollers: int
) -> PollerGroupMember | None:
    """Count ``construct`` in group ``name`` (nothing without one) and check the group's
    limits when the app synthesizes."""
    if not name or cdk.Token.is_unresolved(name):
        return None
    stack = cdk.Stack.of(construct)
    member = PollerGroupMember(
        name,
        f"{stack.account}/{stack.region}",
        vpc.vpc_id if vpc is not None else None,
        maximum_pollers,
        construct.node.path,
    )
    setattr(construct, _MEMBERSHIP, member)
    construct.node.add_validation(_GroupLimits(construct, member))
    return member


def group_members(scope: Construct, member: PollerGroupMember) -> list[PollerGroupMember]:
    """Every member of ``member``'s group in the app, in construct order."""
    found = (getattr(c, _MEMBERSHIP, None) for c in scope.node.root.node.find_all())
    return [
        m
        for m in found
        if isinstance(m, PollerGroupMember)
        and (m.name, m.environment) == (member.name, member.environment)
    ]


def group_problems(members: list[PollerGroupMember], member: PollerGroupMember) -> list[str]:
    """What AWS would refuse about ``member``'s group, as sentences naming the rule."""
    problems = []
    label = f"poller group {member.name!r}"
    if len(members) > MAX_GROUP_MAPPINGS:
        problems.append(
            f"{label} has {len(members)} mappings: AWS allows at most {MAX_GROUP_MAPPINGS}"
        )
    total = sum(m.maximum_pollers for m in members)
    if total > MAX_GROUP_POLLERS:
        problems.append(
            f"{label}: the MaximumPollers of its mappings add up to {total}: AWS allows at "
            f"most {MAX_GROUP_POLLERS}"
        )
    others = sorted({m.path for m in members if m.vpc != member.vpc})
    if others:
        problems.append(
            f"{label} spans VPCs: {member.path} is in another VPC than {', '.join(others)}"
            " (a group shares capacity within one VPC)"
        )
    return problems


def group_cluster(scope: Construct, name: str, vpc: ec2.IVpc) -> ecs.Cluster:
    """The one ECS cluster of poller group ``name`` in ``scope``'s stack and ``vpc``
    (a member in another VPC gets its own, and the group check reports it)."""
    stack = cdk.Stack.of(scope)
    digest = hashlib.sha256(f"{name}/{vpc.node.path}".encode()).hexdigest()[:8]
    construct_id = f"PollerGroup{''.join(c for c in name if c.isalnum())}{digest}Cluster"
    existing = stack.node.try_find_child(construct_id)
    if isinstance(existing, ecs.Cluster):
        return existing
    cluster = ecs.Cluster(
        stack, construct_id, vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
    )
    cdk.Tags.of(cluster).add(GROUP_TAG, name)
    return cluster


@jsii.implements(IValidation)
class _GroupLimits:
    """Run when the app synthesizes, once every member of the group exists."""

    def __init__(self, construct: Construct, member: PollerGroupMember) -> None:
        self._construct = construct
        self._member = member

    def validate(self) -> list[str]:
        members = group_members(self._construct, self._member)
        return group_problems(members, self._member)
