"""Stacks shared by several test modules (synthesizing is slow: build each once)."""

from __future__ import annotations

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
