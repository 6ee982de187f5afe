"""The Fargate poller: task, role, secrets, scaling, network, and one props object
deployed both as AWS's managed mapping and as the poller service."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from constructs_kafka import (
    KafkaPollerService,
    KafkaSchemaRegistry,
    KafkaTriggerProps,
    KafkaTriggerValidationError,
    KafkaVpcEndpoints,
    NetworkAccess,
    OnFailureDestination,
    PollerServiceProps,
    ProvisionedPollerConfig,
    SaslScramSecret,
    SelfManagedKafkaTrigger,
    StartingPosition,
    poller_service,
)
from constructs_kafka.poller_scaling import MAX_STEP_ADJUSTMENTS, CapacityStep, capacity_steps
from runtime.cli import run as run_command
from runtime.definition.model import parse_mapping
from runtime.observability.publishers import DESIRED_POLLER_COUNT, MAPPING_DIMENSION
from tests.cdk.conftest import (
    SERVERS,
    cfn_lint,
    library_warnings,
    nag_report,
    new_function,
    new_stack,
)
from tests.cdk.fixtures import failure_queue, isolated_vpc, small_poller_service

pytestmark = pytest.mark.cdk

REPO = Path(__file__).resolve().parents[2]
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders-consumer-AbCdEf"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:failures"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:orders-fn"
ALL_SERVERS = [*SERVERS, "b-3.kafka.example.com:9094"]


@dataclass
class Built:
    outdir: Path
    stack: cdk.Stack
    service: KafkaPollerService
    template: dict[str, Any]
    trigger: SelfManagedKafkaTrigger | None = None

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.of_type(kind).values()
        return dict(found["Properties"])

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


def acknowledge_basic_role(function: Any) -> None:
    cdk.Validations.of(function.role).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:"
            "policy/service-role/AWSLambdaBasicExecutionRole]",
            reason="The test function logs with AWS's basic execution policy.",
        )
    )


def synthesize(app: cdk.App, stack: cdk.Stack) -> dict[str, Any]:
    assembly = app.synth()  # cdk-nag runs here and raises on an unacknowledged finding
    return dict(assembly.get_stack_by_name(stack.stack_name).template)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Isolated VPC with endpoints, SCRAM with a CMK, an SQS destination with a CMK,
    a broker security group, and error handling without provisioned pollers."""
    outdir = tmp_path_factory.mktemp("poller")
    app = cdk.App(outdir=str(outdir))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = new_stack("Poller", app)
    vpc = isolated_vpc(stack)
    secret_key = kms.Key(stack, "SecretKey", enable_key_rotation=True)
    user = SaslScramSecret(stack, "User", username="orders-consumer", encryption_key=secret_key)
    queue = failure_queue(
        stack, "This queue is itself the on-failure destination of the Kafka poller."
    )
    brokers = ec2.SecurityGroup(stack, "Brokers", vpc=vpc, allow_all_outbound=False)
    function = new_function(stack, timeout=cdk.Duration.minutes(1))
    acknowledge_basic_role(function)
    service = KafkaPollerService(
        stack,
        "Orders",
        KafkaTriggerProps(
            function=function,
            bootstrap_servers=ALL_SERVERS,
            topic="orders",
            starting_position=StartingPosition.TRIM_HORIZON,
            authentication=user.authentication,
            vpc=vpc,
            endpoints=KafkaVpcEndpoints(stack, "KafkaEndpoints", vpc=vpc, narrow_policies=True),
            on_failure=OnFailureDestination.sqs(queue),
            batch_size=250,
            filters=[{"value": {"kind": ["order"]}}],
            retry_attempts=3,
            max_record_age=cdk.Duration.hours(1),
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            tags={"team": "orders"},
        ),
        PollerServiceProps(
            partition_count=30,
            poller_concurrency=10,
            catch_up=cdk.Duration.minutes(2),
            drain_timeout=cdk.Duration.seconds(45),
            broker_peers=[brokers],
        ),
    )
    return Built(outdir, stack, service, synthesize(app, stack))


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One props object, deployed as AWS's managed mapping and as the poller service."""
    outdir = tmp_path_factory.mktemp("twice")
    app = cdk.App(outdir=str(outdir))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = new_stack("Twice", app)
    vpc = isolated_vpc(stack)
    user = SaslScramSecret(stack, "User", username="orders-consumer")
    function = new_function(stack)
    acknowledge_basic_role(function)
    props = KafkaTriggerProps(
        function=function,
        bootstrap_servers=SERVERS,
        topic="orders",
        starting_position=StartingPosition.TRIM_HORIZON,
        authentication=user.authentication,
        vpc=vpc,
        batch_size=500,
        max_batching_window=cdk.Duration.seconds(5),
        filters=[{"value": {"kind": ["order"]}}],
    )
    trigger = SelfManagedKafkaTrigger(stack, "Managed", props)
    service = KafkaPollerService(stack, "Fargate", props, PollerServiceProps(partition_count=3))
    return Built(outdir, stack, service, synthesize(app, stack), trigger)


