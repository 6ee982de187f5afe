"""The mapping resource, the execution policy and what the trigger exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template

from constructs_kafka import (
    KafkaAuthentication,
    KafkaTriggerProps,
    OnFailureDestination,
    ProvisionedPollerConfig,
    SaslScramSecret,
    SelfManagedKafkaTrigger,
    StartingPosition,
    SystemLogLevel,
)
from runtime.definition.model import parse_mapping
from tests.cdk.conftest import (
    SERVERS,
    cfn_lint,
    nag_report,
    new_function,
    new_stack,
    new_trigger,
)
from tests.cdk.fixtures import (
    GLUE_REGISTRY,
    PLAUSIBLE,
    Built,
    concrete,
    full_vpc_stack,
    resources,
)

pytestmark = pytest.mark.cdk


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return full_vpc_stack(str(tmp_path_factory.mktemp("full")))


def logical_id(built: Built, prefix: str) -> str:
    (found,) = [
        k for k in built.json["Resources"] if k.startswith(prefix) and len(k) == len(prefix) + 8
    ]
    return found


def statements(built: Built) -> dict[str, dict]:
    (policy,) = [
        p for k, p in resources(built, "AWS::IAM::Policy").items() if "TriggerExecutionPolicy" in k
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_mapping_carries_every_prop(full: Built) -> None:
    full.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "Topics": ["orders"],
            "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {
                "Endpoints": {"KafkaBootstrapServers": [*SERVERS, "b-3.kafka.example.com:9094"]}
            },
            "SelfManagedKafkaEventSourceConfig": {
                "ConsumerGroupId": full.trigger.consumer_group_id,
                "SchemaRegistryConfig": {
                    "SchemaRegistryURI": GLUE_REGISTRY,
                    "EventRecordFormat": "JSON",
                    "SchemaValidationConfigs": [{"Attribute": "VALUE"}],
                },
            },
            "FilterCriteria": {"Filters": [{"Pattern": '{"value":{"kind":["order"]}}'}]},
            "KmsKeyArn": Match.any_value(),
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
            "MaximumRetryAttempts": 5,
            "MaximumRecordAgeInSeconds": 7200,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 10},
            "MetricsConfig": {"Metrics": ["EventCount", "KafkaMetrics"]},
            "LoggingConfig": {"SystemLogLevel": "INFO"},
            "Tags": [{"Key": "team", "Value": "orders"}],
        },
    )
    (mapping,) = resources(full, "AWS::Lambda::EventSourceMapping").values()
    kinds = [c["Type"] for c in mapping["Properties"]["SourceAccessConfigurations"]]
    assert kinds == ["SASL_SCRAM_512_AUTH", "SERVER_ROOT_CA_CERTIFICATE"] + ["VPC_SUBNET"] * 2 + [
        "VPC_SECURITY_GROUP"
    ]
    assert set(mapping["DependsOn"]) >= {
        k for k in full.json["Resources"] if k.startswith("TriggerExecutionPolicy")
    }


def test_consumer_group_is_a_stable_derived_uuid(full: Built) -> None:
    assert re.fullmatch(
        r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", full.trigger.consumer_group_id
    )
    again = full.trigger.props.default_consumer_group_id()
    assert again == full.trigger.consumer_group_id


def test_execution_policy_has_exactly_the_needed_statements(full: Built) -> None:
    found = statements(full)
    assert set(found) == {
        "FunctionLogs",
        "KafkaSecretsRead",
        "KafkaSecretsDecrypt",
        "KafkaVpcNetworkInterfaces",
        "KafkaVpcDescribe",
        "OnFailureSqs",
        "OnFailureKey",
        "SchemaRegistryRead",
    }
    assert found["KafkaSecretsRead"]["Action"] == "secretsmanager:GetSecretValue"
    assert found["KafkaSecretsRead"]["Resource"] == [
        {"Ref": logical_id(full, "User")},
        {"Ref": logical_id(full, "RootCa")},
    ]
    decrypt = found["KafkaSecretsDecrypt"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == {"Fn::GetAtt": [logical_id(full, "SecretKey"), "Arn"]}
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    }
    enis = found["KafkaVpcNetworkInterfaces"]
    assert enis["Action"] == ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
    assert enis["Resource"] == "*"
    vpc_arn = enis["Condition"]["ArnEquals"]["ec2:Vpc"]["Fn::Join"][1]
    assert vpc_arn[-1] == {"Ref": logical_id(full, "Vpc")}
    assert "vpc/" in vpc_arn[-2]
    assert sorted(found["KafkaVpcDescribe"]["Action"]) == [
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    ]
    assert "Condition" not in found["KafkaVpcDescribe"]
    assert found["OnFailureSqs"]["Action"] == "sqs:SendMessage"
    assert found["OnFailureSqs"]["Resource"] == {
        "Fn::GetAtt": [logical_id(full, "Failures"), "Arn"]
    }
    assert found["OnFailureKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert found["SchemaRegistryRead"]["Resource"] == [
        GLUE_REGISTRY,
        "arn:aws:glue:eu-west-1:123456789012:schema/orders/*",
    ]
    assert found["FunctionLogs"]["Action"] == [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]


def test_filter_key_policy_lets_lambda_decrypt(full: Built) -> None:
    (key,) = [v for k, v in resources(full, "AWS::KMS::Key").items() if k.startswith("FilterKey")]
    decrypts = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Action"] == "kms:Decrypt"
    ]
    assert decrypts == [
        {
            "Action": "kms:Decrypt",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Resource": "*",
        }
    ]


def test_acl_output_and_data(full: Built) -> None:
    group = full.trigger.consumer_group_id
    assert [
        (a.resource_type.value, a.resource_name, a.operation.value)
        for a in full.trigger.required_acls
    ] == [
        ("Cluster", "kafka-cluster", "DescribeConfigs"),
        ("Group", group, "Describe"),
        ("Group", group, "Read"),
        ("Topic", "orders", "Describe"),
        ("Topic", "orders", "Read"),
    ]
    assert "Outputs" not in full.json  # the output is opt-in
    commands = full.trigger.acl_commands
    assert len(commands) == 3
    assert all("--allow-principal 'User:orders-consumer'" in c for c in commands)
    assert "--operation DescribeConfigs --cluster" in commands[0]
    assert f"--operation Describe --operation Read --group '{group}'" in commands[1]
    assert "--topic 'orders'" in commands[2]
    assert commands[0].startswith(f"kafka-acls.sh --bootstrap-server {SERVERS[0]} ")


def test_template_passes_cfn_lint(full: Built) -> None:
    errors, _warnings = cfn_lint(full.json)
    assert errors == []


def test_cdk_nag_has_no_unacknowledged_finding(full: Built) -> None:
    report = nag_report(Path(full.app.outdir))
    assert report["violations"] == []
    assert all(v["reason"] for v in report["suppressedViolations"])
    (star,) = [
        v["reason"]
        for v in report["suppressedViolations"]
        if v["ruleName"] == "AwsSolutions-IAM5[Resource::*]"
    ]
    # both statements on '*' are explained: the ENI writes' condition and Describe*
    assert "held to the mapping's VPC by an ec2:Vpc condition" in star
    assert "Describe* actions" in star and "support no resource-level permissions" in star
    assert "only authorizes" not in star  # the old, inaccurate reason


def test_mapping_request_is_a_valid_runtime_definition(full: Built) -> None:
    """The request, its references made concrete, is what the runtime's parser accepts."""
    doc = concrete(full.json, full.stack.resolve(full.trigger.mapping_request))
    model = parse_mapping(doc)  # raises MappingValidationError listing every problem
    assert model.function_name == "consumer"
    assert model.topic == "orders"
    assert model.consumer_group_id == full.trigger.consumer_group_id
    assert model.bootstrap_servers == (*SERVERS, "b-3.kafka.example.com:9094")
    assert model.maximum_retry_attempts == 5
    assert model.on_failure is not None
    assert model.on_failure.destination == PLAUSIBLE[("AWS::SQS::Queue", "Arn")]
    kinds = [c.type.value for c in model.source_access_configurations]
    assert kinds == ["SASL_SCRAM_512_AUTH", "SERVER_ROOT_CA_CERTIFICATE"] + ["VPC_SUBNET"] * 2 + [
        "VPC_SECURITY_GROUP"
    ]


