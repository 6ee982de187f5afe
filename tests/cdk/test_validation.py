"""One test per synth-time rule: each error names the prop, the value and the rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from constructs_kafka import (
    EsmMetric,
    KafkaAuthentication,
    KafkaSchemaRegistry,
    KafkaTriggerProps,
    KafkaTriggerValidationError,
    KafkaVpcEndpoints,
    NetworkAccess,
    OnFailureDestination,
    ProvisionedPollerConfig,
    SaslScramSecret,
    SelfManagedKafkaTrigger,
    SourceAccessType,
    StartingPosition,
    SystemLogLevel,
)
from tests.cdk.conftest import SERVERS, new_function, new_stack

pytestmark = pytest.mark.cdk

GLUE = "arn:aws:glue:eu-west-1:123456789012:registry/r"


def build(stack: cdk.Stack | None = None, **overrides: Any) -> SelfManagedKafkaTrigger:
    stack = stack or new_stack()
    values: dict[str, Any] = {
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
    }
    values.update(overrides)
    if "function" not in values:
        values["function"] = new_function(stack)
    return SelfManagedKafkaTrigger(stack, "Trigger", KafkaTriggerProps(**values))


def problems(stack: cdk.Stack | None = None, **overrides: Any) -> list[str]:
    with pytest.raises(KafkaTriggerValidationError) as caught:
        build(stack, **overrides)
    message = str(caught.value)
    assert message.startswith("invalid self-managed Kafka trigger Test/Trigger")
    return [str(p) for p in caught.value.problems]


def single(stack: cdk.Stack | None = None, **overrides: Any) -> str:
    found = problems(stack, **overrides)
    assert len(found) == 1, found
    return found[0]


def accepted(stack: cdk.Stack | None = None, **overrides: Any) -> dict[str, Any]:
    """The mapping's properties, for props that must pass."""
    trigger = build(stack, **overrides)
    template = Template.from_stack(cdk.Stack.of(trigger)).to_json()
    (mapping,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    return dict(mapping)


def test_valid_props_pass() -> None:
    mapping = accepted()
    assert mapping["Topics"] == ["orders"]
    assert mapping["StartingPosition"] == "LATEST"
    assert mapping["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"] == SERVERS


def test_batch_size_range() -> None:
    assert single(batch_size=0) == "batch_size (BatchSize): 0 must be an integer from 1 to 10000"
    assert "10001 must be an integer from 1 to 10000" in single(batch_size=10001)


def test_batching_window_limit() -> None:
    found = single(max_batching_window=cdk.Duration.seconds(301))
    assert found == (
        "max_batching_window (MaximumBatchingWindowInSeconds): 301 must be an integer from 0 to 300"
    )


def test_batching_window_whole_seconds() -> None:
    found = single(max_batching_window=cdk.Duration.millis(1500))
    assert found.startswith(
        "max_batching_window (MaximumBatchingWindowInSeconds): 1.5 must be an integer"
    )


def test_topic_pattern() -> None:
    assert single(topic=".hidden").startswith(
        "topic (Topics[0]): '.hidden' must match AWS's topic pattern"
    )


def test_topic_length() -> None:
    assert "must be 1-249 characters long (is 250)" in single(topic="t" * 250)


def test_bootstrap_servers_count() -> None:
    servers = [f"b-{i}.example.com:9092" for i in range(11)]
    found = single(bootstrap_servers=servers)
    assert found.startswith(
        "bootstrap_servers (SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS)"
    )
    assert "must hold 1-10 bootstrap servers (has 11)" in found
    assert "must hold 1-10 bootstrap servers (has 0)" in single(bootstrap_servers=[])


def test_bootstrap_server_is_host_and_port() -> None:
    found = single(bootstrap_servers=["broker.example.com"])
    assert "KAFKA_BOOTSTRAP_SERVERS[0]): 'broker.example.com' must be host:port" in found
    assert "has a port outside 1-65535" in single(bootstrap_servers=["broker:70000"])


def test_timestamp_required_with_at_timestamp() -> None:
    found = single(starting_position=StartingPosition.AT_TIMESTAMP)
    assert found == (
        "starting_position_timestamp (StartingPositionTimestamp): <missing> is required when "
        "StartingPosition is AT_TIMESTAMP"
    )


def test_timestamp_forbidden_otherwise() -> None:
    found = single(starting_position_timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    assert found == (
        "starting_position_timestamp (StartingPositionTimestamp): 1704067200 is allowed only "
        "when StartingPosition is AT_TIMESTAMP"
    )


def test_at_timestamp_with_timestamp_passes() -> None:
    trigger = build(
        starting_position=StartingPosition.AT_TIMESTAMP,
        starting_position_timestamp=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert trigger.mapping_request["StartingPositionTimestamp"] == 1704067200


def test_function_timeout_at_most_14_minutes() -> None:
    stack = new_stack()
    function = new_function(stack, timeout=cdk.Duration.minutes(15))
    found = single(stack, function=function)
    assert found == (
        "function (Timeout): '900 seconds' is the function's timeout; a Kafka trigger needs at "
        "most 840 seconds (14 minutes)"
    )
    fourteen = new_stack()
    assert accepted(fourteen, function=new_function(fourteen, timeout=cdk.Duration.minutes(14)))


@pytest.mark.parametrize(
    ("overrides", "prop"),
    [
        ({"retry_attempts": 3}, "retry_attempts (MaximumRetryAttempts)"),
        ({"max_record_age": cdk.Duration.minutes(5)}, "max_record_age (MaximumRecordAgeInSeconds)"),
        ({"bisect_batch_on_error": True}, "bisect_batch_on_error (BisectBatchOnFunctionError)"),
        (
            {"report_batch_item_failures": True},
            "report_batch_item_failures (FunctionResponseTypes)",
        ),
        ({"system_log_level": SystemLogLevel.WARN}, "system_log_level (LoggingConfig)"),
        ({"metrics": [EsmMetric.ERROR_COUNT]}, "metrics (MetricsConfig.Metrics[0])"),
        ({"schema_registry": KafkaSchemaRegistry.glue(GLUE)}, "schema_registry ("),
        ({"on_failure": OnFailureDestination.kafka("orders-dlq")}, "on_failure (DestinationConfig"),
    ],
)
def test_provisioned_only_features_need_pollers(overrides: dict[str, Any], prop: str) -> None:
    found = single(**overrides)
    assert found.startswith(prop)
    assert found.endswith(
        "needs provisioned mode in AWS Lambda (set ProvisionedPollerConfig); "
        "the local poller supports it in every mode"
    )
    assert "ProvisionedPollerConfig" in accepted(
        provisioned_pollers=ProvisionedPollerConfig(), **overrides
    )


@pytest.mark.parametrize(
    ("topic", "rule"),
    [
        ("orders", "'kafka://orders' must not be the source topic (Lambda refuses the loop)"),
        (
            "dlq",
            "'kafka://dlq' is 11 characters; CloudFormation needs at least 12 (a topic of 4 "
            "or more characters after kafka://)",
        ),
    ],
)
def test_kafka_destination_rules(topic: str, rule: str) -> None:
    found = single(
        on_failure=OnFailureDestination.kafka(topic),
        provisioned_pollers=ProvisionedPollerConfig(),
    )
    assert found == f"on_failure (DestinationConfig.OnFailure.Destination): {rule}"
    mapping = accepted(
        on_failure=OnFailureDestination.kafka("dead"), provisioned_pollers=ProvisionedPollerConfig()
    )
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": "kafka://dead"}}


def test_one_root_ca_only() -> None:
    stack = new_stack()
    first = SaslScramSecret(stack, "S", username="u")
    second = SaslScramSecret(stack, "T", username="v")
    wrong = KafkaAuthentication(SourceAccessType.SERVER_ROOT_CA_CERTIFICATE, first)
    found = single(stack, authentication=wrong, root_ca_secret=second)
    assert found.startswith("root_ca_secret (SourceAccessConfigurations[1].Type): ")
    assert "may appear only once (SourceAccessConfigurations[0])" in found


def test_pollers_limits() -> None:
    found = problems(
        provisioned_pollers=ProvisionedPollerConfig(minimum_pollers=0, maximum_pollers=2001)
    )
    assert found == [
        "provisioned_pollers (ProvisionedPollerConfig.MinimumPollers): 0 must be an integer "
        "from 1 to 200",
        "provisioned_pollers (ProvisionedPollerConfig.MaximumPollers): 2001 must be an integer "
        "from 1 to 2000",
    ]
    found = single(
        provisioned_pollers=ProvisionedPollerConfig(minimum_pollers=5, maximum_pollers=2)
    )
    assert found.endswith("5 must not exceed MaximumPollers (2)")


def test_retry_and_age_limits() -> None:
    pollers = ProvisionedPollerConfig()
    assert "must be -1 (retry until the record expires) or an integer from 0 to 10000" in single(
        retry_attempts=-2, provisioned_pollers=pollers
    )
    assert "must be -1 (no limit) or an integer from 60 to 604800" in single(
        max_record_age=cdk.Duration.seconds(30), provisioned_pollers=pollers
    )


def test_consumer_group_pattern_and_length() -> None:
    found = single(consumer_group_id="has space")
    assert found == (
        "consumer_group_id (SelfManagedKafkaEventSourceConfig.ConsumerGroupId): 'has space' must "
        "use only the characters a-z A-Z 0-9 - / * : _ + = . @"
    )
    assert "must be 1-200 characters long (is 201)" in single(consumer_group_id="g" * 201)


def test_filter_syntax_uses_the_runtime_grammar() -> None:
    found = single(filters=[{"value": {"kind": "order"}}])
    assert found.startswith("filters (FilterCriteria.Filters[0].Pattern): ")


def test_filter_count_within_the_quota() -> None:
    five = [{"value": {"n": [i]}} for i in range(6)]
    found = single(filters=five)
    assert found.startswith("filters (FilterCriteria.Filters): '<6 filters>' must hold at most 5")
    assert len(accepted(filters=five, filter_quota=10)["FilterCriteria"]["Filters"]) == 6
    eleven = [{"value": {"n": [i]}} for i in range(11)]
    assert "must hold 1-10 filters (has 11)" in " ".join(problems(filters=eleven, filter_quota=10))


def test_filter_quota_reports_the_value_and_keeps_checking() -> None:
    """Issue 14.8: the value passed is named, and the other checks still run."""
    found = problems(
        filter_quota=11, batch_size=0, filters=[{"value": {"n": [i]}} for i in range(11)]
    )
    assert "filter_quota: 11 must be an integer from 1 to 10 (AWS's default quota is 5)" in found
    assert any(p.startswith("batch_size (BatchSize): 0") for p in found)
    assert any("must hold 1-10 filters (has 11)" in p for p in found)
    assert "filter_quota: 0 must be an integer from 1 to 10 (AWS's default quota is 5)" in problems(
        filter_quota=0
    )


def test_filter_encryption_needs_filters() -> None:
    stack = new_stack()
    key = kms.Key(stack, "K")
    assert single(stack, filter_encryption=key) == (
        "filter_encryption (KMSKeyArn): '<key>' needs filters to encrypt"
    )


def test_tags_reserved_prefix() -> None:
    assert "must not start with 'aws:'" in single(tags={"aws:x": "y"})


def test_vpc_props_need_a_vpc() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0)
    group = ec2.SecurityGroup(stack, "G", vpc=vpc)
    assert single(stack, security_groups=[group]) == "security_groups: '<given>' needs vpc"


def test_vpc_subnet_selection_must_select() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="iso", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    found = problems(
        stack, vpc=vpc, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
    )
    assert found[0] == (
        "vpc_subnets, security_groups (SourceAccessConfigurations): ['VPC_SECURITY_GROUP'] has "
        "VPC_SECURITY_GROUP but no VPC_SUBNET: a VPC needs both"
    )
    assert found[1].startswith(
        "vpc_subnets (VPC_SUBNET): '<selection>' selects no subnet of the VPC"
    )
    assert "There are no 'Public' subnet groups" in found[1]


def test_secret_in_another_region() -> None:
    stack = new_stack()
    secret = secretsmanager.Secret.from_secret_complete_arn(
        stack, "S", "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-AbCdEf"
    )
    found = single(stack, authentication=KafkaAuthentication.sasl_scram_512(secret))
    assert found == (
        "authentication (secret region): 'arn:aws:secretsmanager:us-east-1:123456789012:secret:"
        "kafka-AbCdEf' is a secret in us-east-1; Lambda reads secrets in eu-west-1 only"
    )


def test_unresolved_tokens_are_skipped() -> None:
    stack = new_stack()
    topic = cdk.CfnParameter(stack, "Topic").value_as_string
    size = cdk.CfnParameter(stack, "Size", type="Number").value_as_number
    servers = cdk.CfnParameter(stack, "Servers", type="CommaDelimitedList").value_as_list
    trigger = build(stack, topic=topic, batch_size=size, bootstrap_servers=servers)
    assert trigger.mapping_request["Topics"] == [topic]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(batch_size=0, topic=".x", consumer_group_id="a b")
    assert [p.split(" ")[0] for p in found] == ["topic", "batch_size", "consumer_group_id"]


# --- issue 14.5: the timeout of aliases, versions and imported functions -------------------


@pytest.mark.parametrize("kind", ["alias", "version"])
def test_timeout_of_an_alias_or_version_is_checked(kind: str) -> None:
    stack = new_stack()
    function = new_function(stack, timeout=cdk.Duration.minutes(15))
    version = function.current_version
    target = (
        lambda_.Alias(stack, "Live", alias_name="live", version=version)
        if kind == "alias"
        else version
    )
    assert single(stack, function=target) == (
        "function (Timeout): '900 seconds' is the function's timeout; a Kafka trigger needs at "
        "most 840 seconds (14 minutes)"
    )


def test_imported_function_timeout_is_warned_once_by_name() -> None:
    stack = new_stack()
    imported = lambda_.Function.from_function_arn(
        stack, "Imported", "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    )
    trigger = build(stack, function=imported)
    warnings = [m.data for m in trigger.node.metadata if "timeout of" in str(m.data)]
    assert len(warnings) == 1
    assert "the timeout of Test/Imported is unknown at synth" in warnings[0]
    assert "14 minutes" in warnings[0]


# --- issue 14.6: what AWS refuses, refused at synth ----------------------------------------


def _fifo_queue(stack: cdk.Stack, imported: bool) -> sqs.IQueue:
    if imported:
        return sqs.Queue.from_queue_arn(
            stack, "Q", "arn:aws:sqs:eu-west-1:123456789012:failures.fifo"
        )
    return sqs.Queue(stack, "Q", fifo=True)


def _fifo_topic(stack: cdk.Stack, imported: bool) -> sns.ITopic:
    if imported:
        return sns.Topic.from_topic_arn(
            stack, "T", "arn:aws:sns:eu-west-1:123456789012:failures.fifo"
        )
    return sns.Topic(stack, "T", fifo=True)


@pytest.mark.parametrize("imported", [False, True], ids=["created", "imported"])
@pytest.mark.parametrize("kind", ["sqs", "sns"])
def test_fifo_destinations_are_refused(kind: str, imported: bool) -> None:
    stack = new_stack()
    destination = (
        OnFailureDestination.sqs(_fifo_queue(stack, imported))
        if kind == "sqs"
        else OnFailureDestination.sns(_fifo_topic(stack, imported))
    )
    found = single(stack, on_failure=destination)
    assert found.startswith("on_failure (DestinationConfig.OnFailure.Destination): ")
    assert found.endswith(
        "is a FIFO queue or topic; Lambda sends Kafka failures to standard ones only"
    )


def test_public_subnets_are_refused() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=1)
    found = single(
        stack, vpc=vpc, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
    )
    assert found.startswith(
        "vpc_subnets (VPC_SUBNET): '<selection>' selects public subnets (Test/Vpc/PublicSubnet1"
    )
    assert found.endswith(
        "AWS needs private subnets: PRIVATE_WITH_EGRESS behind a NAT gateway, or "
        "PRIVATE_ISOLATED with VPC endpoints"
    )


def test_a_vpc_with_only_public_subnets_is_refused_by_default() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        subnet_configuration=[
            ec2.SubnetConfiguration(name="pub", subnet_type=ec2.SubnetType.PUBLIC)
        ],
    )
    assert "selects public subnets" in single(stack, vpc=vpc)


@pytest.mark.parametrize("scheme", ["SASL_PLAINTEXT://", "PLAINTEXT://"])
def test_sasl_to_a_plaintext_listener_is_refused(scheme: str) -> None:
    stack = new_stack()
    user = SaslScramSecret(stack, "U", username="u")
    found = problems(
        stack,
        authentication=user.authentication,
        bootstrap_servers=[f"{scheme}b-1.example.com:9096"],
    )
    assert (
        f"bootstrap_servers (SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[0]): "
        f"'{scheme}b-1.example.com:9096' is a plaintext listener; Lambda uses "
        "SASL_SCRAM_512_AUTH over TLS only (SASL_SSL)"
    ) in found


def test_sasl_to_port_9092_is_warned() -> None:
    stack = new_stack()
    user = SaslScramSecret(stack, "U", username="u")
    trigger = build(
        stack, authentication=user.authentication, bootstrap_servers=["b-1.example.com:9092"]
    )
    assert any(
        "port 9092 is Kafka's default PLAINTEXT listener" in str(m.data)
        for m in trigger.node.metadata
    )


def _vpc_and_group() -> tuple[cdk.Stack, ec2.Vpc, ec2.SecurityGroup]:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=1)
    return stack, vpc, ec2.SecurityGroup(stack, "G", vpc=vpc)