# --- helpers --------------------------------------------------------------------------------


def container(built: Built) -> dict[str, Any]:
    (definition,) = built.one("AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    return dict(definition)


def environment(built: Built) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container(built)["Environment"]}


def rendered(built: Built, value: Any) -> str:
    """A Fn::Join string with each Ref replaced by a plausible deploy-time value."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(built, part) for part in parts)
    logical_id = value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]
    kind = built.template["Resources"][logical_id]["Type"]
    return {
        "AWS::SecretsManager::Secret": SECRET_ARN,
        "AWS::Lambda::Function": FUNCTION_ARN,
        "AWS::SQS::Queue": QUEUE_ARN,
    }[kind]


def container_mapping(built: Built) -> dict[str, Any]:
    return dict(json.loads(rendered(built, environment(built)["KAFKA_ESM_MAPPING"])))


def task_statements(built: Built) -> dict[str, dict[str, Any]]:
    role_id = built.logical_id(built.service.task_role)
    (policy,) = [
        p["Properties"]
        for p in built.of_type("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def group_id(built: Built, group: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [built.logical_id(group), "GroupId"]}


def ingress_rules(built: Built) -> list[dict[str, Any]]:
    return [r["Properties"] for r in built.of_type("AWS::EC2::SecurityGroupIngress").values()]


def stripped(request: dict[str, Any]) -> dict[str, Any]:
    """A request without its VPC entries (the tasks' network is not in their mapping),
    its UUID and its FunctionName (an ARN for the poller, checked apart)."""
    out = {k: v for k, v in request.items() if k not in {"UUID", "FunctionName"}}
    out["SourceAccessConfigurations"] = [
        c for c in request["SourceAccessConfigurations"] if not c["Type"].startswith("VPC_")
    ]
    return out


# --- the task definition --------------------------------------------------------------------


def test_container_command_is_accepted_by_the_runtime_cli(full: Built) -> None:
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    args = parser.parse_args(container(full)["Command"])  # exits on an unknown flag
    assert args.region == "eu-west-1"
    assert args.drain_timeout == 45
    assert args.metrics == "emf"
    assert args.metrics_namespace == "KafkaEsm"
    assert args.metrics_interval == 30
    assert (args.poller_concurrency, args.catch_up) == (10, 120)
    assert args.poller_throughput == 5 * 1024 * 1024  # AWS's 5 MB/s of one poller
    assert args.function_timeout == 70  # the function's 60 s and a margin for the reply


def test_container_mapping_is_the_props_request_and_runs(full: Built) -> None:
    doc = container_mapping(full)
    mapping = parse_mapping(doc)  # the runtime's own loader accepts it
    assert mapping.uuid == full.service.mapping_uuid
    assert mapping.function_name == FUNCTION_ARN
    assert mapping.consumer_group_id == full.service.consumer_group_id
    assert mapping.bootstrap_servers == tuple(ALL_SERVERS)
    assert doc["MaximumRetryAttempts"] == 3
    assert doc["BisectBatchOnFunctionError"] is True
    assert doc["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert [c["Type"] for c in doc["SourceAccessConfigurations"]] == ["SASL_SCRAM_512_AUTH"]


def test_task_definition_drains_logs_and_checks_health(full: Built) -> None:
    definition = container(full)
    assert definition["StopTimeout"] == 65  # 45 s of drain and 20 s to close
    assert definition["HealthCheck"]["Command"] == ["CMD", "kafka-esm", "health"]
    assert environment(full)["KAFKA_ESM_HEALTH_FILE"] == "/tmp/kafka-esm-health.json"
    log = definition["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["awslogs-group"] == {"Ref": full.logical_id(full.service.log_group)}
    assert log["Options"]["mode"] == "non-blocking"
    log_group = full.template["Resources"][full.logical_id(full.service.log_group)]
    assert log_group["Properties"]["RetentionInDays"] == 30
    task = full.one("AWS::ECS::TaskDefinition")
    assert (task["Cpu"], task["Memory"], task["RequiresCompatibilities"]) == (
        "512",
        "1024",
        ["FARGATE"],
    )


def test_image_is_built_from_the_repository_at_deploy_time_only(full: Built) -> None:
    assets = json.loads((full.outdir / "Poller.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "runtime/Dockerfile"
    staged = full.outdir / image["source"]["directory"]
    assert (staged / "runtime" / "Dockerfile").is_file()
    assert not (staged / ".venv").exists()  # .dockerignore keeps the context small
    assert not (staged / "constructs_kafka").exists()
    assert not (staged / "runtime" / "testing").exists()  # the pytest plugin is dev-only


def test_service_rolls_back_failed_deployments_in_private_subnets(full: Built) -> None:
    service = full.one("AWS::ECS::Service")
    deployment = service["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert len(network["Subnets"]) == 2
    assert "DesiredCount" not in service  # a deployment never resets the scaled count
    assert {"Key": "team", "Value": "orders"} in service["Tags"]
    cluster = full.one("AWS::ECS::Cluster")
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


# --- the role and the secrets ---------------------------------------------------------------


def test_task_role_has_exactly_what_the_poller_calls(full: Built) -> None:
    statements = task_statements(full)
    assert set(statements) == {
        "InvokeFunction",
        "KafkaSecretsRead",
        "KafkaSecretsDecrypt",
        "OnFailureSqs",
        "OnFailureSqsQueueUrl",
        "OnFailureKey",
    }
    function_id = full.logical_id(full.service.props.function)
    assert statements["InvokeFunction"]["Action"] == "lambda:InvokeFunction"
    assert statements["InvokeFunction"]["Resource"] == {"Fn::GetAtt": [function_id, "Arn"]}
    user_id = next(iter(full.of_type("AWS::SecretsManager::Secret")))
    assert statements["KafkaSecretsRead"]["Action"] == "secretsmanager:GetSecretValue"
    assert statements["KafkaSecretsRead"]["Resource"] == {"Ref": user_id}
    assert statements["KafkaSecretsDecrypt"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    }
    assert statements["OnFailureSqsQueueUrl"]["Action"] == "sqs:GetQueueUrl"
    actions = json.dumps([s["Action"] for s in statements.values()])
    assert not re.search(r'"(cloudwatch|ec2|logs|s3):', actions)  # EMF needs no PutMetricData
    role = full.template["Resources"][full.logical_id(full.service.task_role)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def test_no_secret_value_reaches_the_template_or_the_task(full: Built) -> None:
    definition = container(full)
    assert "Secrets" not in definition  # read at run time by ARN, with the task role
    user_id = next(iter(full.of_type("AWS::SecretsManager::Secret")))
    parts = environment(full)["KAFKA_ESM_MAPPING"]["Fn::Join"][1]
    assert {"Ref": user_id} in parts  # the ARN, never the value
    (secret,) = full.of_type("AWS::SecretsManager::Secret").values()
    assert "SecretString" not in secret["Properties"]  # the password is generated
    text = json.dumps(full.template)
    assert "PRIVATE KEY" not in text
    execution = json.dumps(
        [p for k, p in full.of_type("AWS::IAM::Policy").items() if "ExecutionRole" in k]
    )
    assert "secretsmanager" not in execution


# --- scaling --------------------------------------------------------------------------------


def test_task_count_follows_desired_poller_count(full: Built) -> None:
    target = full.one("AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 30)
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    policy = full.one("AWS::ApplicationAutoScaling::ScalingPolicy")
    config = policy["StepScalingPolicyConfiguration"]
    assert config["AdjustmentType"] == "ExactCapacity"
    assert config["MetricAggregationType"] == "Maximum"
    assert config["Cooldown"] == 300
    steps = config["StepAdjustments"]
    assert len(steps) == MAX_STEP_ADJUSTMENTS
    assert steps[0]["MetricIntervalLowerBound"] == 0
    assert "MetricIntervalUpperBound" not in steps[-1]
    assert steps[-1]["ScalingAdjustment"] == 30
    alarm = full.one("AWS::CloudWatch::Alarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("KafkaEsm", DESIRED_POLLER_COUNT)
    assert alarm["Dimensions"] == [{"Name": MAPPING_DIMENSION, "Value": full.service.mapping_uuid}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Maximum", 60, 0)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "missing"  # no signal: the count stays
    assert alarm["AlarmActions"] == [
        {"Ref": next(iter(full.of_type("AWS::ApplicationAutoScaling::ScalingPolicy")))}
    ]


@pytest.mark.parametrize(
    ("minimum", "maximum", "expected"),
    [
        (1, 1, [CapacityStep(0, None, 1)]),
        (1, 3, [CapacityStep(0, 2, 1), CapacityStep(2, 3, 2), CapacityStep(3, None, 3)]),
        (2, 3, [CapacityStep(0, 3, 2), CapacityStep(3, None, 3)]),
    ],
)
def test_capacity_steps_one_per_count(
    minimum: int, maximum: int, expected: list[CapacityStep]
) -> None:
    assert capacity_steps(minimum, maximum) == expected


@pytest.mark.parametrize("maximum", [20, 21, 30, 64, 500])
def test_capacity_steps_never_under_provision_beyond_the_quota(maximum: int) -> None:
    steps = capacity_steps(1, maximum)
    assert len(steps) == min(maximum, MAX_STEP_ADJUSTMENTS)
    for value in range(1, maximum + 1):  # every DesiredPollerCount the runtime can publish
        (step,) = [s for s in steps if s.lower <= value and (s.upper is None or value < s.upper)]
        assert value <= step.capacity <= maximum
    assert [s.lower for s in steps[1:]] == [s.upper for s in steps[:-1]]
    assert (steps[0].capacity, steps[-1].capacity) == (1, maximum)


def test_capacity_steps_refuse_bad_bounds() -> None:
    with pytest.raises(ValueError, match="min_tasks 3 must be from 1 to max_tasks 2"):
        capacity_steps(3, 2)


# --- network --------------------------------------------------------------------------------


def test_poller_only_connects_out_to_brokers_and_https(full: Built) -> None:
    (group,) = full.service.security_groups
    props = full.template["Resources"][full.logical_id(group)]["Properties"]
    assert "SecurityGroupIngress" not in props
    assert all(r["GroupId"] != group_id(full, group) for r in ingress_rules(full))
    egress = [
        r["Properties"]
        for r in full.of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == group_id(full, group)
    ]
    brokers_id = next(k for k in full.template["Resources"] if k.startswith("Brokers"))
    broker_ports = sorted(
        r["FromPort"]
        for r in egress
        if r.get("DestinationSecurityGroupId") == {"Fn::GetAtt": [brokers_id, "GroupId"]}
    )
    assert broker_ports == [9094, 9096]
    https = [r for r in props["SecurityGroupEgress"] if r["FromPort"] == 443]
    assert [r["CidrIp"] for r in https] == ["0.0.0.0/0"]
    assert all(r.get("CidrIp") != "0.0.0.0/0" or r["FromPort"] == 443 for r in egress)
    broker_in = sorted(
        r["FromPort"]
        for r in ingress_rules(full)
        if r["GroupId"] == {"Fn::GetAtt": [brokers_id, "GroupId"]}
        and r["SourceSecurityGroupId"] == group_id(full, group)
    )
    assert broker_in == [9094, 9096]


def test_endpoints_let_the_task_pull_log_and_invoke(full: Built) -> None:
    endpoints = full.of_type("AWS::EC2::VPCEndpoint")
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints.values()])
    for service in ("ecr.api", "ecr.dkr", "logs", "lambda", "secretsmanager", "sqs", "s3"):
        assert f".{service}" in services, service
    role_arn = {"Fn::GetAtt": [full.logical_id(full.service.task_role), "Arn"]}
    policies = {k: e["Properties"].get("PolicyDocument") for k, e in endpoints.items()}
    lambda_policy = next(p for k, p in policies.items() if "Lambda" in k)
    assert any(
        s["Principal"] == {"AWS": role_arn} and s["Action"] == "lambda:InvokeFunction"
        for s in lambda_policy["Statement"]
    )
    sqs_policy = next(p for k, p in policies.items() if "Sqs" in k)
    sqs_actions = {
        s["Action"] for s in sqs_policy["Statement"] if s["Principal"] == {"AWS": role_arn}
    }
    assert sqs_actions == {"sqs:SendMessage", "sqs:GetQueueUrl"}
    s3_policy = next(p for k, p in policies.items() if k.startswith("KafkaEndpointsS3"))
    assert any(s.get("Sid") == "EcrImageLayers" for s in s3_policy["Statement"])
    group = group_id(full, full.service.security_groups[0])
    https_in = [
        r["GroupId"]["Fn::GetAtt"][0]
        for r in ingress_rules(full)
        if r["SourceSecurityGroupId"] == group and r["FromPort"] == 443
    ]
    assert sorted(re.sub(r"(Vpc[0-9A-F]{8}|SecurityGroup).*", "", g) for g in https_in) == [
        "ContainerVpcEndpointsPoller",
        "KafkaEndpoints",
    ]


def test_nat_gateway_given_cluster_and_image_make_no_endpoints() -> None:
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=1)
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    service = KafkaPollerService(
        stack,
        "Poller",
        KafkaTriggerProps(
            function=new_function(stack),
            bootstrap_servers=SERVERS,
            topic="orders",
            starting_position=StartingPosition.LATEST,
            vpc=vpc,
            network_access=NetworkAccess.NAT_GATEWAY,
        ),
        PollerServiceProps(
            partition_count=4,
            cluster=cluster,
            image=ecs.ContainerImage.from_registry("public.ecr.aws/example/kafka-esm:1.0"),
            architecture=ecs.CpuArchitecture.ARM64,
        ),
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    template.resource_count_is("AWS::ECS::Cluster", 1)
    assert service.cluster is cluster
    (definition,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    props = definition["Properties"]
    assert props["ContainerDefinitions"][0]["Image"] == "public.ecr.aws/example/kafka-esm:1.0"
    assert props["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    (service_resource,) = template.find_resources("AWS::ECS::Service").values()
    subnets = service_resource["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    private = [stack.resolve(s.subnet_id) for s in vpc.private_subnets]
    assert subnets["Subnets"] == private


def test_a_disabled_mapping_runs_no_task_and_no_scaling() -> None:
    service = build({"enabled": False})
    template = Template.from_stack(cdk.Stack.of(service))
    template.has_resource_properties("AWS::ECS::Service", {"DesiredCount": 0})
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    assert (service.task_count, service.scaling) == (None, None)
    assert service.mapping_request["Enabled"] is False


# --- one definition, two deployments --------------------------------------------------------


def test_one_props_object_deploys_both_ways(twice: Built) -> None:
    assert twice.trigger is not None
    managed = twice.stack.resolve(twice.trigger.mapping_request)
    poller = twice.stack.resolve(twice.service.mapping_request)
    assert stripped(poller) == stripped(managed)
    function_id = twice.logical_id(twice.service.props.function)
    assert managed["FunctionName"] == {"Ref": function_id}
    assert poller["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    (esm,) = twice.of_type("AWS::Lambda::EventSourceMapping").values()
    assert twice.service.consumer_group_id == twice.trigger.consumer_group_id
    assert esm["Properties"]["BatchSize"] == container_mapping(twice)["BatchSize"] == 500
    assert twice.service.required_acls == twice.trigger.required_acls
    assert parse_mapping(container_mapping(twice)).topic == "orders"


def test_both_deployments_share_the_vpc_endpoints(twice: Built) -> None:
    endpoints = twice.of_type("AWS::EC2::VPCEndpoint")
    names = [json.dumps(e["Properties"]["ServiceName"]) for e in endpoints.values()]
    assert sum(".lambda" in n for n in names) == 1
    assert sum(".secretsmanager" in n for n in names) == 1


def test_poller_accepts_what_aws_reserves_for_provisioned_mode() -> None:
    stack = new_stack()
    props = KafkaTriggerProps(
        function=new_function(stack),
        bootstrap_servers=SERVERS,
        topic="orders",
        starting_position=StartingPosition.LATEST,
        vpc=isolated_vpc(stack),
        retry_attempts=2,
        bisect_batch_on_error=True,
        report_batch_item_failures=True,
    )
    with pytest.raises(KafkaTriggerValidationError, match="retry_attempts"):
        SelfManagedKafkaTrigger(stack, "Managed", props)
    service = KafkaPollerService(stack, "Fargate", props, PollerServiceProps(partition_count=2))
    assert service.mapping_request["MaximumRetryAttempts"] == 2


@pytest.mark.parametrize("name", ["Poller", "Twice"])
def test_templates_pass_cfn_lint(full: Built, twice: Built, name: str) -> None:
    built = full if name == "Poller" else twice
    errors, warnings = cfn_lint(built.template)
    assert errors == []
    assert library_warnings(warnings) == []


@pytest.mark.parametrize("name", ["Poller", "Twice"])
def test_cdk_nag_finds_nothing_unacknowledged(full: Built, twice: Built, name: str) -> None:
    built = full if name == "Poller" else twice
    report = nag_report(built.outdir)
    assert report["violations"] == []
    rules = {v["ruleName"] for v in report["suppressedViolations"]}
    assert {"AwsSolutions-ECS2", "AwsSolutions-IAM5[Resource::*]"} <= rules
    assert all(len(v["reason"]) > 40 for v in report["suppressedViolations"])


def test_example_app_fargate_stack_is_clean(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    import app as example

    example.build_app(str(tmp_path)).synth()  # with cdk-nag, which app.py adds
    template = json.loads((tmp_path / "KafkaFargatePoller.template.json").read_text())
    errors, _ = cfn_lint(template)
    assert errors == []
    assert nag_report(tmp_path)["violations"] == []
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::ECS::Service", "AWS::ApplicationAutoScaling::ScalingPolicy"} <= kinds


# --- validation -----------------------------------------------------------------------------


def build(
    trigger: dict[str, Any] | None = None, *, vpc: str = "isolated", **service: Any
) -> KafkaPollerService:
    stack = new_stack()
    networks: dict[str, Any] = {
        "isolated": lambda: isolated_vpc(stack),
        "public": lambda: ec2.Vpc(
            stack,
            "Vpc",
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            ],
        ),
        "none": lambda: None,
    }
    make_function = (trigger or {}).get("function", new_function)
    fields: dict[str, Any] = {
        "function": make_function(stack),
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
        "vpc": networks[vpc](),
    }
    fields.update({k: v for k, v in (trigger or {}).items() if k != "function"})
    options = {"partition_count": 6, **service}
    return KafkaPollerService(
        stack, "Poller", KafkaTriggerProps(**fields), PollerServiceProps(**options)
    )


@pytest.mark.parametrize(
    ("trigger", "vpc", "service", "message"),
    [
        (None, "none", {}, r"vpc: None is not given: the tasks need a VPC"),
        (None, "public", {}, r"vpc_subnets: .* must select private subnets"),
        (None, "isolated", {"partition_count": 0}, r"partition_count: 0 must be at least 1"),
        (None, "isolated", {"max_tasks": 7}, r"max_tasks: 7 is more than partition_count \(6\)"),
        (None, "isolated", {"min_tasks": 0}, r"min_tasks: 0 must be a whole number"),
        (None, "isolated", {"min_tasks": 4, "max_tasks": 3}, r"min_tasks: 4 must be at most"),
        (
            None,
            "isolated",
            {"drain_timeout": cdk.Duration.seconds(101)},
            r"drain_timeout \(stopTimeout\): .*101.* must be 0-100 whole seconds",
        ),
        (None, "isolated", {"poller_concurrency": 0}, r"poller_concurrency: .*at least 1"),
        (
            None,
            "isolated",
            {"poller_throughput": cdk.Size.kibibytes(0)},
            r"poller_throughput: .*at least 1",
        ),
        (
            None,
            "isolated",
            {"catch_up": cdk.Duration.millis(500)},
            r"catch_up: '0.5 seconds' must be at least 1 whole second",
        ),
        (
            None,
            "isolated",
            {"metrics_namespace": "AWS/Kafka"},
            r"metrics_namespace: .*not start with 'AWS/'",
        ),
        (
            {"function": lambda s: new_function(s, timeout=cdk.Duration.minutes(15))},
            "isolated",
            {},
            r"function \(Timeout\): '900 seconds' is the function's timeout",
        ),
        ({"batch_size": 0}, "isolated", {}, r"batch_size \(BatchSize\): 0"),
    ],
)
def test_invalid_props_are_named(
    trigger: dict[str, Any] | None, vpc: str, service: dict[str, Any], message: str
) -> None:
    with pytest.raises(KafkaTriggerValidationError, match=message):
        build(trigger, vpc=vpc, **service)


def test_minimum_pollers_above_the_partitions_is_capped_with_a_warning() -> None:
    # AWS accepts MinimumPollers 8 on 6 partitions and runs at most 6 consumers
    pollers = ProvisionedPollerConfig(minimum_pollers=8, maximum_pollers=9)
    service = build({"provisioned_pollers": pollers}, vpc="isolated")
    assert (service.min_tasks, service.max_tasks) == (6, 6)
    warnings = [str(m.data) for m in service.node.metadata if m.type == "aws:cdk:warning"]
    assert any("MinimumPollers 8 is capped at 6 tasks" in w for w in warnings), warnings


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(KafkaTriggerValidationError) as caught:
        build({"batch_size": 0}, partition_count=2, max_tasks=3, poller_concurrency=0)
    props = {p.prop for p in caught.value.problems}
    assert props == {"batch_size", "max_tasks", "poller_concurrency"}


def keyword_poller(stack: cdk.Stack, **extra: Any) -> KafkaPollerService:
    """A poller of ``orders`` from LATEST in an isolated VPC, built with keyword props."""
    values: dict[str, Any] = {
        "function": new_function(stack),
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
        "partition_count": 2,
    }
    if "vpc" not in extra:
        values["vpc"] = isolated_vpc(stack)
    return KafkaPollerService(stack, "Poller", **values, **extra)


def test_keyword_props_and_a_customer_key_for_the_logs() -> None:
    stack = new_stack()
    key = kms.Key(stack, "LogsKey", enable_key_rotation=True)
    service = keyword_poller(stack, log_encryption_key=key)
    template = Template.from_stack(stack)
    key_arn = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}
    template.has_resource_properties("AWS::Logs::LogGroup", {"KmsKeyId": key_arn})
    (key_resource,) = template.find_resources("AWS::KMS::Key").values()
    (logs_statement,) = [
        s
        for s in key_resource["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "CloudWatchLogsEncryption"
    ]
    assert logs_statement["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert "kms:EncryptionContext:aws:logs:arn" in logs_statement["Condition"]["ArnLike"]
    assert service.service_props.partition_count == 2
    assert "Outputs" not in template.to_json()
    (warning,) = [m.data for m in service.node.metadata if "VPC endpoints" in str(m.data)]
    assert "private DNS for Lambda, Sts, S3, EcrApi, EcrDocker, Logs" in warning


def test_the_trigger_props_brokers_reach_the_poller_too() -> None:
    stack = new_stack()
    vpc = isolated_vpc(stack)
    brokers = ec2.SecurityGroup(stack, "Brokers", vpc=vpc)
    service = keyword_poller(stack, vpc=vpc, brokers=[brokers])
    template = Template.from_stack(stack)
    poller_group = stack.resolve(service.security_groups[0].security_group_id)
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": stack.resolve(brokers.security_group_id),
            "SourceSecurityGroupId": poller_group,
            "FromPort": 9096,
            "ToPort": 9096,
        },
    )


def test_an_installed_wheel_without_the_dockerfile_asks_for_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel carries no runtime/Dockerfile: synth must say to pass image=, not fail later.
    monkeypatch.setattr(poller_service, "REPOSITORY_ROOT", tmp_path)
    stack = new_stack()
    with pytest.raises(KafkaTriggerValidationError) as refused:
        small_poller_service(stack)
    assert "image: " in str(refused.value)
    assert "must be given: no runtime/Dockerfile" in str(refused.value)


def test_processes_per_task_reach_the_container_command_and_are_bounded() -> None:
    from constructs_kafka import KafkaTriggerValidationError
    from tests.cdk.fixtures import small_poller_service

    stack = new_stack()
    service = small_poller_service(stack, processes_per_task=2, cpu=2048, memory_mib=4096)
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    assert parser.parse_args(service.command()).processes == 2
    with pytest.raises(KafkaTriggerValidationError, match="processes_per_task"):
        small_poller_service(new_stack(), processes_per_task=65)


def test_a_glue_registry_lets_the_task_read_schema_versions_of_that_registry_only() -> None:
    app = cdk.App()
    stack = new_stack("PollerGlue", app)
    registry = "arn:aws:glue:eu-west-1:123456789012:registry/orders"
    service = small_poller_service(stack, schema_registry=KafkaSchemaRegistry.glue(registry))
    template = Template.from_stack(stack).to_json()
    policy_id = stack.get_logical_id(service.policy.node.default_child)
    statements = {
        s["Sid"]: s
        for s in template["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    }
    assert statements["SchemaRegistryRead"]["Action"] == "glue:GetSchemaVersion"
    assert statements["SchemaRegistryRead"]["Resource"] == [
        registry,
        "arn:aws:glue:eu-west-1:123456789012:schema/orders/*",
    ]
    warnings = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("SchemaRegistryConfig")
    )
    assert warnings == []  # the poller applies SchemaRegistryConfig now


def test_a_glue_registry_in_an_isolated_vpc_gets_a_narrow_glue_endpoint() -> None:
    app = cdk.App()
    stack = new_stack("PollerGlueEndpoint", app)
    registry = "arn:aws:glue:eu-west-1:123456789012:registry/orders"
    vpc = isolated_vpc(stack)
    service = KafkaPollerService(
        stack,
        "Poller",
        vpc=vpc,
        function=new_function(stack),
        bootstrap_servers=["b-1.kafka.example.com:9096"],
        topic="orders",
        starting_position=StartingPosition.LATEST,
        partition_count=3,
        schema_registry=KafkaSchemaRegistry.glue(registry),
        endpoints=KafkaVpcEndpoints(stack, "Endpoints", vpc=vpc, narrow_policies=True),
    )
    template = Template.from_stack(stack).to_json()
    endpoints = {
        k: v["Properties"]
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::EC2::VPCEndpoint"
    }
    (glue,) = [p for k, p in endpoints.items() if k.startswith("EndpointsGlue")]
    assert ".glue" in json.dumps(glue["ServiceName"])
    role_arn = {"Fn::GetAtt": [stack.get_logical_id(service.task_role.node.default_child), "Arn"]}
    (statement,) = glue["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": role_arn}
    assert statement["Action"] == ["glue:GetRegistry", "glue:GetSchemaVersion"]
    assert statement["Resource"] == [registry, registry.replace(":registry/", ":schema/") + "/*"]
