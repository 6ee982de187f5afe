"""Synth-time validation: the runtime's rules, reported in the construct's prop names.

The rules live once, in ``runtime.definition.rules``; this module only builds the
request, runs them (plus AWS's provisioned-mode and AWS-only rule sets) and renames
each AWS field to the prop that produced it. Checks that need CDK objects (the
function's timeout, the secrets' regions, the subnets, the destination's queue) and
CloudFormation's own limits are the only rules written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_

from constructs_kafka.props import KafkaTriggerProps, NetworkAccess, is_unresolved
from runtime.definition.checks import FieldProblem, short_repr
from runtime.definition.filters import MAX_FILTERS_WITH_QUOTA_INCREASE as MAX_FILTERS
from runtime.definition.model import (
    aws_only_problems,
    aws_provisioned_mode_problems,
    validate_mapping,
)
from runtime.definition.vocabulary import (
    AUTHENTICATION_TYPES,
    KAFKA_DESTINATION_PREFIX,
    SourceAccessType,
)

__all__ = [
    "MAX_FUNCTION_TIMEOUT",
    "KafkaTriggerValidationError",
    "PropProblem",
    "known_timeout",
    "sasl_on_plaintext_port",
    "validate_props",
]

MAX_FUNCTION_TIMEOUT: Final = cdk.Duration.minutes(14)
"""AWS refuses a Kafka mapping whose function may run longer than 14 minutes."""
LAMBDA_DEFAULT_TIMEOUT_S: Final = 3
MIN_DESTINATION_LENGTH: Final = 12
"""CloudFormation's minLength of ``DestinationConfig.OnFailure.Destination``."""
SASL_TYPES: Final = frozenset(
    {
        SourceAccessType.BASIC_AUTH,
        SourceAccessType.SASL_SCRAM_256_AUTH,
        SourceAccessType.SASL_SCRAM_512_AUTH,
    }
)
PLAINTEXT_SCHEMES: Final = ("PLAINTEXT://", "SASL_PLAINTEXT://")
PLAINTEXT_PORT: Final = 9092
"""Kafka's default PLAINTEXT listener port."""

_PROPS_BY_FIELD: Final = (
    ("FunctionName", "function"),
    ("Topics", "topic"),
    ("SelfManagedEventSource", "bootstrap_servers"),
    ("StartingPositionTimestamp", "starting_position_timestamp"),
    ("StartingPosition", "starting_position"),
    ("BatchSize", "batch_size"),
    ("MaximumBatchingWindowInSeconds", "max_batching_window"),
    ("Enabled", "enabled"),
    ("FilterCriteria", "filters"),
    ("KMSKeyArn", "filter_encryption"),
    ("SelfManagedKafkaEventSourceConfig.ConsumerGroupId", "consumer_group_id"),
    ("SelfManagedKafkaEventSourceConfig.ConsumptionMode", "consumption_mode"),
    ("SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig", "schema_registry"),
    ("DestinationConfig", "on_failure"),
    ("MaximumRetryAttempts", "retry_attempts"),
    ("MaximumRecordAgeInSeconds", "max_record_age"),
    ("BisectBatchOnFunctionError", "bisect_batch_on_error"),
    ("FunctionResponseTypes", "report_batch_item_failures"),
    ("ProvisionedPollerConfig", "provisioned_pollers"),
    ("MetricsConfig", "metrics"),
    ("LoggingConfig", "system_log_level"),
    ("Tags", "tags"),
)
_PROPS_BY_ACCESS_TYPE: Final = {
    SourceAccessType.SERVER_ROOT_CA_CERTIFICATE.value: "root_ca_secret",
    SourceAccessType.VPC_SUBNET.value: "vpc_subnets",
    SourceAccessType.VPC_SECURITY_GROUP.value: "security_groups",
} | {kind.value: "authentication" for kind in AUTHENTICATION_TYPES}


@dataclass(frozen=True, slots=True)
class PropProblem:
    """One broken rule, named by the prop (and the AWS field it becomes)."""

    prop: str
    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        where = self.prop if self.prop == self.field else f"{self.prop} ({self.field})"
        return f"{where}: {short_repr(self.value)} {self.rule}"