def test_network_props_need_their_companions() -> None:
    stack, _vpc, group = _vpc_and_group()
    assert problems(stack, brokers=[group], network_access=NetworkAccess.NAT_GATEWAY) == [
        "brokers: '<given>' needs vpc",
        "network_access: '<given>' needs vpc",
    ]
    stack, vpc, group = _vpc_and_group()
    assert single(stack, vpc=vpc, existing_endpoint_security_groups=[group]) == (
        "existing_endpoint_security_groups: '<given>' needs network_access=EXISTING_ENDPOINTS"
    )
    stack, vpc, _group = _vpc_and_group()
    assert single(stack, vpc=vpc, network_access=NetworkAccess.EXISTING_ENDPOINTS) == (
        "network_access: 'EXISTING_ENDPOINTS' is EXISTING_ENDPOINTS: name the endpoints' "
        "existing_endpoint_security_groups"
    )
    stack, vpc, _group = _vpc_and_group()
    endpoints = KafkaVpcEndpoints(stack, "E", vpc=ec2.Vpc(stack, "Other", nat_gateways=0))
    assert single(stack, vpc=vpc, endpoints=endpoints) == (
        "endpoints: '<given>' are in another VPC than vpc"
    )


def test_keyword_errors_name_the_prop() -> None:
    stack = new_stack()
    with pytest.raises(TypeError, match=r"Test/Trigger: unknown prop\(s\) topics"):
        SelfManagedKafkaTrigger(stack, "Trigger", function=new_function(stack), topics=["x"])
    with pytest.raises(
        TypeError, match="Test/Other: missing 1 required keyword-only argument: 'bootstrap_servers'"
    ):
        SelfManagedKafkaTrigger(stack, "Other", function=new_function(stack, "F2"), topic="x")


