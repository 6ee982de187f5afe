"""The event source mapping definition: one model for the poller and the CDK constructs.

The input is AWS's CreateEventSourceMapping request JSON for a self-managed Kafka
source, exactly as ``aws lambda create-event-source-mapping --cli-input-json``
takes it, plus a top-level ``UUID`` of our own. ``parse_mapping`` checks it with
``runtime.definition.rules`` (reporting every problem at once), applies AWS's
defaults and returns a frozen ``EventSourceMapping``; ``to_request`` turns the
model back into the request. Nothing here imports aws-cdk-lib.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import unquote

from runtime.definition import aws_json
from runtime.definition import rules as mapping_rules
from runtime.definition.checks import FieldProblem, MappingValidationError, never_unresolved
from runtime.definition.rules import DEFAULT_FILTER_QUOTA, validate_mapping
from runtime.definition.vocabulary import (
    AUTHENTICATION_TYPES,
    FILE_URI_PREFIX,
    GLUE_REGISTRY_ARN,
    KAFKA_DESTINATION_PREFIX,
    SECRET_TYPES,
    ConsumptionMode,
    DestinationKind,
    EsmMetric,
    EventRecordFormat,
    FunctionResponseType,
    SchemaRegistryAuthType,
    SchemaValidationAttribute,
    SourceAccessType,
    StartingPosition,
    SystemLogLevel,
    UriKind,
    destination_kind,
    secret_uri_kind,
)

__all__ = [
    "DEFAULT_FILTER_QUOTA",
    "ENV_VAR",
    "AclOperation",
    "AclRequirement",
    "AclResourceType",
    "ConsumptionMode",
    "DestinationKind",
    "EsmMetric",
    "EventRecordFormat",
    "EventSourceMapping",
    "FieldProblem",
    "FunctionResponseType",
    "MappingLoadError",
    "MappingValidationError",
    "OnFailureDestination",
    "ProvisionedPollerConfig",
    "SchemaRegistryAccess",
    "SchemaRegistryAuthType",
    "SchemaRegistryConfig",
    "SchemaValidationAttribute",
    "SourceAccessConfiguration",
    "SourceAccessType",
    "StartingPosition",
    "SystemLogLevel",
    "UriKind",
    "aws_only_problems",
    "aws_provisioned_mode_problems",
    "derive_uuid",
    "file_uri_path",
    "load_mapping",
    "parse_mapping",
    "secret_uri_kind",
    "to_request",
    "validate_mapping",
]

log = logging.getLogger(__name__)

ENV_VAR: Final = "KAFKA_ESM_MAPPING"
"""The environment variable ``load_mapping`` reads the mapping's JSON from."""

UUID_NAMESPACE: Final = uuid.UUID("c6c1cecd-575c-4925-a8c9-0bff46795a5d")
"""Namespace of derived mapping UUIDs; changing it would move every consumer group."""

DEFAULT_BATCH_SIZE: Final = 100
DEFAULT_BATCHING_WINDOW_SECONDS: Final = 0.5
DEFAULT_MINIMUM_POLLERS: Final = 1
DEFAULT_MAXIMUM_POLLERS: Final = 200
INFINITE: Final = -1
RETRY_CAP_WITH_DESTINATION: Final = 10
"""AWS: with infinite retries and an on-failure destination, Lambda retries at most 10 times."""


_E = TypeVar("_E", bound=StrEnum)


class MappingLoadError(ValueError):
    """The mapping could not be read or is not JSON; the message names where it came from."""


class AclResourceType(StrEnum):
    """Kafka ACL resource types, spelled as ``kafka-acls`` and the Admin API spell them."""

    CLUSTER = "Cluster"
    GROUP = "Group"
    TOPIC = "Topic"


class AclOperation(StrEnum):
    """Kafka ACL operations the mapping's principal needs."""

    DESCRIBE_CONFIGS = "DescribeConfigs"
    DESCRIBE = "Describe"
    READ = "Read"
    WRITE = "Write"


