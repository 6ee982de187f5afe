"""``KafkaPollerService``: the same ``KafkaTriggerProps``, run by this library's poller
on ECS Fargate instead of by AWS's managed event source mapping.

The props become AWS's CreateEventSourceMapping JSON exactly as for
``SelfManagedKafkaTrigger``; the container gets it in ``KAFKA_ESM_MAPPING`` and runs
``kafka-esm run``. Two fields differ: ``FunctionName`` is the function's ARN (a
name alone would be looked up in the task's account and region; the ARN names an
imported function or an alias exactly), and ``UUID`` is fixed at synth time because
the scaling metric's dimension is that UUID. The request is checked with the
runtime's own validator only: the rules AWS adds for its managed pollers (features
reserved for provisioned mode, file:// secrets, the filter quota) do not bind the
poller.

Secrets: the mapping names each secret by its ARN, as in AWS's request, and the
poller reads it with ``GetSecretValue`` under the task role, the way Lambda's pollers
read it under the execution role. No secret value is ever in the template, the task
definition or the container's environment (ECS ``secrets`` would put the value in the
process environment, fixed until the task is replaced, while the poller re-reads a
rotated secret after an authentication failure). The mapping JSON itself holds
names, ARNs and settings only, so it is a plain environment variable: a change to it
is a new task definition revision and a rolling deployment guarded by the circuit
breaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from constructs_kafka import permissions
from constructs_kafka.acls import kafka_acls_commands
from constructs_kafka.mapping import required_acls_for
from constructs_kafka.nag import acknowledge, acknowledge_resource_wildcard
from constructs_kafka.network import (
    KafkaVpcEndpoints,
    broker_ports,
    choose_access,
    endpoint_warning,
    is_isolated,
    open_existing_endpoints,
)
from constructs_kafka.poller_groups import GROUP_TAG, group_cluster, join_poller_group
from constructs_kafka.poller_network import ContainerVpcEndpoints, connect_poller
from constructs_kafka.poller_scaling import (
    DEFAULT_SCALE_IN_COOLDOWN,
    DesiredPollerScaling,
    desired_pollers_metric,
)
from constructs_kafka.props import (
    KafkaTriggerProps,
    NetworkAccess,
    is_unresolved,
    props_from,
    with_cdk_destination,
)
from constructs_kafka.validation import (
    KafkaTriggerValidationError,
    PropProblem,
    _selection,
    known_timeout,
    prop_of,
)
from runtime.cli.members import MAX_PROCESSES
from runtime.definition.model import ENV_VAR as MAPPING_ENV_VAR
from runtime.definition.model import derive_uuid, validate_mapping
from runtime.definition.vocabulary import GLUE_REGISTRY_ARN, DestinationKind
from runtime.invokers import MAX_TIMEOUT_S
from runtime.observability.health import ENV_VAR as HEALTH_ENV_VAR
from runtime.observability.publishers import DEFAULT_NAMESPACE, ReportingOptions
from runtime.observability.scaling import (
    AWS_POLLER_BYTES_PER_S,
    DEFAULT_CATCH_UP_S,
    PollerCapacity,
)
from runtime.pipeline.poller import PollerOptions

__all__ = ["KafkaPollerService", "PollerServiceProps", "task_statements"]

REPOSITORY_ROOT: Final = Path(__file__).resolve().parents[1]
"""The image's build context: the repository this package is checked out in."""
DOCKERFILE: Final = "runtime/Dockerfile"
CONTAINER_NAME: Final = "poller"
FARGATE_MAX_STOP_TIMEOUT_S: Final = 120
STOP_MARGIN_S: Final = 20
"""After the drain: closing the consumer (last commits) and the last metrics, whose
lag reading may take up to ReportingOptions.lag_timeout_s (10 s)."""
METRICS_INTERVAL_S: Final = 30
"""Half the scaling metric's period, so every minute holds a reading of every poller."""
DEFAULT_DRAIN_TIMEOUT: Final = cdk.Duration.seconds(PollerOptions.drain_timeout_s)
DEFAULT_POLLER_THROUGHPUT: Final = cdk.Size.mebibytes(AWS_POLLER_BYTES_PER_S // 1024 // 1024)
DEFAULT_CATCH_UP: Final = cdk.Duration.seconds(DEFAULT_CATCH_UP_S)
"""The poller's own ``--drain-timeout`` default (30 s)."""
INVOKE_MARGIN_S: Final = 10
"""The poller waits this much longer than the function's timeout for its reply."""
HEALTH_FILE: Final = "/tmp/kafka-esm-health.json"  # noqa: S108 - the task's own /tmp
"""The heartbeat ``kafka-esm health`` reads; set here too, so any image of the poller works."""

_ENVIRONMENT_REASON: Final = (
    "KAFKA_ESM_MAPPING holds the mapping definition (function, topic, settings and the "
    "secrets' ARNs), never a secret value: the poller reads secrets from Secrets Manager "
    "by ARN with the task role. As a plain variable, a change to it deploys a new task "
    "definition revision, guarded by the circuit breaker."
)
_EXECUTION_ROLE_REASON: Final = (
    "ECS's task execution role pulls the image: ecr:GetAuthorizationToken is authorized "
    "on '*' only; the repository actions name the one asset repository."
)
_WILDCARD_REASONS: Final = {
    "OnFailureS3Put": (
        "The poller names each failure record object itself; the statement covers the "
        "objects of the one destination bucket."
    ),
    "SchemaRegistryRead": (
        "Schema versions are added to the Glue registry over time; the statement covers "
        "the schemas of the one registry."
    ),
}


@dataclass(frozen=True, kw_only=True)
class PollerServiceProps:
    """How the poller runs on Fargate; the mapping itself is the ``KafkaTriggerProps``."""

    partition_count: int
    """The topic's partitions (at least 1): the most pollers that can each own one."""
    cluster: ecs.ICluster | None = None
    """The ECS cluster to run in. @default - a cluster with Container Insights in the VPC"""
    vpc: ec2.IVpc | None = None
    """The tasks' VPC when neither ``cluster`` nor the trigger props give one.
    @default - the cluster's VPC, else the trigger props' ``vpc``"""
    min_tasks: int | None = None
    """The fewest tasks, 1 to ``max_tasks``. @default - ``provisioned_pollers.minimum_pollers``,
    else 1"""
    max_tasks: int | None = None
    """The most tasks, 1 to ``partition_count`` (any number in Queue mode, where a share
    group lets several pollers read one partition). @default - ``partition_count`` (at
    most ``provisioned_pollers.maximum_pollers``; in Queue mode
    ``provisioned_pollers.maximum_pollers`` when given)"""
    processes_per_task: int = 1
    """Members of the mapping's group each task runs (``kafka-esm run --processes``), 1-64:
    one Python process uses one core, so give the task as many vCPUs (``cpu`` 1024 per
    process). Each member has a static group membership (``<task host>-<slot>``).
    @default 1"""
    cpu: int = 512
    """Fargate CPU units of a task (256-16384, a valid Fargate pair with ``memory_mib``).
    @default 512"""
    memory_mib: int = 1024
    """Memory of a task in MiB, valid for ``cpu`` on Fargate. @default 1024"""
    architecture: ecs.CpuArchitecture = ecs.CpuArchitecture.X86_64
    """The tasks' CPU architecture (the image is built for it). @default X86_64"""
    image: ecs.ContainerImage | None = None
    """The poller's image. @default - ``runtime/Dockerfile`` built from this repository at
    deploy time"""
    poller_throughput: cdk.Size = DEFAULT_POLLER_THROUGHPUT
    """Record bytes one task carries per second, in the DesiredPollerCount model.
    @default 5 MiB (AWS's figure for one event poller)"""
    poller_concurrency: int = PollerCapacity.concurrent_invocations
    """Concurrent invocations one task carries, in the DesiredPollerCount model (at
    least 1). @default 5 (AWS's figure for one event poller)"""
    catch_up: cdk.Duration = DEFAULT_CATCH_UP
    """How soon the tasks DesiredPollerCount calls for should work off the lag.
    @default 5 minutes"""
    scale_in_cooldown: cdk.Duration = DEFAULT_SCALE_IN_COOLDOWN
    """The least time between two scale-ins; scale-outs are never held back.
    @default 5 minutes"""
    drain_timeout: cdk.Duration = DEFAULT_DRAIN_TIMEOUT
    """How long in-flight batches may finish after SIGTERM, 0-100 whole seconds on Fargate.
    @default 30 seconds (the poller's ``--drain-timeout``)"""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """How long the poller's logs (and EMF metrics) are kept. @default ONE_MONTH"""
    log_encryption_key: kms.IKey | None = None
    """A customer-managed key for the log group; its key policy gets CloudWatch Logs'
    statement (a key imported from elsewhere needs it added there).
    @default - CloudWatch Logs' own encryption"""
    metrics_namespace: str = DEFAULT_NAMESPACE
    """The EMF namespace of the poller's metrics, DesiredPollerCount included.
    @default KafkaEsm"""
    broker_peers: Sequence[ec2.IConnectable] = ()
    """Where the brokers are; a security group also gets the inbound rule.
    @default - the trigger props' ``brokers``, else any IPv4 address, on the broker ports
    only"""


class KafkaPollerService(Construct):
    """The self-managed Kafka trigger ``props`` describe, polled by Fargate tasks.

    Takes the ``KafkaTriggerProps`` and ``PollerServiceProps`` fields as keywords (``vpc``
    is the trigger's), or the two props objects.

    Attributes: ``mapping_request`` (the container's mapping, with tokens),
    ``mapping_uuid``, ``consumer_group_id``, ``cluster``, ``task_definition``,
    ``container``, ``service``, ``task_role``, ``policy``, ``log_group``,
    ``security_groups``, ``task_count`` and ``scaling`` (None when the props say
    ``enabled=False``: the service then runs no task), ``desired_pollers_metric``,
    ``required_acls`` and ``acl_commands``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: KafkaTriggerProps | None = None,
        service: PollerServiceProps | None = None,
        **options: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        path = self.node.path
        service_names = {f.name for f in fields(PollerServiceProps)} - {"vpc"}
        service_options = {k: v for k, v in options.items() if k in service_names}
        trigger_options = {k: v for k, v in options.items() if k not in service_names}
        props = with_cdk_destination(
            self, props_from(KafkaTriggerProps, path, props, trigger_options)
        )
        service = props_from(PollerServiceProps, path, service, service_options)
        self.props, self.service_props = props, service
        self.consumer_group_id = props.effective_consumer_group_id
        self.mapping_uuid = self._uuid()
        request, vpc = self._validated_request()
        self.mapping_request: dict[str, Any] = request
        self.min_tasks, self.max_tasks = _task_bounds(props, service)
        self._warn_capped_minimum()
        self.required_acls = required_acls_for(props, self.consumer_group_id)
        group = props.provisioned_pollers.poller_group_name if props.provisioned_pollers else None
        self.poller_group = join_poller_group(self, group, vpc, self.max_tasks)
        self.cluster = service.cluster or self._cluster(vpc)
        self.log_group = self._log_group()
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Kafka poller: invokes the function, reads its Kafka secrets",
        )
        statements = task_statements(props)
        self.policy = iam.Policy(self, "TaskPolicy", statements=statements, roles=[self.task_role])
        self.task_definition, self.container = self._task_definition(request)
        self.security_groups = self._security_groups(vpc)
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            security_groups=self.security_groups,
            vpc_subnets=props.vpc_subnets,
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            # Disabled, no task runs (the poller would exit at once and be restarted);
            # enabled, the count is left to the scaling policy, never reset by a deploy.
            desired_count=None if props.enabled else 0,
        )
        self.service.node.add_dependency(self.policy)
        self.desired_pollers_metric = desired_pollers_metric(
            self.mapping_uuid, service.metrics_namespace
        )
        self.task_count: ecs.ScalableTaskCount | None = None
        self.scaling: DesiredPollerScaling | None = None
        if props.enabled:
            self.task_count, self.scaling = self._scaling()
        self._network(vpc)
        self._acknowledge(statements)
        for key, value in props.tags.items():
            cdk.Tags.of(self).add(key, value)
        self.acl_commands = self._acl_commands()

    def _cluster(self, vpc: ec2.IVpc) -> ecs.ICluster:
        """A cluster of its own, or its poller group's: the group is tagged on both."""
        if self.poller_group is not None:
            cdk.Tags.of(self).add(GROUP_TAG, self.poller_group.name)
            return group_cluster(self, self.poller_group.name, vpc)
        return ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )

    def _warn_capped_minimum(self) -> None:
        """MinimumPollers above what the service may run: AWS accepts it, so warn only."""
        pollers = self.props.provisioned_pollers
        wanted = pollers.minimum_pollers if pollers else None
        if self.service_props.min_tasks is None and wanted and wanted > self.min_tasks:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:minimum-pollers-capped",
                f"MinimumPollers {wanted} is capped at {self.min_tasks} tasks: Kafka gives "
                "each partition to one consumer of the group, so more would idle",
            )

    def _log_group(self) -> logs.LogGroup:
        """The poller's logs (and so its EMF metrics), with the customer key if given."""
        service = self.service_props
        key = service.log_encryption_key
        group = logs.LogGroup(self, "Logs", retention=service.log_retention, encryption_key=key)
        if key is not None:
            permissions.allow_log_encryption(key, group)
        return group

    # --- identity --------------------------------------------------------------------

    def _validated_request(self) -> tuple[dict[str, Any], ec2.IVpc]:
        """The container's mapping and the tasks' VPC; every problem is raised at once."""
        props, service = self.props, self.service_props
        request = {
            **props.to_mapping_request(security_group_ids=[]),
            "FunctionName": props.function.function_arn,
            "UUID": self.mapping_uuid,
        }
        vpc, problems = _vpc(props, service)
        problems += [
            PropProblem(prop_of(p.field, request), p.field, p.value, p.rule)
            for p in validate_mapping(request, is_unresolved=is_unresolved)
        ]
        problems += _service_problems(props, service, vpc)
        if problems or vpc is None:
            raise KafkaTriggerValidationError(self.node.path, problems)
        return request, vpc

    def _uuid(self) -> str:
        """The mapping's UUID, fixed at synth time: it is the scaling metric's dimension.

        Derived from this construct's path, the topic and the group (not the servers,
        so an added broker keeps the metric), so two services never share it."""
        props = self.props
        topic = "" if is_unresolved(props.topic) else props.topic
        group = None if is_unresolved(self.consumer_group_id) else self.consumer_group_id
        return derive_uuid(self.node.path, topic, [], group)

    def _scaling(self) -> tuple[ecs.ScalableTaskCount, DesiredPollerScaling]:
        task_count = self.service.auto_scale_task_count(
            min_capacity=self.min_tasks, max_capacity=self.max_tasks
        )
        scaling = DesiredPollerScaling(
            self,
            "Scaling",
            scaling_target=task_count,
            metric=self.desired_pollers_metric,
            min_tasks=self.min_tasks,
            max_tasks=self.max_tasks,
            scale_in_cooldown=self.service_props.scale_in_cooldown,
        )
        return task_count, scaling

    # --- the task ----------------------------------------------------------------------

    def _task_definition(
        self, request: dict[str, Any]
    ) -> tuple[ecs.FargateTaskDefinition, ecs.ContainerDefinition]:
        service = self.service_props
        definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=service.cpu,
            memory_limit_mib=service.memory_mib,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=service.architecture,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        drain_s = int(service.drain_timeout.to_seconds())
        container = definition.add_container(
            CONTAINER_NAME,
            image=service.image or self._image(),
            command=self.command(),
            environment={
                MAPPING_ENV_VAR: cdk.Stack.of(self).to_json_string(request),
                HEALTH_ENV_VAR: HEALTH_FILE,
            },
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=CONTAINER_NAME,
                log_group=self.log_group,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=cdk.Size.mebibytes(25),
            ),
            # ECS ignores the image's HEALTHCHECK: only the task definition's one counts.
            health_check=ecs.HealthCheck(
                command=["CMD", "kafka-esm", "health"],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(5),
                retries=3,
                start_period=cdk.Duration.seconds(60),
            ),
            stop_timeout=cdk.Duration.seconds(drain_s + STOP_MARGIN_S),
            essential=True,
        )
        return definition, container

    def _image(self) -> ecs.ContainerImage:
        platform = (
            ecr_assets.Platform.LINUX_ARM64
            if self.service_props.architecture == ecs.CpuArchitecture.ARM64
            else ecr_assets.Platform.LINUX_AMD64
        )
        asset = ecr_assets.DockerImageAsset(
            self, "Image", directory=str(REPOSITORY_ROOT), file=DOCKERFILE, platform=platform
        )
        return ecs.ContainerImage.from_docker_image_asset(asset)

    def command(self) -> list[str]:
        """The arguments of the image's ``kafka-esm run`` entrypoint."""
        service = self.service_props
        args = [
            "--region",
            self.props.function.env.region,
            "--drain-timeout",
            str(int(service.drain_timeout.to_seconds())),
            "--metrics",
            "emf",
            "--metrics-namespace",
            service.metrics_namespace,
            "--metrics-interval",
            str(METRICS_INTERVAL_S),
            "--poller-throughput",
            str(int(service.poller_throughput.to_bytes())),
            "--poller-concurrency",
            str(service.poller_concurrency),
            "--catch-up",
            str(int(service.catch_up.to_seconds())),
        ]
        if service.processes_per_task > 1:
            args += ["--processes", str(service.processes_per_task)]
        timeout_s = _function_timeout_s(self.props.function)
        if timeout_s is not None:
            wait_s = min(timeout_s + INVOKE_MARGIN_S, int(MAX_TIMEOUT_S))
            args += ["--function-timeout", str(wait_s)]
        return args

    # --- the network -------------------------------------------------------------------

    def _security_groups(self, vpc: ec2.IVpc) -> list[ec2.ISecurityGroup]:
        if self.props.security_groups:
            return list(self.props.security_groups)
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="Kafka poller tasks - out to the broker ports and 443, nothing in",
        )
        return [group]

    def _network(self, vpc: ec2.IVpc) -> None:
        props = self.props
        ports = broker_ports(props.bootstrap_servers)
        if not ports:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:ports",
                "the bootstrap servers are tokens: open the broker ports on the security groups",
            )
        brokers = (
            list(self.service_props.broker_peers) or list(props.brokers) or [ec2.Peer.any_ipv4()]
        )
        connect_poller(self.security_groups, ports, brokers)
        subnets = vpc.select_subnets(**_selection(props.vpc_subnets)).subnets
        access = choose_access(
            props.network_access, provisioned=False, isolated=is_isolated(vpc, subnets)
        )
        if access is NetworkAccess.EXISTING_ENDPOINTS:
            open_existing_endpoints(self.security_groups, props.existing_endpoint_security_groups)
        elif access is NetworkAccess.VPC_ENDPOINTS:
            self._endpoints(vpc, ec2.SubnetSelection(subnets=subnets))

    def _endpoints(self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection) -> None:
        """The shared Kafka endpoints (Lambda, Secrets Manager, destination) and the
        container ones; narrow policies are opened to this task role."""
        props, role = self.props, self.task_role
        kafka = props.endpoints or KafkaVpcEndpoints.of(self, vpc, subnets)
        container = ContainerVpcEndpoints.of(self, vpc, kafka)
        for group in self.security_groups:
            kafka.allow_from(group)
            container.allow_from(group)
        principal = iam.ArnPrincipal(role.role_arn)
        kafka.allow_invoke(principal, props.function.function_arn)
        secrets = props.secrets()
        if secrets:
            kafka.allow_secret_reads(role, secrets)
        registry = props.schema_registry
        if registry is not None and GLUE_REGISTRY_ARN.fullmatch(registry.uri):
            kafka.allow_registry_reads(role, registry.uri)
        if props.destination is not None:
            kafka.allow_destination(role, props.destination)
            if props.destination.kind is DestinationKind.SQS:
                kafka.add_to_policy(
                    "Sqs",
                    iam.PolicyStatement(
                        actions=["sqs:GetQueueUrl"],
                        principals=[principal],
                        resources=[props.destination.destination],
                    ),
                )
        if props.endpoints is None:
            services = [*kafka.service_names, *container.interface_endpoints]
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:endpoints", endpoint_warning(vpc, services)
            )
        for endpoints in (kafka, container):
            if cdk.Stack.of(endpoints) is cdk.Stack.of(self):
                self.service.node.add_dependency(endpoints)

    # --- ACLs and cdk-nag ---------------------------------------------------------------

    def _acl_commands(self) -> list[str]:
        """The same ACLs as the managed mapping's: the group and topic are the same."""
        commands = kafka_acls_commands(
            self.required_acls,
            principal=self.props.kafka_principal,
            bootstrap_server=self.props.bootstrap_servers[0],
        )
        if self.props.acl_commands_output:
            cdk.CfnOutput(
                self,
                "KafkaAclCommands",
                value=" ; ".join(commands),
                description="kafka-acls.sh commands granting the ACLs the poller's principal needs",
            )
        return commands

    def _acknowledge(self, statements: list[iam.PolicyStatement]) -> None:
        acknowledge(self.task_definition, "ECS2", _ENVIRONMENT_REASON)
        execution_role = self.task_definition.execution_role
        if execution_role is not None:
            acknowledge(execution_role, "IAM5[Resource::*]", _EXECUTION_ROLE_REASON)
        for statement in statements:
            reason = _WILDCARD_REASONS.get(statement.sid or "")
            for resource in statement.resources if reason else []:
                if "*" in resource:
                    acknowledge_resource_wildcard(self.policy, resource, reason or "")


