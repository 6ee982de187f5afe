"""The stack of examples/orders.py: assert on the trigger's template with aws-cdk-lib.

No helper is needed: ``aws_cdk.assertions.Template`` synthesizes the stack, and the
constructs refuse at synth what Lambda would refuse at deploy (needs the [cdk] extra).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from constructs_kafka import SaslScramSecret, SelfManagedKafkaTrigger, StartingPosition


def test_the_stack_triggers_the_function_from_the_orders_topic() -> None:
    env = cdk.Environment(account="123456789012", region="us-east-1")
    stack = cdk.Stack(cdk.App(), "Orders", env=env)
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="orders.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
        timeout=cdk.Duration.seconds(60),
    )
    user = SaslScramSecret(stack, "User", username="orders-consumer")
    SelfManagedKafkaTrigger(
        stack,
        "Trigger",
        function=function,
        topic="orders",
        bootstrap_servers=["kafka-1.example.com:9096"],
        starting_position=StartingPosition.TRIM_HORIZON,
        authentication=user.authentication,
        batch_size=100,
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "Topics": ["orders"],
            "BatchSize": 100,
            "SelfManagedEventSource": {
                "Endpoints": {"KafkaBootstrapServers": ["kafka-1.example.com:9096"]}
            },
            "SourceAccessConfigurations": Match.array_with(
                [Match.object_like({"Type": "SASL_SCRAM_512_AUTH"})]
            ),
        },
    )
