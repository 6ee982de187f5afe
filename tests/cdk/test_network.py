"""VPC endpoints, their policies and the security-group rules."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from constructs_kafka import (
    KafkaTriggerProps,
    KafkaVpcEndpoints,
    NetworkAccess,
    OnFailureDestination,
    ProvisionedPollerConfig,
    SelfManagedKafkaTrigger,
    StartingPosition,
    broker_ports,
)
from tests.cdk.conftest import SERVERS, cfn_lint, new_function, new_stack
from tests.cdk.fixtures import Built, full_vpc_stack, logical_id, on_demand_vpc_stack, resources

pytestmark = pytest.mark.cdk


@pytest.fixture(scope="module")
def on_demand(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return on_demand_vpc_stack(str(tmp_path_factory.mktemp("net")))


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return full_vpc_stack(str(tmp_path_factory.mktemp("full")))


def endpoints(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Endpoints by service suffix (lambda, sts, secretsmanager, sqs, s3)."""
    found = {}
    for value in template["Resources"].values():
        if value["Type"] == "AWS::EC2::VPCEndpoint":
            name = value["Properties"]["ServiceName"]
            suffix = name if isinstance(name, str) else name["Fn::Join"][1][-1]
            found[suffix.rsplit(".", 1)[1]] = value["Properties"]
    return found


def group_ref(built: Built, construct: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id(built, construct), "GroupId"]}


def rules(built: Built, kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources(built, f"AWS::EC2::SecurityGroup{kind}").values()]


def test_broker_ports_are_distinct_and_ordered() -> None:
    assert broker_ports(["a:9096", "b:9094", "c:9096"]) == [9096, 9094]


def test_interface_endpoints_with_private_dns(on_demand: Built) -> None:
    found = endpoints(on_demand.json)
    assert set(found) == {"lambda", "sts", "secretsmanager", "sqs"}
    assert all(e["PrivateDnsEnabled"] is True for e in found.values())
    assert all(e["VpcEndpointType"] == "Interface" for e in found.values())


def test_narrow_endpoint_policies(on_demand: Built) -> None:
    found = endpoints(on_demand.json)
    role = {"AWS": {"Fn::GetAtt": [logical_id(on_demand, on_demand.trigger.role), "Arn"]}}
    for service, action in (("sts", "sts:AssumeRole"), ("lambda", "lambda:InvokeFunction")):
        assert found[service]["PolicyDocument"]["Statement"] == [
            {
                "Action": action,
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Resource": "*",
            }
        ]
    (secrets,) = found["secretsmanager"]["PolicyDocument"]["Statement"]
    assert secrets["Action"] == "secretsmanager:GetSecretValue"
    assert secrets["Principal"] == role
    assert len(secrets["Resource"]) == 2
    (queue,) = found["sqs"]["PolicyDocument"]["Statement"]
    assert queue["Action"] == "sqs:SendMessage" and queue["Principal"] == role
    assert queue["Resource"]["Fn::GetAtt"][0].startswith("Failures")


