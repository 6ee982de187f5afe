"""Synth-time validation: the runtime's rules, reported in the construct's prop names.

The rules live once, in ``runtime.definition.rules``; this module only builds the
request, runs them (plus AWS's provisioned-mode and AWS-only rule sets) and renames
each AWS field to the prop that produced it. Checks that need CDK objects (the
function's timeout, the secrets' regions) are the only rules written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from constructs_kafka.props import KafkaTriggerProps, is_unresolved
from runtime.definition.checks import FieldProblem, short_repr
from runtime.definition.filters import MAX_FILTERS_WITH_QUOTA_INCREASE as MAX_FILTERS
from runtime.definition.model import (
    aws_only_problems,
    aws_provisioned_mode_problems,
    validate_mapping,
)
from runtime.definition.vocabulary import AUTHENTICATION_TYPES, SourceAccessType

__all__ = ["MAX_FUNCTION_TIMEOUT", "KafkaTriggerValidationError", "PropProblem", "validate_props"]

MAX_FUNCTION_TIMEOUT: Final = cdk.Duration.minutes(14)
"""AWS refuses a Kafka mapping whose function may run longer than 14 minutes."""

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
    if not 1 <= props.filter_quota <= MAX_FILTERS:
        rule = f"must be from 1 to {MAX_FILTERS} (AWS's default quota is 5)"
        return [*_rename(found, request), PropProblem("filter_quota", "filter_quota", 0, rule)]
    found += aws_only_problems(
        request, is_unresolved=is_unresolved, filter_quota=props.filter_quota
    )
    problems = _rename(_unique(found), request)
    problems += _function_timeout(props.function)
    problems += _secret_regions(props)
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


def _function_timeout(function: lambda_.IFunction) -> list[PropProblem]:
    """At most 14 minutes; only a ``Function`` defined in the app shows its timeout."""
    timeout = function.timeout if isinstance(function, lambda_.Function) else None
    if timeout is None or cdk.Token.is_unresolved(timeout.to_seconds()):
        return []
    seconds = timeout.to_seconds()
    if seconds <= MAX_FUNCTION_TIMEOUT.to_seconds():
        return []
    rule = "is the function's timeout; a Kafka trigger needs at most 840 seconds (14 minutes)"
    return [PropProblem("function", "Timeout", f"{seconds} seconds", rule)]


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
            "endpoints": props.endpoints,
        }
        return [
            PropProblem(name, name, "<given>", "needs vpc")
            for name, value in given.items()
            if value is not None
        ]
    try:
        subnet_ids = props.vpc.select_subnets(**_selection(props.vpc_subnets)).subnet_ids
    except RuntimeError as error:  # jsii: CDK refused the selection itself
        rule = f"selects no subnet of the VPC ({str(error).splitlines()[0]})"
        return [PropProblem("vpc_subnets", "VPC_SUBNET", "<selection>", rule)]
    if not subnet_ids:
        rule = "selects no subnet of the VPC; a mapping in a VPC needs subnets"
        return [PropProblem("vpc_subnets", "VPC_SUBNET", "<selection>", rule)]
    return []


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
