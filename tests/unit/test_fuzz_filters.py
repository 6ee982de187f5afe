"""Bad filter patterns and bad record values: a clean FilterPatternError, never a crash.

Hypothesis writes patterns from the grammar's own words (operators, wrong arguments,
nesting, ``$or``), arbitrary JSON and arbitrary text. Validation may only raise
FilterPatternError; a pattern that passes must then match any record value (binary,
tombstone, deep JSON, huge numbers) with a plain True or False.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime.definition.filters import FilterPatternError, compile_filters, validate_pattern

OPERATORS = [
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "equals-ignore-case",
    "wildcard",
    "cidr",
    "$or",
    "",
    "Prefix",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
NUMERIC_ARGS = st.lists(
    st.sampled_from(["=", "<", "<=", ">", ">=", "!="])
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3),
    max_size=5,
)
RULES = st.recursive(
    SCALARS
    | st.builds(
        lambda op, arg: {op: arg},
        st.sampled_from(OPERATORS),
        JSON_VALUES
        | NUMERIC_ARGS
        | st.dictionaries(st.sampled_from(OPERATORS), JSON_VALUES, max_size=2),
    ),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)
NODES = st.recursive(
    st.lists(RULES, max_size=4),
    lambda inner: (
        st.dictionaries(st.sampled_from(["f", "g", "$or", "value", ""]), inner, max_size=3)
        | st.builds(lambda items: {"$or": items}, st.lists(inner, max_size=3))
    ),
    max_leaves=8,
)
TEXT = st.text(max_size=8)
NUMBER = st.integers(-(10**6), 10**6) | st.floats(-1e9, 1e9, allow_nan=False)
GOOD_RULES = st.lists(
    st.none()
    | TEXT
    | NUMBER
    | st.builds(lambda t: {"prefix": t}, TEXT)
    | st.builds(lambda t: {"suffix": t}, TEXT)
    | st.builds(lambda t: {"equals-ignore-case": t}, TEXT)
    | st.builds(lambda b: {"exists": b}, st.booleans())
    | st.builds(
        lambda v: {"anything-but": v}, TEXT | NUMBER | st.lists(TEXT, min_size=1, max_size=3)
    )
    | st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["=", "<", ">=", ">"]), NUMBER)
    | st.builds(lambda a, b: {"numeric": [">", a, "<=", a + abs(b) + 1]}, NUMBER, NUMBER),
    min_size=1,
    max_size=3,
)
GOOD_NODES = st.recursive(
    GOOD_RULES,
    lambda inner: st.dictionaries(st.sampled_from(["f", "g", "h"]), inner, min_size=1, max_size=3),
    max_leaves=5,
)
"""Patterns of the documented grammar, mostly valid: the matcher gets exercised too."""

PATTERNS = (
    st.builds(lambda node: {"value": node}, GOOD_NODES)
    | st.builds(lambda node: {"value": node}, NODES)
    | st.dictionaries(st.sampled_from(["value", "key", "$or", "headers"]), NODES, max_size=2)
    | JSON_VALUES
).map(json.dumps)

RECORD_VALUES = (
    st.none()
    | st.binary(max_size=64)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.sampled_from(
        [
            b"",
            b"\xff\xfe\x00",
            b"[" * 5_000,
            b'{"f":' * 3_000 + b"1" + b"}" * 3_000,
            b'{"f": 1e999}',
            b'{"f": NaN}',
            b'{"f": -Infinity}',
            b'{"f": 123456789012345678901234567890}',
            b'{"f": "\\ud800"}',
            b'{"f": 1, "f": "x"}',
        ]
    )
)

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validate(pattern: str) -> bool:
    """True when valid; a FilterPatternError with a reason is the only other outcome."""
    try:
        validate_pattern(pattern)
    except FilterPatternError as exc:
        assert str(exc), "an error without a reason"
        return False
    return True


@FUZZ
@given(PATTERNS, st.lists(RECORD_VALUES, min_size=1, max_size=4))
@example('{"value": {"f": [{"numeric": [">", 0, "<"]}]}}', [b'{"f": 1}'])
@example('{"value": {"f": [{"anything-but": {"prefix": 1}}]}}', [b'{"f": "x"}'])
@example('{"value": {"f": [{"exists": "yes"}]}}', [None])
@example('{"value": [{"prefix": ""}]}', [b"\xff"])
def test_a_pattern_is_valid_or_a_clean_error_and_valid_ones_match_anything(
    pattern: str, values: list[bytes | None]
) -> None:
    if _validate(pattern):
        matcher = compile_filters([pattern])
        for value in values:
            assert matcher.matches(value) in (True, False)


@FUZZ
@given(st.text(max_size=300))
@example("[" * 4_000)
@example('{"value":' * 400 + "[1]" + "}" * 400)
@example("\ud800")
@example('{"value": {"f": [1]}, "value": {"g": [2]}}')
def test_any_text_is_valid_or_a_clean_error(text: str) -> None:
    _validate(text)


@FUZZ
@given(st.lists(PATTERNS, min_size=1, max_size=4))
def test_an_invalid_filter_is_named_by_its_position(patterns: list[str]) -> None:
    invalid = [i for i, p in enumerate(patterns) if not _validate(p)]
    if not invalid:
        compile_filters(patterns)
        return
    with pytest.raises(FilterPatternError) as raised:
        compile_filters(patterns)
    assert f"Filters[{invalid[0]}].Pattern" in str(raised.value)


@pytest.mark.parametrize("pattern", [None, 1, b'{"value": [1]}', ["x"], {"value": [1]}])
def test_a_pattern_that_is_not_a_string_is_a_clean_error(pattern: Any) -> None:
    with pytest.raises(FilterPatternError, match="JSON string"):
        validate_pattern(pattern)
