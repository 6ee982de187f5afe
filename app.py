"""Example CDK app: synthesizes with ``python app.py`` or ``npx cdk synth``, no credentials.

The account and region are fixed example values from cdk.json's context, so the
templates are the same on every machine and no AWS lookup is ever made. Three
stacks show the three usual shapes of a self-managed Kafka trigger, a fourth the
Fargate deployment of the poller:

- ``KafkaScramInternet``: SASL/SCRAM-SHA-512 to brokers on the internet, with a
  generated password;
- ``KafkaVpcMtls``: brokers in a VPC without NAT (interface endpoints instead),
  mTLS with a private CA;
- ``KafkaS3OnFailure``: provisioned pollers, retry and age limits, partial batch
  responses, filters and an S3 on-failure destination, with an imported secret;
- ``KafkaFargatePoller``: the same kind of props run by this library's poller on ECS
  Fargate, scaled from 1 to the partition count on the lag it publishes, with error
  handling AWS reserves for provisioned mode (here without provisioned pollers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from constructs_kafka import (
    ClientCertificateSecret,
    EsmMetric,
    KafkaAuthentication,
    KafkaPollerService,
    KafkaVpcEndpoints,
    NetworkAccess,
    OnFailureDestination,
    ProvisionedPollerConfig,
    RootCaSecret,
    SaslScramSecret,
    SelfManagedKafkaTrigger,
    StartingPosition,
    SystemLogLevel,
    import_secret,
)

HERE = Path(__file__).resolve().parent

HANDLER = """
def handler(event, context):
    records = [r for batch in event["records"].values() for r in batch]
    print(f"received {len(records)} records")
    return {"batchItemFailures": []}
"""

BASIC_EXECUTION_REASON = (
    "The example functions log with AWS's basic execution policy, which grants only "
    "CloudWatch Logs writes; the Kafka trigger's own statements are in its ExecutionPolicy."
)


def example_environment(app: cdk.App) -> cdk.Environment:
    """The example account and region: cdk.json context, also when run as ``python app.py``."""
    context = json.loads((HERE / "cdk.json").read_text())["context"]
    account = (
        app.node.try_get_context("constructs-kafka:account") or context["constructs-kafka:account"]
    )
    region = (
        app.node.try_get_context("constructs-kafka:region") or context["constructs-kafka:region"]
    )
    return cdk.Environment(account=account, region=region)


def example_function(scope: Construct) -> lambda_.Function:
    """A small inline consumer; its timeout is well under the 14-minute limit."""
    function = lambda_.Function(
        scope,
        "Consumer",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline(HANDLER),
        timeout=cdk.Duration.minutes(1),
    )
    role = function.role
    assert role is not None
    cdk.Validations.of(role).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:"
            "policy/service-role/AWSLambdaBasicExecutionRole]",
            reason=BASIC_EXECUTION_REASON,
        )
    )
    return function


class ScramOverInternetStack(cdk.Stack):
    """SASL/SCRAM-SHA-512 over TLS to public brokers; the password is generated."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        user = SaslScramSecret(
            self, "KafkaUser", username="orders-consumer", encryption_key=secrets_key(self)
        )
        self.trigger = SelfManagedKafkaTrigger(
            self,
            "OrdersTrigger",
            function=example_function(self),
            bootstrap_servers=["kafka-1.example.com:9096", "kafka-2.example.com:9096"],
            topic="orders",
            starting_position=StartingPosition.TRIM_HORIZON,
            authentication=user.authentication,
            batch_size=500,
            max_batching_window=cdk.Duration.seconds(5),
        )


