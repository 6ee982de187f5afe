"""The rules of a CreateEventSourceMapping request for a self-managed Kafka source.

One validator serves the poller at run time and the CDK constructs at synth time,
so it works on the raw request JSON, reports every problem at once, and leaves
alone any value the caller calls unresolved (a CDK token), together with the
cross-field rules that would need it. Limits come from AWS's API model and the
CloudFormation schema; see ``runtime.definition.vocabulary``.

Two further rule sets apply only to AWS's own poller, which the CDK layer uses to
refuse what AWS would refuse: features AWS offers in provisioned mode only, and
this project's local extensions (``file://`` secrets).
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Final

from runtime.definition import filters, limits
from runtime.definition import vocabulary as v
from runtime.definition.checks import (
    MISSING,
    ROOT,
    Checker,
    FieldProblem,
    Text,
    never_unresolved,
)

DEFAULT_FILTER_QUOTA: Final = filters.MAX_FILTERS
"""AWS's default number of filters per mapping; a quota increase allows up to 10."""
MAX_TAGS: Final = 50

TOP_FIELDS: Final = (
    "FunctionName",
    "Topics",
    "SelfManagedEventSource",
    "StartingPosition",
    "StartingPositionTimestamp",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "Enabled",
    "FilterCriteria",
    "KMSKeyArn",
    "SelfManagedKafkaEventSourceConfig",
    "SourceAccessConfigurations",
    "DestinationConfig",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "FunctionResponseTypes",
    "ProvisionedPollerConfig",
    "MetricsConfig",
    "LoggingConfig",
    "Tags",
    "UUID",
)

_STREAMS_ONLY: Final = "applies to Kinesis and DynamoDB Streams only, not to self-managed Kafka"
_OTHER_SOURCES: Final = {
    "EventSourceArn": (
        "names an AWS-hosted source (Amazon MSK, Kinesis, DynamoDB, SQS, MQ, DocumentDB); "
        "a self-managed Kafka source is given by SelfManagedEventSource"
    ),
    "ParallelizationFactor": _STREAMS_ONLY,
    "TumblingWindowInSeconds": _STREAMS_ONLY,
    "Queues": "applies to Amazon MQ only, not to self-managed Kafka",
    "ScalingConfig": "applies to Amazon SQS only, not to self-managed Kafka",
    "DocumentDBEventSourceConfig": "applies to Amazon DocumentDB only, not to self-managed Kafka",
    "ConsumerGroupId": "belongs under SelfManagedKafkaEventSourceConfig (its ConsumerGroupId)",
    "ConsumptionMode": "belongs under SelfManagedKafkaEventSourceConfig (its ConsumptionMode)",
    "AmazonManagedKafkaEventSourceConfig": (
        "applies to Amazon MSK only; use SelfManagedKafkaEventSourceConfig for self-managed Kafka"
    ),
}

_FUNCTION_NAME: Final = Text(
    1,
    140,
    v.FUNCTION_NAME,
    "must be a function name, a partial ARN (<account>:function:<name>) or a function ARN, "
    "each with an optional :<version or alias>",
)
_TOPIC: Final = Text(
    1,
    249,
    v.TOPIC,
    "must match AWS's topic pattern ^[^.]([a-zA-Z0-9\\-_.]+): the characters "
    "a-z A-Z 0-9 . _ -, at least 2 of them, not starting with '.'",
)
_ENDPOINT: Final = Text(
    1, limits.MAX_ENDPOINT_LENGTH, v.ENDPOINT, "must be host:port (a DNS name or IPv4 address)"
)
_CONSUMER_GROUP: Final = Text(
    1,
    limits.MAX_CONSUMER_GROUP_LENGTH,
    v.CONSUMER_GROUP_ID,
    "must use only the characters a-z A-Z 0-9 - / * : _ + = . @",
)
_KMS_KEY: Final = Text(1, 2048, v.KMS_KEY_ARN, "must be a KMS key ARN (arn:...:kms:...:key/<id>)")
_REGISTRY: Final = Text(
    1, 10000, v.REGISTRY_URI, "must be a Glue registry ARN or a Confluent registry http(s) URL"
)
_SUBNET: Final = Text(1, 200, v.SUBNET_URI, "must be subnet:subnet-<hex id>")
_SECURITY_GROUP: Final = Text(1, 200, v.SECURITY_GROUP_URI, "must be security_group:sg-<hex id>")
_ACCESS_VALUE: Final = Text(
    1, 200, v.ACCESS_VALUE, "must use only spaces and the characters a-z A-Z 0-9 - / * : _ + = . @"
)
_UUID: Final = Text(1, 100, v.UUID, "must be a UUID (8-4-4-4-12 hexadecimal digits)")
_POLLER_GROUP: Final = Text(1, 128, v.POLLER_GROUP, "must use only a-z A-Z 0-9 - _")
_ARN_OR_FILE_RULE: Final = (
    "must be a Secrets Manager secret ARN (arn:<partition>:secretsmanager:<region>:"
    "<12-digit account>:secret:<name>) or, for the local poller, a file:// URI"
)