def test_props_to_request_parses_with_the_runtime_model() -> None:
    stack = new_stack()
    secret = SaslScramSecret(stack, "User", username="u")
    props = KafkaTriggerProps(
        function=new_function(stack),
        bootstrap_servers=SERVERS,
        topic="orders",
        starting_position=StartingPosition.LATEST,
        authentication=secret.authentication,
        on_failure=OnFailureDestination.kafka("orders-dlq"),
        batch_size=50,
    )
    request = props.to_mapping_request()
    concrete = stack.resolve(request)
    concrete["FunctionName"] = "consumer"
    concrete["SourceAccessConfigurations"][0]["URI"] = (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-AbCdEf"
    )
    model = parse_mapping(concrete)
    assert model.consumer_group_id == props.effective_consumer_group_id
    assert model.batch_size == 50
    assert model.on_failure is not None and model.on_failure.kafka_topic == "orders-dlq"
    assert [a.operation.value for a in model.required_acls()][-2:] == ["Describe", "Write"]


def _logical_ids(servers: list[str]) -> tuple[list[str], str]:
    stack = new_stack()
    trigger = SelfManagedKafkaTrigger(
        stack,
        "Trigger",
        KafkaTriggerProps(
            function=new_function(stack),
            bootstrap_servers=servers,
            topic="orders",
            starting_position=StartingPosition.LATEST,
            consumer_group_id="orders-consumers",
        ),
    )
    template = Template.from_stack(stack).to_json()
    ids = [
        k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    return ids, trigger.consumer_group_id


def test_logical_id_is_stable_when_the_servers_change() -> None:
    """aws-cdk issue 26416: the id must not hash the bootstrap servers."""
    before, group_before = _logical_ids(SERVERS)
    after, group_after = _logical_ids(["new-broker.example.com:9096"])
    assert before == after == ["TriggerMapping82B5EDF2"]
    assert group_before == group_after == "orders-consumers"


def test_without_vpc_or_secrets_there_are_no_extra_statements() -> None:
    stack = new_stack()
    trigger = new_trigger(stack)
    assert trigger.policy is None  # an empty policy would fail CDK's own validation
    stack.node.root.synth()  # type: ignore[attr-defined]  # runs that validation
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    template.resource_count_is("AWS::EC2::SecurityGroup", 0)
    policies = template.find_resources("AWS::IAM::Policy")
    assert [k for k in policies if "TriggerExecutionPolicy" in k] == []


def test_imported_secret_principal_from_username() -> None:
    stack = new_stack()
    secret = cdk.aws_secretsmanager.Secret.from_secret_complete_arn(
        stack, "S", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf"
    )
    auth = KafkaAuthentication.sasl_plain(secret, username="svc")
    assert auth.principal == "User:svc"
    assert auth.type.value == "BASIC_AUTH"


def _group(servers: list[str], topic: str = "orders") -> str:
    stack = new_stack()
    return str(new_trigger(stack, bootstrap_servers=servers, topic=topic).consumer_group_id)


def test_default_group_survives_an_added_broker() -> None:
    """Issue 14.3: the derived group is the function and the topic, not the servers."""
    before = _group(SERVERS)
    assert _group([*SERVERS, "b-3.kafka.example.com:9096"]) == before
    assert _group(["elsewhere.example.com:9096"]) == before
    assert _group(SERVERS, topic="payments") != before


SYSTEM_LOGS: dict[str, Any] = {
    "provisioned_pollers": ProvisionedPollerConfig(),
    "system_log_level": SystemLogLevel.WARN,
}
"""System logs need the execution role to write to the function's log group."""


def _policy_statements(stack: cdk.Stack) -> dict[str, dict]:
    template = Template.from_stack(stack).to_json()
    (policy,) = [
        v
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::IAM::Policy" and "ExecutionPolicy" in k
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize(
    ("importer", "expected"),
    [
        (
            lambda s: secretsmanager.Secret.from_secret_name_v2(s, "S", "kafka/orders"),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/orders-??????",
        ),
        (
            lambda s: secretsmanager.Secret.from_secret_partial_arn(
                s, "S", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/orders"
            ),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/orders-??????",
        ),
        (
            lambda s: secretsmanager.Secret.from_secret_complete_arn(
                s, "S", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/orders-AbCdEf"
            ),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/orders-AbCdEf",
        ),
    ],
    ids=["by-name", "partial-arn", "complete-arn"],
)
def test_secret_statement_matches_the_real_secret_arn(importer: Any, expected: str) -> None:
    """Issue 14.4: a name or partial ARN gets the 6-character suffix wildcard."""
    stack = new_stack()
    secret = importer(stack)
    new_trigger(stack, authentication=KafkaAuthentication.sasl_scram_512(secret))
    resource = stack.resolve(_policy_statements(stack)["KafkaSecretsRead"]["Resource"])
    assert concrete_arn(resource) == expected


def concrete_arn(value: Any) -> str:
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else "aws" for p in parts)


def test_function_logs_statement_names_the_function_group_for_an_alias() -> None:
    """Issue 14.4: an alias logs to its function's group, not /aws/lambda/<name:alias>."""
    stack = new_stack()
    function = new_function(stack)
    alias = lambda_.Alias(stack, "Live", alias_name="live", version=function.current_version)
    new_trigger(stack, function=alias, **SYSTEM_LOGS)
    (group, streams) = _policy_statements(stack)["FunctionLogs"]["Resource"]
    parts = group["Fn::Join"][1]
    assert parts[-2:] == [
        ":logs:eu-west-1:123456789012:log-group:/aws/lambda/",
        {"Ref": stack.get_logical_id(function.node.default_child)},
    ]
    assert ":live" not in json.dumps(group)
    assert streams["Fn::Join"][1][-1] == ":log-stream:*"


def test_function_logs_statement_follows_a_custom_log_group() -> None:
    stack = new_stack()
    group = logs.LogGroup(stack, "Logs", log_group_name="/orders/consumer")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c):\n    return None\n"),
        log_group=group,
    )
    new_trigger(stack, function=function, **SYSTEM_LOGS)
    (arn, _streams) = _policy_statements(stack)["FunctionLogs"]["Resource"]
    assert arn["Fn::Join"][1][-1] == {"Ref": stack.get_logical_id(group.node.default_child)}
    assert "/aws/lambda/" not in json.dumps(arn)


def test_tags_merge_with_the_stack_tags() -> None:
    """Issue 14.7: the mapping's tags are added to, not written over, the stack's."""
    stack = new_stack()
    cdk.Tags.of(stack).add("env", "prod")
    new_trigger(stack, tags={"team": "orders"})
    (mapping,) = (
        Template.from_stack(stack).find_resources("AWS::Lambda::EventSourceMapping").values()
    )
    assert sorted((t["Key"], t["Value"]) for t in mapping["Properties"]["Tags"]) == [
        ("env", "prod"),
        ("team", "orders"),
    ]