class VpcMtlsStack(cdk.Stack):
    """Brokers in a private VPC (no NAT: endpoints), mTLS with a private root CA.

    The client key is never in the template: the secret is created with a generated
    placeholder, to be replaced after deploying with ``put-secret-value``.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            availability_zones=[f"{self.region}a", f"{self.region}b"],  # no AZ lookup
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="brokers", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            ],
        )
        vpc.add_flow_log("FlowLog")
        key = secrets_key(self)
        client = ClientCertificateSecret(
            self, "ClientCertificate", certificate_chain=CLIENT_CHAIN_PEM, encryption_key=key
        )
        root_ca = RootCaSecret(self, "RootCa", certificate=ROOT_CA_PEM, encryption_key=key)
        # The brokers' own security group (here made for the example; usually imported with
        # SecurityGroup.from_security_group_id): the trigger opens 9094 from its group.
        brokers = ec2.SecurityGroup(
            self, "Brokers", vpc=vpc, allow_all_outbound=False, description="Kafka brokers"
        )
        self.trigger = SelfManagedKafkaTrigger(
            self,
            "PaymentsTrigger",
            function=example_function(self),
            bootstrap_servers=["b-1.kafka.internal:9094", "b-2.kafka.internal:9094"],
            topic="payments",
            starting_position=StartingPosition.LATEST,
            authentication=client.authentication,
            root_ca_secret=root_ca,
            vpc=vpc,
            brokers=[brokers],
            # The VPC serves the mapping only, so its endpoints may allow nothing else.
            network_access=NetworkAccess.VPC_ENDPOINTS,
            endpoints=KafkaVpcEndpoints(self, "Endpoints", vpc=vpc, narrow_policies=True),
        )


class S3OnFailureStack(cdk.Stack):
    """Provisioned pollers with error handling and an S3 on-failure destination."""

    SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/clicks-consumer-AbCdEf"  # noqa: S105 - an ARN, not a password
    KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
        )
        cdk.Validations.of(access_logs).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="This is the access-log bucket itself; logging it would log its own logs.",
            )
        )
        failures = s3.Bucket(
            self,
            "FailedBatches",
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="failed-batches/",
        )
        key = kms.Key.from_key_arn(self, "SecretKey", self.KEY_ARN)
        secret = import_secret(self, "KafkaUser", self.SECRET_ARN, encryption_key=key)
        self.trigger = SelfManagedKafkaTrigger(
            self,
            "ClicksTrigger",
            function=example_function(self),
            bootstrap_servers=["kafka.example.com:9096"],
            topic="clicks",
            starting_position=StartingPosition.TRIM_HORIZON,
            authentication=KafkaAuthentication.sasl_scram_256(secret, username="clicks-consumer"),
            filters=[{"value": {"type": ["click"]}}],
            provisioned_pollers=ProvisionedPollerConfig(minimum_pollers=1, maximum_pollers=5),
            retry_attempts=3,
            max_record_age=cdk.Duration.hours(1),
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            metrics=[EsmMetric.EVENT_COUNT, EsmMetric.ERROR_COUNT],
            system_log_level=SystemLogLevel.WARN,
            on_failure=OnFailureDestination.s3(failures),
        )


class FargatePollerStack(cdk.Stack):
    """The poller on Fargate in private subnets behind a NAT gateway, scaled on lag.

    Retries, bisection and partial batch responses without provisioned pollers: AWS's
    managed mapping refuses them, the poller runs them. The image is built from
    ``runtime/Dockerfile`` when the stack is deployed, not when it is synthesized.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            availability_zones=[f"{self.region}a", f"{self.region}b"],  # no AZ lookup
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="nat", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="pollers", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            ],
        )
        vpc.add_flow_log("FlowLog")
        user = SaslScramSecret(
            self, "KafkaUser", username="shipments-consumer", encryption_key=secrets_key(self)
        )
        failures = sqs.Queue(
            self, "FailedBatches", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True
        )
        cdk.Validations.of(failures).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is itself the on-failure destination of the Kafka poller.",
            )
        )
        logs_key = kms.Key(
            self, "LogsKey", enable_key_rotation=True, description="Encrypts the poller's logs"
        )
        brokers = ec2.Peer.ipv4("10.40.0.0/16")  # a peered network: brokers by CIDR
        self.poller = KafkaPollerService(
            self,
            "ShipmentsPoller",
            function=example_function(self),
            bootstrap_servers=["kafka-1.corp.example:9096", "kafka-2.corp.example:9096"],
            topic="shipments",
            starting_position=StartingPosition.TRIM_HORIZON,
            authentication=user.authentication,
            vpc=vpc,
            network_access=NetworkAccess.NAT_GATEWAY,
            batch_size=200,
            retry_attempts=5,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            on_failure=OnFailureDestination.sqs(failures),
            partition_count=12,
            poller_concurrency=10,
            broker_peers=[brokers],
            log_encryption_key=logs_key,
        )


def secrets_key(scope: Construct) -> kms.Key:
    """One customer-managed key per stack for the Kafka secrets (rotated yearly)."""
    return kms.Key(
        scope,
        "SecretsKey",
        enable_key_rotation=True,
        description="Encrypts the Kafka secrets of the example trigger",
    )


def build_app(outdir: str | None = None) -> cdk.App:
    """Every example stack of this library, checked by cdk-nag's AwsSolutions pack when
    it synthesizes (an unacknowledged finding fails the synth)."""
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR"))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    env = example_environment(app)
    # The example VPC's zones, given as context so that synth never looks them up.
    app.node.set_context(
        f"availability-zones:account={env.account}:region={env.region}",
        [f"{env.region}a", f"{env.region}b"],
    )
    ScramOverInternetStack(app, "KafkaScramInternet", env=env)
    VpcMtlsStack(app, "KafkaVpcMtls", env=env)
    S3OnFailureStack(app, "KafkaS3OnFailure", env=env)
    FargatePollerStack(app, "KafkaFargatePoller", env=env)
    return app


