"""``SelfManagedKafkaTrigger``: a Lambda trigger on a self-managed Kafka topic.

It composes the concerns of this package around aws-cdk-lib's ``EventSourceMapping``:
the props become AWS's request JSON, which the runtime's validator checks (errors
name the props); the role gets exactly the statements the features need; in a VPC
the security-group rules and endpoints are made; the ACLs are printed as commands.

The mapping's construct id is fixed, so its logical id never depends on the
bootstrap servers (aws-cdk issue 26416): a server change is an in-place
replacement of the same resource, not a second mapping beside the first.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_kafka import permissions
from constructs_kafka.acls import kafka_acls_commands
from constructs_kafka.nag import acknowledge_resource_wildcard
from constructs_kafka.network import (
    KafkaVpcEndpoints,
    broker_ports,
    choose_access,
    connect_mapping,
    endpoint_warning,
    is_isolated,
    open_existing_endpoints,
)
from constructs_kafka.poller_groups import join_poller_group
from constructs_kafka.props import (
    KafkaTriggerProps,
    NetworkAccess,
    props_from,
    with_cdk_destination,
)
from constructs_kafka.validation import (
    KafkaTriggerValidationError,
    _selection,
    known_timeout,
    sasl_on_plaintext_port,
    validate_props,
)
from runtime.definition.model import AclRequirement, EventSourceMapping, OnFailureDestination
from runtime.definition.vocabulary import GLUE_REGISTRY_ARN, ConsumptionMode, StartingPosition

__all__ = ["SelfManagedKafkaTrigger"]

_OVERRIDDEN: tuple[str, ...] = ("DestinationConfig", "MetricsConfig", "LoggingConfig")
"""Request fields aws-cdk-lib's L2 cannot express as plain values: set on the L1."""
_WILDCARD_REASONS: dict[str, str] = {
    "KafkaVpcNetworkInterfaces": (
        "Lambda's Kafka pollers create and delete ENIs whose ids EC2 chooses; the statement "
        "is held to the mapping's VPC by an ec2:Vpc condition, which every resource of "
        "these calls (ENI, subnet, security group) carries."
    ),
    "KafkaVpcDescribe": (
        "EC2 Describe* actions (network interfaces, VPCs, subnets, security groups) support "
        "no resource-level permissions: IAM authorizes them on '*' only."
    ),
    "FunctionLogs": (
        "Lambda names each log stream itself; the statement covers the streams of the "
        "function's own log group only."
    ),
    "OnFailureS3Put": (
        "Lambda names each failure record object itself; the statement covers the objects "
        "of the one destination bucket."
    ),
    "SchemaRegistryRead": (
        "Schema versions are added to the registry over time; the statement covers the "
        "schemas of the one registry."
    ),
}
"""Why each wildcard this library writes is needed: the cdk-nag IAM5 acknowledgments."""


