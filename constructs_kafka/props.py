"""The definition of a self-managed Kafka trigger, as CDK-friendly props.

One props object describes the mapping whichever way it is deployed: the
``SelfManagedKafkaTrigger`` construct turns it into an AWS::Lambda::EventSourceMapping,
and ``to_mapping_request`` turns it into AWS's CreateEventSourceMapping JSON, the
definition the poller (``runtime``) runs. Values may be CDK tokens; the JSON then
holds tokens too, which ``Stack.to_json_string`` resolves at deploy time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_kafka.auth import KafkaAuthentication
from constructs_kafka.destinations import (
    AwsCdkOnFailure,
    OnFailureDestination,
    on_failure_destination,
)
from constructs_kafka.schema_registry import KafkaSchemaRegistry
from runtime.definition.model import (
    DEFAULT_FILTER_QUOTA,
    ProvisionedPollerConfig,
    derive_uuid,
    pollers_request,
)
from runtime.definition.vocabulary import (
    ConsumptionMode,
    EsmMetric,
    SourceAccessType,
    StartingPosition,
    SystemLogLevel,
)

if TYPE_CHECKING:
    from constructs_kafka.network import KafkaVpcEndpoints

__all__ = [
    "KafkaTriggerProps",
    "NetworkAccess",
    "is_unresolved",
    "props_from",
    "with_cdk_destination",
]

_P = TypeVar("_P")


class NetworkAccess(StrEnum):
    """How the mapping's pollers in a VPC reach Lambda, STS, Secrets Manager and the
    destination's service. Provisioned mode needs none of them (AWS)."""

    VPC_ENDPOINTS = "VPC_ENDPOINTS"
    """Interface endpoints with private DNS (an S3 gateway endpoint on the mapping's
    subnets' route tables for S3), created once per VPC and stack, or the ``endpoints``
    given. Private DNS changes these services' names for every workload in the VPC."""
    NAT_GATEWAY = "NAT_GATEWAY"
    """The subnets route through a NAT gateway: no endpoints are created."""
    EXISTING_ENDPOINTS = "EXISTING_ENDPOINTS"
    """Endpoints made elsewhere: only 443 from the mapping is allowed on
    ``existing_endpoint_security_groups``. A second private-DNS endpoint for one
    service in a VPC would fail to deploy."""


def is_unresolved(value: Any) -> bool:
    """The validator's predicate: a CDK token (string, number or list) is not known yet."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):  # a string token, or one element of an encoded list token
        return cdk.Token.is_unresolved(value) or cdk.Token.is_unresolved([value])
    if isinstance(value, int | float):
        return cdk.Token.is_unresolved(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return any(cdk.Token.is_unresolved(v) for v in value)
    return False


def props_from(kind: type[_P], where: str, props: _P | None, options: Mapping[str, Any]) -> _P:
    """Props given as one object or as keywords (the documented way), not both; an
    unknown or missing keyword is named, with the construct's path."""
    if props is not None:
        if options:
            raise TypeError(f"{where}: pass props or keyword props, not both ({sorted(options)})")
        return props
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"{where}: unknown prop(s) {', '.join(unknown)}")
    try:
        return kind(**options)
    except TypeError as error:  # a required prop is missing
        raise TypeError(f"{where}: {str(error).partition('() ')[2] or error}") from None


def with_cdk_destination(scope: Construct, props: KafkaTriggerProps) -> KafkaTriggerProps:
    """``props`` with an aws-cdk-lib on-failure class (``SqsDlq``...) bound in ``scope``
    and replaced by this library's ``OnFailureDestination``."""
    destination = on_failure_destination(scope, props.on_failure, props.function)
    return props if destination is props.on_failure else replace(props, on_failure=destination)