# --- the adversarial table: each case and what synth does with it ---------------------------


def _case(name: str) -> tuple[cdk.Stack, dict[str, Any]]:
    """A stack and the overrides of one adversarial case."""
    stack = new_stack()
    egress = lambda: ec2.Vpc(stack, "Vpc", nat_gateways=1)  # noqa: E731
    isolated = lambda: ec2.Vpc(  # noqa: E731
        stack,
        "Vpc",
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    user = lambda: SaslScramSecret(stack, "U", username="u").authentication  # noqa: E731
    cases: dict[str, Callable[[], dict[str, Any]]] = {
        "servers only": dict,
        "aws-cdk-lib StartingPosition": lambda: {
            "starting_position": lambda_.StartingPosition.TRIM_HORIZON
        },
        "11 filters with quota 10": lambda: {
            "filters": [{"value": {"n": [i]}} for i in range(11)],
            "filter_quota": 10,
        },
        "filter that is not JSON": lambda: {"filters": ["{not json"]},
        "51 tags": lambda: {"tags": {f"k{i}": "v" for i in range(51)}},
        "batch window 0 s": lambda: {"max_batching_window": cdk.Duration.seconds(0)},
        "partial batch responses on demand": lambda: {"report_batch_item_failures": True},
        "FIFO SQS destination": lambda: {
            "on_failure": OnFailureDestination.sqs(sqs.Queue(stack, "Q", fifo=True))
        },
        "aws-cdk-lib SqsDlq on a FIFO queue": lambda: {
            "on_failure": event_sources.SqsDlq(sqs.Queue(stack, "Q", fifo=True))
        },
        "aws-cdk-lib S3OnFailureDestination": lambda: {
            "on_failure": event_sources.S3OnFailureDestination(s3.Bucket(stack, "B"))
        },
        "kafka://abc destination": lambda: {
            "on_failure": OnFailureDestination.kafka("abc"),
            "provisioned_pollers": ProvisionedPollerConfig(),
        },
        "public subnets": lambda: {
            "vpc": egress(),
            "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        },
        "SASL to SASL_PLAINTEXT://": lambda: {
            "authentication": user(),
            "bootstrap_servers": ["SASL_PLAINTEXT://b.example.com:9096"],
        },
        "SASL to port 9092": lambda: {
            "authentication": user(),
            "bootstrap_servers": ["b.example.com:9092"],
        },
        "imported function": lambda: {
            "function": lambda_.Function.from_function_arn(
                stack, "F", "arn:aws:lambda:eu-west-1:123456789012:function:f"
            )
        },
        "VPC without brokers": lambda: {"vpc": egress()},
        "isolated VPC, endpoints unrequested": lambda: {"vpc": isolated()},
        "provisioned with VPC_ENDPOINTS": lambda: {
            "vpc": isolated(),
            "network_access": NetworkAccess.VPC_ENDPOINTS,
            "provisioned_pollers": ProvisionedPollerConfig(),
        },
        "brokers without vpc": lambda: {"brokers": [ec2.Peer.ipv4("10.0.0.0/16")]},
        "token servers in a VPC": lambda: {
            "vpc": egress(),
            "bootstrap_servers": cdk.CfnParameter(
                stack, "S", type="CommaDelimitedList"
            ).value_as_list,
        },
    }
    return stack, cases[name]()


ADVERSARIAL: dict[str, str] = {
    "servers only": "accepted",
    "aws-cdk-lib StartingPosition": "accepted",
    "11 filters with quota 10": "refused",
    "filter that is not JSON": "refused",
    "51 tags": "refused",
    "batch window 0 s": "accepted",
    "partial batch responses on demand": "refused",
    "FIFO SQS destination": "refused",
    "aws-cdk-lib SqsDlq on a FIFO queue": "refused",
    "aws-cdk-lib S3OnFailureDestination": "accepted",
    "kafka://abc destination": "refused",
    "public subnets": "refused",
    "SASL to SASL_PLAINTEXT://": "refused",
    "SASL to port 9092": "warned",
    "imported function": "warned",
    "VPC without brokers": "warned",
    "isolated VPC, endpoints unrequested": "warned",
    "provisioned with VPC_ENDPOINTS": "warned",
    "brokers without vpc": "refused",
    "token servers in a VPC": "warned",
}


@pytest.mark.parametrize(("name", "outcome"), ADVERSARIAL.items(), ids=list(ADVERSARIAL))
def test_adversarial_case(name: str, outcome: str) -> None:
    stack, overrides = _case(name)
    try:
        trigger = build(stack, **overrides)
    except KafkaTriggerValidationError as error:
        assert outcome == "refused", error
        return
    warned = [m for m in trigger.node.metadata if m.type == "aws:cdk:warning"]
    assert ("warned" if warned else "accepted") == outcome, warned
