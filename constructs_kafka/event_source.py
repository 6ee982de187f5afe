"""``SelfManagedKafkaEventSource``: the trigger as aws-cdk-lib's ``IEventSource``.

Code written for ``aws_cdk.aws_lambda_event_sources.SelfManagedKafkaEventSource``
switches by changing the import: ``fn.add_event_source(SelfManagedKafkaEventSource(
bootstrap_servers=..., topic=..., starting_position=..., secret=...))``. aws-cdk-lib's
prop names (``secret`` with ``authentication_method``, ``root_ca_certificate``,
``security_group``, ``provisioned_poller_config``, ``filters`` from
``FilterCriteria.filter``) are read here; every other keyword is a
``KafkaTriggerProps`` field. ``bind`` builds a ``SelfManagedKafkaTrigger`` under the
function, so the mapping, permissions and network are the construct's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_kafka.auth import KafkaAuthentication
from constructs_kafka.mapping import SelfManagedKafkaTrigger
from constructs_kafka.props import KafkaTriggerProps, props_from
from runtime.definition.model import (
    DEFAULT_MAXIMUM_POLLERS,
    DEFAULT_MINIMUM_POLLERS,
    ProvisionedPollerConfig,
)
from runtime.definition.vocabulary import SourceAccessType

__all__ = ["SelfManagedKafkaEventSource"]

_CDK_NAMES: Final = (
    "secret",
    "authentication_method",
    "root_ca_certificate",
    "security_group",
    "provisioned_poller_config",
)
"""aws-cdk-lib's props that this class turns into ``KafkaTriggerProps`` fields."""


@jsii.implements(lambda_.IEventSource)
class SelfManagedKafkaEventSource:
    """A self-managed Kafka event source for ``IFunction.add_event_source``.

    Keywords: every ``KafkaTriggerProps`` field except ``function``, plus aws-cdk-lib's
    ``secret`` (with ``authentication_method``, @default SASL_SCRAM_512_AUTH),
    ``root_ca_certificate``, ``security_group`` and ``provisioned_poller_config``.
    After ``bind``: ``trigger``, ``event_source_mapping_id`` and
    ``event_source_mapping_arn``.
    """

    def __init__(self, **options: Any) -> None:
        self._options = _translated(options)
        self._trigger: SelfManagedKafkaTrigger | None = None

    def bind(self, target: lambda_.IFunction) -> None:
        """Create the trigger under ``target`` (called by ``add_event_source``)."""
        if self._trigger is not None:
            raise RuntimeError("a SelfManagedKafkaEventSource can be bound to one function only")
        props = props_from(
            KafkaTriggerProps, target.node.path, None, {**self._options, "function": target}
        )
        scope = target if isinstance(target, Construct) else cdk.Stack.of(target)
        self._trigger = SelfManagedKafkaTrigger(scope, _free_id(scope, props.topic), props)

    @property
    def trigger(self) -> SelfManagedKafkaTrigger:
        """The construct ``bind`` made."""
        if self._trigger is None:
            raise RuntimeError("the event source is not bound yet: call fn.add_event_source")
        return self._trigger

    @property
    def event_source_mapping_id(self) -> str:
        return self.trigger.mapping.event_source_mapping_id

    @property
    def event_source_mapping_arn(self) -> str:
        return self.trigger.mapping.event_source_mapping_arn


def _free_id(scope: Construct, topic: str) -> str:
    """``KafkaEventSource<topic>``, numbered when the function has one for it already."""
    name = "" if cdk.Token.is_unresolved(topic) else re.sub(r"[^A-Za-z0-9]", "", topic)
    base, number = f"KafkaEventSource{name}", 1
    candidate = base
    while scope.node.try_find_child(candidate) is not None:
        number += 1
        candidate = f"{base}{number}"
    return candidate


def _translated(options: Mapping[str, Any]) -> dict[str, Any]:
    """aws-cdk-lib's prop names as ``KafkaTriggerProps`` fields."""
    props = {k: v for k, v in options.items() if k not in _CDK_NAMES}
    secret: secretsmanager.ISecret | None = options.get("secret")
    if secret is not None:
        method = options.get("authentication_method")
        kind = SourceAccessType(method.value) if method else SourceAccessType.SASL_SCRAM_512_AUTH
        props["authentication"] = KafkaAuthentication(kind, secret)
    elif options.get("authentication_method") is not None:
        raise TypeError("authentication_method needs secret")
    if options.get("root_ca_certificate") is not None:
        props["root_ca_secret"] = options["root_ca_certificate"]
    if options.get("security_group") is not None:
        props["security_groups"] = [options["security_group"]]
    pollers = options.get("provisioned_poller_config")
    if isinstance(pollers, lambda_.ProvisionedPollerConfig):
        props["provisioned_pollers"] = ProvisionedPollerConfig(
            minimum_pollers=_count(pollers.minimum_pollers, DEFAULT_MINIMUM_POLLERS),
            maximum_pollers=_count(pollers.maximum_pollers, DEFAULT_MAXIMUM_POLLERS),
            poller_group_name=pollers.poller_group_name,
        )
    if "filters" in props:
        props["filters"] = _filters(props["filters"])
    return props


def _count(value: float | None, default: int) -> int:
    """A jsii number as the model's int; a fraction is kept for the validator to refuse."""
    if value is None:
        return default
    return int(value) if float(value).is_integer() else value  # type: ignore[return-value]


def _filters(filters: Sequence[Any]) -> list[Any]:
    """``FilterCriteria.filter(...)`` gives ``{"pattern": "<json>"}``: keep the JSON."""
    return [
        f["pattern"] if isinstance(f, Mapping) and set(f) == {"pattern"} else f for f in filters
    ]
