"""The API reads like aws-cdk-lib: keyword props, its enums, an IEventSource, documented
props and no unrequested outputs."""

from __future__ import annotations

import ast
import inspect
import itertools
from dataclasses import MISSING, fields
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk.assertions import Template

from constructs_kafka import (
    KafkaTriggerProps,
    PollerServiceProps,
    SaslScramSecret,
    SelfManagedKafkaEventSource,
    SelfManagedKafkaTrigger,
    StartingPosition,
)
from constructs_kafka import poller_service as poller_module
from constructs_kafka import props as props_module
from tests.cdk.conftest import SERVERS, new_function, new_stack, new_trigger

pytestmark = pytest.mark.cdk


def _without_ids(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's resources by type and properties, logical ids left out."""
    return sorted(
        (
            {"Type": r["Type"], "Properties": r.get("Properties", {})}
            for r in template["Resources"].values()
        ),
        key=repr,
    )


def test_keyword_props_equal_the_props_object() -> None:
    keywords, props_object = new_stack(), new_stack()
    common: dict[str, Any] = {
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
        "batch_size": 10,
    }
    SelfManagedKafkaTrigger(keywords, "Orders", function=new_function(keywords), **common)
    SelfManagedKafkaTrigger(
        props_object, "Orders", KafkaTriggerProps(function=new_function(props_object), **common)
    )
    assert Template.from_stack(keywords).to_json() == Template.from_stack(props_object).to_json()


def test_props_and_keywords_together_are_refused() -> None:
    stack = new_stack()
    function = new_function(stack)
    props = KafkaTriggerProps(
        function=function,
        bootstrap_servers=SERVERS,
        topic="o",
        starting_position=StartingPosition.LATEST,
    )
    with pytest.raises(
        TypeError, match=r"pass props or keyword props, not both \(\['batch_size'\]\)"
    ):
        SelfManagedKafkaTrigger(stack, "T", props, batch_size=5)


def test_aws_cdk_lib_starting_position_is_accepted() -> None:
    stack = new_stack()
    trigger = new_trigger(stack, starting_position=lambda_.StartingPosition.TRIM_HORIZON)
    assert trigger.props.starting_position is StartingPosition.TRIM_HORIZON
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"StartingPosition": "TRIM_HORIZON"}
    )


def _isolated(stack: Any) -> ec2.Vpc:
    return ec2.Vpc(
        stack,
        "Vpc",
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )


def test_event_source_gives_the_same_mapping_permissions_and_network() -> None:
    """``fn.add_event_source`` with aws-cdk-lib's prop names equals the construct."""
    source_stack, trigger_stack = new_stack(), new_stack()
    results = []
    for stack in (source_stack, trigger_stack):
        vpc = _isolated(stack)
        brokers = ec2.SecurityGroup(stack, "Brokers", vpc=vpc)
        user = SaslScramSecret(stack, "User", username="orders")
        function = new_function(stack)
        common: dict[str, Any] = {
            "bootstrap_servers": SERVERS,
            "topic": "orders",
            "vpc": vpc,
            "brokers": [brokers],
            "consumer_group_id": "orders-consumers",
        }
        if stack is source_stack:
            source = SelfManagedKafkaEventSource(
                **common,
                starting_position=lambda_.StartingPosition.LATEST,
                secret=user,
                filters=[lambda_.FilterCriteria.filter({"value": {"kind": ["order"]}})],
            )
            function.add_event_source(source)
            results.append(source.trigger)
        else:
            results.append(
                SelfManagedKafkaTrigger(
                    function,
                    "KafkaEventSourceorders",
                    **common,
                    function=function,
                    starting_position=StartingPosition.LATEST,
                    authentication=user.authentication,
                    filters=[{"value": {"kind": ["order"]}}],
                )
            )
    source_template = Template.from_stack(source_stack).to_json()
    assert _without_ids(source_template) == _without_ids(
        Template.from_stack(trigger_stack).to_json()
    )
    types = {r["Type"] for r in source_template["Resources"].values()}
    assert {"AWS::Lambda::EventSourceMapping", "AWS::IAM::Policy", "AWS::EC2::VPCEndpoint"} <= types
    assert results[0].consumer_group_id == "orders-consumers"


def test_event_source_reads_aws_cdk_lib_authentication_and_pollers() -> None:
    stack = new_stack()
    user = SaslScramSecret(stack, "User", username="orders")
    function = new_function(stack)
    source = SelfManagedKafkaEventSource(
        bootstrap_servers=SERVERS,
        topic="orders",
        starting_position=lambda_.StartingPosition.LATEST,
        secret=user,
        authentication_method=event_sources.AuthenticationMethod.BASIC_AUTH,
        provisioned_poller_config=lambda_.ProvisionedPollerConfig(
            minimum_pollers=2, maximum_pollers=4
        ),
    )
    function.add_event_source(source)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "SourceAccessConfigurations": [
                {
                    "Type": "BASIC_AUTH",
                    "URI": {"Ref": stack.get_logical_id(user.node.default_child)},
                }
            ],
            "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 4},
        },
    )
    assert source.event_source_mapping_id == source.trigger.mapping.event_source_mapping_id


def test_no_output_unless_asked() -> None:
    stack = new_stack()
    common: dict[str, Any] = {
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
    }
    SelfManagedKafkaTrigger(stack, "Quiet", function=new_function(stack), **common)
    assert "Outputs" not in Template.from_stack(stack).to_json()
    loud = new_stack()
    SelfManagedKafkaTrigger(
        loud, "Loud", function=new_function(loud), acl_commands_output=True, **common
    )
    (output,) = Template.from_stack(loud).to_json()["Outputs"].values()
    assert output["Value"].startswith("kafka-acls.sh --bootstrap-server b-1.kafka.example.com:9096")


def _field_docs(module: Any, class_name: str) -> dict[str, str]:
    """Each field's docstring, read from the class's source."""
    tree = ast.parse(inspect.getsource(module))
    (body,) = [n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    docs = {}
    for node, after in itertools.pairwise(body):
        named = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if named and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = str(after.value.value)  # type: ignore[union-attr]
    return docs


@pytest.mark.parametrize(
    ("module", "kind"),
    [(props_module, KafkaTriggerProps), (poller_module, PollerServiceProps)],
    ids=["KafkaTriggerProps", "PollerServiceProps"],
)
def test_every_prop_is_documented_with_its_default(module: Any, kind: type) -> None:
    docs = _field_docs(module, kind.__name__)
    for prop in fields(kind):
        assert prop.name in docs, f"{prop.name} has no docstring"
        optional = prop.default is not MISSING or prop.default_factory is not MISSING
        if optional:
            assert "@default" in docs[prop.name], f"{prop.name} states no @default"


def test_two_event_sources_on_one_function() -> None:
    stack = new_stack()
    function = new_function(stack)
    for topic in ("orders-eu", "orders-us", "orders-us"):
        function.add_event_source(
            SelfManagedKafkaEventSource(
                bootstrap_servers=SERVERS,
                topic=topic,
                starting_position=lambda_.StartingPosition.LATEST,
                consumer_group_id=f"group-{len(function.node.children)}",
            )
        )
    names = sorted(c.node.id for c in function.node.children if "KafkaEventSource" in c.node.id)
    assert names == [
        "KafkaEventSourceorderseu",
        "KafkaEventSourceordersus",
        "KafkaEventSourceordersus2",
    ]
    Template.from_stack(stack).resource_count_is("AWS::Lambda::EventSourceMapping", 3)
