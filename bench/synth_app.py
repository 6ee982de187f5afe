"""The two apps the synth benchmark times: N Kafka mappings, with and without this library.

Both have one stack, one imported SCRAM-SHA-512 secret and N functions, each with
one mapping on its own topic (BatchSize 100, TRIM_HORIZON): what a user would
write either way. Imported by the synth child, which times the import itself.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager

from constructs_kafka import (
    KafkaAuthentication,
    KafkaTriggerProps,
    SelfManagedKafkaTrigger,
    StartingPosition,
)

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/consumer-AbCdEf"
SERVERS = ["kafka-1.example.com:9096", "kafka-2.example.com:9096"]


def new_app(outdir: str) -> tuple[cdk.App, cdk.Stack]:
    """An app with one stack in a fixed example account and region (no lookups)."""
    app = cdk.App(outdir=outdir)
    env = cdk.Environment(account="123456789012", region="eu-west-1")
    return app, cdk.Stack(app, "KafkaMappings", env=env)


def build_library(stack: cdk.Stack, mappings: int) -> None:
    """N ``SelfManagedKafkaTrigger`` constructs."""
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "KafkaUser", SECRET_ARN)
    auth = KafkaAuthentication.sasl_scram_512(secret, username="consumer")
    for index in range(mappings):
        SelfManagedKafkaTrigger(
            stack,
            f"Trigger{index}",
            KafkaTriggerProps(
                function=_function(stack, index),
                bootstrap_servers=SERVERS,
                topic=f"topic-{index}",
                starting_position=StartingPosition.TRIM_HORIZON,
                authentication=auth,
                batch_size=100,
            ),
        )


def build_plain(stack: cdk.Stack, mappings: int) -> None:
    """N plain aws-cdk-lib ``SelfManagedKafkaEventSource`` event sources."""
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "KafkaUser", SECRET_ARN)
    for index in range(mappings):
        _function(stack, index).add_event_source(
            sources.SelfManagedKafkaEventSource(
                bootstrap_servers=SERVERS,
                topic=f"topic-{index}",
                secret=secret,
                authentication_method=sources.AuthenticationMethod.SASL_SCRAM_512_AUTH,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=100,
            )
        )


BUILDERS = {"library": build_library, "plain": build_plain}


def _function(stack: cdk.Stack, index: int) -> lambda_.Function:
    return lambda_.Function(
        stack,
        f"Consumer{index}",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
