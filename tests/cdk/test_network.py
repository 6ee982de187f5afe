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
    SelfManagedKafkaTrigger,
    StartingPosition,
    broker_ports,
)
from tests.cdk.conftest import SERVERS, cfn_lint, new_function, new_stack
from tests.cdk.fixtures import Built, full_vpc_stack, resources

pytestmark = pytest.mark.cdk


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return full_vpc_stack(str(tmp_path_factory.mktemp("net")))


def endpoints(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Endpoints by service suffix (lambda, sts, secretsmanager, sqs, s3)."""
    found = {}
    for value in template["Resources"].values():
        if value["Type"] == "AWS::EC2::VPCEndpoint":
            name = value["Properties"]["ServiceName"]
            suffix = name if isinstance(name, str) else name["Fn::Join"][1][-1]
            found[suffix.rsplit(".", 1)[1]] = value["Properties"]
    return found


def trigger_group_id(built: Built) -> str:
    (key,) = [
        k
        for k in resources(built, "AWS::EC2::SecurityGroup")
        if k.startswith("TriggerSecurityGroup")
    ]
    return key


def test_broker_ports_are_distinct_and_ordered() -> None:
    assert broker_ports(["a:9096", "b:9094", "c:9096"]) == [9096, 9094]


def test_interface_endpoints_with_private_dns(full: Built) -> None:
    found = endpoints(full.json)
    assert set(found) == {"lambda", "sts", "secretsmanager", "sqs"}
    assert all(e["PrivateDnsEnabled"] is True for e in found.values())
    assert all(e["VpcEndpointType"] == "Interface" for e in found.values())


def test_endpoint_policies(full: Built) -> None:
    found = endpoints(full.json)
    role = found["secretsmanager"]["PolicyDocument"]["Statement"][0]["Principal"]
    assert found["sts"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Resource": "*",
        }
    ]
    assert found["lambda"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Resource": "*",
        }
    ]
    (secrets,) = found["secretsmanager"]["PolicyDocument"]["Statement"]
    assert secrets["Action"] == "secretsmanager:GetSecretValue"
    assert role == {"AWS": {"Fn::GetAtt": [role["AWS"]["Fn::GetAtt"][0], "Arn"]}}
    assert role["AWS"]["Fn::GetAtt"][0].startswith("FnServiceRole")
    assert len(secrets["Resource"]) == 2
    (queue,) = found["sqs"]["PolicyDocument"]["Statement"]
    assert queue["Action"] == "sqs:SendMessage" and queue["Principal"] == role
    assert queue["Resource"]["Fn::GetAtt"][0].startswith("Failures")


def test_mapping_security_group_rules(full: Built) -> None:
    group = trigger_group_id(full)
    (sg,) = [v for k, v in resources(full, "AWS::EC2::SecurityGroup").items() if k == group]
    assert sg["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "AWS APIs over HTTPS",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    self_ref = {"Fn::GetAtt": [group, "GroupId"]}
    ingress = resources(full, "AWS::EC2::SecurityGroupIngress").values()
    egress = resources(full, "AWS::EC2::SecurityGroupEgress").values()
    broker_in = sorted(
        r["Properties"]["FromPort"] for r in ingress if r["Properties"]["GroupId"] == self_ref
    )
    broker_out = sorted(
        r["Properties"]["FromPort"] for r in egress if r["Properties"]["GroupId"] == self_ref
    )
    assert broker_in == broker_out == [9094, 9096]
    for rule in [*ingress, *egress]:
        if rule["Properties"]["GroupId"] == self_ref:
            peer = (
                rule["Properties"].get("SourceSecurityGroupId")
                or rule["Properties"]["DestinationSecurityGroupId"]
            )
            assert peer == self_ref


def test_endpoint_security_group_allows_443_from_the_mapping_only(full: Built) -> None:
    (endpoint_group,) = [
        k for k in resources(full, "AWS::EC2::SecurityGroup") if k.startswith("KafkaVpcEndpoints")
    ]
    rules = [
        r["Properties"]
        for r in resources(full, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_group, "GroupId"]}
    ]
    assert [(r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]) for r in rules] == [
        (443, 443, {"Fn::GetAtt": [trigger_group_id(full), "GroupId"]})
    ]


def test_nothing_is_open_inbound_to_any_address(full: Built) -> None:
    for group in resources(full, "AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]
    for rule in resources(full, "AWS::EC2::SecurityGroupIngress").values():
        assert "CidrIp" not in rule["Properties"] and "CidrIpv6" not in rule["Properties"]


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
    _trigger(stack, "A", vpc, on_failure=OnFailureDestination.s3(bucket))
    _trigger(stack, "B", vpc, on_failure=OnFailureDestination.sns(topic))
    template = Template.from_stack(stack).to_json()
    found = endpoints(template)
    assert found["s3"]["VpcEndpointType"] == "Gateway"
    actions = [s["Action"] for s in found["s3"]["PolicyDocument"]["Statement"]]
    assert actions == ["s3:PutObject", "s3:ListBucket"]
    assert [s["Action"] for s in found["sns"]["PolicyDocument"]["Statement"]] == ["sns:Publish"]
    assert cfn_lint(template)[0] == []
