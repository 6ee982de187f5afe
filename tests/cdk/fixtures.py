"""Stacks shared by several test modules (synthesizing is slow: build each once)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from constructs_kafka import (
    EsmMetric,
    KafkaPollerService,
    KafkaSchemaRegistry,
    KafkaTriggerProps,
    KafkaVpcEndpoints,
    OnFailureDestination,
    ProvisionedPollerConfig,
    RootCaSecret,
    SaslScramSecret,
    SelfManagedKafkaTrigger,
    StartingPosition,
    SystemLogLevel,
)
from tests.cdk.conftest import SERVERS, new_function, new_stack
from tests.unit.pki_factory import make_pki, pem

GLUE_REGISTRY = "arn:aws:glue:eu-west-1:123456789012:registry/orders"


@dataclass
class Built:
    app: cdk.App
    stack: cdk.Stack
    trigger: SelfManagedKafkaTrigger
    template: Template
    json: dict[str, Any]


def isolated_vpc(stack: cdk.Stack) -> ec2.Vpc:
    """A VPC "Vpc" of isolated private subnets only, with a flow log."""
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    vpc.add_flow_log("FlowLog")
    return vpc


def failure_queue(stack: cdk.Stack, reason: str) -> sqs.Queue:
    """An SQS queue "Failures" encrypted with its own CMK "QueueKey"; ``reason`` tells
    cdk-nag why it has no dead-letter queue of its own (AwsSolutions-SQS3)."""
    queue_key = kms.Key(stack, "QueueKey", enable_key_rotation=True)
    queue = sqs.Queue(
        stack,
        "Failures",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=queue_key,
        enforce_ssl=True,
    )
    cdk.Validations.of(queue).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions::AwsSolutions-SQS3", reason=reason)
    )
    return queue


def secured_props(
    stack: cdk.Stack, user: SaslScramSecret, root_ca: RootCaSecret, vpc: ec2.IVpc, queue: sqs.Queue
) -> dict[str, Any]:
    """The props both VPC fixtures share: SCRAM, a root CA, three brokers, an SQS queue."""
    return {
        "function": new_function(stack),
        "bootstrap_servers": [*SERVERS, "b-3.kafka.example.com:9094"],
        "topic": "orders",
        "authentication": user.authentication,
        "root_ca_secret": root_ca,
        "vpc": vpc,
        "on_failure": OnFailureDestination.sqs(queue),
    }


def full_vpc_stack(outdir: str) -> Built:
    """Every feature at once: SCRAM + root CA with CMKs, VPC, SQS destination with a
    CMK, encrypted filters, provisioned mode, Glue registry, system logs."""
    app = cdk.App(outdir=outdir)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = new_stack("Full", app)
    vpc = isolated_vpc(stack)
    secret_key = kms.Key(stack, "SecretKey", enable_key_rotation=True)
    user = SaslScramSecret(stack, "User", username="orders-consumer", encryption_key=secret_key)
    root_ca = RootCaSecret(stack, "RootCa", certificate=pem(make_pki().root))
    queue = failure_queue(
        stack, "This queue is itself the dead-letter destination of the Kafka trigger."
    )
    filter_key = kms.Key(stack, "FilterKey", enable_key_rotation=True)
    trigger = SelfManagedKafkaTrigger(
        stack,
        "Trigger",
        KafkaTriggerProps(
            **secured_props(stack, user, root_ca, vpc, queue),
            starting_position=StartingPosition.TRIM_HORIZON,
            filters=[{"value": {"kind": ["order"]}}],
            filter_encryption=filter_key,
            provisioned_pollers=ProvisionedPollerConfig(minimum_pollers=2, maximum_pollers=10),
            retry_attempts=5,
            max_record_age=cdk.Duration.hours(2),
            report_batch_item_failures=True,
            metrics=[EsmMetric.EVENT_COUNT, EsmMetric.KAFKA_METRICS],
            system_log_level=SystemLogLevel.INFO,
            schema_registry=KafkaSchemaRegistry.glue(GLUE_REGISTRY),
            tags={"team": "orders"},
        ),
    )
    acknowledge_basic_role(trigger)
    assembly = app.synth()  # runs cdk-nag; raises on an unacknowledged finding
    template = Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
    return Built(app, stack, trigger, template, template.to_json())


def resources(built: Built, kind: str) -> dict[str, Any]:
    return {k: v for k, v in built.json["Resources"].items() if v["Type"] == kind}


def on_demand_vpc_stack(outdir: str) -> Built:
    """On-demand pollers in an isolated VPC: brokers in their own security group, SCRAM
    and root CA secrets, an SQS destination, and narrow endpoints given by the app."""
    app = cdk.App(outdir=outdir)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = new_stack("OnDemand", app)
    vpc = isolated_vpc(stack)
    brokers = ec2.SecurityGroup(stack, "Brokers", vpc=vpc, allow_all_outbound=False)
    user = SaslScramSecret(stack, "User", username="orders-consumer")
    root_ca = RootCaSecret(stack, "RootCa", certificate=pem(make_pki().root))
    queue = failure_queue(stack, "This queue is itself the on-failure destination.")
    trigger = SelfManagedKafkaTrigger(
        stack,
        "Trigger",
        **secured_props(stack, user, root_ca, vpc, queue),
        starting_position=StartingPosition.LATEST,
        brokers=[brokers],
        endpoints=KafkaVpcEndpoints(stack, "Endpoints", vpc=vpc, narrow_policies=True),
    )
    acknowledge_basic_role(trigger)
    assembly = app.synth()
    template = Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
    return Built(app, stack, trigger, template, template.to_json())


def acknowledge_basic_role(trigger: SelfManagedKafkaTrigger) -> None:
    role = trigger.role
    assert role is not None
    cdk.Validations.of(role).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:"
            "policy/service-role/AWSLambdaBasicExecutionRole]",
            reason="The test function logs with AWS's basic execution policy.",
        )
    )


def logical_id(built: Built, construct: Any) -> str:
    """The logical id of a construct's CloudFormation resource."""
    child = construct.node.default_child or construct
    return str(built.stack.get_logical_id(child))


