"""The execution role's statements, each made only by the feature that needs it.

Lambda's pollers act with the function's execution role: they read the secrets,
create ENIs in the VPC and write to the on-failure destination. Every statement
names exact ARNs except the EC2 ones: Describe* supports no resource-level
permission, and the ENI writes are held to the mapping's VPC by ``ec2:Vpc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager

from constructs_kafka.destinations import OnFailureDestination
from constructs_kafka.schema_registry import KafkaSchemaRegistry
from runtime.definition.vocabulary import GLUE_REGISTRY_ARN, DestinationKind

__all__ = [
    "allow_log_encryption",
    "destination_statements",
    "eni_statements",
    "log_group_name",
    "log_statement",
    "registry_statement",
    "secret_arn_for_policies",
]

ENI_DESCRIBE_ACTIONS: Final = (
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)
"""EC2 Describe* actions: IAM authorizes them on ``*`` only."""
ENI_WRITE_ACTIONS: Final = ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface")
"""What the pollers need to attach to the VPC (Lambda developer guide); each resource of
these calls (ENI, subnet, security group) carries ``ec2:Vpc``."""


def log_group_name(function: lambda_.IFunction) -> str:
    """The log group Lambda writes to: the function's own (an alias or version logs to
    its function's group), or the group its logging config names."""
    base = function
    while isinstance(base, lambda_.Alias | lambda_.Version):
        base = base.lambda_
    cfn = base.node.default_child
    config = cfn.logging_config if isinstance(cfn, lambda_.CfnFunction) else None
    named = getattr(config, "log_group", None)
    return named if isinstance(named, str) else f"/aws/lambda/{base.function_name}"


def log_statement(function: lambda_.IFunction) -> iam.PolicyStatement:
    """Writing to the function's log group, where the mapping's system logs go too."""
    stack = cdk.Stack.of(function)
    group = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name(function),
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    return iam.PolicyStatement(
        sid="FunctionLogs",
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[group, f"{group}:log-stream:*"],
    )


def secret_arn_for_policies(secret: secretsmanager.ISecret) -> str:
    """The ARN IAM matches: a secret known only by name or partial ARN gets the
    ``-??????`` wildcard of the 6 characters Secrets Manager appends."""
    if secret.secret_full_arn is not None:
        return secret.secret_full_arn
    return f"{secret.secret_arn}-??????"


def secrets_statement(secrets: Sequence[secretsmanager.ISecret]) -> iam.PolicyStatement:
    """``GetSecretValue`` on the authentication, root-CA and registry secrets only."""
    return iam.PolicyStatement(
        sid="KafkaSecretsRead",
        actions=["secretsmanager:GetSecretValue"],
        resources=_unique([secret_arn_for_policies(s) for s in secrets]),
    )


def secret_key_statement(keys: Sequence[kms.IKey]) -> iam.PolicyStatement:
    """``kms:Decrypt`` on the secrets' customer keys, only through Secrets Manager."""
    region = cdk.Stack.of(keys[0]).region
    return iam.PolicyStatement(
        sid="KafkaSecretsDecrypt",
        actions=["kms:Decrypt"],
        resources=_unique([k.key_arn for k in keys]),
        conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
    )


def read_secret_statements(secrets: Sequence[secretsmanager.ISecret]) -> list[iam.PolicyStatement]:
    """Read on the secrets, plus decrypt on their customer keys; none without secrets."""
    if not secrets:
        return []
    statements = [secrets_statement(secrets)]
    keys = [s.encryption_key for s in secrets if s.encryption_key is not None]
    if keys:
        statements.append(secret_key_statement(keys))
    return statements


LOGS_KEY_ACTIONS: Final = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)
"""What CloudWatch Logs needs of a log group's customer key (its user guide)."""


def allow_log_encryption(key: kms.IKey, group: logs.ILogGroup) -> None:
    """CloudWatch Logs may use ``key`` for log groups of this account and region (AWS's
    key policy statement). Naming the one group would be a cycle: the group names the key."""
    stack = cdk.Stack.of(group)
    groups = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncryption",
            actions=list(LOGS_KEY_ACTIONS),
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}},
        )
    )


def eni_statements(vpc: ec2.IVpc) -> list[iam.PolicyStatement]:
    """The ENI writes, only in ``vpc``; the Describe* calls, which IAM scopes no further."""
    vpc_arn = cdk.Stack.of(vpc).format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
    return [
        iam.PolicyStatement(
            sid="KafkaVpcNetworkInterfaces",
            actions=list(ENI_WRITE_ACTIONS),
            resources=["*"],
            conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
        ),
        iam.PolicyStatement(
            sid="KafkaVpcDescribe", actions=list(ENI_DESCRIBE_ACTIONS), resources=["*"]
        ),
    ]


def destination_statements(destination: OnFailureDestination) -> list[iam.PolicyStatement]:
    """What the pollers call on the destination, plus its customer key's actions."""
    arn = destination.destination
    statements: list[iam.PolicyStatement] = []
    if destination.kind is DestinationKind.SQS:
        statements.append(_statement("OnFailureSqs", ["sqs:SendMessage"], [arn]))
    elif destination.kind is DestinationKind.SNS:
        statements.append(_statement("OnFailureSns", ["sns:Publish"], [arn]))
    elif destination.kind is DestinationKind.S3:
        statements.append(_statement("OnFailureS3Put", ["s3:PutObject"], [f"{arn}/*"]))
        statements.append(_statement("OnFailureS3List", ["s3:ListBucket"], [arn]))
    key = destination.encryption_key
    if key is not None:
        actions = (
            ["kms:GenerateDataKey"]
            if destination.kind is DestinationKind.S3
            else ["kms:Decrypt", "kms:GenerateDataKey"]
        )
        statements.append(_statement("OnFailureKey", actions, [key.key_arn]))
    return statements


def registry_statement(registry: KafkaSchemaRegistry) -> iam.PolicyStatement | None:
    """Glue registries are read with the execution role; Confluent ones with secrets."""
    if not GLUE_REGISTRY_ARN.fullmatch(registry.uri):
        return None
    schemas = registry.uri.replace(":registry/", ":schema/", 1) + "/*"
    return _statement(
        "SchemaRegistryRead",
        ["glue:GetRegistry", "glue:GetSchemaVersion"],
        [registry.uri, schemas],
    )


def _statement(sid: str, actions: list[str], resources: list[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=actions, resources=resources)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
