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
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from constructs_kafka import permissions
from constructs_kafka.acls import kafka_acls_commands
from constructs_kafka.nag import acknowledge_resource_wildcard
from constructs_kafka.network import KafkaVpcEndpoints, broker_ports, connect_mapping
from constructs_kafka.props import KafkaTriggerProps, NetworkAccess
from constructs_kafka.validation import KafkaTriggerValidationError, _selection, validate_props
from runtime.definition.model import AclRequirement, EventSourceMapping, OnFailureDestination
from runtime.definition.vocabulary import StartingPosition

__all__ = ["SelfManagedKafkaTrigger"]

_OVERRIDDEN: tuple[str, ...] = ("DestinationConfig", "MetricsConfig", "LoggingConfig")
"""Request fields aws-cdk-lib's L2 cannot express as plain values: set on the L1."""
_WILDCARD_REASONS: dict[str, str] = {
    "KafkaVpcNetworkInterfaces": (
        "Lambda's Kafka pollers create and describe ENIs in the mapping's subnets; EC2 "
        "authorizes these calls only on '*' (AWSLambdaVPCAccessExecutionRole uses '*' too)."
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


class SelfManagedKafkaTrigger(Construct):
    """A self-managed Apache Kafka event source mapping, with everything it needs.

    Attributes: ``mapping`` (the L2 ``EventSourceMapping``), ``uuid`` (AWS's mapping
    UUID, a token), ``consumer_group_id``, ``required_acls``, ``acl_commands``,
    ``mapping_request`` (the request JSON, with tokens), ``security_groups``,
    ``endpoints`` and ``policy`` (the execution-role policy, if the role is known).
    """

    def __init__(self, scope: Construct, construct_id: str, props: KafkaTriggerProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        subnet_ids = self._subnet_ids()
        self.security_groups = self._security_groups()
        request = props.to_mapping_request(
            subnet_ids=subnet_ids,
            security_group_ids=[g.security_group_id for g in self.security_groups],
        )
        problems = validate_props(props, request)
        if problems:
            raise KafkaTriggerValidationError(self.node.path, problems)
        self.mapping_request: dict[str, Any] = request
        self.consumer_group_id = props.effective_consumer_group_id
        self.required_acls = required_acls_for(props, self.consumer_group_id)
        self.mapping = self._mapping(request)
        self.uuid = self.mapping.event_source_mapping_id
        self.role = props.function.role
        self.policy = self._policy()
        self.endpoints = self._network()
        self.acl_commands = kafka_acls_commands(
            self.required_acls,
            principal=props.kafka_principal,
            bootstrap_server=props.bootstrap_servers[0],
        )
        cdk.CfnOutput(
            self,
            "KafkaAclCommands",
            value=" ; ".join(self.acl_commands),
            description="kafka-acls.sh commands granting the ACLs this trigger's principal needs",
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
            starting_position=_l2_position(props.starting_position),
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
        registry = request["SelfManagedKafkaEventSourceConfig"].get("SchemaRegistryConfig")
        if registry is not None:
            cfn.add_property_override(
                "SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig", registry
            )
        if "Tags" in request:
            tags = [{"Key": k, "Value": v} for k, v in request["Tags"].items()]
            cfn.add_property_override("Tags", tags)
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
            statements.append(permissions.eni_statement())
        if props.on_failure is not None:
            statements += permissions.destination_statements(props.on_failure)
        registry = props.schema_registry
        glue = permissions.registry_statement(registry) if registry else None
        if glue is not None:
            statements.append(glue)
        policy = iam.Policy(self, "ExecutionPolicy", statements=statements, roles=[role])
        self.mapping.node.add_dependency(policy)
        _acknowledge_wildcards(policy, statements)
        return policy

    # --- the network -------------------------------------------------------------------

    def _subnet_ids(self) -> list[str]:
        vpc = self.props.vpc
        if vpc is None:
            return []
        try:
            return list(vpc.select_subnets(**_selection(self.props.vpc_subnets)).subnet_ids)
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
            description="Lambda Kafka pollers - broker ports within the group and 443 out",
        )
        return [group]

    def _network(self) -> KafkaVpcEndpoints | None:
        props = self.props
        if props.vpc is None:
            return None
        ports = broker_ports(props.bootstrap_servers)
        if not ports:
            cdk.Annotations.of(self).add_warning_v2(
                "constructs-kafka:ports",
                "the bootstrap servers are tokens: open the broker ports on the security groups",
            )
        connect_mapping(self.security_groups, ports)
        if props.network_access is NetworkAccess.EXISTING_ENDPOINTS:
            for endpoint_group in props.existing_endpoint_security_groups:
                for group in self.security_groups:
                    endpoint_group.add_ingress_rule(
                        group, ec2.Port.tcp(443), "HTTPS from a Kafka mapping"
                    )
            return None
        if props.network_access is NetworkAccess.NAT_GATEWAY:
            return None
        endpoints = props.endpoints or KafkaVpcEndpoints.of(self, props.vpc)
        for group in self.security_groups:
            endpoints.allow_from(group)
        if self.role is not None:
            secrets = props.secrets()
            if secrets:
                endpoints.allow_secret_reads(self.role, [s.secret_arn for s in secrets])
            if props.on_failure is not None:
                endpoints.allow_destination(self.role, props.on_failure)
        if cdk.Stack.of(endpoints) is cdk.Stack.of(self):
            self.mapping.node.add_dependency(endpoints)
        return endpoints


def _l2_position(position: StartingPosition) -> lambda_.StartingPosition:
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
        starting_position=StartingPosition(props.starting_position),
        uuid=group,
        explicit_consumer_group_id=group,
        on_failure=OnFailureDestination(props.on_failure.destination) if props.on_failure else None,
    )
    return model.required_acls()


def _acknowledge_wildcards(policy: iam.Policy, statements: list[iam.PolicyStatement]) -> None:
    """cdk-nag IAM5: each wildcard resource this library writes, with why AWS needs it."""
    for statement in statements:
        reason = _WILDCARD_REASONS.get(statement.sid or "")
        for resource in statement.resources if reason else []:
            if "*" in resource:
                acknowledge_resource_wildcard(policy, resource, reason or "")