def test_brokers_security_group_gets_exactly_the_broker_ports(on_demand: Built) -> None:
    """Issue 14.1: the mapping reaches the brokers' group on the broker ports, no wider."""
    trigger = on_demand.trigger
    (mapping_group,) = trigger.security_groups
    mine, brokers = (
        group_ref(on_demand, mapping_group),
        group_ref(on_demand, on_demand.stack.node.find_child("Brokers")),
    )
    broker_in = [r for r in rules(on_demand, "Ingress") if r["GroupId"] == brokers]
    assert sorted((r["FromPort"], r["ToPort"], r["IpProtocol"]) for r in broker_in) == [
        (9094, 9094, "tcp"),
        (9096, 9096, "tcp"),
    ]
    assert all(r["SourceSecurityGroupId"] == mine for r in broker_in)
    out = [r for r in rules(on_demand, "Egress") if r["GroupId"] == mine]
    assert sorted((r["FromPort"], r["DestinationSecurityGroupId"] == brokers) for r in out) == [
        (9094, True),
        (9096, True),
    ]
    (sg,) = [
        v["Properties"]
        for k, v in resources(on_demand, "AWS::EC2::SecurityGroup").items()
        if k == logical_id(on_demand, mapping_group)
    ]
    assert sg["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "AWS APIs over HTTPS",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    # nothing into the mapping's own group: it only connects out
    assert [r for r in rules(on_demand, "Ingress") if r["GroupId"] == mine] == []
    assert trigger.connections.default_port is not None
    assert trigger.connections.security_groups == [mapping_group]


def test_cidr_brokers_get_an_egress_rule_only() -> None:
    stack, vpc = _vpc_stack()
    trigger = _trigger(stack, "A", vpc, brokers=[ec2.Peer.ipv4("10.20.0.0/16")])
    template = Template.from_stack(stack).to_json()
    group = stack.get_logical_id(trigger.security_groups[0].node.default_child)
    egress = template["Resources"][group]["Properties"]["SecurityGroupEgress"]
    assert sorted((r["CidrIp"], r["FromPort"], r["ToPort"]) for r in egress) == [
        ("0.0.0.0/0", 443, 443),
        ("10.20.0.0/16", 9096, 9096),
    ]
    assert [r for r in template["Resources"].values() if r["Type"].endswith("Ingress")] == [
        r
        for r in template["Resources"].values()
        if r["Type"].endswith("Ingress") and r["Properties"]["FromPort"] == 443
    ]


def test_without_brokers_the_ports_are_open_within_the_mapping_group(full: Built) -> None:
    (group,) = full.trigger.security_groups
    self_ref = group_ref(full, group)
    ports = {
        kind: sorted(r["FromPort"] for r in rules(full, kind) if r["GroupId"] == self_ref)
        for kind in ("Ingress", "Egress")
    }
    assert ports == {"Ingress": [9094, 9096], "Egress": [9094, 9096]}
    warnings = full.stack.node.find_child("Trigger").node.metadata
    assert any("brokers is not given" in str(m.data) for m in warnings)


def test_endpoint_security_group_allows_443_from_the_mapping_only(on_demand: Built) -> None:
    endpoint_group = on_demand.trigger.endpoints.security_group  # type: ignore[union-attr]
    found = [
        r
        for r in rules(on_demand, "Ingress")
        if r["GroupId"] == group_ref(on_demand, endpoint_group)
    ]
    assert [(r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]) for r in found] == [
        (443, 443, group_ref(on_demand, on_demand.trigger.security_groups[0]))
    ]


def test_nothing_is_open_inbound_to_any_address(on_demand: Built) -> None:
    for group in resources(on_demand, "AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]
    for rule in rules(on_demand, "Ingress"):
        assert "CidrIp" not in rule and "CidrIpv6" not in rule


def test_provisioned_mode_creates_no_endpoints(full: Built) -> None:
    """Issue 14.2: AWS says provisioned pollers need no VPC endpoints."""
    assert endpoints(full.json) == {}
    assert full.trigger.network_access is None and full.trigger.endpoints is None


def _vpc_stack() -> tuple[Any, ec2.Vpc]:
    stack = new_stack()
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    return stack, vpc


def _trigger(stack: Any, name: str, vpc: ec2.IVpc, **extra: Any) -> SelfManagedKafkaTrigger:
    return SelfManagedKafkaTrigger(
        stack,
        name,
        KafkaTriggerProps(
            function=new_function(stack, f"{name}Fn"),
            bootstrap_servers=SERVERS,
            topic="orders",
            starting_position=StartingPosition.LATEST,
            vpc=vpc,
            **extra,
        ),
    )


def test_two_triggers_in_one_vpc_share_the_endpoints() -> None:
    stack, vpc = _vpc_stack()
    first = _trigger(stack, "A", vpc)
    second = _trigger(stack, "B", vpc)
    assert first.endpoints is second.endpoints
    template = Template.from_stack(stack).to_json()
    assert sorted(endpoints(template)) == ["lambda", "sts"]
    errors, _ = cfn_lint(template)
    assert errors == []


def test_cfn_lint_catches_duplicate_private_dns_endpoints() -> None:
    """Why endpoints are shared: a second private-DNS endpoint fails (E3064)."""
    stack, vpc = _vpc_stack()
    _trigger(stack, "A", vpc, endpoints=KafkaVpcEndpoints(stack, "Own", vpc=vpc))
    _trigger(stack, "B", vpc)
    errors, _ = cfn_lint(Template.from_stack(stack).to_json())
    assert any("E3064" in e for e in errors)


def test_nat_gateway_mode_creates_no_endpoints() -> None:
    stack, vpc = _vpc_stack()
    trigger = _trigger(stack, "A", vpc, network_access=NetworkAccess.NAT_GATEWAY)
    assert trigger.endpoints is None
    Template.from_stack(stack).resource_count_is("AWS::EC2::VPCEndpoint", 0)


def test_existing_endpoints_mode_opens_443_on_their_group() -> None:
    stack, vpc = _vpc_stack()
    existing = ec2.SecurityGroup.from_security_group_id(stack, "Existing", "sg-0123456789abcdef0")
    _trigger(
        stack,
        "A",
        vpc,
        network_access=NetworkAccess.EXISTING_ENDPOINTS,
        existing_endpoint_security_groups=[existing],
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"GroupId": "sg-0123456789abcdef0", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"},
    )


def test_s3_destination_gets_a_gateway_endpoint_and_sns_an_interface() -> None:
    stack, vpc = _vpc_stack()
    bucket = s3.Bucket(stack, "Bucket")
    topic = sns.Topic(stack, "Topic")
    narrow = KafkaVpcEndpoints(stack, "Narrow", vpc=vpc, narrow_policies=True)
    _trigger(stack, "A", vpc, on_failure=OnFailureDestination.s3(bucket), endpoints=narrow)
    _trigger(stack, "B", vpc, on_failure=OnFailureDestination.sns(topic), endpoints=narrow)
    template = Template.from_stack(stack).to_json()
    found = endpoints(template)
    assert found["s3"]["VpcEndpointType"] == "Gateway"
    actions = [s["Action"] for s in found["s3"]["PolicyDocument"]["Statement"]]
    assert actions == ["s3:PutObject", "s3:ListBucket"]
    assert [s["Action"] for s in found["sns"]["PolicyDocument"]["Statement"]] == ["sns:Publish"]
    assert cfn_lint(template)[0] == []


def _two_group_vpc(egress: bool = False) -> tuple[Any, ec2.Vpc]:
    stack = new_stack()
    kind = ec2.SubnetType.PRIVATE_WITH_EGRESS if egress else ec2.SubnetType.PRIVATE_ISOLATED
    groups = [ec2.SubnetConfiguration(name=n, subnet_type=kind) for n in ("kafka", "apps")]
    if egress:
        groups.append(ec2.SubnetConfiguration(name="nat", subnet_type=ec2.SubnetType.PUBLIC))
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=1 if egress else 0, subnet_configuration=groups)
    return stack, vpc