Rule = Callable[[Checker, Mapping[str, Any]], None]


def validate_mapping(
    doc: Any, *, is_unresolved: Callable[[Any], bool] = never_unresolved
) -> list[FieldProblem]:
    """Every problem of a CreateEventSourceMapping request for self-managed Kafka.

    ``is_unresolved`` names values not known yet (CDK tokens): they are skipped.
    """
    check = Checker(is_unresolved)
    top = check.obj(ROOT, doc, TOP_FIELDS, _OTHER_SOURCES)
    if top is not None:
        for rule in _RULES:
            rule(check, top)
    return check.problems


def source_topics(doc: Mapping[str, Any]) -> set[str]:
    """Every string in ``Topics``, even when the list itself breaks a rule: a destination
    equal to any of them is a loop, reported beside the other problems."""
    topics = doc.get("Topics")
    return {t for t in topics if isinstance(t, str)} if isinstance(topics, list) else set()


def _function_and_topic(check: Checker, doc: Mapping[str, Any]) -> None:
    name = check.text("FunctionName", check.required(doc, ROOT, "FunctionName"), _FUNCTION_NAME)
    match = v.FUNCTION_NAME.fullmatch(name) if name else None
    if match and len(match["name"]) > 64:
        check.fail("FunctionName", name, "names a function longer than 64 characters")
    topics = check.array("Topics", check.required(doc, ROOT, "Topics"), 1, 1, "topic")
    for index, topic in enumerate(topics or []):
        check.text(f"Topics[{index}]", topic, _TOPIC)


def _bootstrap_servers(check: Checker, doc: Mapping[str, Any]) -> None:
    path = "SelfManagedEventSource"
    source = check.obj(path, check.required(doc, ROOT, path), ("Endpoints",))
    path += ".Endpoints"
    raw = check.required(source, "SelfManagedEventSource", "Endpoints")
    endpoints = check.obj(path, raw, ("KAFKA_BOOTSTRAP_SERVERS",))
    raw = check.required(endpoints, path, "KAFKA_BOOTSTRAP_SERVERS")
    path += ".KAFKA_BOOTSTRAP_SERVERS"
    servers = check.array(path, raw, 1, 10, "bootstrap servers")
    for index, server in enumerate(servers or []):
        text = check.text(f"{path}[{index}]", server, _ENDPOINT)
        if text is not None and not 1 <= int(text.rsplit(":", 1)[1]) <= 65535:
            check.fail(f"{path}[{index}]", server, "has a port outside 1-65535")


QUEUE_REFUSED: Final = (
    "StartingPosition",
    "StartingPositionTimestamp",
    "MaximumBatchingWindowInSeconds",
)
"""Fields AWS does not support with ConsumptionMode Queue: the share group's
``share.auto.offset.reset`` sets the start, and Queue batches are not windowed."""


def is_queue_mode(doc: Mapping[str, Any]) -> bool:
    """True when the request asks for ConsumptionMode Queue (share groups)."""
    config = doc.get("SelfManagedKafkaEventSourceConfig")
    return isinstance(config, Mapping) and config.get("ConsumptionMode") == "Queue"