def task_statements(props: KafkaTriggerProps) -> list[iam.PolicyStatement]:
    """The task role's statements: what the poller itself calls, nothing more.

    Unlike Lambda's pollers it needs no ENI actions (ECS attaches the task's ENI), no
    log writes (the awslogs driver uses the execution role) and no PutMetricData (its
    metrics are EMF log lines); it does call ``sqs:GetQueueUrl`` before SendMessage,
    and never ``s3:ListBucket``.
    """
    statements = [
        iam.PolicyStatement(
            sid="InvokeFunction",
            actions=["lambda:InvokeFunction"],
            resources=[props.function.function_arn],
        )
    ]
    statements += permissions.read_secret_statements(props.secrets())
    registry = props.schema_registry
    if registry is not None and GLUE_REGISTRY_ARN.fullmatch(registry.uri):
        # The poller reads writer schemas by version id only (runtime/registry/schemas.py).
        statements.append(
            iam.PolicyStatement(
                sid="SchemaRegistryRead",
                actions=["glue:GetSchemaVersion"],
                resources=[
                    registry.uri,
                    registry.uri.replace(":registry/", ":schema/", 1) + "/*",
                ],
            )
        )
    destination = props.destination
    if destination is not None:
        statements += [
            s for s in permissions.destination_statements(destination) if s.sid != "OnFailureS3List"
        ]
        if destination.kind is DestinationKind.SQS:
            statements.append(
                iam.PolicyStatement(
                    sid="OnFailureSqsQueueUrl",
                    actions=["sqs:GetQueueUrl"],
                    resources=[destination.destination],
                )
            )
    return statements