PLAUSIBLE: dict[tuple[str, str], str] = {
    ("AWS::SecretsManager::Secret", "Ref"): (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-AbCdEf"
    ),
    ("AWS::Lambda::Function", "Ref"): "consumer",
    ("AWS::Lambda::Function", "Arn"): "arn:aws:lambda:eu-west-1:123456789012:function:consumer",
    ("AWS::SQS::Queue", "Arn"): "arn:aws:sqs:eu-west-1:123456789012:failures",
    (
        "AWS::KMS::Key",
        "Arn",
    ): "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
}
"""Deploy-time values of the references a mapping request holds, by resource type."""


def concrete(template: dict[str, Any], value: Any) -> Any:
    """A resolved value with every Ref, GetAtt and Join replaced by a plausible
    deploy-time value, so the runtime's own parser can read it."""
    if isinstance(value, list):
        return [concrete(template, v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(str(concrete(template, p)) for p in parts)
    if "Ref" in value and str(value["Ref"]).startswith("AWS::"):
        return {"AWS::Partition": "aws", "AWS::Region": "eu-west-1"}[value["Ref"]]
    if "Ref" in value or "Fn::GetAtt" in value:
        target, attribute = (value["Ref"], "Ref") if "Ref" in value else value["Fn::GetAtt"]
        kind = template["Resources"][target]["Type"]
        ids = {"AWS::EC2::Subnet": "subnet", "AWS::EC2::SecurityGroup": "sg"}
        if kind in ids:  # one id per resource: the parser refuses repeated entries
            return f"{ids[kind]}-{hashlib.sha256(target.encode()).hexdigest()[:17]}"
        return PLAUSIBLE[(kind, attribute)]
    return {k: concrete(template, v) for k, v in value.items()}


def small_poller_service(stack: cdk.Stack, **props: Any) -> KafkaPollerService:
    """A poller service in an isolated VPC with only the required props, plus ``props``."""
    defaults: dict[str, Any] = {
        "bootstrap_servers": ["b-1.kafka.example.com:9096"],
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
        "partition_count": 3,
    }
    return KafkaPollerService(
        stack,
        "Poller",
        vpc=isolated_vpc(stack),
        function=new_function(stack),
        **{**defaults, **props},
    )
