"""Bad mapping definitions: whatever the JSON, a clean validation error, never a traceback.

Hypothesis mutates a mapping that sets every field (values of any JSON type, missing
fields, unknown fields, wrong containers) and feeds raw text to the loader. Only
MappingValidationError (naming each field and rule) or MappingLoadError may come out;
a definition that passes must survive a round trip through ``to_request``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime.definition.model import (
    ENV_VAR,
    EventSourceMapping,
    MappingLoadError,
    MappingValidationError,
    aws_only_problems,
    aws_provisioned_mode_problems,
    load_mapping,
    parse_mapping,
    to_request,
)

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-AbCdEf"
FULL: dict[str, Any] = {
    "FunctionName": "order-processor",
    "Topics": ["orders"],
    "SelfManagedEventSource": {
        "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1.example.com:9092", "b-2.example.com:9092"]}
    },
    "StartingPosition": "AT_TIMESTAMP",
    "StartingPositionTimestamp": 1_700_000_000,
    "BatchSize": 500,
    "MaximumBatchingWindowInSeconds": 5,
    "Enabled": True,
    "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"value": {"status": ["ok"]}})}]},
    "SelfManagedKafkaEventSourceConfig": {
        "ConsumerGroupId": "order-processors",
        "SchemaRegistryConfig": {
            "SchemaRegistryURI": "https://registry.example.com:8081",
            "EventRecordFormat": "JSON",
            "AccessConfigs": [{"Type": "BASIC_AUTH", "URI": SECRET}],
            "SchemaValidationConfigs": [{"Attribute": "VALUE"}],
        },
    },
    "SourceAccessConfigurations": [
        {"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET},
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123456789abcdef0"},
        {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123456789abcdef0"},
    ],
    "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
    "MaximumRetryAttempts": 3,
    "MaximumRecordAgeInSeconds": 3600,
    "BisectBatchOnFunctionError": True,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "ProvisionedPollerConfig": {"MinimumPollers": 1, "MaximumPollers": 4},
    "MetricsConfig": {"Metrics": ["EventCount"]},
    "LoggingConfig": {"SystemLogLevel": "INFO"},
    "Tags": {"team": "orders"},
}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["", " ", "LATEST", "-1", "0", "arn:aws:sqs:::", "kafka://", "\x00", "é" * 300]
    )
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path (dict keys and list indexes) inside ``node``."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(FULL)


@st.composite
def mutated_mappings(draw: st.DrawFn) -> Any:
    """FULL with a few fields replaced, removed, or joined by unknown ones."""
    doc = copy.deepcopy(FULL)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        for key in path[:-1]:
            if not isinstance(parent, (dict, list)):
                break
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            _mutate(parent, path[-1], draw)
    return doc


def _mutate(parent: Any, key: Any, draw: st.DrawFn) -> None:
    action = draw(st.sampled_from(["replace", "delete", "extra"]))
    if isinstance(parent, dict) and action == "delete":
        parent.pop(key, None)
    elif isinstance(parent, dict) and action == "extra":
        parent[draw(st.text(min_size=1, max_size=20))] = draw(JSON_VALUES)
    elif isinstance(parent, (dict, list)):
        with contextlib.suppress(IndexError, TypeError):
            parent[key] = draw(JSON_VALUES)


def _parse_cleanly(doc: Any) -> EventSourceMapping | None:
    """Parse ``doc``; only a MappingValidationError that names every problem may escape."""
    try:
        mapping = parse_mapping(doc)
    except MappingValidationError as exc:
        assert exc.problems, "an error without problems"
        for problem in exc.problems:
            # An unknown key is named as it is, even when it is the empty string.
            assert problem.field or "is not a field" in problem.rule, f"no field: {problem}"
            assert problem.rule, f"a problem without a rule: {problem}"
            assert str(problem) in str(exc)
        return None
    assert isinstance(mapping, EventSourceMapping)
    return mapping


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_mappings())
def test_a_mutated_mapping_is_valid_or_a_clean_validation_error(doc: Any) -> None:
    mapping = _parse_cleanly(doc)
    if mapping is not None:
        assert parse_mapping(to_request(mapping)) == mapping
        aws_only_problems(mapping)
        aws_provisioned_mode_problems(mapping)


@FUZZ
@given(JSON_VALUES)
def test_any_json_value_is_a_clean_validation_error(doc: Any) -> None:
    assert _parse_cleanly(doc) is None


@FUZZ
@given(st.text(max_size=200) | mutated_mappings().map(json.dumps))
@example("[" * 5_000)
@example('{"FunctionName": ' * 2_000)
@example('{"a": 1, "a": 2}')
@example("NaN")
@example('{"BatchSize": 1e999}')
def test_any_text_is_a_clean_load_error(text: str) -> None:
    try:
        load_mapping(env={ENV_VAR: text})
    except MappingLoadError as exc:
        assert ENV_VAR in str(exc)
    except MappingValidationError as exc:
        assert exc.problems


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2**64, -(2**64), 1e308])
@pytest.mark.parametrize(
    "field",
    [
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "StartingPositionTimestamp",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
    ],
)
def test_extreme_numbers_are_refused_by_name(field: str, value: float) -> None:
    doc = {**FULL, field: value}
    with pytest.raises(MappingValidationError) as raised:
        parse_mapping(doc)
    assert any(problem.field == field for problem in raised.value.problems), str(raised.value)