def _queue_mode(check: Checker, doc: Mapping[str, Any]) -> None:
    """AWS's Queue-mode refusals, plus bisection, which has no meaning without order."""
    if not is_queue_mode(doc):
        return
    for name in QUEUE_REFUSED:
        if name in doc:
            check.fail(name, doc[name], "is not supported with ConsumptionMode Queue")
    if doc.get("BisectBatchOnFunctionError") is True:
        check.fail(
            "BisectBatchOnFunctionError",
            True,
            "is not supported with ConsumptionMode Queue: records are released one by one "
            "(use FunctionResponseTypes ReportBatchItemFailures)",
        )


def _starting_position(check: Checker, doc: Mapping[str, Any]) -> None:
    if is_queue_mode(doc):
        return  # refused by _queue_mode; the share group's share.auto.offset.reset decides
    raw = check.required(doc, ROOT, "StartingPosition")
    position = check.enum("StartingPosition", raw, v.StartingPosition)
    field = "StartingPositionTimestamp"
    stamp = doc.get(field, MISSING)
    at_timestamp = position is v.StartingPosition.AT_TIMESTAMP
    if at_timestamp and stamp is MISSING:
        check.fail(field, MISSING, "is required when StartingPosition is AT_TIMESTAMP")
    elif position is not None and not at_timestamp and stamp is not MISSING:
        check.fail(field, stamp, "is allowed only when StartingPosition is AT_TIMESTAMP")
    if check.skip(stamp):
        return
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        check.fail(field, stamp, "must be a number of epoch seconds")
    elif stamp < 0:
        check.fail(field, stamp, "must not be negative (epoch seconds)")
    elif stamp > time.time():
        check.fail(field, stamp, "must not be in the future (epoch seconds, not milliseconds)")


def _batching(check: Checker, doc: Mapping[str, Any]) -> None:
    check.integer("BatchSize", doc.get("BatchSize", MISSING), 1, limits.MAX_BATCH_SIZE)
    window = doc.get("MaximumBatchingWindowInSeconds", MISSING)
    if not is_queue_mode(doc):
        check.integer("MaximumBatchingWindowInSeconds", window, 0, limits.MAX_BATCHING_WINDOW_S)
    check.boolean("Enabled", doc.get("Enabled", MISSING))


def _filters(check: Checker, doc: Mapping[str, Any]) -> None:
    criteria = check.obj("FilterCriteria", doc.get("FilterCriteria", MISSING), ("Filters",))
    path = "FilterCriteria.Filters"
    items = check.array(
        path,
        (criteria or {}).get("Filters", MISSING),
        1,
        filters.MAX_FILTERS_WITH_QUOTA_INCREASE,
        "filters",
    )
    for index, item in enumerate(items or []):
        entry = check.obj(f"{path}[{index}]", item, ("Pattern",))
        raw = check.required(entry, f"{path}[{index}]", "Pattern")
        pattern = check.text(f"{path}[{index}].Pattern", raw, Text(1, limits.MAX_PATTERN_LENGTH))
        if pattern is None:
            continue
        try:
            filters.validate_pattern(pattern)
        except filters.FilterPatternError as error:
            check.fail(f"{path}[{index}].Pattern", pattern, str(error))
    check.text("KMSKeyArn", doc.get("KMSKeyArn", MISSING), _KMS_KEY)


def _error_handling(check: Checker, doc: Mapping[str, Any]) -> None:
    retries = doc.get("MaximumRetryAttempts", MISSING)
    most = limits.MAX_RETRY_ATTEMPTS
    rule = f"must be -1 (retry until the record expires) or an integer from 0 to {most}"
    check.integer("MaximumRetryAttempts", retries, -1, most, rule)
    age = doc.get("MaximumRecordAgeInSeconds", MISSING)
    least, most = limits.MIN_RECORD_AGE_S, limits.MAX_RECORD_AGE_S
    rule = f"must be -1 (no limit) or an integer from {least} to {most}"
    if check.integer("MaximumRecordAgeInSeconds", age, -1, most, rule) in range(least):
        check.fail("MaximumRecordAgeInSeconds", age, rule)
    check.boolean("BisectBatchOnFunctionError", doc.get("BisectBatchOnFunctionError", MISSING))
    raw = doc.get("FunctionResponseTypes", MISSING)
    for index, item in enumerate(check.array("FunctionResponseTypes", raw, 0, 1, "type") or []):
        check.enum(f"FunctionResponseTypes[{index}]", item, v.FunctionResponseType)