# --- validation ---------------------------------------------------------------------------


def _vpc(
    props: KafkaTriggerProps, service: PollerServiceProps
) -> tuple[ec2.IVpc | None, list[PropProblem]]:
    """The tasks' VPC: the cluster's, else the service's, else the trigger's."""
    given = [
        (name, vpc)
        for name, vpc in (
            ("cluster", service.cluster.vpc if service.cluster else None),
            ("vpc", service.vpc),
            ("KafkaTriggerProps.vpc", props.vpc),
        )
        if vpc is not None
    ]
    if not given:
        rule = "is not given: the tasks need a VPC (cluster, vpc or KafkaTriggerProps.vpc)"
        return None, [PropProblem("vpc", "vpc", None, rule)]
    first_name, first = given[0]
    problems = [
        PropProblem(name, name, "<vpc>", f"is another VPC than {first_name}'s")
        for name, vpc in given[1:]
        if vpc is not first
    ]
    return first, problems


def _task_bounds(props: KafkaTriggerProps, service: PollerServiceProps) -> tuple[int, int]:
    """(min, max) tasks: the service's, else the provisioned pollers', else 1..partitions.

    The provisioned bounds are capped at the partition count, as AWS caps its pollers in
    Stream mode (the runtime's DesiredPollerCount does the same); not in Queue mode."""
    pollers = props.provisioned_pollers
    maximum = service.max_tasks
    if maximum is None:
        maximum = service.partition_count
        if pollers and pollers.maximum_pollers:
            # Queue mode's share group lets several pollers read one partition.
            cap = pollers.maximum_pollers
            maximum = cap if props.is_queue else min(maximum, cap)
    minimum = service.min_tasks
    if minimum is None:
        minimum = pollers.minimum_pollers if pollers and pollers.minimum_pollers else 1
        minimum = min(minimum, maximum)
    return minimum, maximum