@dataclass(frozen=True, slots=True)
class AclRequirement:
    """One Kafka ACL the mapping's principal must be granted."""

    resource_type: AclResourceType
    resource_name: str
    operation: AclOperation
    pattern_type: str = "LITERAL"


def file_uri_path(uri: str) -> Path:
    """The path of a ``file://`` secret URI (``file:///abs`` or ``file://relative``)."""
    if secret_uri_kind(uri) is not UriKind.FILE:
        raise ValueError(f"{uri!r} is not a file:// URI with a path")
    return Path(unquote(uri.removeprefix(FILE_URI_PREFIX)))


@dataclass(frozen=True, slots=True)
class SourceAccessConfiguration:
    """How Lambda reaches and signs in to the cluster: a secret, an option or a VPC part."""

    type: SourceAccessType
    uri: str | None = None

    @property
    def uri_kind(self) -> UriKind | None:
        """For secret types, whether the URI is a Secrets Manager ARN or a local file."""
        return secret_uri_kind(self.uri) if self.type in SECRET_TYPES and self.uri else None


@dataclass(frozen=True, slots=True)
class SchemaRegistryAccess:
    """A secret Lambda uses with a Confluent schema registry."""

    type: SchemaRegistryAuthType
    uri: str

    @property
    def uri_kind(self) -> UriKind | None:
        return secret_uri_kind(self.uri)


@dataclass(frozen=True, slots=True)
class SchemaRegistryConfig:
    """A Glue or Confluent schema registry the records are validated against."""

    uri: str
    event_record_format: EventRecordFormat | None = None
    access: tuple[SchemaRegistryAccess, ...] = ()
    validated_attributes: tuple[SchemaValidationAttribute, ...] = ()

    @property
    def is_glue(self) -> bool:
        """A Glue registry ARN rather than a Confluent registry URL."""
        return GLUE_REGISTRY_ARN.fullmatch(self.uri) is not None


@dataclass(frozen=True, slots=True)
class ProvisionedPollerConfig:
    """Provisioned mode: the bounds of the number of pollers (AWS's defaults: 1 and 200)."""

    minimum_pollers: int = DEFAULT_MINIMUM_POLLERS
    maximum_pollers: int = DEFAULT_MAXIMUM_POLLERS
    poller_group_name: str | None = None


@dataclass(frozen=True, slots=True)
class OnFailureDestination:
    """Where batches go once retries or record age are exhausted."""

    destination: str

    @property
    def kind(self) -> DestinationKind:
        kind = destination_kind(self.destination)
        if kind is None:  # parse_mapping refuses these; a hand-built value may not
            raise ValueError(f"{self.destination!r} is not a destination AWS accepts")
        return kind

    @property
    def kafka_topic(self) -> str | None:
        """The topic of a ``kafka://`` destination."""
        if self.destination.startswith(KAFKA_DESTINATION_PREFIX):
            return self.destination.removeprefix(KAFKA_DESTINATION_PREFIX)
        return None