def _destination(check: Checker, doc: Mapping[str, Any]) -> None:
    only_on_failure = {"OnSuccess": "is not supported in CreateEventSourceMapping; use OnFailure"}
    raw = doc.get("DestinationConfig", MISSING)
    config = check.obj("DestinationConfig", raw, ("OnFailure",), only_on_failure)
    path = "DestinationConfig.OnFailure"
    on_failure = check.obj(path, (config or {}).get("OnFailure", MISSING), ("Destination",))
    value = check.text(
        f"{path}.Destination", check.required(on_failure, path, "Destination"), Text(1, 350)
    )
    if value is None:
        return
    path += ".Destination"
    kind = v.destination_kind(value)
    if value.startswith(v.KAFKA_DESTINATION_PREFIX) and kind is None:
        check.fail(
            path,
            value,
            "must name a topic after kafka:// (1-249 of a-z A-Z 0-9 . _ -, not starting with '.')",
        )
    elif kind is None:
        check.fail(
            path, value, "must be an SQS queue, SNS topic or S3 bucket ARN, or kafka://<topic>"
        )
    elif kind is v.DestinationKind.KAFKA and value.removeprefix("kafka://") in source_topics(doc):
        check.fail(path, value, "must not be the source topic (Lambda refuses the loop)")


def _kafka_config(check: Checker, doc: Mapping[str, Any]) -> None:
    path = "SelfManagedKafkaEventSourceConfig"
    known = ("ConsumerGroupId", "SchemaRegistryConfig", "ConsumptionMode")
    config = check.obj(path, doc.get(path, MISSING), known) or {}
    check.text(f"{path}.ConsumerGroupId", config.get("ConsumerGroupId", MISSING), _CONSUMER_GROUP)
    check.enum(f"{path}.ConsumptionMode", config.get("ConsumptionMode", MISSING), v.ConsumptionMode)
    _schema_registry(
        check, f"{path}.SchemaRegistryConfig", config.get("SchemaRegistryConfig", MISSING)
    )


def _schema_registry(check: Checker, path: str, raw: Any) -> None:
    known = ("SchemaRegistryURI", "EventRecordFormat", "AccessConfigs", "SchemaValidationConfigs")
    config = check.obj(path, raw, known)
    if config is None:
        return
    uri = check.text(
        f"{path}.SchemaRegistryURI", check.required(config, path, "SchemaRegistryURI"), _REGISTRY
    )
    raw_format = config.get("EventRecordFormat", MISSING)
    check.enum(f"{path}.EventRecordFormat", raw_format, v.EventRecordFormat)
    field = f"{path}.SchemaValidationConfigs"
    validations = check.array(
        field, config.get("SchemaValidationConfigs", MISSING), 1, 2, "entries"
    )
    for index, item in enumerate(validations or []):
        entry = check.obj(f"{field}[{index}]", item, ("Attribute",))
        attribute = check.required(entry, f"{field}[{index}]", "Attribute")
        check.enum(f"{field}[{index}].Attribute", attribute, v.SchemaValidationAttribute)
    field = f"{path}.AccessConfigs"
    access = check.array(field, config.get("AccessConfigs", MISSING), 0, 2, "entries") or []
    if access and uri is not None and v.GLUE_REGISTRY_ARN.fullmatch(uri):
        rule = "must be empty for a Glue registry (Lambda reaches Glue with the execution role)"
        check.fail(field, access, rule)
    _registry_access(check, field, access)