def _service_problems(
    props: KafkaTriggerProps, service: PollerServiceProps, vpc: ec2.IVpc | None
) -> list[PropProblem]:
    problems = _count_problems(props, service)
    problems += _runtime_option_problems(service)
    problems += _timing_problems(props, service)
    if vpc is not None:
        problems += _subnet_problems(props, vpc)
    if service.image is None and not (REPOSITORY_ROOT / DOCKERFILE).is_file():
        rule = f"must be given: no {DOCKERFILE} under {REPOSITORY_ROOT} to build it from"
        problems.append(PropProblem("image", "image", None, rule))
    return problems


def _count_problems(props: KafkaTriggerProps, service: PollerServiceProps) -> list[PropProblem]:
    partitions = service.partition_count
    if _not_count(partitions):
        return [PropProblem("partition_count", "partition_count", partitions, "must be at least 1")]
    problems = [
        PropProblem(name, name, getattr(service, name), "must be a whole number, at least 1")
        for name in ("min_tasks", "max_tasks")
        if getattr(service, name) is not None and _not_count(getattr(service, name))
    ]
    processes = service.processes_per_task
    if _not_count(processes) or processes > MAX_PROCESSES:
        rule = f"must be a whole number from 1 to {MAX_PROCESSES}"
        problems.append(PropProblem("processes_per_task", "processes_per_task", processes, rule))
    if problems:
        return problems
    minimum, maximum = _task_bounds(props, service)
    if maximum > partitions and not props.is_queue:
        rule = (
            f"is more than partition_count ({partitions}): Kafka gives each partition to one "
            "consumer of the group, so the extra pollers would idle"
        )
        problems.append(PropProblem("max_tasks", "max_tasks", maximum, rule))
    if minimum > maximum:  # only a given min_tasks can be: MinimumPollers is capped
        problems.append(
            PropProblem(
                "min_tasks", "min_tasks", minimum, f"must be at most the most tasks ({maximum})"
            )
        )
    return problems