@dataclass(frozen=True, slots=True)
class EventSourceMapping:
    """A parsed, validated and defaulted mapping; field defaults are AWS's."""

    function_name: str
    topic: str
    bootstrap_servers: tuple[str, ...]
    starting_position: StartingPosition
    uuid: str
    uuid_given: bool = False
    starting_position_timestamp: float | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    maximum_batching_window_in_seconds: int | None = None
    enabled: bool = True
    filter_patterns: tuple[str, ...] = ()
    kms_key_arn: str | None = None
    explicit_consumer_group_id: str | None = None
    schema_registry: SchemaRegistryConfig | None = None
    source_access_configurations: tuple[SourceAccessConfiguration, ...] = ()
    on_failure: OnFailureDestination | None = None
    maximum_retry_attempts: int = INFINITE
    maximum_record_age_in_seconds: int = INFINITE
    bisect_batch_on_function_error: bool = False
    function_response_types: tuple[FunctionResponseType, ...] = ()
    provisioned_poller_config: ProvisionedPollerConfig | None = None
    metrics: tuple[EsmMetric, ...] = ()
    system_log_level: SystemLogLevel | None = None
    tags: tuple[tuple[str, str], ...] = ()
    consumption_mode: ConsumptionMode = ConsumptionMode.STREAM
    """Queue: a share group; ``starting_position`` is then unused (LATEST, never read)."""

    @property
    def is_queue(self) -> bool:
        """True in ConsumptionMode Queue (share groups, per-record acknowledgement)."""
        return self.consumption_mode is ConsumptionMode.QUEUE

    @property
    def consumer_group_id(self) -> str:
        """The group the poller joins: ConsumerGroupId, else the mapping's UUID (as AWS)."""
        return self.explicit_consumer_group_id or self.uuid

    @property
    def batching_window_seconds(self) -> float:
        """The effective batching window: 0.5 s for Kafka while the field is unset; none in
        Queue mode (AWS refuses the field there: a batch is what one fetch brings)."""
        if self.is_queue:
            return 0.0
        window = self.maximum_batching_window_in_seconds
        return DEFAULT_BATCHING_WINDOW_SECONDS if window is None else float(window)

    @property
    def report_batch_item_failures(self) -> bool:
        return FunctionResponseType.REPORT_BATCH_ITEM_FAILURES in self.function_response_types

    @property
    def effective_maximum_retry_attempts(self) -> int:
        """Retries before a batch counts as failed; -1 is unlimited. AWS caps "unlimited"
        at 10 when an on-failure destination is set."""
        if self.maximum_retry_attempts == INFINITE and self.on_failure is not None:
            return RETRY_CAP_WITH_DESTINATION
        return self.maximum_retry_attempts

    @property
    def authentication(self) -> SourceAccessConfiguration | None:
        """The one authentication method, if any (None: no credentials)."""
        return next(
            (c for c in self.source_access_configurations if c.type in AUTHENTICATION_TYPES), None
        )

    @property
    def server_root_ca_certificate(self) -> SourceAccessConfiguration | None:
        return self.access_entry(SourceAccessType.SERVER_ROOT_CA_CERTIFICATE)

    @property
    def subnet_ids(self) -> tuple[str, ...]:
        """VPC subnets (``subnet-…``), without AWS's ``subnet:`` prefix."""
        return self._access_values(SourceAccessType.VPC_SUBNET, "subnet:")

    @property
    def security_group_ids(self) -> tuple[str, ...]:
        """VPC security groups (``sg-…``), without AWS's ``security_group:`` prefix."""
        return self._access_values(SourceAccessType.VPC_SECURITY_GROUP, "security_group:")

    def access_entry(self, kind: SourceAccessType) -> SourceAccessConfiguration | None:
        """The entry of a type that appears at most once (root CA, OAuth options)."""
        return next((c for c in self.source_access_configurations if c.type is kind), None)

    def _access_values(self, kind: SourceAccessType, prefix: str) -> tuple[str, ...]:
        return tuple(
            (c.uri or "").removeprefix(prefix)
            for c in self.source_access_configurations
            if c.type is kind
        )

    def required_acls(self) -> tuple[AclRequirement, ...]:
        """The ACLs Lambda needs: DescribeConfigs on the cluster, Describe and Read on the
        group and the topic, plus Describe and Write on a ``kafka://`` destination topic.

        In Queue mode the group is a share group: Read on it covers joining, fetching and
        acknowledging (KIP-932), Describe lists it; this poller also reads the group's
        record lock and delivery limit (DescribeConfigs on the group; without it the
        broker's defaults are assumed)."""
        cluster, group, topic = (
            AclResourceType.CLUSTER,
            AclResourceType.GROUP,
            AclResourceType.TOPIC,
        )
        acls = [
            AclRequirement(cluster, "kafka-cluster", AclOperation.DESCRIBE_CONFIGS),
            AclRequirement(group, self.consumer_group_id, AclOperation.DESCRIBE),
            AclRequirement(group, self.consumer_group_id, AclOperation.READ),
            AclRequirement(topic, self.topic, AclOperation.DESCRIBE),
            AclRequirement(topic, self.topic, AclOperation.READ),
        ]
        if self.is_queue:
            acls.append(
                AclRequirement(group, self.consumer_group_id, AclOperation.DESCRIBE_CONFIGS)
            )
        destination = self.on_failure.kafka_topic if self.on_failure else None
        if destination:
            acls.append(AclRequirement(topic, destination, AclOperation.DESCRIBE))
            acls.append(AclRequirement(topic, destination, AclOperation.WRITE))
        return tuple(acls)