def _registry_access(check: Checker, path: str, items: list[Any]) -> None:
    """Each entry names a secret; at most one authentication method and one root CA."""
    first: dict[bool, int] = {}  # is it the root CA? -> index of the first such entry
    for index, item in enumerate(items):
        entry = check.obj(f"{path}[{index}]", item, ("Type", "URI"))
        raw = check.required(entry, f"{path}[{index}]", "Type")
        kind = check.enum(f"{path}[{index}].Type", raw, v.SchemaRegistryAuthType)
        _secret_uri(check, f"{path}[{index}].URI", check.required(entry, f"{path}[{index}]", "URI"))
        if kind is None:
            continue
        is_ca = kind is v.SchemaRegistryAuthType.SERVER_ROOT_CA_CERTIFICATE
        if is_ca in first:
            what = "root CA" if is_ca else "authentication method"
            check.fail(f"{path}[{index}].Type", raw, f"is a second {what} ({path}[{first[is_ca]}])")
        first.setdefault(is_ca, index)


def _secret_uri(check: Checker, path: str, value: Any) -> None:
    """A secret reference: a Secrets Manager ARN (at most 200 characters) or ``file://``."""
    if check.skip(value):
        return
    if not isinstance(value, str):
        check.fail(path, value, "must be a string")
        return
    kind = v.secret_uri_kind(value)
    if kind is None:
        check.fail(path, value, _ARN_OR_FILE_RULE)
    elif kind is v.UriKind.SECRETS_MANAGER_ARN and len(value) > 200:
        check.fail(path, value, f"must be at most 200 characters (is {len(value)})")


def _source_access(check: Checker, doc: Mapping[str, Any]) -> None:
    path = "SourceAccessConfigurations"
    items = check.array(path, doc.get(path, MISSING), 0, 23, "entries") or []
    kinds = [
        (index, _access_entry(check, f"{path}[{index}]", item)) for index, item in enumerate(items)
    ]
    known = [(index, kind) for index, kind in kinds if kind is not None]
    _access_combination(check, path, known, complete=len(known) == len(kinds))


def _access_entry(check: Checker, path: str, item: Any) -> v.SourceAccessType | None:
    entry = check.obj(path, item, ("Type", "URI"))
    raw = check.required(entry, path, "Type")
    if raw == "VIRTUAL_HOST":
        check.fail(f"{path}.Type", raw, "applies to RabbitMQ only, not to self-managed Kafka")
        return None
    kind = check.enum(f"{path}.Type", raw, v.SourceAccessType)
    if entry is None or kind is None:
        return kind
    uri = entry.get("URI", MISSING)
    if kind in v.NO_URI_TYPES:
        if uri is not MISSING:
            check.fail(
                f"{path}.URI", uri, f"must be left out for {kind}: the execution role signs in"
            )
    elif uri is MISSING:
        check.fail(f"{path}.URI", MISSING, "is required")
    elif kind in v.SECRET_TYPES:
        _secret_uri(check, f"{path}.URI", uri)
    else:
        spec = {
            v.SourceAccessType.VPC_SUBNET: _SUBNET,
            v.SourceAccessType.VPC_SECURITY_GROUP: _SECURITY_GROUP,
        }
        check.text(f"{path}.URI", uri, spec.get(kind, _ACCESS_VALUE))
    return kind


