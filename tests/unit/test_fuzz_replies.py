"""Bad function replies: an InvokeResult at once, then success, a resume point or a failure.

A local handler may return anything: bytes, sets, NaN, huge strings, structures nested
too deeply to serialize. The invoker must answer promptly with a result (a marshal
error is a function error), never hang or raise. The ReportBatchItemFailures reply is
whatever the function sent: not JSON, huge, the wrong types, or identifiers for
partitions and offsets that were never sent. Reading it may only return lowest failed
offsets that were in the batch, or raise BatchResponseError (the whole batch failed).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime.invokers import ErrorKind, LocalHandlerInvoker
from runtime.invokers.result import reply_result
from runtime.pipeline.batch_responses import BatchResponseError, lowest_failed_offsets

SENT: dict[str, set[int]] = {"orders-0": {10, 11, 12, 13}, "orders-3": {7}}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
PARTITIONS = (
    st.sampled_from(["orders-0", "orders-3", "orders-1", "orders", "", "ORDERS-0"]) | JSON_VALUES
)
OFFSETS = st.sampled_from([7, 10, 12, 13, 14, -1, 0]) | st.integers(-(2**64), 2**64) | JSON_VALUES
IDENTIFIERS = st.fixed_dictionaries(
    {},
    optional={"partition": PARTITIONS, "offset": OFFSETS, "extra": JSON_VALUES},
)
ITEMS = (
    st.fixed_dictionaries({}, optional={"itemIdentifier": IDENTIFIERS | JSON_VALUES}) | JSON_VALUES
)
REPLIES = (
    st.fixed_dictionaries(
        {},
        optional={"batchItemFailures": st.lists(ITEMS, max_size=4) | JSON_VALUES, "x": JSON_VALUES},
    ).map(lambda reply: json.dumps(reply).encode())
    | JSON_VALUES.map(lambda reply: json.dumps(reply).encode())
    | st.binary(max_size=80)
    | st.none()
)


def _read(reply: bytes | None) -> dict[str, int] | None:
    """The lowest failed offsets, or None when the reply fails the whole batch."""
    try:
        lowest = lowest_failed_offsets(reply, SENT)
    except BatchResponseError as exc:
        assert str(exc), "an error without a reason"
        return None
    assert isinstance(lowest, dict)
    for partition, offset in lowest.items():
        assert offset in SENT[partition], f"{partition} {offset} was not in the batch"
    return lowest


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPLIES)
@example(b"not json")
@example(b"\xff\xfe")
@example(b'{"batchItemFailures": "all"}')
@example(b'{"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": "12"}}]}')
@example(b'{"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 12.0}}]}')
@example(b'{"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": true}}]}')
@example(b'{"batchItemFailures": [{"itemIdentifier": {"partition": "orders-9", "offset": 12}}]}')
@example(b'{"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 99}}]}')
@example(b"[" * 5_000)
def test_any_reply_is_a_resume_point_or_a_clean_failure(reply: bytes | None) -> None:
    _read(reply)


def test_a_huge_reply_is_read_without_trouble() -> None:
    failures = [
        {"itemIdentifier": {"partition": "orders-0", "offset": o}} for o in (13, 11)
    ] * 50_000
    reply = json.dumps({"batchItemFailures": failures, "padding": "x" * 5_000_000}).encode()
    assert _read(reply) == {"orders-0": 11}


@pytest.mark.parametrize(
    "reply",
    [
        None,
        b"",
        b"  ",
        b"null",
        b"{}",
        b'{"batchItemFailures": null}',
        b'{"batchItemFailures": []}',
    ],
)
def test_empty_replies_mean_the_whole_batch_succeeded(reply: bytes | None) -> None:
    assert _read(reply) == {}


@given(
    st.lists(
        st.sampled_from(sorted((p, o) for p, offsets in SENT.items() for o in offsets)), min_size=1
    )
)
def test_the_lowest_reported_offset_wins_per_partition(failed: list[tuple[str, int]]) -> None:
    reply: dict[str, Any] = {
        "batchItemFailures": [{"itemIdentifier": {"partition": p, "offset": o}} for p, o in failed]
    }
    expected: dict[str, int] = {}
    for partition, offset in failed:
        expected[partition] = min(offset, expected.get(partition, offset))
    assert _read(json.dumps(reply).encode()) == expected


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


HANDLER_VALUES = (
    JSON_VALUES
    | st.binary(max_size=8)
    | st.sets(st.integers(), max_size=3)
    | st.sampled_from([float("nan"), float("inf"), object(), _nested(5_000), "x" * 6_291_457])
    | st.builds(lambda key: {key: 1}, st.tuples(st.integers()))
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HANDLER_VALUES)
def test_whatever_a_local_handler_returns_the_invoker_answers_at_once(value: Any) -> None:
    invoker = LocalHandlerInvoker(lambda _event, _context: value, timeout_s=30)
    result = invoker.invoke(b'{"records": {}}', deadline_s=30)  # a hang would take 30 s
    assert result.ok or result.error_kind is ErrorKind.FUNCTION_ERROR, result
    if result.ok:
        json.loads(result.payload or b"null")  # what the poller reads is JSON


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=100)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"[" * 5_000, b'{"errorType": ' + b"[" * 5_000, b'{"errorType": 1}']),
    st.sampled_from([None, "", "Unhandled", "Handled"]),
)
def test_any_reply_from_a_service_becomes_a_result(
    payload: bytes, function_error: str | None
) -> None:
    """What Lambda or an Invoke endpoint sends back is read without raising (the poller
    would otherwise stop on a function's odd error document)."""
    result = reply_result(
        status_code=200,
        function_error=function_error,
        executed_version="$LATEST",
        payload=payload,
        request_id="request-1",
    )
    assert result.ok is (not function_error)