@jsii.implements(ec2.IConnectable)
class SelfManagedKafkaTrigger(Construct):
    """A self-managed Apache Kafka event source mapping, with everything it needs.

    Takes the ``KafkaTriggerProps`` fields as keywords
    (``SelfManagedKafkaTrigger(self, "Orders", function=fn, topic="orders", ...)``) or one
    ``KafkaTriggerProps`` object. Attributes: ``mapping`` (the L2 ``EventSourceMapping``),
    ``uuid`` (AWS's mapping UUID, a token), ``consumer_group_id``, ``required_acls``,
    ``acl_commands``, ``mapping_request`` (the request JSON, with tokens),
    ``security_groups`` and ``connections`` (in a VPC), ``network_access`` (the one
    chosen), ``endpoints`` and ``policy`` (the execution-role policy, if the role is known).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: KafkaTriggerProps | None = None,
        **options: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        props = props_from(KafkaTriggerProps, self.node.path, props, options)
        self.props = props = with_cdk_destination(self, props)
        self.subnets = self._subnets()
        self.security_groups = self._security_groups()
        self._connections = ec2.Connections(security_groups=self.security_groups)
        request = props.to_mapping_request(
            subnet_ids=[s.subnet_id for s in self.subnets],
            security_group_ids=[g.security_group_id for g in self.security_groups],
        )
        problems = validate_props(props, request)
        if problems:
            raise KafkaTriggerValidationError(self.node.path, problems)
        self.mapping_request: dict[str, Any] = request
        pollers = props.provisioned_pollers
        self.poller_group = join_poller_group(
            self,
            pollers.poller_group_name if pollers else None,
            props.vpc,
            pollers.maximum_pollers if pollers else 0,
        )
        self.consumer_group_id = props.effective_consumer_group_id
        self.required_acls = required_acls_for(props, self.consumer_group_id)
        self.mapping = self._mapping(request)
        self.uuid = self.mapping.event_source_mapping_id
        self.role = props.function.role
        self.policy = self._policy()
        self.network_access: NetworkAccess | None = None
        self.endpoints = self._network()
        self.acl_commands = kafka_acls_commands(
            self.required_acls,
            principal=props.kafka_principal,
            bootstrap_server=props.bootstrap_servers[0],
        )
        if props.acl_commands_output:
            cdk.CfnOutput(
                self,
                "KafkaAclCommands",
                value=" ; ".join(self.acl_commands),
                description="kafka-acls.sh commands granting the ACLs this trigger's principal "
                "needs",
            )
        self._warn()

    @property
    def connections(self) -> ec2.Connections:
        """The mapping's security groups, as ``ec2.IConnectable`` (default port: the first
        broker port): ``cache.connections.allow_from(trigger, ...)`` works as for any
        aws-cdk-lib network construct."""
        return self._connections

    def _warn(self) -> None:
        """What synth cannot check but a deployment depends on, said once per trigger."""
        props = self.props
        if known_timeout(props.function) is None:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:function-timeout",
                f"the timeout of {props.function.node.path} is unknown at synth (an imported "
                "function): Lambda refuses a Kafka trigger whose function may run longer than "
                "14 minutes",
            )
        if sasl_on_plaintext_port(props):
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:sasl-port",
                "SASL is sent over TLS only (SASL_SSL), and port 9092 is Kafka's default "
                "PLAINTEXT listener: make sure that listener uses TLS",
            )

    # --- the mapping ---------------------------------------------------------------

    def _mapping(self, request: dict[str, Any]) -> lambda_.EventSourceMapping:
        props = self.props
        mapping = lambda_.EventSourceMapping(
            self,
            "Mapping",
            target=props.function,
            kafka_bootstrap_servers=list(props.bootstrap_servers),
            kafka_topic=props.topic,
            kafka_consumer_group_id=self.consumer_group_id,
            starting_position=_l2_position(props.position),
            starting_position_timestamp=request.get("StartingPositionTimestamp"),
            batch_size=props.batch_size,
            max_batching_window=props.max_batching_window,
            enabled=props.enabled,
            filters=[{"pattern": f["Pattern"]} for f in _filters(request)] or None,
            filter_encryption=props.filter_encryption,
            source_access_configurations=[
                lambda_.SourceAccessConfiguration(
                    type=lambda_.SourceAccessConfigurationType.of(entry["Type"]), uri=entry["URI"]
                )
                for entry in request.get("SourceAccessConfigurations", [])
            ]
            or None,
            provisioned_poller_config=_l2_pollers(request.get("ProvisionedPollerConfig")),
            retry_attempts=props.retry_attempts,
            max_record_age=props.max_record_age,
            bisect_batch_on_error=props.bisect_batch_on_error or None,
            report_batch_item_failures=props.report_batch_item_failures or None,
        )
        cfn = mapping.node.default_child
        assert isinstance(cfn, lambda_.CfnEventSourceMapping)
        for key in _OVERRIDDEN:
            if key in request:
                cfn.add_property_override(key, request[key])
        mode = request["SelfManagedKafkaEventSourceConfig"].get("ConsumptionMode")
        if mode is not None:  # aws-cdk-lib's L2 gained consumptionMode only in 2.278
            cfn.add_property_override("SelfManagedKafkaEventSourceConfig.ConsumptionMode", mode)
            _acknowledge_older_schema(cfn)
        registry = request["SelfManagedKafkaEventSourceConfig"].get("SchemaRegistryConfig")
        if registry is not None:
            cfn.add_property_override(
                "SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig", registry
            )
        for key, value in props.tags.items():  # merged with the stack's own Tags
            cdk.Tags.of(mapping).add(key, value)
        return mapping

    # --- the execution role ----------------------------------------------------------

    def _policy(self) -> iam.Policy | None:
        props, role = self.props, self.role
        if role is None:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:no-role",
                "the function's execution role is unknown: grant the trigger's permissions "
                "(logs, secrets, ENIs, destination) to it yourself",
            )
            return None
        statements = []
        if props.system_log_level is not None:
            statements.append(permissions.log_statement(props.function))
        statements += permissions.read_secret_statements(props.secrets())
        if props.vpc is not None:
            statements += permissions.eni_statements(props.vpc)
        if props.destination is not None:
            statements += permissions.destination_statements(props.destination)
        registry = props.schema_registry
        glue = permissions.registry_statement(registry) if registry else None
        if glue is not None:
            statements.append(glue)
        if not statements:  # nothing to grant: an empty policy would fail to synthesize
            return None
        policy = iam.Policy(self, "ExecutionPolicy", statements=statements, roles=[role])
        self.mapping.node.add_dependency(policy)
        _acknowledge_wildcards(policy, statements)
        return policy

    # --- the network -------------------------------------------------------------------

    def _subnets(self) -> list[ec2.ISubnet]:
        vpc = self.props.vpc
        if vpc is None:
            return []
        try:
            return list(vpc.select_subnets(**_selection(self.props.vpc_subnets)).subnets)
        except RuntimeError:  # reported by validate_props, naming vpc_subnets
            return []

    def _security_groups(self) -> list[ec2.ISecurityGroup]:
        props = self.props
        if props.vpc is None:
            return []  # security_groups without a vpc: reported by validate_props
        if props.security_groups:
            return list(props.security_groups)
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.vpc,
            allow_all_outbound=False,
            description="Lambda Kafka pollers - out to the broker ports and 443",
        )
        return [group]

    def _network(self) -> KafkaVpcEndpoints | None:
        props, vpc = self.props, self.props.vpc
        if vpc is None:
            return None
        ports = broker_ports(props.bootstrap_servers)
        if not ports:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:ports",
                "the bootstrap servers are tokens: open the broker ports on the security groups",
            )
        if ports:
            self._connections = ec2.Connections(
                security_groups=self.security_groups, default_port=ec2.Port.tcp(ports[0])
            )
        connect_mapping(self._connections, ports, props.brokers)
        if not props.brokers:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:brokers",
                "brokers is not given: the broker ports are open only within the mapping's "
                "security groups; name the brokers' security groups or CIDRs with brokers=",
            )
        self.network_access = self._access(vpc)
        if self.network_access is NetworkAccess.EXISTING_ENDPOINTS:
            open_existing_endpoints(self.security_groups, props.existing_endpoint_security_groups)
        if self.network_access is not NetworkAccess.VPC_ENDPOINTS:
            return None
        return self._endpoints(vpc)

    def _access(self, vpc: ec2.IVpc) -> NetworkAccess | None:
        props = self.props
        provisioned = props.provisioned_pollers is not None
        access = choose_access(
            props.network_access, provisioned=provisioned, isolated=is_isolated(vpc, self.subnets)
        )
        if provisioned and (props.network_access is not None or props.endpoints is not None):
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:provisioned-network",
                "provisioned pollers need no VPC endpoints nor NAT: network_access and "
                "endpoints are ignored and none are created",
            )
        return access

    def _endpoints(self, vpc: ec2.IVpc) -> KafkaVpcEndpoints:
        props = self.props
        selection = ec2.SubnetSelection(subnets=self.subnets) if self.subnets else None
        endpoints = props.endpoints or KafkaVpcEndpoints.of(self, vpc, selection)
        for group in self.security_groups:
            endpoints.allow_from(group)
        if self.role is not None:
            secrets = props.secrets()
            if secrets:
                endpoints.allow_secret_reads(self.role, secrets)
            if props.destination is not None:
                endpoints.allow_destination(self.role, props.destination)
            registry = props.schema_registry
            if registry is not None and GLUE_REGISTRY_ARN.fullmatch(registry.uri):
                endpoints.allow_registry_reads(self.role, registry.uri)
        if props.endpoints is None:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:endpoints", endpoint_warning(vpc, endpoints.service_names)
            )
        if cdk.Stack.of(endpoints) is cdk.Stack.of(self):
            self.mapping.node.add_dependency(endpoints)
        return endpoints


def _acknowledge_older_schema(cfn: lambda_.CfnEventSourceMapping) -> None:
    """aws-cdk-lib before 2.278 validates against a CloudFormation schema that predates
    ConsumptionMode; CloudFormation (and cfn-lint, which the tests run) accept it."""
    cdk.Validations.of(cfn).acknowledge(
        cdk.Acknowledgment(
            id="CloudFormation-Validate::F3002",
            reason="SelfManagedKafkaEventSourceConfig.ConsumptionMode is a CloudFormation "
            "property newer than this aws-cdk-lib's bundled schema",
        )
    )


def _l2_position(position: StartingPosition | None) -> lambda_.StartingPosition | None:
    if position is None:  # Queue mode: the share group decides where it starts
        return None
    return lambda_.StartingPosition[StartingPosition(position).name]


def _l2_pollers(doc: dict[str, Any] | None) -> lambda_.ProvisionedPollerConfig | None:
    if doc is None:
        return None
    return lambda_.ProvisionedPollerConfig(
        minimum_pollers=doc["MinimumPollers"],
        maximum_pollers=doc["MaximumPollers"],
        poller_group_name=doc.get("PollerGroupName"),
    )


def _filters(request: dict[str, Any]) -> list[dict[str, Any]]:
    return list(request.get("FilterCriteria", {}).get("Filters", []))


def required_acls_for(props: KafkaTriggerProps, group: str) -> tuple[AclRequirement, ...]:
    """The runtime model's ACLs; the function name plays no part in them."""
    model = EventSourceMapping(
        function_name="-",
        topic=props.topic,
        bootstrap_servers=tuple(props.bootstrap_servers),
        starting_position=props.position or StartingPosition.LATEST,
        consumption_mode=props.consumption_mode or ConsumptionMode.STREAM,
        uuid=group,
        explicit_consumer_group_id=group,
        on_failure=OnFailureDestination(props.destination.destination)
        if props.destination
        else None,
    )
    return model.required_acls()


def _acknowledge_wildcards(policy: iam.Policy, statements: list[iam.PolicyStatement]) -> None:
    """cdk-nag IAM5: each wildcard resource this library writes, with why AWS needs it
    (one finding per resource: the reasons of every statement naming it, joined)."""
    reasons: dict[str, list[str]] = {}
    for statement in statements:
        reason = _WILDCARD_REASONS.get(statement.sid or "")
        for resource in statement.resources if reason else []:
            if "*" in resource and reason:
                reasons.setdefault(resource, []).append(reason)
    for resource, why in reasons.items():
        acknowledge_resource_wildcard(policy, resource, " ".join(why))
