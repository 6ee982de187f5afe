"""PollerGroupName: AWS's group limits checked across the app, shared clusters for services."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from constructs_kafka import (
    KafkaPollerService,
    ProvisionedPollerConfig,
    SelfManagedKafkaTrigger,
    StartingPosition,
)
from constructs_kafka.poller_groups import (
    GROUP_TAG,
    MAX_GROUP_MAPPINGS,
    PollerGroupMember,
    group_problems,
)
from tests.cdk.conftest import ENV, new_function, new_stack
from tests.cdk.fixtures import isolated_vpc


def _trigger(stack: cdk.Stack, name: str, group: str | None, maximum: int) -> Any:
    return SelfManagedKafkaTrigger(
        stack,
        name,
        function=new_function(stack, f"{name}Fn"),
        bootstrap_servers=["b-1.kafka.example.com:9092"],
        topic="orders",
        starting_position=StartingPosition.LATEST,
        provisioned_pollers=ProvisionedPollerConfig(
            maximum_pollers=maximum, poller_group_name=group
        ),
    )


def _service(stack: cdk.Stack, name: str, vpc: Any, group: str, partitions: int) -> Any:
    return KafkaPollerService(
        stack,
        name,
        vpc=vpc,
        function=new_function(stack, f"{name}Fn"),
        bootstrap_servers=["b-1.kafka.example.com:9096"],
        topic=name.lower(),
        starting_position=StartingPosition.LATEST,
        partition_count=partitions,
        provisioned_pollers=ProvisionedPollerConfig(maximum_pollers=50, poller_group_name=group),
    )


def test_maximum_pollers_of_a_group_add_up_to_at_most_2000_across_the_app() -> None:
    app = cdk.App()
    stack = new_stack("Test", app)
    _trigger(stack, "A", "shared", 1200)
    _trigger(stack, "B", "shared", 900)
    _trigger(cdk.Stack(app, "Other", env=ENV), "C", "shared", 1)  # same account and region
    elsewhere = cdk.Environment(account=ENV.account, region="us-east-1")
    _trigger(cdk.Stack(app, "Elsewhere", env=elsewhere), "D", "shared", 1999)  # not counted
    with pytest.raises(RuntimeError, match=r"MaximumPollers of its mappings add up to 2101"):
        app.synth()


def test_separate_groups_and_ungrouped_mappings_do_not_add_up() -> None:
    stack = new_stack()
    _trigger(stack, "A", "orders", 1500)
    _trigger(stack, "B", "payments", 1500)
    _trigger(stack, "C", None, 2000)
    _trigger(stack, "D", "", 2000)  # AWS's empty name is no group
    Template.from_stack(stack)  # synthesizes: no validation error


def test_more_than_100_mappings_in_a_group_are_refused() -> None:
    members = [
        PollerGroupMember("g", "1/eu-west-1", "vpc-1", 1, f"S/T{i}")
        for i in range(MAX_GROUP_MAPPINGS + 1)
    ]
    assert group_problems(members, members[0]) == [
        "poller group 'g' has 101 mappings: AWS allows at most 100"
    ]
    assert group_problems(members[:100], members[0]) == []


def test_a_group_stays_within_one_vpc() -> None:
    a = PollerGroupMember("g", "1/eu-west-1", "vpc-1", 1, "S/A")
    b = PollerGroupMember("g", "1/eu-west-1", "vpc-2", 1, "S/B")
    assert group_problems([a, b], a) == [
        "poller group 'g' spans VPCs: S/A is in another VPC than S/B"
        " (a group shares capacity within one VPC)"
    ]


def test_poller_services_of_a_group_share_one_tagged_cluster() -> None:
    stack = new_stack()
    vpc = isolated_vpc(stack)
    first = _service(stack, "Orders", vpc, "shop", 4)
    second = _service(stack, "Payments", vpc, "shop", 2)
    alone = KafkaPollerService(
        stack,
        "Audit",
        vpc=vpc,
        function=new_function(stack, "AuditFn"),
        bootstrap_servers=["b-1.kafka.example.com:9096"],
        topic="audit",
        starting_position=StartingPosition.LATEST,
        partition_count=1,
    )
    assert first.cluster is second.cluster
    assert alone.cluster is not first.cluster
    template = Template.from_stack(stack)
    clusters = template.find_resources("AWS::ECS::Cluster")
    assert len(clusters) == 2
    tagged = [
        c
        for c in clusters.values()
        if {"Key": GROUP_TAG, "Value": "shop"} in c["Properties"].get("Tags", [])
    ]
    assert len(tagged) == 1
    services = template.find_resources("AWS::ECS::Service")
    group_tags = [
        [t for t in s["Properties"].get("Tags", []) if t["Key"] == GROUP_TAG]
        for s in services.values()
    ]
    assert sorted(len(t) for t in group_tags) == [0, 1, 1]
    # each service counts its max_tasks in the group's MaximumPollers
    assert (first.poller_group.maximum_pollers, second.poller_group.maximum_pollers) == (4, 2)
