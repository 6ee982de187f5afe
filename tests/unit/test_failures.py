"""FailurePolicy: the mapping's limits, validated, with AWS's rules for counting."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.definition.model import parse_mapping
from runtime.invokers import ErrorKind, InvokeResult
from runtime.observability.state import StateTransitionReason
from runtime.pipeline.failures import (
    Condition,
    FailurePolicy,
    RetryBackoff,
    describe_failure,
    is_function_error,
    stop_for,
)
from runtime.records import Record

NOW_MS = 1_700_000_000_000


def mapping(**fields: Any) -> Any:
    doc = {
        "FunctionName": "f",
        "Topics": ["orders"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9092"]}},
        **fields,
    }
    return parse_mapping(doc)


def aged(age_ms: int) -> Record:
    return Record("orders", 0, 1, NOW_MS - age_ms)


def failure(kind: ErrorKind) -> InvokeResult:
    return InvokeResult.failure(kind, "x")


def test_defaults_are_aws_defaults_retry_forever() -> None:
    policy = FailurePolicy.for_mapping(mapping())
    assert policy == FailurePolicy(-1, -1, bisect=False, report_item_failures=False)
    assert not policy.retries_exhausted(10**9)
    assert not policy.expired(aged(10**12), NOW_MS)


def test_the_mapping_fields_become_the_policy() -> None:
    policy = FailurePolicy.for_mapping(
        mapping(
            MaximumRetryAttempts=3,
            MaximumRecordAgeInSeconds=120,
            BisectBatchOnFunctionError=True,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )
    )
    assert policy == FailurePolicy(3, 120, bisect=True, report_item_failures=True)


def test_infinite_retries_with_a_destination_are_capped_at_ten() -> None:
    dlq = {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}}
    assert FailurePolicy.for_mapping(mapping(DestinationConfig=dlq)).maximum_retry_attempts == 10
    explicit = mapping(DestinationConfig=dlq, MaximumRetryAttempts=50)
    assert FailurePolicy.for_mapping(explicit).maximum_retry_attempts == 50


def test_retries_are_counted_after_the_first_invocation() -> None:
    policy = FailurePolicy(maximum_retry_attempts=2)
    assert [policy.retries_exhausted(n) for n in range(4)] == [False, False, False, True]
    assert FailurePolicy(maximum_retry_attempts=0).retries_exhausted(1)


def test_age_comes_from_the_record_timestamp() -> None:
    policy = FailurePolicy(maximum_record_age_s=60)
    assert not policy.expired(aged(60_000), NOW_MS)
    assert policy.expired(aged(60_001), NOW_MS)
    assert not policy.expired(Record("orders", 0, 1, -1), NOW_MS)  # no timestamp: unknown age


@pytest.mark.parametrize(
    ("kind", "splits"),
    [
        (ErrorKind.FUNCTION_ERROR, True),
        (ErrorKind.TIMEOUT, True),
        (ErrorKind.THROTTLED, False),
        (ErrorKind.SERVICE_ERROR, False),
        (ErrorKind.PAYLOAD_TOO_LARGE, False),
    ],
)
def test_only_function_errors_bisect_and_count(kind: ErrorKind, splits: bool) -> None:
    policy = FailurePolicy(bisect=True)
    assert policy.splits(failure(kind), 2) is splits
    assert is_function_error(failure(kind)) is splits
    assert not policy.splits(failure(kind), 1)
    assert not FailurePolicy().splits(failure(kind), 2)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"maximum_retry_attempts": -2},
            "MaximumRetryAttempts=-2 is not valid: must be -1 (infinite) or 0-10000",
        ),
        (
            {"maximum_retry_attempts": 10_001},
            "MaximumRetryAttempts=10001 is not valid: must be -1 (infinite) or 0-10000",
        ),
        (
            {"maximum_retry_attempts": True},
            "MaximumRetryAttempts=True is not valid",
        ),
        (
            {"maximum_record_age_s": 59},
            "MaximumRecordAgeInSeconds=59 is not valid: must be -1 (infinite) or 60-604800",
        ),
        (
            {"maximum_record_age_s": 604_801},
            "MaximumRecordAgeInSeconds=604801 is not valid",
        ),
    ],
)
def test_invalid_limits_are_refused_naming_the_field(fields: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        FailurePolicy(**fields)


def test_conditions_are_spelled_as_aws_spells_them() -> None:
    assert [c.value for c in Condition] == [
        "RetryAttemptsExhausted",
        "RecordAgeExceeded",
        "MaximumPayloadSizeExceeded",
        "SchemaDecodingFailed",  # ours: AWS documents no condition for a decoding failure
    ]


def test_backoff_grows_exponentially_to_its_cap() -> None:
    backoff = RetryBackoff(first_s=0.5, cap_s=3.0, jitter=False)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryBackoff(first_s=0.5, cap_s=3.0)
    assert all(0 <= jittered.delay(3) <= 2.0 for _ in range(50))


def test_config_errors_stop_the_mapping_others_do_not() -> None:
    stopped = stop_for(InvokeResult.failure(ErrorKind.CONFIG_ERROR, "AccessDenied"))
    assert stopped is not None
    assert stopped.reason is StateTransitionReason.FUNCTION_CONFIG_NOT_VALID
    assert stopped.result == "PROBLEM: AccessDenied"
    assert stop_for(failure(ErrorKind.FUNCTION_ERROR)) is None


def test_describe_failure_joins_kind_function_error_and_message() -> None:
    result = InvokeResult.failure(ErrorKind.FUNCTION_ERROR, "boom", function_error="Unhandled")
    assert describe_failure(result) == "FUNCTION_ERROR: Unhandled: boom"