# Public certificates of an example PKI (valid 2025-2045); their private keys were
# thrown away. The client chain is in the documented order: client, intermediate, root.
CLIENT_CHAIN_PEM = """-----BEGIN CERTIFICATE-----
MIIBeDCCAR6gAwIBAgIUOTKqiiKGrk/U9wU0SJ6JanB87yEwCgYIKoZIzj0EAwIw
OjEQMA4GA1UECgwHRXhhbXBsZTEmMCQGA1UEAwwdRXhhbXBsZSBLYWZrYSBJbnRl
cm1lZGlhdGUgQ0EwHhcNMjUwMTAxMDAwMDAwWhcNNDUwMTAxMDAwMDAwWjAsMRAw
DgYDVQQKDAdFeGFtcGxlMRgwFgYDVQQDDA9sYW1iZGEtY29uc3VtZXIwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARpeE4cBqZSUS2kpuHdX3zSjGH5TwaQ7OzECH+M
VuqIAnQlysGMoctY6EqHOLISzJu8+nPIWzdJpVY8U5TFDObtoxAwDjAMBgNVHRMB
Af8EAjAAMAoGCCqGSM49BAMCA0gAMEUCIQCpLovEoFci7RcgU5q7rGaHTLlJt1oa
rroi6sN7S/dCyAIgYsD6l5lx7OUg7HK7v6zDtBa0fcqZnKW6hvAakSwwfT8=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUYPgOvz0qQQJE0sUDLnXdBddrzvMwCgYIKoZIzj0EAwIw
MjEQMA4GA1UECgwHRXhhbXBsZTEeMBwGA1UEAwwVRXhhbXBsZSBLYWZrYSBSb290
IENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ1MDEwMTAwMDAwMFowOjEQMA4GA1UECgwH
RXhhbXBsZTEmMCQGA1UEAwwdRXhhbXBsZSBLYWZrYSBJbnRlcm1lZGlhdGUgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQY29KqgMCQDZqjY5EHOW3ccYx15Ntf
sM+kp+7hL7ubcqqVFXIeIV+3sUpsTaDqr3GsIYV8c/i7tk1QV53BvJaOoxMwETAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIAj3fUj7bMnkd8t33ERh
Owbkfr8SS///6C5C+GqcoQw5AiEA79Ek1nsjFWI9JQBOV7upzu918XqBKQwpmQIS
qtEaPpE=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBeTCCAR+gAwIBAgIUJMonV9cETMN+w9FHR+RlVTJdSfMwCgYIKoZIzj0EAwIw
MjEQMA4GA1UECgwHRXhhbXBsZTEeMBwGA1UEAwwVRXhhbXBsZSBLYWZrYSBSb290
IENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ1MDEwMTAwMDAwMFowMjEQMA4GA1UECgwH
RXhhbXBsZTEeMBwGA1UEAwwVRXhhbXBsZSBLYWZrYSBSb290IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEVbCKAm0W+oaqd4l+ETH2PQt280cSxycVST4JkNNI
ddxLLv9yLMGX+znPwZjneC06aL4AJxaic+JFpNtR/+i3H6MTMBEwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBqAZxeX17xvN5fqM8NvDYpi8fmlGkZ
DjWomxxi3BXCNgIhAI2XbnnUBAcS/0RydwAeoHv7YRHHCIfXw8MSRpXhphmC
-----END CERTIFICATE-----
"""
ROOT_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIBeTCCAR+gAwIBAgIUJMonV9cETMN+w9FHR+RlVTJdSfMwCgYIKoZIzj0EAwIw
MjEQMA4GA1UECgwHRXhhbXBsZTEeMBwGA1UEAwwVRXhhbXBsZSBLYWZrYSBSb290
IENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ1MDEwMTAwMDAwMFowMjEQMA4GA1UECgwH
RXhhbXBsZTEeMBwGA1UEAwwVRXhhbXBsZSBLYWZrYSBSb290IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEVbCKAm0W+oaqd4l+ETH2PQt280cSxycVST4JkNNI
ddxLLv9yLMGX+znPwZjneC06aL4AJxaic+JFpNtR/+i3H6MTMBEwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBqAZxeX17xvN5fqM8NvDYpi8fmlGkZ
DjWomxxi3BXCNgIhAI2XbnnUBAcS/0RydwAeoHv7YRHHCIfXw8MSRpXhphmC
-----END CERTIFICATE-----
"""


if __name__ == "__main__":
    build_app().synth()