def _access_combination(
    check: Checker, path: str, kinds: list[tuple[int, v.SourceAccessType]], *, complete: bool
) -> None:
    """One authentication method at most, each option once, OAuth options with their
    method, and both halves of a VPC. Needs-rules wait until every Type is known."""
    auth = [(index, kind) for index, kind in kinds if kind in v.AUTHENTICATION_TYPES]
    for index, kind in auth[1:]:
        rule = (
            f"is a second authentication method ({path}[{auth[0][0]}] is {auth[0][1]}); "
            "a self-managed Kafka source takes at most one"
        )
        check.fail(f"{path}[{index}].Type", kind.value, rule)
    for single in (v.SourceAccessType.SERVER_ROOT_CA_CERTIFICATE, *v.OAUTH_OPTIONS):
        repeats = [index for index, kind in kinds if kind is single]
        for index in repeats[1:]:
            check.fail(
                f"{path}[{index}].Type",
                single.value,
                f"may appear only once ({path}[{repeats[0]}])",
            )
    if not complete:
        return
    method = auth[0][1] if auth else None
    for index, kind in kinds:
        needs = v.OAUTH_OPTIONS.get(kind, ())
        if needs and method not in needs:
            check.fail(f"{path}[{index}].Type", kind.value, f"needs {' or '.join(needs)} in {path}")
    present = {kind for _, kind in kinds}
    if (
        method is v.SourceAccessType.IAM_OAUTHBEARER_AUTH
        and v.SourceAccessType.OAUTHBEARER_AUDIENCE not in present
    ):
        check.fail(
            f"{path}[{auth[0][0]}].Type",
            method.value,
            f"needs an OAUTHBEARER_AUDIENCE entry in {path}",
        )
    vpc = {v.SourceAccessType.VPC_SUBNET, v.SourceAccessType.VPC_SECURITY_GROUP}
    if len(present & vpc) == 1:
        (given,) = present & vpc
        (absent,) = vpc - {given}
        check.fail(
            path,
            [kind.value for _, kind in kinds],
            f"has {given} but no {absent}: a VPC needs both",
        )


def _pollers(check: Checker, doc: Mapping[str, Any]) -> None:
    path = "ProvisionedPollerConfig"
    known = ("MinimumPollers", "MaximumPollers", "PollerGroupName")
    config = check.obj(path, doc.get(path, MISSING), known) or {}
    low = check.integer(
        f"{path}.MinimumPollers",
        config.get("MinimumPollers", MISSING),
        1,
        limits.MAX_MINIMUM_POLLERS,
    )
    high = check.integer(f"{path}.MaximumPollers", config.get("MaximumPollers", MISSING), 1, 2000)
    if low is not None and high is not None and low > high:
        check.fail(f"{path}.MinimumPollers", low, f"must not exceed MaximumPollers ({high})")
    name = config.get("PollerGroupName", MISSING)
    if name != "":  # AWS allows the empty name: no group
        check.text(f"{path}.PollerGroupName", name, _POLLER_GROUP)


def _observability(check: Checker, doc: Mapping[str, Any]) -> None:
    metrics = check.obj("MetricsConfig", doc.get("MetricsConfig", MISSING), ("Metrics",)) or {}
    names = check.array("MetricsConfig.Metrics", metrics.get("Metrics", MISSING), 0, 3, "metrics")
    for index, name in enumerate(names or []):
        check.enum(f"MetricsConfig.Metrics[{index}]", name, v.EsmMetric)
    logging = (
        check.obj("LoggingConfig", doc.get("LoggingConfig", MISSING), ("SystemLogLevel",)) or {}
    )
    check.enum(
        "LoggingConfig.SystemLogLevel", logging.get("SystemLogLevel", MISSING), v.SystemLogLevel
    )


def _tags_and_uuid(check: Checker, doc: Mapping[str, Any]) -> None:
    tags = check.obj("Tags", doc.get("Tags", MISSING), known=None) or {}
    if len(tags) > MAX_TAGS:
        check.fail("Tags", f"<{len(tags)} tags>", f"must hold at most {MAX_TAGS} tags")
    for key, value in tags.items():
        if check.skip(key):
            continue
        if not (1 <= len(key) <= 128 and _tag_text(key)):
            check.fail(
                f"Tags.{key}",
                key,
                "must be a key of 1-128 letters, digits, spaces or _ . : / = + - @",
            )
        elif key.lower().startswith("aws:"):
            check.fail(f"Tags.{key}", key, "must not start with 'aws:' (reserved by AWS)")
        text = check.text(f"Tags.{key}", value, Text(0, 256))
        if text is not None and not _tag_text(text):
            check.fail(
                f"Tags.{key}", value, "must use only letters, digits, spaces or _ . : / = + - @"
            )
    check.text("UUID", doc.get("UUID", MISSING), _UUID)


def _tag_text(text: str) -> bool:
    """AWS's tag alphabet: Unicode letters, separators and numbers, and ``_ . : / = + - @``."""
    return all(char in "_.:/=+-@" or unicodedata.category(char)[0] in "LZN" for char in text)