def derive_uuid(
    function_name: str,
    topic: str,
    bootstrap_servers: tuple[str, ...] | list[str],
    consumer_group_id: str | None,
) -> str:
    """A stable UUID for a definition without one: the same identity, the same UUID
    (and so the same default consumer group), whatever the order of the servers."""
    identity = json.dumps(
        [function_name, topic, sorted(bootstrap_servers), consumer_group_id],
        separators=(",", ":"),
    )
    return str(uuid.uuid5(UUID_NAMESPACE, identity))


def parse_mapping(doc: Mapping[str, Any], *, source: str | None = None) -> EventSourceMapping:
    """The model of a request; raises MappingValidationError listing every problem.

    ``source`` (a file name, say) only goes into the error message.
    """
    problems = validate_mapping(doc)
    if problems:
        raise MappingValidationError(problems, source)
    return _build(doc)


def _build(doc: Mapping[str, Any]) -> EventSourceMapping:
    """The model of a request that passed validation."""
    servers = tuple(doc["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"])
    kafka = doc.get("SelfManagedKafkaEventSourceConfig", {})
    group = kafka.get("ConsumerGroupId")
    given = doc.get("UUID")
    mapping_id = (
        str(uuid.UUID(given))
        if given
        else derive_uuid(doc["FunctionName"], doc["Topics"][0], servers, group)
    )
    stamp = doc.get("StartingPositionTimestamp")
    destination = doc.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return EventSourceMapping(
        function_name=doc["FunctionName"],
        topic=doc["Topics"][0],
        bootstrap_servers=servers,
        starting_position=StartingPosition(doc.get("StartingPosition", StartingPosition.LATEST)),
        consumption_mode=ConsumptionMode(kafka.get("ConsumptionMode", ConsumptionMode.STREAM)),
        uuid=mapping_id,
        uuid_given=given is not None,
        starting_position_timestamp=None if stamp is None else float(stamp),
        batch_size=doc.get("BatchSize", DEFAULT_BATCH_SIZE),
        maximum_batching_window_in_seconds=doc.get("MaximumBatchingWindowInSeconds"),
        enabled=doc.get("Enabled", True),
        filter_patterns=tuple(
            f["Pattern"] for f in doc.get("FilterCriteria", {}).get("Filters", [])
        ),
        kms_key_arn=doc.get("KMSKeyArn"),
        explicit_consumer_group_id=group,
        schema_registry=_build_registry(kafka.get("SchemaRegistryConfig")),
        source_access_configurations=tuple(
            SourceAccessConfiguration(SourceAccessType(c["Type"]), c.get("URI"))
            for c in doc.get("SourceAccessConfigurations", [])
        ),
        on_failure=OnFailureDestination(destination) if destination else None,
        maximum_retry_attempts=doc.get("MaximumRetryAttempts", INFINITE),
        maximum_record_age_in_seconds=doc.get("MaximumRecordAgeInSeconds", INFINITE),
        bisect_batch_on_function_error=doc.get("BisectBatchOnFunctionError", False),
        function_response_types=tuple(
            FunctionResponseType(t) for t in doc.get("FunctionResponseTypes", [])
        ),
        provisioned_poller_config=_build_pollers(doc.get("ProvisionedPollerConfig")),
        metrics=tuple(EsmMetric(m) for m in doc.get("MetricsConfig", {}).get("Metrics", [])),
        system_log_level=_optional(
            SystemLogLevel, doc.get("LoggingConfig", {}).get("SystemLogLevel")
        ),
        tags=tuple(sorted(doc.get("Tags", {}).items())),
    )


def _optional(kind: type[_E], value: str | None) -> _E | None:
    return None if value is None else kind(value)