def test_isolated_subnets_get_open_endpoints_and_a_warning() -> None:
    """Issue 14.2: unrequested endpoints keep AWS's open policy and say what changes."""
    stack, vpc = _two_group_vpc()
    bucket = s3.Bucket(stack, "Bucket")
    trigger = _trigger(
        stack,
        "A",
        vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_group_name="kafka"),
        on_failure=OnFailureDestination.s3(bucket),
    )
    assert trigger.network_access is NetworkAccess.VPC_ENDPOINTS
    template = Template.from_stack(stack).to_json()
    found = endpoints(template)
    assert set(found) == {"lambda", "sts", "s3"}
    assert all("PolicyDocument" not in e for e in found.values())
    kafka_tables = {
        stack.resolve(s.route_table.route_table_id)["Ref"]
        for s in vpc.select_subnets(subnet_group_name="kafka").subnets
    }
    assert {t["Ref"] for t in found["s3"]["RouteTableIds"]} == kafka_tables
    interface_subnets = {s["Ref"] for s in found["lambda"]["SubnetIds"]}
    assert interface_subnets == {
        stack.resolve(s.subnet_id)["Ref"]
        for s in vpc.select_subnets(subnet_group_name="kafka").subnets
    }
    (warning,) = [m.data for m in trigger.node.metadata if "VPC endpoints" in str(m.data)]
    assert "private DNS for Lambda, Sts, S3" in warning
    assert "every workload in that VPC" in warning
    assert "network_access=NAT_GATEWAY" in warning


def test_subnets_with_egress_get_no_endpoints() -> None:
    stack, vpc = _two_group_vpc(egress=True)
    trigger = _trigger(stack, "A", vpc)
    assert trigger.network_access is NetworkAccess.NAT_GATEWAY
    assert trigger.endpoints is None
    Template.from_stack(stack).resource_count_is("AWS::EC2::VPCEndpoint", 0)


def test_provisioned_mode_ignores_a_request_for_endpoints() -> None:
    stack, vpc = _vpc_stack()
    trigger = _trigger(
        stack,
        "A",
        vpc,
        network_access=NetworkAccess.VPC_ENDPOINTS,
        provisioned_pollers=ProvisionedPollerConfig(),
    )
    Template.from_stack(stack).resource_count_is("AWS::EC2::VPCEndpoint", 0)
    assert any(
        "provisioned pollers need no VPC endpoints" in str(m.data) for m in trigger.node.metadata
    )


def test_the_trigger_is_connectable_like_cdk_network_constructs() -> None:
    stack, vpc = _vpc_stack()
    trigger = _trigger(stack, "A", vpc, network_access=NetworkAccess.NAT_GATEWAY)
    cache = ec2.SecurityGroup(stack, "Cache", vpc=vpc)
    cache.connections.allow_from(trigger, ec2.Port.tcp(6379), "cache from the trigger")
    template = Template.from_stack(stack)
    group = stack.resolve(trigger.security_groups[0].security_group_id)
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"FromPort": 6379, "SourceSecurityGroupId": group, "Description": "cache from the trigger"},
    )