_RULES: Final[tuple[Rule, ...]] = (
    _function_and_topic,
    _bootstrap_servers,
    _starting_position,
    _queue_mode,
    _batching,
    _filters,
    _kafka_config,
    _source_access,
    _destination,
    _error_handling,
    _pollers,
    _observability,
    _tags_and_uuid,
)

PROVISIONED_RULE: Final = (
    "needs provisioned mode in AWS Lambda (set ProvisionedPollerConfig); "
    "the local poller supports it in every mode"
)
_PROVISIONED_METRICS: Final = (v.EsmMetric.ERROR_COUNT.value, v.EsmMetric.KAFKA_METRICS.value)


def provisioned_mode_problems(doc: Any) -> list[FieldProblem]:
    """Features AWS offers only in provisioned mode, used without ProvisionedPollerConfig.

    A value that is present but unresolved counts as set: it may not be the default.
    """
    if not isinstance(doc, Mapping) or "ProvisionedPollerConfig" in doc:
        return []
    found: list[FieldProblem] = []
    for key, default in (
        ("MaximumRetryAttempts", -1),
        ("MaximumRecordAgeInSeconds", -1),
        ("BisectBatchOnFunctionError", False),
        ("FunctionResponseTypes", []),
        ("LoggingConfig", MISSING),
    ):
        if doc.get(key, default) != default:
            found.append(FieldProblem(key, doc[key], PROVISIONED_RULE))
    destination = _dig(doc, "DestinationConfig", "OnFailure", "Destination")
    if isinstance(destination, str) and destination.startswith(v.KAFKA_DESTINATION_PREFIX):
        found.append(
            FieldProblem("DestinationConfig.OnFailure.Destination", destination, PROVISIONED_RULE)
        )
    registry = _dig(doc, "SelfManagedKafkaEventSourceConfig", "SchemaRegistryConfig")
    if registry is not MISSING:
        found.append(
            FieldProblem(
                "SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig", registry, PROVISIONED_RULE
            )
        )
    metrics = _dig(doc, "MetricsConfig", "Metrics")
    for index, name in enumerate(metrics if isinstance(metrics, list) else []):
        if name in _PROVISIONED_METRICS:
            found.append(FieldProblem(f"MetricsConfig.Metrics[{index}]", name, PROVISIONED_RULE))
    return found


def aws_only_problems(
    doc: Any,
    *,
    is_unresolved: Callable[[Any], bool] = never_unresolved,
    filter_quota: int = DEFAULT_FILTER_QUOTA,
) -> list[FieldProblem]:
    """What AWS's poller refuses though the local one accepts: ``file://`` secrets, and
    more filters than the account's quota (``filter_quota``, 5 unless raised)."""
    if not isinstance(doc, Mapping):
        return []
    found: list[FieldProblem] = []
    rule = "is a local file; AWS Lambda needs a Secrets Manager secret ARN"
    registry_access = _dig(
        doc, "SelfManagedKafkaEventSourceConfig", "SchemaRegistryConfig", "AccessConfigs"
    )
    for path, entries in (
        ("SourceAccessConfigurations", doc.get("SourceAccessConfigurations")),
        ("SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig.AccessConfigs", registry_access),
    ):
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            uri = entry.get("URI") if isinstance(entry, Mapping) else None
            if (
                isinstance(uri, str)
                and not is_unresolved(uri)
                and v.secret_uri_kind(uri) is v.UriKind.FILE
            ):
                found.append(FieldProblem(f"{path}[{index}].URI", uri, rule))
    patterns = _dig(doc, "FilterCriteria", "Filters")
    if isinstance(patterns, list) and len(patterns) > filter_quota:
        rule = (
            f"must hold at most {filter_quota} filters, the filter quota of the AWS account "
            "(AWS raises it to at most 10 on request)"
        )
        found.append(FieldProblem("FilterCriteria.Filters", f"<{len(patterns)} filters>", rule))
    return found


def _dig(doc: Mapping[str, Any], *keys: str) -> Any:
    """The value at a path of keys, or ``MISSING`` when any step is absent or not an object."""
    value: Any = doc
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value