def _build_registry(doc: Mapping[str, Any] | None) -> SchemaRegistryConfig | None:
    if doc is None:
        return None
    return SchemaRegistryConfig(
        uri=doc["SchemaRegistryURI"],
        event_record_format=_optional(EventRecordFormat, doc.get("EventRecordFormat")),
        access=tuple(
            SchemaRegistryAccess(SchemaRegistryAuthType(a["Type"]), a["URI"])
            for a in doc.get("AccessConfigs", [])
        ),
        validated_attributes=tuple(
            SchemaValidationAttribute(c["Attribute"])
            for c in doc.get("SchemaValidationConfigs", [])
        ),
    )


def _build_pollers(doc: Mapping[str, Any] | None) -> ProvisionedPollerConfig | None:
    if doc is None:
        return None
    return ProvisionedPollerConfig(
        minimum_pollers=doc.get("MinimumPollers", DEFAULT_MINIMUM_POLLERS),
        maximum_pollers=doc.get("MaximumPollers", DEFAULT_MAXIMUM_POLLERS),
        poller_group_name=doc.get("PollerGroupName") or None,
    )


def to_request(mapping: EventSourceMapping, *, include_uuid: bool = True) -> dict[str, Any]:
    """The CreateEventSourceMapping request of a model; fields at AWS's default are left
    out. ``UUID`` is written only when the definition gave one and ``include_uuid``
    (leave it out for the AWS CLI, which does not know the field)."""
    m = mapping
    request: dict[str, Any] = {
        "FunctionName": m.function_name,
        "Topics": [m.topic],
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(m.bootstrap_servers)}
        },
    }
    if not m.is_queue:  # Queue mode refuses StartingPosition: the share group decides
        request["StartingPosition"] = m.starting_position.value
    stamp = m.starting_position_timestamp
    destination = m.on_failure.destination if m.on_failure else None
    level = m.system_log_level.value if m.system_log_level else None
    optional: dict[str, Any] = {
        "StartingPositionTimestamp": int(stamp) if stamp and stamp.is_integer() else stamp,
        "BatchSize": _unless(m.batch_size, DEFAULT_BATCH_SIZE),
        "MaximumBatchingWindowInSeconds": m.maximum_batching_window_in_seconds,
        "Enabled": _unless(m.enabled, True),
        "FilterCriteria": _keyed("Filters", [{"Pattern": p} for p in m.filter_patterns]),
        "KMSKeyArn": m.kms_key_arn,
        "SelfManagedKafkaEventSourceConfig": _kafka_request(m) or None,
        "SourceAccessConfigurations": [_access_request(c) for c in m.source_access_configurations],
        "DestinationConfig": {"OnFailure": {"Destination": destination}} if destination else None,
        "MaximumRetryAttempts": _unless(m.maximum_retry_attempts, INFINITE),
        "MaximumRecordAgeInSeconds": _unless(m.maximum_record_age_in_seconds, INFINITE),
        "BisectBatchOnFunctionError": _unless(m.bisect_batch_on_function_error, False),
        "FunctionResponseTypes": [t.value for t in m.function_response_types],
        "ProvisionedPollerConfig": pollers_request(m.provisioned_poller_config),
        "MetricsConfig": _keyed("Metrics", [metric.value for metric in m.metrics]),
        "LoggingConfig": {"SystemLogLevel": level} if level else None,
        "Tags": dict(m.tags),
        "UUID": m.uuid if m.uuid_given and include_uuid else None,
    }
    request.update((key, value) for key, value in optional.items() if value not in (None, [], {}))
    return request


def _unless(value: Any, default: Any) -> Any:
    """``value``, or ``None`` (left out of the request) when it is AWS's default."""
    return None if value == default else value


def _keyed(key: str, items: list[Any]) -> dict[str, Any] | None:
    """``{key: items}``, or ``None`` (left out of the request) when there are no items."""
    return {key: items} if items else None


