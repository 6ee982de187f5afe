"""The mapping's limits equal botocore's Lambda model: a botocore that moves one fails here."""

from __future__ import annotations

import botocore.session
import pytest

from runtime.definition import filters, limits

_MODEL = botocore.session.get_session().get_service_model("lambda")
_REQUEST = _MODEL.operation_model("CreateEventSourceMapping").input_shape


def _limits_of(shape_name: str) -> dict[str, int]:
    metadata = _MODEL.shape_for(shape_name).metadata
    return {k: metadata[k] for k in ("min", "max") if k in metadata}


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("BatchSize", {"min": 1, "max": limits.MAX_BATCH_SIZE}),
        ("MaximumBatchingWindowInSeconds", {"min": 0, "max": limits.MAX_BATCHING_WINDOW_S}),
        ("MaximumRetryAttempts", {"min": -1, "max": limits.MAX_RETRY_ATTEMPTS}),
        ("MaximumRecordAgeInSeconds", {"min": -1, "max": limits.MAX_RECORD_AGE_S}),
        ("FunctionName", {"min": 1, "max": limits.MAX_FUNCTION_NAME_LENGTH}),
    ],
)
def test_request_members_match_the_model(member: str, expected: dict[str, int]) -> None:
    assert _limits_of(_REQUEST.members[member].name) == expected


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("Pattern", {"min": 0, "max": limits.MAX_PATTERN_LENGTH}),
        ("Topic", {"min": 1, "max": limits.MAX_TOPIC_LENGTH}),
        ("Endpoint", {"min": 1, "max": limits.MAX_ENDPOINT_LENGTH}),
        ("MinimumNumberOfPollers", {"min": 1, "max": limits.MAX_MINIMUM_POLLERS}),
    ],
)
def test_shapes_match_the_model(shape: str, expected: dict[str, int]) -> None:
    assert _limits_of(shape) == expected


def test_the_filter_grammar_uses_the_same_pattern_limit() -> None:
    assert filters.MAX_PATTERN_LENGTH is limits.MAX_PATTERN_LENGTH