class KafkaTriggerValidationError(ValueError):
    """The props break one or more rules; ``problems`` lists every one of them."""

    def __init__(self, construct_path: str, problems: Sequence[PropProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(
            f"invalid self-managed Kafka trigger {construct_path} "
            f"({count} problem{'' if count == 1 else 's'}):\n{lines}"
        )


def validate_props(props: KafkaTriggerProps, request: Mapping[str, Any]) -> list[PropProblem]:
    """Every problem of ``props``, whose mapping request is ``request``."""
    found = validate_mapping(request, is_unresolved=is_unresolved)
    found += aws_provisioned_mode_problems(request)
    quota = props.filter_quota
    quota_known = isinstance(quota, int) and not isinstance(quota, bool)
    quota_ok = quota_known and 1 <= quota <= MAX_FILTERS
    found += aws_only_problems(
        request, is_unresolved=is_unresolved, filter_quota=quota if quota_ok else MAX_FILTERS
    )
    problems = _rename(_unique(found), request)
    if not quota_ok:
        rule = f"must be an integer from 1 to {MAX_FILTERS} (AWS's default quota is 5)"
        problems.append(PropProblem("filter_quota", "filter_quota", quota, rule))
    problems += _function_timeout(props.function)
    problems += _secret_regions(props)
    problems += _destination(props, request)
    problems += _sasl_without_tls(props)
    problems += _network(props)
    if props.filter_encryption is not None and not props.filters:
        problems.append(
            PropProblem("filter_encryption", "KMSKeyArn", "<key>", "needs filters to encrypt")
        )
    return problems


def _unique(problems: list[FieldProblem]) -> list[FieldProblem]:
    seen: list[FieldProblem] = []
    for problem in problems:
        if problem not in seen:
            seen.append(problem)
    return seen


def _rename(problems: list[FieldProblem], request: Mapping[str, Any]) -> list[PropProblem]:
    return [PropProblem(prop_of(p.field, request), p.field, p.value, p.rule) for p in problems]


def prop_of(field: str, request: Mapping[str, Any]) -> str:
    """The prop that produced an AWS field of the request."""
    if field.startswith("SourceAccessConfigurations"):
        return _access_prop(field, request)
    for prefix, prop in _PROPS_BY_FIELD:
        if field == prefix or field.startswith((f"{prefix}.", f"{prefix}[")):
            return prop
    return field


def _access_prop(field: str, request: Mapping[str, Any]) -> str:
    entries = request.get("SourceAccessConfigurations", [])
    index_text = field.partition("[")[2].partition("]")[0]
    if index_text.isdigit() and int(index_text) < len(entries):
        kind = entries[int(index_text)].get("Type")
        return _PROPS_BY_ACCESS_TYPE.get(kind, "authentication")
    return "vpc_subnets, security_groups"  # the whole list: the VPC-needs-both rule


def underlying_function(function: lambda_.IFunction) -> lambda_.IFunction:
    """The function an alias or version points at (itself for anything else)."""
    while isinstance(function, lambda_.Alias | lambda_.Version):
        function = function.lambda_
    return function


def known_timeout(function: lambda_.IFunction) -> float | None:
    """The timeout in seconds when the app defines the function (an alias or version
    runs its function's code and timeout); None when it cannot be known at synth."""
    base = underlying_function(function)
    if not isinstance(base, lambda_.Function):
        return None
    if base.timeout is None:
        return LAMBDA_DEFAULT_TIMEOUT_S
    seconds = base.timeout.to_seconds()
    return None if cdk.Token.is_unresolved(seconds) else seconds


def _function_timeout(function: lambda_.IFunction) -> list[PropProblem]:
    """At most 14 minutes, checked for functions, aliases and versions of the app."""
    seconds = known_timeout(function)
    if seconds is None or seconds <= MAX_FUNCTION_TIMEOUT.to_seconds():
        return []
    rule = "is the function's timeout; a Kafka trigger needs at most 840 seconds (14 minutes)"
    return [PropProblem("function", "Timeout", f"{seconds:g} seconds", rule)]


def _destination(props: KafkaTriggerProps, request: Mapping[str, Any]) -> list[PropProblem]:
    """What CloudFormation and Lambda refuse of a destination beyond the runtime's rules."""
    destination = props.destination
    if destination is None:
        return []
    field = "DestinationConfig.OnFailure.Destination"
    arn = destination.destination
    known = not is_unresolved(arn)
    if destination.fifo or (known and arn.endswith(".fifo")):
        rule = "is a FIFO queue or topic; Lambda sends Kafka failures to standard ones only"
        return [PropProblem("on_failure", field, arn if known else "<destination>", rule)]
    if known and arn.startswith(KAFKA_DESTINATION_PREFIX) and len(arn) < MIN_DESTINATION_LENGTH:
        rule = (
            f"is {len(arn)} characters; CloudFormation needs at least {MIN_DESTINATION_LENGTH} "
            f"(a topic of {MIN_DESTINATION_LENGTH - len(KAFKA_DESTINATION_PREFIX)} or more "
            "characters after kafka://)"
        )
        return [PropProblem("on_failure", field, arn, rule)]
    return []


def _sasl_without_tls(props: KafkaTriggerProps) -> list[PropProblem]:
    """SASL/SCRAM and SASL/PLAIN are sent over TLS only; a listener named plaintext
    cannot serve them."""
    auth = props.authentication
    if auth is None or auth.type not in SASL_TYPES:
        return []
    return [
        PropProblem(
            "bootstrap_servers",
            f"SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[{index}]",
            server,
            f"is a plaintext listener; Lambda uses {auth.type.value} over TLS only (SASL_SSL)",
        )
        for index, server in enumerate(props.bootstrap_servers)
        if isinstance(server, str) and server.upper().startswith(PLAINTEXT_SCHEMES)
    ]


def sasl_on_plaintext_port(props: KafkaTriggerProps) -> bool:
    """SASL to Kafka's default PLAINTEXT port, 9092: worth a warning, not a refusal."""
    auth = props.authentication
    if auth is None or auth.type not in SASL_TYPES:
        return False
    return any(
        isinstance(s, str) and not is_unresolved(s) and s.endswith(f":{PLAINTEXT_PORT}")
        for s in props.bootstrap_servers
    )


def _secret_regions(props: KafkaTriggerProps) -> list[PropProblem]:
    """Lambda reads each secret in the function's region; compared where both are known."""
    region = cdk.Stack.of(props.function).region
    if cdk.Token.is_unresolved(region):
        return []
    problems = []
    for prop, secret in _named_secrets(props):
        secret_region = secret.env.region
        if not cdk.Token.is_unresolved(secret_region) and secret_region != region:
            rule = f"is a secret in {secret_region}; Lambda reads secrets in {region} only"
            problems.append(PropProblem(prop, "secret region", secret.secret_arn, rule))
    return problems


def _named_secrets(props: KafkaTriggerProps) -> list[tuple[str, Any]]:
    named: list[tuple[str, Any]] = []
    if props.authentication:
        named.append(("authentication", props.authentication.secret))
    if props.root_ca_secret:
        named.append(("root_ca_secret", props.root_ca_secret))
    if props.schema_registry:
        named += [("schema_registry", a.secret) for a in props.schema_registry.access]
    return named


def _network(props: KafkaTriggerProps) -> list[PropProblem]:
    if props.vpc is None:
        given = {
            "vpc_subnets": props.vpc_subnets,
            "security_groups": list(props.security_groups) or None,
            "brokers": list(props.brokers) or None,
            "network_access": props.network_access,
            "endpoints": props.endpoints,
            "existing_endpoint_security_groups": list(props.existing_endpoint_security_groups)
            or None,
        }
        return [
            PropProblem(name, name, "<given>", "needs vpc")
            for name, value in given.items()
            if value is not None
        ]
    return _endpoint_choice(props, props.vpc) + _subnets(props, props.vpc)


def _endpoint_choice(props: KafkaTriggerProps, vpc: ec2.IVpc) -> list[PropProblem]:
    problems = []
    existing = props.network_access is NetworkAccess.EXISTING_ENDPOINTS
    if props.existing_endpoint_security_groups and not existing:
        rule = "needs network_access=EXISTING_ENDPOINTS"
        problems.append(_given("existing_endpoint_security_groups", rule))
    if existing and not props.existing_endpoint_security_groups:
        rule = "is EXISTING_ENDPOINTS: name the endpoints' existing_endpoint_security_groups"
        problems.append(PropProblem("network_access", "network_access", "EXISTING_ENDPOINTS", rule))
    if props.endpoints is not None:
        if props.endpoints.vpc is not vpc:
            problems.append(_given("endpoints", "are in another VPC than vpc"))
        if props.network_access not in (None, NetworkAccess.VPC_ENDPOINTS):
            problems.append(_given("endpoints", "needs network_access=VPC_ENDPOINTS (or unset)"))
    return problems


def _subnets(props: KafkaTriggerProps, vpc: ec2.IVpc) -> list[PropProblem]:
    try:
        subnets = vpc.select_subnets(**_selection(props.vpc_subnets)).subnets
    except RuntimeError as error:  # jsii: CDK refused the selection itself
        rule = f"selects no subnet of the VPC ({str(error).splitlines()[0]})"
        return [PropProblem("vpc_subnets", "VPC_SUBNET", "<selection>", rule)]
    if not subnets:
        rule = "selects no subnet of the VPC; a mapping in a VPC needs subnets"
        return [PropProblem("vpc_subnets", "VPC_SUBNET", "<selection>", rule)]
    public = {s.subnet_id for s in vpc.public_subnets}
    named = [s.node.path for s in subnets if s.subnet_id in public]
    if named:
        rule = (
            f"selects public subnets ({', '.join(named)}); AWS needs private subnets: "
            "PRIVATE_WITH_EGRESS behind a NAT gateway, or PRIVATE_ISOLATED with VPC endpoints"
        )
        return [PropProblem("vpc_subnets", "VPC_SUBNET", "<selection>", rule)]
    return []


def _given(prop: str, rule: str) -> PropProblem:
    return PropProblem(prop, prop, "<given>", rule)


def _selection(selection: Any) -> dict[str, Any]:
    """SubnetSelection as keyword arguments of ``select_subnets``."""
    if selection is None:
        return {}
    keys = (
        "availability_zones",
        "one_per_az",
        "subnet_filters",
        "subnet_group_name",
        "subnets",
        "subnet_type",
    )
    return {key: getattr(selection, key) for key in keys if getattr(selection, key) is not None}