def _not_count(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < 1


def _runtime_option_problems(service: PollerServiceProps) -> list[PropProblem]:
    """The runtime's own checks of the capacity model and ``--metrics-namespace``."""
    problems = []
    capacity = {
        "poller_throughput": {"bytes_per_s": service.poller_throughput.to_bytes()},
        "poller_concurrency": {"concurrent_invocations": service.poller_concurrency},
    }
    for prop, value in capacity.items():
        try:
            PollerCapacity(**value)  # type: ignore[arg-type]
        except ValueError as error:
            problems.append(PropProblem(prop, prop, None, str(error)))
    catch_up_s = service.catch_up.to_seconds(integral=False)
    if not catch_up_s >= 1 or not float(catch_up_s).is_integer():
        problems.append(
            PropProblem(
                "catch_up", "catch_up", f"{catch_up_s:g} seconds", "must be at least 1 whole second"
            )
        )
    try:
        ReportingOptions(emf_namespace=service.metrics_namespace)
    except ValueError as error:
        problems.append(PropProblem("metrics_namespace", "metrics_namespace", None, str(error)))
    return problems


def _timing_problems(props: KafkaTriggerProps, service: PollerServiceProps) -> list[PropProblem]:
    problems = []
    drain_s = service.drain_timeout.to_seconds(integral=False)
    most_s = FARGATE_MAX_STOP_TIMEOUT_S - STOP_MARGIN_S
    if not 0 <= drain_s <= most_s or not float(drain_s).is_integer():
        rule = (
            f"must be 0-{most_s} whole seconds: Fargate stops a task at most "
            f"{FARGATE_MAX_STOP_TIMEOUT_S} s after SIGTERM, {STOP_MARGIN_S} s go to closing"
        )
        problems.append(PropProblem("drain_timeout", "stopTimeout", f"{drain_s} seconds", rule))
    timeout_s = _function_timeout_s(props.function)
    if timeout_s is not None and timeout_s > MAX_TIMEOUT_S:
        rule = f"is the function's timeout; the poller waits at most {MAX_TIMEOUT_S:g} s for one"
        problems.append(PropProblem("function", "Timeout", f"{timeout_s} seconds", rule))
    return problems


def _subnet_problems(props: KafkaTriggerProps, vpc: ec2.IVpc) -> list[PropProblem]:
    """Private subnets only: the tasks get no public IP."""
    try:
        selected = vpc.select_subnets(**_selection(props.vpc_subnets)).subnets
    except RuntimeError as error:  # jsii: CDK refused the selection itself
        rule = f"selects no subnet of the VPC ({str(error).splitlines()[0]})"
        return [PropProblem("vpc_subnets", "vpc_subnets", "<selection>", rule)]
    public = {s.subnet_id for s in vpc.public_subnets}
    if not selected or any(s.subnet_id in public for s in selected):
        rule = "must select private subnets: the poller's tasks get no public IP"
        return [PropProblem("vpc_subnets", "vpc_subnets", "<selection>", rule)]
    return []


def _function_timeout_s(function: lambda_.IFunction) -> int | None:
    """The function's timeout when the app defines it (an alias's or version's too)."""
    seconds = known_timeout(function)
    return None if seconds is None else int(seconds)