def _kafka_request(m: EventSourceMapping) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if m.explicit_consumer_group_id:
        config["ConsumerGroupId"] = m.explicit_consumer_group_id
    if m.is_queue:
        config["ConsumptionMode"] = m.consumption_mode.value
    registry = m.schema_registry
    if registry is not None:
        entry: dict[str, Any] = {"SchemaRegistryURI": registry.uri}
        if registry.event_record_format:
            entry["EventRecordFormat"] = registry.event_record_format.value
        if registry.access:
            entry["AccessConfigs"] = [{"Type": a.type.value, "URI": a.uri} for a in registry.access]
        if registry.validated_attributes:
            entry["SchemaValidationConfigs"] = [
                {"Attribute": a.value} for a in registry.validated_attributes
            ]
        config["SchemaRegistryConfig"] = entry
    return config


def _access_request(config: SourceAccessConfiguration) -> dict[str, str]:
    entry = {"Type": config.type.value}
    if config.uri is not None:
        entry["URI"] = config.uri
    return entry


def pollers_request(config: ProvisionedPollerConfig | None) -> dict[str, Any] | None:
    """ProvisionedPollerConfig as the request JSON spells it (the constructs reuse it)."""
    if config is None:
        return None
    entry: dict[str, Any] = {
        "MinimumPollers": config.minimum_pollers,
        "MaximumPollers": config.maximum_pollers,
    }
    if config.poller_group_name:
        entry["PollerGroupName"] = config.poller_group_name
    return entry


def aws_provisioned_mode_problems(
    mapping_or_doc: EventSourceMapping | Mapping[str, Any],
) -> list[FieldProblem]:
    """Features AWS Lambda offers only in provisioned mode, used without
    ProvisionedPollerConfig: error handling (retries, record age, bisect, partial batch
    responses), ``kafka://`` destinations, schema registries, logging, and the
    ErrorCount and KafkaMetrics metrics. The local poller supports them in every mode."""
    return mapping_rules.provisioned_mode_problems(_as_request(mapping_or_doc))


def aws_only_problems(
    mapping_or_doc: EventSourceMapping | Mapping[str, Any],
    *,
    is_unresolved: Callable[[Any], bool] = never_unresolved,
    filter_quota: int = DEFAULT_FILTER_QUOTA,
) -> list[FieldProblem]:
    """What AWS Lambda refuses though the local poller accepts it: ``file://`` secrets,
    and more filters than the account's quota."""
    return mapping_rules.aws_only_problems(
        _as_request(mapping_or_doc), is_unresolved=is_unresolved, filter_quota=filter_quota
    )


def _as_request(mapping_or_doc: EventSourceMapping | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(mapping_or_doc, EventSourceMapping):
        return to_request(mapping_or_doc, include_uuid=False)
    return mapping_or_doc


def load_mapping(
    path: str | Path | None = None, *, env: Mapping[str, str] = os.environ
) -> EventSourceMapping:
    """The mapping in a JSON file, or in the ``KAFKA_ESM_MAPPING`` variable when ``path``
    is None. Unreadable input and bad JSON raise MappingLoadError naming the source
    (and the line and column); invalid mappings raise MappingValidationError."""
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise MappingLoadError(
                f"cannot read mapping file {source}: {error.strerror}"
            ) from error
    else:
        source = f"environment variable {ENV_VAR}"
        if ENV_VAR not in env:
            raise MappingLoadError(f"no mapping given: pass a JSON file or set {ENV_VAR}")
        text = env[ENV_VAR]
    try:
        doc, notices = aws_json.as_request(_decode(text, source))
    except aws_json.AwsJsonError as error:
        raise MappingLoadError(f"{source}: {error}") from None
    for notice in notices:
        log.warning("%s: %s", source, notice)
    return parse_mapping(doc, source=source)


def _decode(text: str, source: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated = next((key for key in keys if keys.count(key) > 1), None)
        if repeated is not None:
            raise MappingLoadError(f"{source}: the key {repeated!r} appears twice in one object")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as error:
        raise MappingLoadError(
            f"{source}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from error
    except RecursionError:  # json's C decoder recurses once per nested array or object
        raise MappingLoadError(f"{source}: the JSON nests too deeply to read") from None