@dataclass(frozen=True, kw_only=True)
class KafkaTriggerProps:
    """Everything a self-managed Kafka trigger is; defaults are AWS's unless stated.

    Constructs take these as keyword arguments
    (``SelfManagedKafkaTrigger(self, "Orders", function=fn, topic="orders", ...)``);
    the props object is the same thing, for code that builds props once and reuses them.
    """

    function: lambda_.IFunction
    """The function the mapping invokes: a ``Function``, ``Alias``, ``Version`` or an
    imported function. Its timeout must be at most 14 minutes (checked when known)."""
    bootstrap_servers: Sequence[str]
    """1-10 ``host:port`` brokers (ports 1-65535). Changing them replaces the mapping under
    the same logical id; the default consumer group does not change."""
    topic: str
    """The one topic to consume: 1-249 of ``a-z A-Z 0-9 . _ -``, not starting with ``.``."""
    starting_position: StartingPosition | lambda_.StartingPosition | None = None
    """Where a new consumer group starts (this library's or aws-cdk-lib's enum); an
    existing group resumes from its committed offsets. Required in Stream mode, refused
    in Queue mode (the share group's ``share.auto.offset.reset`` decides there).
    @default - none"""
    consumption_mode: ConsumptionMode | None = None
    """``STREAM`` (a consumer group: partitions owned by one poller each, order per
    partition) or ``QUEUE`` (a Kafka share group, Apache Kafka 4.2+: records acknowledged
    one by one, no order, more pollers than partitions). This library's enum, or
    aws-cdk-lib's ``lambda_.KafkaConsumptionMode`` where the installed aws-cdk-lib has it.
    Create-only: changing it replaces the mapping. @default - Stream"""
    starting_position_timestamp: datetime | float | None = None
    """Epoch seconds (or an aware datetime); required with AT_TIMESTAMP, refused otherwise.
    @default - none"""
    authentication: KafkaAuthentication | None = None
    """How Lambda signs in: SASL/SCRAM, SASL/PLAIN (both over TLS only) or mTLS.
    @default - no credentials (a PLAINTEXT or TLS-only listener)"""
    root_ca_secret: secretsmanager.ISecret | None = None
    """The broker's private root CA (``{"certificate": PEM}``). @default - public CAs"""
    consumer_group_id: str | None = None
    """1-200 of ``a-z A-Z 0-9 - / * : _ + = . @``; unique per cluster.
    @default - a UUID derived from the function's construct path and the topic; the
    bootstrap servers play no part, so adding a broker keeps the group and its offsets"""
    batch_size: int | None = None
    """Records per invocation, 1-10000. @default 100"""
    max_batching_window: cdk.Duration | None = None
    """How long to gather records, 0-300 whole seconds. @default - 500 ms"""
    enabled: bool = True
    """Whether the mapping polls. @default true"""
    filters: Sequence[Mapping[str, Any] | str] = ()
    """Filter patterns (objects or JSON strings) on the record ``value``, OR-ed; at most
    ``filter_quota``. @default - every record is sent"""
    filter_encryption: kms.IKey | None = None
    """Customer-managed key encrypting the filter criteria (needs ``filters``).
    @default - an AWS-owned key"""
    filter_quota: int = DEFAULT_FILTER_QUOTA
    """Filters the account allows per mapping, 1-10. @default 5 (AWS's default quota)"""
    on_failure: OnFailureDestination | AwsCdkOnFailure | None = None
    """Where a batch goes once retries or record age run out: a standard SQS queue, a
    standard SNS topic, an S3 bucket or ``kafka://<topic>`` (provisioned mode only); also
    aws-cdk-lib's ``SqsDlq``, ``SnsDlq`` and ``S3OnFailureDestination``.
    @default - failed batches are dropped once they expire"""
    retry_attempts: int | None = None
    """-1 (infinite) or 0-10000. Provisioned mode only. @default -1"""
    max_record_age: cdk.Duration | None = None
    """60-604800 s, or -1 s for infinite. Provisioned mode only. @default - infinite"""
    bisect_batch_on_error: bool = False
    """Split a failing batch in two and retry each half. Provisioned mode only.
    @default false"""
    report_batch_item_failures: bool = False
    """The function may answer ``batchItemFailures``. Provisioned mode only.
    @default false"""
    provisioned_pollers: ProvisionedPollerConfig | None = None
    """Provisioned mode: 1-200 minimum and 1-2000 maximum pollers.
    @default - on-demand mode"""
    metrics: Sequence[EsmMetric] = ()
    """Extra mapping metrics; ErrorCount and KafkaMetrics need provisioned mode.
    @default - none"""
    system_log_level: SystemLogLevel | None = None
    """DEBUG, INFO or WARN. Provisioned mode only. @default - no system logs"""
    schema_registry: KafkaSchemaRegistry | None = None
    """A Glue or Confluent registry to validate records with. Provisioned mode only.
    @default - none"""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Up to 50 tags of the mapping, added to the stack's own ``Tags``. @default - none"""
    vpc: ec2.IVpc | None = None
    """The VPC the brokers are reached from. @default - over the internet"""
    vpc_subnets: ec2.SubnetSelection | None = None
    """Private subnets of ``vpc`` (AWS refuses public ones). @default - the VPC's
    private subnets (CDK's default selection)"""
    security_groups: Sequence[ec2.ISecurityGroup] = ()
    """The mapping's security groups. @default - one is created"""
    brokers: Sequence[ec2.IConnectable] = ()
    """The brokers' side: their security groups, ``ec2.Peer`` CIDRs or any connectable.
    The mapping's groups may reach them on the broker ports and a broker security group
    lets the mapping in. @default - the brokers share the mapping's security groups"""
    network_access: NetworkAccess | None = None
    """How the mapping reaches AWS APIs from the VPC. @default - none needed in
    provisioned mode; NAT_GATEWAY when the subnets have egress; VPC_ENDPOINTS (with a
    warning saying what changes in the VPC) when they are isolated"""
    endpoints: KafkaVpcEndpoints | None = None
    """Endpoints to share between triggers, with VPC_ENDPOINTS. @default - one set per
    VPC and stack, with AWS's default (open) endpoint policies"""
    existing_endpoint_security_groups: Sequence[ec2.ISecurityGroup] = ()
    """With EXISTING_ENDPOINTS: the endpoints' security groups, opened on 443 from the
    mapping. @default - none"""
    acl_principal: str | None = None
    """The Kafka principal for the ACL commands. @default - the authentication's one"""
    acl_commands_output: bool = False
    """Add a ``CfnOutput`` with the ``kafka-acls.sh`` commands. @default false (the
    commands are in ``acl_commands``)"""

    def __post_init__(self) -> None:
        # aws-cdk-lib's StartingPosition and KafkaConsumptionMode are accepted; the model
        # keeps one enum each.
        position = self.starting_position
        if isinstance(position, lambda_.StartingPosition):
            object.__setattr__(self, "starting_position", StartingPosition(position.value))
        mode: Any = self.consumption_mode
        if mode is not None and not isinstance(mode, ConsumptionMode):
            spelled = getattr(mode, "value", mode)
            if spelled in set(ConsumptionMode):  # else the validator names the prop
                object.__setattr__(self, "consumption_mode", ConsumptionMode(spelled))

    @property
    def is_queue(self) -> bool:
        """True with ``consumption_mode=QUEUE`` (share groups)."""
        return self.consumption_mode is ConsumptionMode.QUEUE

    def default_consumer_group_id(self) -> str:
        """The derived group: what identifies the mapping to its owner (the function's
        construct path and the topic), so a changed server list keeps the group."""
        topic = "" if is_unresolved(self.topic) else self.topic
        return derive_uuid(self.function.node.path, topic, [], None)

    @property
    def position(self) -> StartingPosition | None:
        """``starting_position`` as this library's enum (aws-cdk-lib's is accepted too)."""
        if self.starting_position is None:
            return None
        return StartingPosition(_value(self.starting_position))

    @property
    def destination(self) -> OnFailureDestination | None:
        """``on_failure`` as this library's type. The constructs convert aws-cdk-lib's classes
        first (``with_cdk_destination``): binding them needs the construct tree."""
        if self.on_failure is None or isinstance(self.on_failure, OnFailureDestination):
            return self.on_failure
        raise TypeError(
            f"on_failure is a {type(self.on_failure).__name__}: pass the props through "
            "with_cdk_destination(scope, props) first"
        )

    @property
    def effective_consumer_group_id(self) -> str:
        return self.consumer_group_id or self.default_consumer_group_id()

    @property
    def kafka_principal(self) -> str | None:
        """The principal ACLs are granted to, when known."""
        if self.acl_principal:
            return self.acl_principal
        return self.authentication.principal if self.authentication else None

    def secrets(self) -> list[secretsmanager.ISecret]:
        """Every secret the mapping reads: authentication, root CA, registry access."""
        found = [self.authentication.secret] if self.authentication else []
        found += [self.root_ca_secret] if self.root_ca_secret else []
        found += [a.secret for a in self.schema_registry.access] if self.schema_registry else []
        return found

    def to_mapping_request(
        self,
        *,
        subnet_ids: Sequence[str] = (),
        security_group_ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """AWS's CreateEventSourceMapping request (the poller's mapping definition).

        ``subnet_ids`` and ``security_group_ids`` (default: the props' groups) fill the
        VPC entries; the construct passes the ones it selected or created.
        """
        groups = (
            [g.security_group_id for g in self.security_groups]
            if security_group_ids is None
            else list(security_group_ids)
        )
        doc: dict[str, Any] = {
            "FunctionName": self.function.function_name,
            "Topics": [self.topic],
            "SelfManagedEventSource": {
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(self.bootstrap_servers)}
            },
            "SelfManagedKafkaEventSourceConfig": self._kafka_config(),
        }
        optional: dict[str, Any] = {
            "StartingPosition": _value(self.starting_position),
            "StartingPositionTimestamp": _epoch_seconds(self.starting_position_timestamp),
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": _seconds(self.max_batching_window),
            "Enabled": None if self.enabled else False,
            "FilterCriteria": {"Filters": [{"Pattern": _pattern(f)} for f in self.filters]}
            if self.filters
            else None,
            "KMSKeyArn": self.filter_encryption.key_arn if self.filter_encryption else None,
            "SourceAccessConfigurations": self._access(subnet_ids, groups) or None,
            "DestinationConfig": {"OnFailure": {"Destination": self.destination.destination}}
            if self.destination
            else None,
            "MaximumRetryAttempts": self.retry_attempts,
            "MaximumRecordAgeInSeconds": _seconds(self.max_record_age),
            "BisectBatchOnFunctionError": self.bisect_batch_on_error or None,
            "FunctionResponseTypes": ["ReportBatchItemFailures"]
            if self.report_batch_item_failures
            else None,
            "ProvisionedPollerConfig": pollers_request(self.provisioned_pollers),
            "MetricsConfig": {"Metrics": [_value(m) for m in self.metrics]}
            if self.metrics
            else None,
            "LoggingConfig": {"SystemLogLevel": _value(self.system_log_level)}
            if self.system_log_level
            else None,
            "Tags": dict(self.tags) or None,
        }
        doc.update((key, value) for key, value in optional.items() if value is not None)
        return doc

    def _kafka_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"ConsumerGroupId": self.effective_consumer_group_id}
        if self.consumption_mode is not None:
            config["ConsumptionMode"] = _value(self.consumption_mode)
        registry = self.schema_registry
        if registry is not None:
            entry: dict[str, Any] = {
                "SchemaRegistryURI": registry.uri,
                "EventRecordFormat": _value(registry.event_record_format),
                "SchemaValidationConfigs": [
                    {"Attribute": _value(a)} for a in registry.validated_attributes
                ],
            }
            if registry.access:
                entry["AccessConfigs"] = [
                    {"Type": _value(a.type), "URI": a.secret.secret_arn} for a in registry.access
                ]
            config["SchemaRegistryConfig"] = entry
        return config

    def _access(self, subnet_ids: Sequence[str], groups: Sequence[str]) -> list[dict[str, str]]:
        entries: list[dict[str, str]] = []
        if self.authentication:
            auth = self.authentication
            entries.append({"Type": _value(auth.type), "URI": auth.secret.secret_arn})
        if self.root_ca_secret:
            entries.append(
                {
                    "Type": SourceAccessType.SERVER_ROOT_CA_CERTIFICATE.value,
                    "URI": self.root_ca_secret.secret_arn,
                }
            )
        entries += [{"Type": "VPC_SUBNET", "URI": f"subnet:{s}"} for s in subnet_ids]
        entries += [{"Type": "VPC_SECURITY_GROUP", "URI": f"security_group:{g}"} for g in groups]
        return entries


def _value(member: Any) -> Any:
    """An enum member's AWS spelling (this library's or aws-cdk-lib's enums); anything
    else (a wrong type) is passed on for the validator to report."""
    return member.value if isinstance(member, Enum) else member


def _pattern(item: Mapping[str, Any] | str) -> Any:
    return item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))


def _epoch_seconds(stamp: datetime | float | None) -> float | int | None:
    if stamp is None:
        return None
    seconds = stamp.timestamp() if isinstance(stamp, datetime) else stamp
    return int(seconds) if isinstance(seconds, float) and seconds.is_integer() else seconds


def _seconds(duration: cdk.Duration | None) -> float | int | None:
    """Whole seconds as an int; a fraction stays a float, which the validator refuses."""
    if duration is None:
        return None
    seconds = duration.to_seconds(integral=False)
    return int(seconds) if float(seconds).is_integer() else seconds
