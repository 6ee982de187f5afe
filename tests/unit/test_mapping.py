"""The mapping model: every validation rule, defaults, UUIDs, AWS-only hooks, loading."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.definition import filters
from runtime.definition.model import (
    ENV_VAR,
    AclOperation,
    AclRequirement,
    AclResourceType,
    DestinationKind,
    EsmMetric,
    EventSourceMapping,
    FieldProblem,
    FunctionResponseType,
    MappingLoadError,
    MappingValidationError,
    SourceAccessType,
    StartingPosition,
    SystemLogLevel,
    UriKind,
    aws_only_problems,
    aws_provisioned_mode_problems,
    derive_uuid,
    file_uri_path,
    load_mapping,
    parse_mapping,
    secret_uri_kind,
    to_request,
    validate_mapping,
)

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-credentials-AbCdEf"
CA_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-root-ca"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:failed-orders"
SERVERS = "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"
REGISTRY = "SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig"
VALUE_FILTER = json.dumps({"value": {"status": ["ok"]}})


def minimal(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "FunctionName": "order-processor",
        "Topics": ["orders"],
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1.example.com:9092"]}
        },
        "StartingPosition": "LATEST",
    }
    doc.update(fields)
    return doc


def full() -> dict[str, Any]:
    """A mapping that sets every field this project accepts."""
    return minimal(
        StartingPosition="AT_TIMESTAMP",
        StartingPositionTimestamp=1_700_000_000,
        BatchSize=500,
        MaximumBatchingWindowInSeconds=5,
        Enabled=False,
        FilterCriteria={"Filters": [{"Pattern": VALUE_FILTER}]},
        KMSKeyArn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        SelfManagedKafkaEventSourceConfig={
            "ConsumerGroupId": "order-processors",
            "SchemaRegistryConfig": {
                "SchemaRegistryURI": "https://registry.example.com:8081",
                "EventRecordFormat": "JSON",
                "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": SECRET}],
                "SchemaValidationConfigs": [{"Attribute": "VALUE"}],
            },
        },
        SourceAccessConfigurations=[
            {"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET},
            {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": CA_SECRET},
            {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123456789abcdef0"},
            {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123456789abcdef0"},
        ],
        DestinationConfig={"OnFailure": {"Destination": QUEUE}},
        MaximumRetryAttempts=3,
        MaximumRecordAgeInSeconds=3600,
        BisectBatchOnFunctionError=True,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ProvisionedPollerConfig={
            "MinimumPollers": 2,
            "MaximumPollers": 20,
            "PollerGroupName": "g1",
        },
        MetricsConfig={"Metrics": ["EventCount", "ErrorCount", "KafkaMetrics"]},
        LoggingConfig={"SystemLogLevel": "INFO"},
        Tags={"team": "orders", "cost center": "42"},
        UUID="0b8e5b4e-3c39-4f5e-9a55-2f1f0d9d7e11",
    )


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the dotted ``path`` set (created as needed)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return doc


def rules_at(doc: Any, field: str, **options: Any) -> list[str]:
    return [p.rule for p in validate_mapping(doc, **options) if p.field == field]


def assert_problem(doc: Any, field: str, fragment: str) -> None:
    rules = rules_at(doc, field)
    assert any(fragment in rule for rule in rules), (field, fragment, validate_mapping(doc))


# --- a valid mapping and its defaults ------------------------------------------------


def test_minimal_mapping_gets_aws_defaults() -> None:
    mapping = parse_mapping(minimal())

    assert mapping.function_name == "order-processor"
    assert mapping.topic == "orders"
    assert mapping.bootstrap_servers == ("b-1.example.com:9092",)
    assert mapping.starting_position is StartingPosition.LATEST
    assert mapping.batch_size == 100
    assert mapping.maximum_batching_window_in_seconds is None
    assert mapping.batching_window_seconds == 0.5
    assert mapping.enabled is True
    assert mapping.maximum_retry_attempts == -1
    assert mapping.maximum_record_age_in_seconds == -1
    assert mapping.bisect_batch_on_function_error is False
    assert mapping.report_batch_item_failures is False
    assert mapping.filter_patterns == ()
    assert mapping.on_failure is None
    assert mapping.provisioned_poller_config is None
    assert mapping.authentication is None
    assert mapping.consumer_group_id == mapping.uuid


def test_full_mapping_is_modelled() -> None:
    mapping = parse_mapping(full())

    assert mapping.starting_position_timestamp == 1_700_000_000.0
    assert mapping.batching_window_seconds == 5.0
    assert mapping.consumer_group_id == "order-processors"
    assert mapping.authentication is not None
    assert mapping.authentication.type is SourceAccessType.SASL_SCRAM_512_AUTH
    assert mapping.server_root_ca_certificate is not None
    assert mapping.server_root_ca_certificate.uri == CA_SECRET
    assert mapping.subnet_ids == ("subnet-0123456789abcdef0",)
    assert mapping.security_group_ids == ("sg-0123456789abcdef0",)
    assert mapping.on_failure is not None
    assert mapping.on_failure.kind is DestinationKind.SQS
    assert mapping.report_batch_item_failures is True
    assert mapping.function_response_types == (FunctionResponseType.REPORT_BATCH_ITEM_FAILURES,)
    assert mapping.metrics == (
        EsmMetric.EVENT_COUNT,
        EsmMetric.ERROR_COUNT,
        EsmMetric.KAFKA_METRICS,
    )
    assert mapping.system_log_level is SystemLogLevel.INFO
    assert mapping.provisioned_poller_config is not None
    assert mapping.provisioned_poller_config.maximum_pollers == 20
    assert mapping.schema_registry is not None
    assert mapping.schema_registry.is_glue is False
    assert dict(mapping.tags) == {"team": "orders", "cost center": "42"}
    assert mapping.uuid == "0b8e5b4e-3c39-4f5e-9a55-2f1f0d9d7e11"


def test_provisioned_poller_defaults() -> None:
    mapping = parse_mapping(minimal(ProvisionedPollerConfig={"PollerGroupName": ""}))

    assert mapping.provisioned_poller_config is not None
    assert mapping.provisioned_poller_config.minimum_pollers == 1
    assert mapping.provisioned_poller_config.maximum_pollers == 200
    assert mapping.provisioned_poller_config.poller_group_name is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, -1),
        ({"MaximumRetryAttempts": 2}, 2),
        ({"DestinationConfig": {"OnFailure": {"Destination": QUEUE}}}, 10),
        (
            {"DestinationConfig": {"OnFailure": {"Destination": QUEUE}}, "MaximumRetryAttempts": 0},
            0,
        ),
    ],
)
def test_infinite_retries_are_capped_at_ten_with_a_destination(
    fields: dict[str, Any], expected: int
) -> None:
    assert parse_mapping(minimal(**fields)).effective_maximum_retry_attempts == expected


# --- required fields, unknown fields, wrong types ------------------------------------


@pytest.mark.parametrize(
    "field", ["FunctionName", "Topics", "SelfManagedEventSource", "StartingPosition"]
)
def test_required_field_is_reported_when_missing(field: str) -> None:
    doc = minimal()
    del doc[field]

    problems = [p for p in validate_mapping(doc) if p.field == field]

    assert [p.rule for p in problems] == ["is required"]
    assert repr(problems[0].value) == "<missing>"


@pytest.mark.parametrize(
    ("doc", "field", "suggestion"),
    [
        (minimal(batchSize=10), "batchSize", "'BatchSize'"),
        (minimal(FunctionNmae="f"), "FunctionNmae", "'FunctionName'"),
        (minimal(MaxRetryAttempts=1), "MaxRetryAttempts", "'MaximumRetryAttempts'"),
        (
            minimal(SelfManagedKafkaEventSourceConfig={"ConsumerGroupID": "g"}),
            "SelfManagedKafkaEventSourceConfig.ConsumerGroupID",
            "'ConsumerGroupId'",
        ),
        (
            minimal(SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVER": ["h:1"]}}),
            "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVER",
            "'KAFKA_BOOTSTRAP_SERVERS'",
        ),
        (
            minimal(ProvisionedPollerConfig={"MinPollers": 1}),
            "ProvisionedPollerConfig.MinPollers",
            "'MinimumPollers'",
        ),
    ],
)
def test_unknown_field_is_reported_with_a_suggestion(
    doc: dict[str, Any], field: str, suggestion: str
) -> None:
    (rule,) = rules_at(doc, field)

    assert rule.startswith(
        "is not a field of CreateEventSourceMapping for a self-managed Kafka source"
    )
    assert rule.endswith(f"did you mean {suggestion}?")


def test_unknown_field_far_from_any_name_gets_no_suggestion() -> None:
    (rule,) = rules_at(minimal(Zzzzzz=1), "Zzzzzz")

    assert "did you mean" not in rule


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("EventSourceArn", "SelfManagedEventSource"),
        ("ParallelizationFactor", "Kinesis and DynamoDB Streams only"),
        ("TumblingWindowInSeconds", "Kinesis and DynamoDB Streams only"),
        ("Queues", "Amazon MQ only"),
        ("ScalingConfig", "Amazon SQS only"),
        ("DocumentDBEventSourceConfig", "Amazon DocumentDB only"),
        ("AmazonManagedKafkaEventSourceConfig", "Amazon MSK only"),
    ],
)
def test_fields_of_other_sources_are_refused_with_the_reason(field: str, reason: str) -> None:
    (rule,) = rules_at(minimal(**{field: 1}), field)

    assert reason in rule


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("FunctionName", 42, "must be a string"),
        ("Topics", "orders", "must be a JSON array"),
        ("SelfManagedEventSource", ["h:1"], "must be a JSON object"),
        ("BatchSize", "100", "must be an integer"),
        ("BatchSize", 1.5, "must be an integer"),
        ("BatchSize", True, "must be an integer"),
        ("Enabled", "true", "must be true or false"),
        ("BisectBatchOnFunctionError", 1, "must be true or false"),
        ("FilterCriteria", [], "must be a JSON object"),
        ("Tags", [{"Key": "a", "Value": "b"}], "must be a JSON object"),
    ],
)
def test_wrong_json_type_is_reported(path: str, value: Any, rule: str) -> None:
    assert rule in rules_at(set_path(minimal(), path, value), path)


def test_document_that_is_not_an_object_is_reported() -> None:
    assert validate_mapping(["not", "a", "mapping"]) == [
        FieldProblem("(mapping)", ["not", "a", "mapping"], "must be a JSON object")
    ]


# --- every problem at once, and how they read ----------------------------------------


def test_all_problems_are_reported_at_once() -> None:
    doc = minimal(BatchSize=0, MaximumRetryAttempts=-5, Topics=[".x"], Unknown=True)

    with pytest.raises(MappingValidationError) as caught:
        parse_mapping(doc, source="mapping.json")

    fields = {p.field for p in caught.value.problems}
    assert fields == {"BatchSize", "MaximumRetryAttempts", "Topics[0]", "Unknown"}
    message = str(caught.value)
    assert message.startswith("invalid event source mapping in mapping.json (4 problems):")
    assert "  - BatchSize: 0 must be an integer from 1 to 10000" in message
    assert isinstance(caught.value, ValueError)


def test_problem_reads_field_value_rule_and_cuts_long_values() -> None:
    assert str(FieldProblem("BatchSize", 0, "must be positive")) == "BatchSize: 0 must be positive"
    long = str(FieldProblem("FunctionName", "x" * 500, "is too long"))
    assert len(long) < 160
    assert long.endswith("... is too long")


# --- FunctionName and Topics ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "my-function",
        "my_function:PROD",
        "my-function:$LATEST",
        "my-function:7",
        "123456789012:function:my-function",
        "arn:aws:lambda:us-west-2:123456789012:function:my-function",
        "arn:aws:lambda:us-west-2:123456789012:function:my-function:live",
        "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
        "a" * 64,
    ],
)
def test_function_name_forms_aws_accepts(name: str) -> None:
    assert validate_mapping(minimal(FunctionName=name)) == []


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must be 1-140 characters long"),
        ("my function", "must be a function name, a partial ARN"),
        ("my.function", "must be a function name"),
        ("arn:aws:s3:::bucket", "must be a function name"),
        ("a" * 65, "longer than 64 characters"),
        ("arn:aws:lambda:us-west-2:123456789012:function:" + "f" * 64 + ":" + "q" * 40, "1-140"),
    ],
)
def test_function_name_rules(name: str, fragment: str) -> None:
    assert_problem(minimal(FunctionName=name), "FunctionName", fragment)


@pytest.mark.parametrize("topic", ["orders", "ab", "a.b-c_D9", "t" * 249, "-leading-dash", "_x"])
def test_topic_names_aws_accepts(topic: str) -> None:
    assert validate_mapping(minimal(Topics=[topic])) == []


@pytest.mark.parametrize(
    ("topics", "field", "fragment"),
    [
        ([], "Topics", "must hold exactly 1 topic (has 0)"),
        (["a1", "b1"], "Topics", "must hold exactly 1 topic (has 2)"),
        ([".hidden"], "Topics[0]", "not starting with '.'"),
        (["x"], "Topics[0]", "at least 2"),
        (["bad/topic"], "Topics[0]", "the characters a-z A-Z 0-9 . _ -"),
        (["t" * 250], "Topics[0]", "must be 1-249 characters long (is 250)"),
        ([5], "Topics[0]", "must be a string"),
    ],
)
def test_topic_rules(topics: list[Any], field: str, fragment: str) -> None:
    assert_problem(minimal(Topics=topics), field, fragment)


# --- bootstrap servers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "servers",
    [
        ["localhost:9092"],
        ["10.0.0.1:9093", "b-2.kafka.internal:9094"],
        [f"b-{i}.example.com:9092" for i in range(10)],
        ["h:1", "h:65535"],
    ],
)
def test_bootstrap_servers_aws_accepts(servers: list[str]) -> None:
    assert validate_mapping(set_path(minimal(), SERVERS, servers)) == []


@pytest.mark.parametrize(
    ("servers", "field", "fragment"),
    [
        ([], SERVERS, "must hold 1-10 bootstrap servers (has 0)"),
        ([f"b{i}:9092" for i in range(11)], SERVERS, "(has 11)"),
        (["no-port.example.com"], f"{SERVERS}[0]", "must be host:port"),
        (["-bad.example.com:9092"], f"{SERVERS}[0]", "must be host:port"),
        (["[::1]:9092"], f"{SERVERS}[0]", "must be host:port"),
        (["h:0"], f"{SERVERS}[0]", "port outside 1-65535"),
        (["h:65536"], f"{SERVERS}[0]", "port outside 1-65535"),
        (["h:9092", "h:9092"], f"{SERVERS}[1]", f"repeats {SERVERS}[0]"),
        ("h:9092", SERVERS, "must be a JSON array"),
    ],
)
def test_bootstrap_server_rules(servers: Any, field: str, fragment: str) -> None:
    assert_problem(set_path(minimal(), SERVERS, servers), field, fragment)


def test_missing_endpoints_are_reported_at_their_path() -> None:
    assert rules_at(minimal(SelfManagedEventSource={}), "SelfManagedEventSource.Endpoints") == [
        "is required"
    ]
    doc = minimal(SelfManagedEventSource={"Endpoints": {}})
    assert rules_at(doc, SERVERS) == ["is required"]


# --- starting position ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"StartingPosition": "TRIM_HORIZON"},
        {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1_700_000_000},
        {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1_700_000_000.5},
        {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 0},
    ],
)
def test_starting_positions_aws_accepts(fields: dict[str, Any]) -> None:
    assert validate_mapping(minimal(**fields)) == []


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"StartingPosition": "latest"}, "StartingPosition", "did you mean 'LATEST'?"),
        (
            {"StartingPosition": "EARLIEST"},
            "StartingPosition",
            "one of LATEST, TRIM_HORIZON, AT_TIMESTAMP",
        ),
        ({"StartingPosition": "AT_TIMESTAMP"}, "StartingPositionTimestamp", "is required when"),
        (
            {"StartingPositionTimestamp": 1_700_000_000},
            "StartingPositionTimestamp",
            "allowed only when",
        ),
        (
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": time.time() * 1000},
            "StartingPositionTimestamp",
            "must not be in the future (epoch seconds, not milliseconds)",
        ),
        (
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": -1},
            "StartingPositionTimestamp",
            "must not be negative",
        ),
        (
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": "1700000000"},
            "StartingPositionTimestamp",
            "must be a number of epoch seconds",
        ),
        (
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": float("nan")},
            "StartingPositionTimestamp",
            "must be a number of epoch seconds",
        ),
        (
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": True},
            "StartingPositionTimestamp",
            "must be a number of epoch seconds",
        ),
    ],
)
def test_starting_position_rules(fields: dict[str, Any], field: str, fragment: str) -> None:
    assert_problem(minimal(**fields), field, fragment)


# --- batching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "good", "bad", "fragment"),
    [
        ("BatchSize", [1, 10000], [0, 10001, -1], "must be an integer from 1 to 10000"),
        ("MaximumBatchingWindowInSeconds", [0, 300], [-1, 301], "must be an integer from 0 to 300"),
    ],
)
def test_batching_limits(field: str, good: list[int], bad: list[int], fragment: str) -> None:
    for value in good:
        assert validate_mapping(minimal(**{field: value})) == [], value
    for value in bad:
        assert rules_at(minimal(**{field: value}), field) == [fragment], value


def test_batching_window_is_whole_seconds() -> None:
    assert rules_at(
        minimal(MaximumBatchingWindowInSeconds=0.5), "MaximumBatchingWindowInSeconds"
    ) == ["must be an integer"]
    assert parse_mapping(minimal(MaximumBatchingWindowInSeconds=0)).batching_window_seconds == 0.0


# --- error handling -------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 0, 10000])
def test_retry_attempts_aws_accepts(value: int) -> None:
    assert validate_mapping(minimal(MaximumRetryAttempts=value)) == []


@pytest.mark.parametrize("value", [-2, 10001])
def test_retry_attempts_rule(value: int) -> None:
    assert rules_at(minimal(MaximumRetryAttempts=value), "MaximumRetryAttempts") == [
        "must be -1 (retry until the record expires) or an integer from 0 to 10000"
    ]


@pytest.mark.parametrize("value", [-1, 60, 604800])
def test_record_age_aws_accepts(value: int) -> None:
    assert validate_mapping(minimal(MaximumRecordAgeInSeconds=value)) == []


@pytest.mark.parametrize("value", [-2, 0, 59, 604801])
def test_record_age_rule(value: int) -> None:
    assert rules_at(minimal(MaximumRecordAgeInSeconds=value), "MaximumRecordAgeInSeconds") == [
        "must be -1 (no limit) or an integer from 60 to 604800"
    ]


@pytest.mark.parametrize(
    ("types", "field", "fragment"),
    [
        (["Other"], "FunctionResponseTypes[0]", "must be one of ReportBatchItemFailures"),
        (
            ["reportBatchItemFailures"],
            "FunctionResponseTypes[0]",
            "did you mean 'ReportBatchItemFailures'?",
        ),
        (["ReportBatchItemFailures"] * 2, "FunctionResponseTypes", "must hold 0-1 type (has 2)"),
    ],
)
def test_function_response_type_rules(types: list[str], field: str, fragment: str) -> None:
    assert_problem(minimal(FunctionResponseTypes=types), field, fragment)


# --- destinations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "kind"),
    [
        (QUEUE, DestinationKind.SQS),
        ("arn:aws:sns:eu-west-1:123456789012:failures", DestinationKind.SNS),
        ("arn:aws:s3:::failed-batches", DestinationKind.S3),
        ("kafka://orders-dlt", DestinationKind.KAFKA),
        ("kafka://x", DestinationKind.KAFKA),
    ],
)
def test_destinations_aws_accepts(destination: str, kind: DestinationKind) -> None:
    mapping = parse_mapping(minimal(DestinationConfig={"OnFailure": {"Destination": destination}}))

    assert mapping.on_failure is not None
    assert mapping.on_failure.kind is kind
    assert mapping.on_failure.kafka_topic == (
        destination.removeprefix("kafka://") if kind is DestinationKind.KAFKA else None
    )


@pytest.mark.parametrize(
    ("destination", "fragment"),
    [
        (
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "must be an SQS queue, SNS topic or S3 bucket",
        ),
        ("https://sqs.example.com/queue", "must be an SQS queue"),
        ("kafka://", "must name a topic after kafka://"),
        ("kafka://.hidden", "must name a topic after kafka://"),
        ("kafka://orders", "must not be the source topic"),
        ("", "must be 1-350 characters long"),
    ],
)
def test_destination_rules(destination: str, fragment: str) -> None:
    doc = minimal(DestinationConfig={"OnFailure": {"Destination": destination}})
    assert_problem(doc, "DestinationConfig.OnFailure.Destination", fragment)


@pytest.mark.parametrize(
    "broken",
    [
        {"BatchSize": 0},
        {"StartingPosition": "BOGUS"},
        {"Topics": ["orders", "payments"]},  # the list breaks a rule; orders is still a loop
        {"SelfManagedEventSource": {"Endpoints": {}}},
        {"Bogus": 1},
    ],
)
def test_a_loop_to_the_source_topic_is_reported_beside_other_problems(
    broken: dict[str, Any],
) -> None:
    doc = minimal(DestinationConfig={"OnFailure": {"Destination": "kafka://orders"}}, **broken)
    problems = validate_mapping(doc)
    loops = [p for p in problems if "must not be the source topic" in p.rule]
    assert len(loops) == 1 and len(problems) >= 2, problems


def test_on_success_destination_is_refused() -> None:
    doc = minimal(DestinationConfig={"OnSuccess": {"Destination": QUEUE}})
    assert rules_at(doc, "DestinationConfig.OnSuccess") == [
        "is not supported in CreateEventSourceMapping; use OnFailure"
    ]


def test_on_failure_needs_a_destination() -> None:
    doc = minimal(DestinationConfig={"OnFailure": {}})
    assert rules_at(doc, "DestinationConfig.OnFailure.Destination") == ["is required"]


# --- consumer group and consumption mode ----------------------------------------------


@pytest.mark.parametrize("group", ["orders", "a/b*c:d_e+f=g.h@i-j", "g" * 200])
def test_consumer_group_ids_aws_accepts(group: str) -> None:
    doc = minimal(SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": group})
    assert parse_mapping(doc).consumer_group_id == group


@pytest.mark.parametrize(
    ("group", "fragment"),
    [
        ("", "must be 1-200 characters long"),
        ("g" * 201, "must be 1-200 characters long"),
        ("with space", "must use only the characters"),
        ("grüppe", "must use only the characters"),
    ],
)
def test_consumer_group_id_rules(group: str, fragment: str) -> None:
    doc = minimal(SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": group})
    assert_problem(doc, "SelfManagedKafkaEventSourceConfig.ConsumerGroupId", fragment)


def queue(**fields: Any) -> dict[str, Any]:
    """A minimal Queue-mode request: no StartingPosition (AWS refuses it there)."""
    doc = minimal(SelfManagedKafkaEventSourceConfig={"ConsumptionMode": "Queue"})
    del doc["StartingPosition"]
    doc.update(fields)
    return doc


def test_consumption_modes_are_accepted_with_their_exact_spelling() -> None:
    field = "SelfManagedKafkaEventSourceConfig.ConsumptionMode"
    assert (
        validate_mapping(minimal(SelfManagedKafkaEventSourceConfig={"ConsumptionMode": "Stream"}))
        == []
    )
    assert validate_mapping(queue()) == []
    assert_problem(
        minimal(SelfManagedKafkaEventSourceConfig={"ConsumptionMode": "stream"}), field, "'Stream'"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("StartingPosition", "LATEST"),
        ("StartingPosition", "TRIM_HORIZON"),
        ("StartingPositionTimestamp", 1_700_000_000),
        ("MaximumBatchingWindowInSeconds", 0),
        ("MaximumBatchingWindowInSeconds", 5),
    ],
)
def test_queue_mode_refuses_what_aws_does_not_support(field: str, value: Any) -> None:
    assert_problem(queue(**{field: value}), field, "not supported with ConsumptionMode Queue")


def test_queue_mode_refuses_bisection_and_names_the_alternative() -> None:
    assert_problem(
        queue(BisectBatchOnFunctionError=True),
        "BisectBatchOnFunctionError",
        "ReportBatchItemFailures",
    )
    assert validate_mapping(queue(BisectBatchOnFunctionError=False)) == []


def test_queue_mode_accepts_the_fields_the_aws_sample_sets() -> None:
    doc = queue(
        BatchSize=10,
        MaximumRetryAttempts=3,
        MaximumRecordAgeInSeconds=3600,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        FilterCriteria={"Filters": [{"Pattern": '{"value": {"kind": ["order"]}}'}]},
        DestinationConfig={
            "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:failed"}
        },
        ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 10},
    )
    assert validate_mapping(doc) == []


def test_queue_mode_still_checks_batch_size() -> None:
    assert_problem(queue(BatchSize=10_001), "BatchSize", "10000")


def test_queue_mode_model_round_trips_without_a_starting_position() -> None:
    mapping = parse_mapping(
        queue(
            SelfManagedKafkaEventSourceConfig={
                "ConsumptionMode": "Queue",
                "ConsumerGroupId": "orders-share",
            }
        )
    )
    assert mapping.is_queue and mapping.consumer_group_id == "orders-share"
    request = to_request(mapping)
    assert "StartingPosition" not in request
    assert request["SelfManagedKafkaEventSourceConfig"] == {
        "ConsumerGroupId": "orders-share",
        "ConsumptionMode": "Queue",
    }
    assert parse_mapping(request) == mapping


def test_stream_mode_still_requires_a_starting_position() -> None:
    doc = minimal(SelfManagedKafkaEventSourceConfig={"ConsumptionMode": "Stream"})
    del doc["StartingPosition"]
    assert_problem(doc, "StartingPosition", "required")


# --- source access configurations ------------------------------------------------------


def access(*entries: tuple[str, str | None]) -> dict[str, Any]:
    return minimal(
        SourceAccessConfigurations=[
            {"Type": kind} if uri is None else {"Type": kind, "URI": uri} for kind, uri in entries
        ]
    )


@pytest.mark.parametrize(
    "entries",
    [
        [("BASIC_AUTH", SECRET)],
        [("SASL_SCRAM_256_AUTH", SECRET), ("SERVER_ROOT_CA_CERTIFICATE", CA_SECRET)],
        [("SASL_SCRAM_512_AUTH", "file:///run/secrets/kafka.json")],
        [
            ("CLIENT_CERTIFICATE_TLS_AUTH", SECRET),
            ("SERVER_ROOT_CA_CERTIFICATE", "file://certs/ca.json"),
        ],
        [("SERVER_ROOT_CA_CERTIFICATE", CA_SECRET)],
        [("IAM_AUTH", None)],
        [("IAM_OAUTHBEARER_AUTH", None), ("OAUTHBEARER_AUDIENCE", "kafka-cluster")],
        [
            ("OAUTHBEARER_AUTH", SECRET),
            ("OAUTHBEARER_SCOPE", "kafka read write"),
            ("OAUTHBEARER_AUDIENCE", "https://kafka.example.com"),
            ("OAUTHBEARER_LOGICAL_CLUSTER", "lkc-abc123"),
            ("OAUTHBEARER_IDENTITY_POOL", "pool-XyZ"),
        ],
        [
            ("VPC_SUBNET", "subnet:subnet-0123abcd"),
            ("VPC_SECURITY_GROUP", "security_group:sg-0123abcd"),
        ],
        [
            ("VPC_SUBNET", "subnet:subnet-0123456789abcdef0"),
            ("VPC_SECURITY_GROUP", "security_group:sg-0123abcd"),
        ],
    ],
)
def test_source_access_configurations_aws_accepts(entries: list[tuple[str, str | None]]) -> None:
    assert validate_mapping(access(*entries)) == []


@pytest.mark.parametrize(
    ("entries", "field", "fragment"),
    [
        (
            [("BASIC_AUTH", SECRET), ("SASL_SCRAM_512_AUTH", SECRET)],
            "SourceAccessConfigurations[1].Type",
            "is a second authentication method (SourceAccessConfigurations[0] is BASIC_AUTH)",
        ),
        (
            [("IAM_AUTH", None), ("CLIENT_CERTIFICATE_TLS_AUTH", SECRET)],
            "SourceAccessConfigurations[1].Type",
            "a self-managed Kafka source takes at most one",
        ),
        (
            [("SERVER_ROOT_CA_CERTIFICATE", SECRET), ("SERVER_ROOT_CA_CERTIFICATE", CA_SECRET)],
            "SourceAccessConfigurations[1].Type",
            "may appear only once (SourceAccessConfigurations[0])",
        ),
        ([("VIRTUAL_HOST", "/")], "SourceAccessConfigurations[0].Type", "RabbitMQ only"),
        (
            [("SASL_PLAIN", SECRET)],
            "SourceAccessConfigurations[0].Type",
            "must be one of BASIC_AUTH",
        ),
        (
            [("BASIC_AUTH", "my-secret")],
            "SourceAccessConfigurations[0].URI",
            "must be a Secrets Manager secret ARN",
        ),
        (
            [("BASIC_AUTH", "arn:aws:secretsmanager:us-east-1:01234567890:secret:x")],
            "SourceAccessConfigurations[0].URI",
            "12-digit account",
        ),
        ([("BASIC_AUTH", "file://")], "SourceAccessConfigurations[0].URI", "a file:// URI"),
        (
            [("BASIC_AUTH", SECRET + "x" * 200)],
            "SourceAccessConfigurations[0].URI",
            "at most 200 characters",
        ),
        ([("BASIC_AUTH", None)], "SourceAccessConfigurations[0].URI", "is required"),
        (
            [("IAM_AUTH", SECRET)],
            "SourceAccessConfigurations[0].URI",
            "must be left out for IAM_AUTH",
        ),
        (
            [("VPC_SUBNET", "subnet-0123abcd")],
            "SourceAccessConfigurations[0].URI",
            "subnet:subnet-<hex id>",
        ),
        (
            [("VPC_SECURITY_GROUP", "sg-0123abcd")],
            "SourceAccessConfigurations[0].URI",
            "security_group:sg-<hex id>",
        ),
        (
            [("VPC_SUBNET", "subnet:subnet-0123abcd")],
            "SourceAccessConfigurations",
            "no VPC_SECURITY_GROUP",
        ),
        (
            [("VPC_SECURITY_GROUP", "security_group:sg-0123abcd")],
            "SourceAccessConfigurations",
            "has VPC_SECURITY_GROUP but no VPC_SUBNET: a VPC needs both",
        ),
        (
            [("BASIC_AUTH", SECRET), ("OAUTHBEARER_SCOPE", "read")],
            "SourceAccessConfigurations[1].Type",
            "needs OAUTHBEARER_AUTH",
        ),
        (
            [
                ("IAM_OAUTHBEARER_AUTH", None),
                ("OAUTHBEARER_SCOPE", "read"),
                ("OAUTHBEARER_AUDIENCE", "a"),
            ],
            "SourceAccessConfigurations[1].Type",
            "needs OAUTHBEARER_AUTH",
        ),
        (
            [("IAM_OAUTHBEARER_AUTH", None)],
            "SourceAccessConfigurations[0].Type",
            "needs an OAUTHBEARER_AUDIENCE entry",
        ),
        (
            [("OAUTHBEARER_AUTH", SECRET), ("OAUTHBEARER_SCOPE", "read;write")],
            "SourceAccessConfigurations[1].URI",
            "must use only spaces",
        ),
        (
            [("BASIC_AUTH", SECRET), ("BASIC_AUTH", SECRET)],
            "SourceAccessConfigurations[1]",
            "repeats SourceAccessConfigurations[0]",
        ),
    ],
)
def test_source_access_configuration_rules(
    entries: list[tuple[str, str | None]], field: str, fragment: str
) -> None:
    assert_problem(access(*entries), field, fragment)


def test_source_access_entry_needs_a_type() -> None:
    doc = minimal(SourceAccessConfigurations=[{"URI": SECRET}])
    assert rules_at(doc, "SourceAccessConfigurations[0].Type") == ["is required"]


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        (SECRET, UriKind.SECRETS_MANAGER_ARN),
        ("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:s", UriKind.SECRETS_MANAGER_ARN),
        ("file:///etc/kafka/secret.json", UriKind.FILE),
        ("file://relative/secret.json", UriKind.FILE),
        ("file://", None),
        ("s3://bucket/secret", None),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/x", None),
    ],
)
def test_secret_uri_kind(uri: str, kind: UriKind | None) -> None:
    assert secret_uri_kind(uri) is kind


def test_file_uri_path_and_entry_kind() -> None:
    assert file_uri_path("file:///etc/kafka/my%20secret.json") == Path("/etc/kafka/my secret.json")
    assert file_uri_path("file://certs/ca.json") == Path("certs/ca.json")
    with pytest.raises(ValueError, match="not a file:// URI"):
        file_uri_path(SECRET)
    doc = access(
        ("BASIC_AUTH", "file:///s.json"),
        ("VPC_SUBNET", "subnet:subnet-0123abcd"),
        ("VPC_SECURITY_GROUP", "security_group:sg-0123abcd"),
    )
    mapping = parse_mapping(doc)
    kinds = [entry.uri_kind for entry in mapping.source_access_configurations]
    assert kinds == [UriKind.FILE, None, None]


# --- filters --------------------------------------------------------------------------


def with_filters(*patterns: Any) -> dict[str, Any]:
    return minimal(FilterCriteria={"Filters": [{"Pattern": p} for p in patterns]})


def test_filter_patterns_are_kept_in_order() -> None:
    other = json.dumps({"value": {"kind": ["refund"]}})
    assert parse_mapping(with_filters(VALUE_FILTER, other)).filter_patterns == (VALUE_FILTER, other)


def test_each_pattern_goes_through_the_filter_grammar(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def validate(pattern: str) -> None:
        seen.append(pattern)
        if "bad" in pattern:
            raise filters.FilterPatternError("must be an array of rules", path="value.bad")

    monkeypatch.setattr(filters, "validate_pattern", validate)
    bad = json.dumps({"value": {"bad": "x"}})

    problems = validate_mapping(with_filters(VALUE_FILTER, bad))

    assert seen == [VALUE_FILTER, bad]
    assert problems == [
        FieldProblem(
            "FilterCriteria.Filters[1].Pattern", bad, "value.bad: must be an array of rules"
        )
    ]


@pytest.mark.parametrize(
    ("doc", "field", "fragment"),
    [
        (
            with_filters(*[json.dumps({"value": {"n": [i]}}) for i in range(11)]),
            "FilterCriteria.Filters",
            "1-10 filters (has 11)",
        ),
        (minimal(FilterCriteria={"Filters": []}), "FilterCriteria.Filters", "(has 0)"),
        (
            minimal(FilterCriteria={"Filters": [{}]}),
            "FilterCriteria.Filters[0].Pattern",
            "is required",
        ),
        (with_filters(42), "FilterCriteria.Filters[0].Pattern", "must be a string"),
        (
            with_filters("x" * 4097),
            "FilterCriteria.Filters[0].Pattern",
            "must be 1-4096 characters long",
        ),
        (
            with_filters(VALUE_FILTER, VALUE_FILTER),
            "FilterCriteria.Filters[1]",
            "repeats FilterCriteria.Filters[0]",
        ),
        (
            minimal(FilterCriteria={"Filter": []}),
            "FilterCriteria.Filter",
            "did you mean 'Filters'?",
        ),
    ],
)
def test_filter_criteria_rules(doc: dict[str, Any], field: str, fragment: str) -> None:
    assert_problem(doc, field, fragment)


@pytest.mark.parametrize(
    ("arn", "ok"),
    [
        ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
        ("arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd", True),
        ("arn:aws:kms:us-east-1:123456789012:alias/my-key", False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
    ],
)
def test_kms_key_arn_rule(arn: str, ok: bool) -> None:
    assert (rules_at(minimal(KMSKeyArn=arn), "KMSKeyArn") == []) is ok


# --- provisioned pollers, metrics, logging ---------------------------------------------


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"MinimumPollers": 0}, "MinimumPollers", "from 1 to 200"),
        ({"MinimumPollers": 201}, "MinimumPollers", "from 1 to 200"),
        ({"MaximumPollers": 0}, "MaximumPollers", "from 1 to 2000"),
        ({"MaximumPollers": 2001}, "MaximumPollers", "from 1 to 2000"),
        (
            {"MinimumPollers": 5, "MaximumPollers": 4},
            "MinimumPollers",
            "must not exceed MaximumPollers (4)",
        ),
        ({"PollerGroupName": "bad name"}, "PollerGroupName", "must use only a-z A-Z 0-9 - _"),
        ({"PollerGroupName": "g" * 129}, "PollerGroupName", "must be 1-128 characters long"),
    ],
)
def test_provisioned_poller_rules(config: dict[str, Any], field: str, fragment: str) -> None:
    assert_problem(
        minimal(ProvisionedPollerConfig=config), f"ProvisionedPollerConfig.{field}", fragment
    )


@pytest.mark.parametrize(
    ("metrics", "field", "fragment"),
    [
        (
            ["Errors"],
            "MetricsConfig.Metrics[0]",
            "must be one of EventCount, ErrorCount, KafkaMetrics",
        ),
        (
            ["EventCount", "EventCount"],
            "MetricsConfig.Metrics[1]",
            "repeats MetricsConfig.Metrics[0]",
        ),
        (
            ["EventCount", "ErrorCount", "KafkaMetrics", "EventCount"],
            "MetricsConfig.Metrics",
            "(has 4)",
        ),
    ],
)
def test_metrics_rules(metrics: list[str], field: str, fragment: str) -> None:
    assert_problem(minimal(MetricsConfig={"Metrics": metrics}), field, fragment)


@pytest.mark.parametrize(
    ("level", "ok"), [("DEBUG", True), ("WARN", True), ("ERROR", False), ("info", False)]
)
def test_system_log_level_rule(level: str, ok: bool) -> None:
    assert (
        rules_at(minimal(LoggingConfig={"SystemLogLevel": level}), "LoggingConfig.SystemLogLevel")
        == []
    ) is ok


# --- schema registry -------------------------------------------------------------------


def registry(**config: Any) -> dict[str, Any]:
    return minimal(SelfManagedKafkaEventSourceConfig={"SchemaRegistryConfig": config})


@pytest.mark.parametrize(
    "config",
    [
        {"SchemaRegistryURI": "arn:aws:glue:us-east-1:123456789012:registry/orders"},
        {
            "SchemaRegistryURI": "https://psrc-123.us-east-2.aws.confluent.cloud",
            "EventRecordFormat": "SOURCE",
            "AccessConfigs": [
                {"Type": "OAUTHBEARER_AUTH", "URI": SECRET},
                {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": CA_SECRET},
            ],
            "SchemaValidationConfigs": [{"Attribute": "KEY"}, {"Attribute": "VALUE"}],
        },
        {
            "SchemaRegistryURI": "http://localhost:8081",
            "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": "file://r.json"}],
        },
    ],
)
def test_schema_registries_aws_accepts(config: dict[str, Any]) -> None:
    assert validate_mapping(registry(**config)) == []


def test_glue_registry_is_recognised() -> None:
    mapping = parse_mapping(
        registry(SchemaRegistryURI="arn:aws:glue:us-east-1:123456789012:registry/orders")
    )
    assert mapping.schema_registry is not None
    assert mapping.schema_registry.is_glue is True


GLUE = "arn:aws:glue:us-east-1:123456789012:registry/orders"
URL = "https://registry.example.com"


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({}, "SchemaRegistryURI", "is required"),
        (
            {"SchemaRegistryURI": "ftp://registry"},
            "SchemaRegistryURI",
            "Glue registry ARN or a Confluent",
        ),
        (
            {"SchemaRegistryURI": URL, "EventRecordFormat": "AVRO"},
            "EventRecordFormat",
            "one of JSON, SOURCE",
        ),
        (
            {"SchemaRegistryURI": GLUE, "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": SECRET}]},
            "AccessConfigs",
            "must be empty for a Glue registry",
        ),
        (
            {
                "SchemaRegistryURI": URL,
                "AccessConfigs": [
                    {"Type": "BASIC_AUTH", "URI": SECRET},
                    {"Type": "OAUTHBEARER_AUTH", "URI": SECRET},
                ],
            },
            "AccessConfigs[1].Type",
            f"is a second authentication method ({REGISTRY}.AccessConfigs[0])",
        ),
        (
            {"SchemaRegistryURI": URL, "AccessConfigs": [{"Type": "IAM_AUTH", "URI": SECRET}]},
            "AccessConfigs[0].Type",
            "must be one of BASIC_AUTH, CLIENT_CERTIFICATE_TLS_AUTH",
        ),
        (
            {
                "SchemaRegistryURI": URL,
                "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": "https://vault"}],
            },
            "AccessConfigs[0].URI",
            "must be a Secrets Manager secret ARN",
        ),
        (
            {"SchemaRegistryURI": URL, "SchemaValidationConfigs": []},
            "SchemaValidationConfigs",
            "1-2 entries",
        ),
        (
            {"SchemaRegistryURI": URL, "SchemaValidationConfigs": [{"Attribute": "HEADERS"}]},
            "SchemaValidationConfigs[0].Attribute",
            "one of KEY, VALUE",
        ),
        ({"SchemaRegistryURI": URL, "Format": "JSON"}, "Format", "is not a field of"),
    ],
)
def test_schema_registry_rules(config: dict[str, Any], field: str, fragment: str) -> None:
    assert_problem(registry(**config), f"{REGISTRY}.{field}", fragment)


# --- tags and UUID ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "field", "fragment"),
    [
        ({"aws:owner": "me"}, "Tags.aws:owner", "must not start with 'aws:'"),
        ({"k" * 129: "v"}, f"Tags.{'k' * 129}", "must be a key of 1-128"),
        ({"bad#key": "v"}, "Tags.bad#key", "must be a key of 1-128"),
        ({"team": "v" * 257}, "Tags.team", "must be 0-256 characters long"),
        ({"team": "a|b"}, "Tags.team", "must use only letters"),
        ({"team": 5}, "Tags.team", "must be a string"),
        ({f"k{i}": "v" for i in range(51)}, "Tags", "at most 50 tags"),
    ],
)
def test_tag_rules(tags: dict[Any, Any], field: str, fragment: str) -> None:
    assert_problem(minimal(Tags=tags), field, fragment)


def test_unicode_tags_and_empty_values_are_accepted() -> None:
    assert validate_mapping(minimal(Tags={"équipe": "Zürich 1", "empty": ""})) == []


@pytest.mark.parametrize("value", ["not-a-uuid", "0b8e5b4e3c394f5e9a552f1f0d9d7e11", 7])
def test_uuid_rule(value: Any) -> None:
    assert rules_at(minimal(UUID=value), "UUID")


# --- UUID stability and the consumer group ---------------------------------------------


def test_derived_uuid_is_stable_and_depends_on_identity_only() -> None:
    first = parse_mapping(minimal())
    again = parse_mapping(minimal(BatchSize=5, Enabled=False))
    reordered = parse_mapping(set_path(minimal(), SERVERS, ["b-2:9092", "b-1:9092"]))
    ordered = parse_mapping(set_path(minimal(), SERVERS, ["b-1:9092", "b-2:9092"]))

    assert first.uuid == again.uuid
    assert reordered.uuid == ordered.uuid
    assert first.uuid == derive_uuid("order-processor", "orders", ["b-1.example.com:9092"], None)
    assert first.uuid_given is False


@pytest.mark.parametrize(
    "change",
    [
        {"FunctionName": "other-function"},
        {"Topics": ["payments"]},
        {
            "SelfManagedEventSource": {
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-9.example.com:9092"]}
            }
        },
        {"SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "group-2"}},
    ],
)
def test_derived_uuid_changes_with_the_identity(change: dict[str, Any]) -> None:
    assert parse_mapping(minimal(**change)).uuid != parse_mapping(minimal()).uuid


def test_given_uuid_wins_and_is_the_default_consumer_group() -> None:
    mapping = parse_mapping(minimal(UUID="0B8E5B4E-3C39-4F5E-9A55-2F1F0D9D7E11"))

    assert mapping.uuid == "0b8e5b4e-3c39-4f5e-9a55-2f1f0d9d7e11"
    assert mapping.uuid_given is True
    assert mapping.consumer_group_id == mapping.uuid


# --- CDK tokens: unresolved values are skipped ----------------------------------------


class Token:
    """Stands for a CDK token that is not a string (a number or a list)."""


def is_token(value: Any) -> bool:
    return isinstance(value, Token) or (isinstance(value, str) and "${Token[" in value)


@pytest.mark.parametrize(
    "doc",
    [
        minimal(FunctionName="${Token[TOKEN.1]}"),
        minimal(
            FunctionName="arn:aws:lambda:${Token[AWS.Region.2]}:${Token[AWS.AccountId.3]}:function:f"
        ),
        minimal(Topics=Token()),
        minimal(Topics=["${Token[TOKEN.4]}"]),
        set_path(minimal(), SERVERS, ["${Token[TOKEN.5]}", "b-2.example.com:9092"]),
        minimal(SelfManagedEventSource=Token()),
        minimal(BatchSize=Token()),
        minimal(StartingPosition="${Token[TOKEN.6]}", StartingPositionTimestamp=Token()),
        minimal(StartingPosition="${Token[TOKEN.6]}", StartingPositionTimestamp=1_700_000_000),
        minimal(SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": "${Token[TOKEN.7]}"}]),
        minimal(SourceAccessConfigurations=[Token()]),
        minimal(
            SourceAccessConfigurations=[
                {"Type": "VPC_SUBNET", "URI": "subnet:${Token[TOKEN.8]}"},
                Token(),
            ]
        ),
        minimal(DestinationConfig={"OnFailure": {"Destination": "${Token[TOKEN.9]}"}}),
        minimal(
            Topics=["${Token[T]}"],
            DestinationConfig={"OnFailure": {"Destination": "kafka://orders"}},
        ),
        minimal(ProvisionedPollerConfig={"MinimumPollers": Token(), "MaximumPollers": 1}),
        minimal(Tags={"${Token[K]}": "v", "team": "${Token[V]}"}),
        minimal(KMSKeyArn="${Token[TOKEN.10]}", UUID="${Token[TOKEN.11]}"),
        Token(),
    ],
)
def test_unresolved_values_are_not_checked(doc: Any) -> None:
    assert validate_mapping(doc, is_unresolved=is_token) == []


def test_resolved_values_are_still_checked_next_to_tokens() -> None:
    doc = minimal(
        FunctionName="${Token[TOKEN.1]}", BatchSize=0, Topics=["${Token[T]}", "${Token[T]}"]
    )

    problems = validate_mapping(doc, is_unresolved=is_token)

    assert [(p.field, p.rule) for p in problems] == [
        ("Topics", "must hold exactly 1 topic (has 2)"),
        ("BatchSize", "must be an integer from 1 to 10000"),
    ]


def test_without_the_predicate_tokens_are_plain_values() -> None:
    assert rules_at(minimal(FunctionName="${Token[TOKEN.1]}"), "FunctionName")


# --- provisioned mode and AWS-only hooks -----------------------------------------------


PROVISIONED_ONLY = [
    ("MaximumRetryAttempts", {"MaximumRetryAttempts": 3}),
    ("MaximumRecordAgeInSeconds", {"MaximumRecordAgeInSeconds": 60}),
    ("BisectBatchOnFunctionError", {"BisectBatchOnFunctionError": True}),
    ("FunctionResponseTypes", {"FunctionResponseTypes": ["ReportBatchItemFailures"]}),
    ("LoggingConfig", {"LoggingConfig": {"SystemLogLevel": "WARN"}}),
    (
        "DestinationConfig.OnFailure.Destination",
        {"DestinationConfig": {"OnFailure": {"Destination": "kafka://dlt"}}},
    ),
    (
        REGISTRY,
        {"SelfManagedKafkaEventSourceConfig": {"SchemaRegistryConfig": {"SchemaRegistryURI": URL}}},
    ),
    ("MetricsConfig.Metrics[1]", {"MetricsConfig": {"Metrics": ["EventCount", "ErrorCount"]}}),
    ("MetricsConfig.Metrics[0]", {"MetricsConfig": {"Metrics": ["KafkaMetrics"]}}),
]


@pytest.mark.parametrize(("field", "fields"), PROVISIONED_ONLY)
def test_provisioned_only_features_parse_but_are_flagged_for_aws(
    field: str, fields: dict[str, Any]
) -> None:
    doc = minimal(**fields)
    mapping = parse_mapping(doc)  # the local poller supports them in every mode

    for subject in (doc, mapping):
        problems = aws_provisioned_mode_problems(subject)
        assert [p.field for p in problems] == [field]
        assert (
            "needs provisioned mode in AWS Lambda (set ProvisionedPollerConfig)" in problems[0].rule
        )


@pytest.mark.parametrize(("field", "fields"), PROVISIONED_ONLY)
def test_provisioned_mode_allows_those_features(field: str, fields: dict[str, Any]) -> None:
    doc = minimal(ProvisionedPollerConfig={}, **fields)
    assert aws_provisioned_mode_problems(doc) == []
    assert aws_provisioned_mode_problems(parse_mapping(doc)) == []


@pytest.mark.parametrize(
    "fields",
    [
        {
            "MaximumRetryAttempts": -1,
            "MaximumRecordAgeInSeconds": -1,
            "BisectBatchOnFunctionError": False,
        },
        {"FunctionResponseTypes": []},
        {"DestinationConfig": {"OnFailure": {"Destination": QUEUE}}},
        {"MetricsConfig": {"Metrics": ["EventCount"]}},
    ],
)
def test_on_demand_features_are_not_flagged(fields: dict[str, Any]) -> None:
    assert aws_provisioned_mode_problems(minimal(**fields)) == []


def test_file_secrets_are_flagged_for_aws_only() -> None:
    doc = minimal(
        SourceAccessConfigurations=[
            {"Type": "BASIC_AUTH", "URI": "file:///run/kafka.json"},
            {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": CA_SECRET},
        ],
        SelfManagedKafkaEventSourceConfig={
            "SchemaRegistryConfig": {
                "SchemaRegistryURI": URL,
                "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": "file://registry.json"}],
            }
        },
    )
    assert validate_mapping(doc) == []

    for subject in (doc, parse_mapping(doc)):
        problems = aws_only_problems(subject)
        assert [p.field for p in problems] == [
            "SourceAccessConfigurations[0].URI",
            f"{REGISTRY}.AccessConfigs[0].URI",
        ]
        assert all("AWS Lambda needs a Secrets Manager secret ARN" in p.rule for p in problems)


def test_tokens_are_not_flagged_as_file_secrets() -> None:
    doc = minimal(SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": "file://${Token[X]}"}])
    assert aws_only_problems(doc, is_unresolved=is_token) == []


def test_filters_beyond_the_account_quota_are_flagged_for_aws_only() -> None:
    six = with_filters(*[json.dumps({"value": {"n": [i]}}) for i in range(6)])
    five = with_filters(*[json.dumps({"value": {"n": [i]}}) for i in range(5)])
    assert validate_mapping(six) == []

    (problem,) = aws_only_problems(six)

    assert problem.field == "FilterCriteria.Filters"
    assert "at most 5 filters" in problem.rule
    assert aws_only_problems(five) == []
    assert aws_only_problems(six, filter_quota=10) == []


# --- round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("doc", [minimal(), full(), minimal(ProvisionedPollerConfig={})])
def test_round_trip(doc: dict[str, Any]) -> None:
    mapping = parse_mapping(doc)
    assert parse_mapping(to_request(mapping)) == mapping


def test_to_request_writes_what_differs_from_aws_defaults() -> None:
    assert (
        to_request(parse_mapping(minimal(BatchSize=100, Enabled=True, MaximumRetryAttempts=-1)))
        == minimal()
    )
    assert to_request(parse_mapping(full())) == full()


def test_to_request_can_leave_out_our_uuid_field() -> None:
    mapping = parse_mapping(full())
    assert "UUID" not in to_request(mapping, include_uuid=False)
    assert "UUID" not in to_request(parse_mapping(minimal()))


# --- loading --------------------------------------------------------------------------


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(full()), encoding="utf-8")

    assert load_mapping(path) == parse_mapping(full())
    assert load_mapping(str(path), env={ENV_VAR: "ignored"}) == parse_mapping(full())


def test_load_from_environment() -> None:
    assert load_mapping(env={ENV_VAR: json.dumps(minimal())}) == parse_mapping(minimal())


def test_syntax_error_in_file_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text('{\n  "FunctionName": "f",\n  "BatchSize": 10,\n}\n', encoding="utf-8")

    with pytest.raises(MappingLoadError) as caught:
        load_mapping(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: invalid JSON at line 4 column 1:")


def test_syntax_error_in_environment_names_the_variable() -> None:
    with pytest.raises(
        MappingLoadError, match=rf"environment variable {ENV_VAR}: invalid JSON at line 1 column 2"
    ):
        load_mapping(env={ENV_VAR: "{oops}"})


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"BatchSize": 1, "BatchSize": 2}', encoding="utf-8")
    with pytest.raises(MappingLoadError, match="'BatchSize' appears twice"):
        load_mapping(path)


def test_missing_file_and_missing_variable(tmp_path: Path) -> None:
    with pytest.raises(MappingLoadError, match=r"cannot read mapping file .*nope\.json"):
        load_mapping(tmp_path / "nope.json")
    with pytest.raises(MappingLoadError, match=f"pass a JSON file or set {ENV_VAR}"):
        load_mapping(env={})


def test_invalid_mapping_error_names_the_source(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(minimal(BatchSize=0)), encoding="utf-8")

    with pytest.raises(MappingValidationError, match=rf"in {path} \(1 problem\)") as caught:
        load_mapping(path)

    assert caught.value.source == str(path)
    assert caught.value.problems == [
        FieldProblem("BatchSize", 0, "must be an integer from 1 to 10000")
    ]


# --- ACLs -----------------------------------------------------------------------------


def test_required_acls_use_the_uuid_group_by_default() -> None:
    mapping = parse_mapping(minimal())

    assert mapping.required_acls() == (
        AclRequirement(AclResourceType.CLUSTER, "kafka-cluster", AclOperation.DESCRIBE_CONFIGS),
        AclRequirement(AclResourceType.GROUP, mapping.uuid, AclOperation.DESCRIBE),
        AclRequirement(AclResourceType.GROUP, mapping.uuid, AclOperation.READ),
        AclRequirement(AclResourceType.TOPIC, "orders", AclOperation.DESCRIBE),
        AclRequirement(AclResourceType.TOPIC, "orders", AclOperation.READ),
    )
    assert {acl.pattern_type for acl in mapping.required_acls()} == {"LITERAL"}


def test_required_acls_with_a_group_and_a_kafka_destination() -> None:
    doc = minimal(
        SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "processors"},
        DestinationConfig={"OnFailure": {"Destination": "kafka://orders-dlt"}},
    )

    acls = parse_mapping(doc).required_acls()

    assert {(a.resource_type, a.resource_name, a.operation) for a in acls} >= {
        (AclResourceType.GROUP, "processors", AclOperation.READ),
        (AclResourceType.TOPIC, "orders-dlt", AclOperation.DESCRIBE),
        (AclResourceType.TOPIC, "orders-dlt", AclOperation.WRITE),
    }
    assert len(acls) == 7


def test_model_is_frozen() -> None:
    mapping: EventSourceMapping = parse_mapping(minimal())
    with pytest.raises(AttributeError):
        mapping.batch_size = 5  # type: ignore[misc]
