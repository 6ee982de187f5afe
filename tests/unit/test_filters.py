"""Lambda event filtering for Kafka values, checked against AWS's documented examples.

Sources of the tables below:
- "Control which events Lambda sends to your function" (Lambda Developer Guide,
  invocation-eventfiltering): the operator table, its notes, the console examples and
  the duplicate-key example of the older revision.
- "Filtering events from Amazon MSK and self-managed Apache Kafka event sources"
  (kafka-filtering / with-kafka-filtering): the device_ID and "error" examples and the
  message-format table.
- EventBridge "Comparison operators" page, which Lambda's syntax follows.
- aws-samples/serverless-patterns lambda-esm-msk-filters-sam: AWS's MSK filter sample.
Kafka only filters on ``value``, so examples written for other sources are wrapped
in ``{"value": ...}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from runtime.definition.filters import (
    ABSENT,
    MAX_FILTERS,
    MAX_FILTERS_WITH_QUOTA_INCREASE,
    MAX_NESTING_DEPTH,
    MAX_PATTERN_LENGTH,
    FilterPatternError,
    RecordFilter,
    compile_filters,
    decode_value,
    validate_pattern,
)
from runtime.records import Record


def js(document: Any) -> bytes:
    return json.dumps(document).encode()


def on_value(rules: Any) -> str:
    return json.dumps({"value": rules})


def matches(pattern: str, value: bytes | None) -> bool:
    return compile_filters([pattern]).matches(value)


DEVICE = {"device_ID": "AB1234", "session": {"start_time": "yyyy-mm-ddThh:mm:ss", "duration": 162}}
DEVICE_PATTERN = '{ "value" : { "device_ID" : [ { "prefix":  "AB" } ] } }'
NOT_ERROR = '{ "value" : [ { "anything-but": [ "error" ] } ] }'
HELLO = base64.b64decode("SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==")  # the Kafka page's sample record
PERSON = {
    "person": {
        "name": "John Doe",
        "age": 30,
        "address": {"street": "123 Main St", "city": "Anytown", "country": "USA"},
    }
}
DDB = {"dynamodb": {"Keys": {"ID": {"S": "ABCD"}, "Number": {"N": "1234"}}}}
EMPLOYEES = {
    "employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"},
    ]
}

KAFKA_PAGE = [
    pytest.param(DEVICE_PATTERN, js(DEVICE), True, id="prefix-AB-json"),
    pytest.param(DEVICE_PATTERN, js({**DEVICE, "device_ID": "CD1234"}), False, id="prefix-CD"),
    pytest.param(NOT_ERROR, HELLO, True, id="plain-string-not-error"),
    pytest.param(NOT_ERROR, b"error", False, id="plain-string-error"),
    # The format table: a pattern applies only to the format it was written for.
    pytest.param(DEVICE_PATTERN, b"AB1234", False, id="plain-string-vs-json-pattern"),
    pytest.param(NOT_ERROR, js(DEVICE), False, id="json-vs-plain-string-pattern"),
    pytest.param(NOT_ERROR, "hello".encode("utf-16"), False, id="utf16-has-no-value"),
    pytest.param(DEVICE_PATTERN, b"\xff" + js(DEVICE), False, id="non-utf8-json-pattern"),
    pytest.param(on_value([{"exists": False}]), b"\xc3\x28", True, id="non-utf8-value-absent"),
]

OPERATOR_TABLE = [
    pytest.param(on_value({"UserID": [None]}), js({"UserID": None}), True, id="null"),
    pytest.param(on_value({"UserID": [None]}), js({"UserID": "u1"}), False, id="null-not-string"),
    pytest.param(on_value({"UserID": [None]}), js({}), False, id="null-not-absent"),
    pytest.param(on_value({"LastName": [""]}), js({"LastName": ""}), True, id="empty"),
    pytest.param(on_value({"LastName": [""]}), js({"LastName": "Doe"}), False, id="empty-no"),
    pytest.param(on_value({"Name": ["Alice"]}), js({"Name": "Alice"}), True, id="equals"),
    pytest.param(on_value({"Name": ["Alice"]}), js({"Name": "alice"}), False, id="equals-case"),
    pytest.param(
        on_value({"Name": [{"equals-ignore-case": "alice"}]}),
        js({"Name": "ALICE"}),
        True,
        id="equals-ignore-case",
    ),
    pytest.param(
        on_value({"Name": [{"equals-ignore-case": "alice"}]}),
        js({"Name": "Alicia"}),
        False,
        id="equals-ignore-case-no",
    ),
    pytest.param(
        on_value({"Location": ["New York"], "Day": ["Monday"]}),
        js({"Location": "New York", "Day": "Monday"}),
        True,
        id="and",
    ),
    pytest.param(
        on_value({"Location": ["New York"], "Day": ["Monday"]}),
        js({"Location": "New York", "Day": "Tuesday"}),
        False,
        id="and-one-fails",
    ),
    pytest.param(
        on_value({"PaymentType": ["Credit", "Debit"]}), js({"PaymentType": "Debit"}), True, id="or"
    ),
    pytest.param(
        on_value({"PaymentType": ["Credit", "Debit"]}),
        js({"PaymentType": "Cash"}),
        False,
        id="or-no",
    ),
    pytest.param(
        on_value({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}),
        js({"Location": "Boston", "Day": "Monday"}),
        True,
        id="or-multiple-fields",
    ),
    pytest.param(
        on_value({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}),
        js({"Location": "Boston", "Day": "Friday"}),
        False,
        id="or-multiple-fields-no",
    ),
    pytest.param(
        on_value({"Weather": [{"anything-but": ["Raining"]}]}),
        js({"Weather": "Sunny"}),
        True,
        id="not",
    ),
    pytest.param(
        on_value({"Weather": [{"anything-but": ["Raining"]}]}),
        js({"Weather": "Raining"}),
        False,
        id="not-no",
    ),
    pytest.param(
        on_value({"Price": [{"numeric": ["=", 100]}]}), js({"Price": 100}), True, id="numeric-eq"
    ),
    pytest.param(
        on_value({"Price": [{"numeric": ["=", 100]}]}),
        b'{"Price": 1.0e2}',
        True,
        id="numeric-eq-compares-values",
    ),
    pytest.param(
        on_value({"Price": [{"numeric": ["=", 100]}]}), js({"Price": 101}), False, id="numeric-ne"
    ),
    pytest.param(
        on_value({"Price": [{"numeric": [">", 10, "<=", 20]}]}),
        js({"Price": 20}),
        True,
        id="numeric-range-top",
    ),
    pytest.param(
        on_value({"Price": [{"numeric": [">", 10, "<=", 20]}]}),
        js({"Price": 10}),
        False,
        id="numeric-range-open-bottom",
    ),
    pytest.param(
        on_value({"Price": [{"numeric": [">", 10, "<=", 20]}]}),
        js({"Price": "15"}),
        False,
        id="numeric-needs-json-number",
    ),
    pytest.param(
        on_value({"ProductName": [{"exists": True}]}),
        js({"ProductName": "x"}),
        True,
        id="exists",
    ),
    pytest.param(
        on_value({"ProductName": [{"exists": True}]}), js({"Other": 1}), False, id="exists-no"
    ),
    pytest.param(
        on_value({"ProductName": [{"exists": False}]}),
        js({"Other": 1}),
        True,
        id="does-not-exist",
    ),
    pytest.param(
        on_value({"ProductName": [{"exists": False}]}),
        js({"ProductName": "x"}),
        False,
        id="does-not-exist-no",
    ),
    pytest.param(
        on_value({"Region": [{"prefix": "us-"}]}),
        js({"Region": "us-east-1"}),
        True,
        id="begins-with",
    ),
    pytest.param(
        on_value({"Region": [{"prefix": "us-"}]}),
        js({"Region": "eu-west-1"}),
        False,
        id="begins-with-no",
    ),
    pytest.param(
        on_value({"FileName": [{"suffix": ".png"}]}),
        js({"FileName": "photo.png"}),
        True,
        id="ends-with",
    ),
    pytest.param(
        on_value({"FileName": [{"suffix": ".png"}]}),
        js({"FileName": "photo.jpg"}),
        False,
        id="ends-with-no",
    ),
    # "For numbers, Lambda also uses string representation. 300, 300.0, and 3.0e2 are
    # not considered equal."
    pytest.param(on_value({"n": [300]}), b'{"n": 300}', True, id="number-300"),
    pytest.param(on_value({"n": [300]}), b'{"n": 300.0}', False, id="number-300.0"),
    pytest.param(on_value({"n": [300]}), b'{"n": 3.0e2}', False, id="number-3.0e2"),
    pytest.param('{"value": {"n": [300.0]}}', b'{"n": 300.0}', True, id="number-300.0-text"),
    pytest.param('{"value": {"n": [300.0]}}', b'{"n": 3.0e2}', False, id="number-float-text"),
    # "the Exists operator only works on leaf nodes"
    pytest.param(
        on_value({"person": {"address": [{"exists": True}]}}),
        js(PERSON),
        False,
        id="exists-not-on-intermediate-node",
    ),
    pytest.param(
        on_value({"person": {"name": [{"exists": True}]}}), js(PERSON), True, id="exists-leaf"
    ),
    # Multi-level filtering (DynamoDB record fragment, wrapped under value).
    pytest.param(
        on_value({"dynamodb": {"Keys": {"Number": {"N": ["4567"]}}}}),
        js(DDB),
        False,
        id="multi-level-4567",
    ),
    pytest.param(
        on_value({"dynamodb": {"Keys": {"Number": {"N": ["1234"]}}}}),
        js(DDB),
        True,
        id="multi-level-1234",
    ),
    # Console example { "Metadata" : [ 1, 2 ] } ("field Metadata is equal to 1 or 2").
    pytest.param(on_value({"Metadata": [1, 2]}), js({"Metadata": 2}), True, id="console-1-or-2"),
    pytest.param(on_value({"Metadata": [1, 2]}), js({"Metadata": 3}), False, id="console-3"),
    # Older revision: Temperature > 50 and <= 60, Location "Los Angeles".
    pytest.param(
        on_value({"Temperature": [{"numeric": [">", 50, "<=", 60]}]}),
        js({"Temperature": 60}),
        True,
        id="temperature-60",
    ),
    pytest.param(
        on_value({"Temperature": [{"numeric": [">", 50, "<=", 60]}]}),
        js({"Temperature": 50}),
        False,
        id="temperature-50",
    ),
    pytest.param(
        on_value({"Location": ["Los Angeles"]}),
        js({"Location": "Los Angeles"}),
        True,
        id="los-angeles",
    ),
    # Older revision, "Duplicate keys": Lambda uses only the last value for that key.
    pytest.param(
        '{"value": {"duplicateKey": ["hello"], "uniqueKey": ["test123"], '
        '"duplicateKey": ["world"]}}',
        js({"duplicateKey": "world", "uniqueKey": "test123"}),
        True,
        id="duplicate-key-last-wins",
    ),
    pytest.param(
        '{"value": {"duplicateKey": ["hello"], "uniqueKey": ["test123"], '
        '"duplicateKey": ["world"]}}',
        js({"duplicateKey": "hello", "uniqueKey": "test123"}),
        False,
        id="duplicate-key-first-ignored",
    ),
]

EVENTBRIDGE_SYNTAX = [
    pytest.param(
        on_value({"state": [{"anything-but": "initializing"}]}),
        js({"state": "running"}),
        True,
        id="anything-but-single-string",
    ),
    pytest.param(
        on_value({"x-limit": [{"anything-but": 123}]}),
        js({"x-limit": 123}),
        False,
        id="anything-but-single-number",
    ),
    pytest.param(
        on_value({"x-limit": [{"anything-but": [100, 200, 300]}]}),
        js({"x-limit": 301.8}),
        True,
        id="anything-but-numbers",
    ),
    pytest.param(
        on_value({"x-limit": [{"anything-but": [100, 200, 300]}]}),
        js({"x-limit": 200}),
        False,
        id="anything-but-numbers-hit",
    ),
    pytest.param(
        on_value({"service": [{"prefix": {"equals-ignore-case": "eventb"}}]}),
        js({"service": "EventBridge"}),
        True,
        id="prefix-ignore-case",
    ),
    pytest.param(
        on_value({"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]}),
        js({"service": "EVENTBRIDGE"}),
        True,
        id="suffix-ignore-case",
    ),
    pytest.param(
        on_value({"resources": ["arn:b"]}),
        js({"resources": ["arn:a", "arn:b"]}),
        True,
        id="array-intersection",
    ),
    pytest.param(
        on_value({"employees": {"firstName": ["Anna"]}}),
        js(EMPLOYEES),
        True,
        id="array-of-objects",
    ),
    pytest.param(
        on_value({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}),
        js(EMPLOYEES),
        False,
        id="array-consistent-matching",
    ),
    pytest.param(
        on_value({"detail": {"c-count": [{"exists": False}]}}),
        js({"detail": {"c-count": {"c1": 100}}}),
        True,
        id="exists-false-on-intermediate-node",
    ),
]

MSK_SAMPLE_EVENT = {"kind": "Event", "responseStatus": {"code": 300}}
AWS_MSK_SAMPLE = [
    pytest.param('{"value":{"kind":["Event"]}}', js(MSK_SAMPLE_EVENT), True, id="2-kind"),
    pytest.param(
        '{"value":{"kind":["Event"],"responseStatus":{"code":[{"numeric":["=",300]}]}}}',
        js(MSK_SAMPLE_EVENT),
        True,
        id="3-kind-and-code",
    ),
    pytest.param(
        '{"value":{"kind":[{"anything-but":["Event"]}]}}',
        js(MSK_SAMPLE_EVENT),
        False,
        id="5-not-event",
    ),
    pytest.param(
        '{"value":{"region":[{"prefix":"us-"}]}}', js({"region": "us-west-2"}), True, id="6-us"
    ),
    pytest.param(
        '{"value":{"responseStatus":{"code":[{"numeric":[">=",300,"<=",350]}]}}}',
        js({"responseStatus": {"code": 350}}),
        True,
        id="7-between-inclusive",
    ),
    pytest.param(
        '{"value":[{"prefix":"OrderNumber"}]}', b"OrderNumber: 42", True, id="8-plain-prefix"
    ),
]


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    KAFKA_PAGE + OPERATOR_TABLE + EVENTBRIDGE_SYNTAX + AWS_MSK_SAMPLE,
)
def test_documented_examples(pattern: str, value: bytes, expected: bool) -> None:
    validate_pattern(pattern)
    assert matches(pattern, value) is expected


def test_aws_sample_multiple_filters_are_ored() -> None:
    record_filter = compile_filters(
        [
            '{"value":{"responseStatus":{"code":[{"numeric":[">=",300]}]}}}',
            '{"value":{"RBAC":[true]}}',
        ]
    )
    assert record_filter.matches(js({"responseStatus": {"code": 301}}))
    assert record_filter.matches(js({"RBAC": True}))
    assert not record_filter.matches(js({"RBAC": False, "responseStatus": {"code": 200}}))


INVALID = [
    pytest.param(
        on_value({"data": {"temperature": [{"numeric": [">", 0, ">", 5]}]}}),
        "value.data.temperature[0].numeric[2]",
        "numeric range must end with an upper bound ('<' or '<='), got \">\"",
        id="numeric-range-two-lower-bounds",
    ),
    pytest.param(
        on_value({"a": [{"prefx": "x"}]}),
        "value.a[0].prefx",
        "unknown operator 'prefx' (did you mean 'prefix'?)",
        id="unknown-operator",
    ),
    pytest.param("[]", "", "pattern must be a JSON object, got array", id="array-pattern"),
    pytest.param('"value"', "", "pattern must be a JSON object, got string", id="string-pattern"),
    pytest.param("{}", "", "pattern must have at least one field", id="empty-pattern"),
    pytest.param(
        "not json", "", "pattern must be valid JSON: Expecting value at line 1 column 1", id="json"
    ),
    pytest.param(
        '{"value": [NaN]}', "", "pattern must be valid JSON: NaN is not a JSON number", id="nan"
    ),
    pytest.param(
        '{"value": {"a": "x"}}',
        "value.a",
        'leaf values must be arrays of rules (or objects to go deeper), got string "x"',
        id="leaf-not-array",
    ),
    pytest.param(
        '{"value": 5}',
        "value",
        "leaf values must be arrays of rules (or objects to go deeper), got number 5",
        id="value-not-array",
    ),
    pytest.param(
        '{"key": ["abc"]}',
        "key",
        "Kafka event source mappings filter only on 'value'; field 'key' cannot be filtered",
        id="key-not-filterable",
    ),
    pytest.param(
        '{ "Metadata" : [ 1, 2 ] }',
        "Metadata",
        "Kafka event source mappings filter only on 'value'; field 'Metadata' cannot be filtered",
        id="lambda-console-example-is-not-kafka",
    ),
    pytest.param(
        '{"topic":[{"prefix":"ESMFiltersDemoTopic"}],"value":[{"prefix":"us-west"}]}',
        "topic",
        "Kafka event source mappings filter only on 'value'; field 'topic' cannot be filtered",
        id="aws-sample-9-metadata",
    ),
    pytest.param(
        '{"value": {}}', "value", "object must have at least one field", id="empty-object"
    ),
    pytest.param(
        '{"value": []}',
        "value",
        "a rule list must not be empty (use [null] to match a null value)",
        id="empty-rules",
    ),
    pytest.param(
        '{"value": [[1]]}',
        "value[0]",
        "rules must be literals or operator objects; arrays cannot nest",
        id="nested-array",
    ),
    pytest.param(
        '{"value": [{"prefix": "a", "suffix": "b"}]}',
        "value[0]",
        "an operator object must have exactly one key, got 2: 'prefix', 'suffix'",
        id="two-operators",
    ),
    pytest.param(
        '{"value": [{}]}',
        "value[0]",
        "an operator object must have exactly one key, got 0: none",
        id="no-operator",
    ),
    pytest.param(
        '{"value": [{"exists": "yes"}]}',
        "value[0].exists",
        'exists must be true or false, got "yes"',
        id="exists-not-bool",
    ),
    pytest.param(
        on_value({"n": [{"numeric": [">", "5"]}]}),
        "value.n[0].numeric[1]",
        'numeric bound must be a JSON number, got "5"',
        id="numeric-bound-string",
    ),
    pytest.param(
        on_value({"n": [{"numeric": [">", True]}]}),
        "value.n[0].numeric[1]",
        "numeric bound must be a JSON number, got true",
        id="numeric-bound-bool",
    ),
    pytest.param(
        on_value({"n": [{"numeric": ["~", 5]}]}),
        "value.n[0].numeric[0]",
        'numeric operator must be one of =, <, <=, >, >=; got "~"',
        id="numeric-operator",
    ),
    pytest.param(
        on_value({"n": [{"numeric": [">", 5, "<", 1]}]}),
        "value.n[0].numeric[3]",
        "numeric range lower bound 5 must be less than upper bound 1",
        id="numeric-empty-range",
    ),
    pytest.param(
        on_value({"n": [{"numeric": ["<", 5, ">", 1]}]}),
        "value.n[0].numeric[0]",
        "numeric range must start with a lower bound ('>' or '>='), got \"<\"",
        id="numeric-range-order",
    ),
    pytest.param(
        on_value({"n": [{"numeric": ["=", 5, "<", 9]}]}),
        "value.n[0].numeric[0]",
        "numeric range must start with a lower bound ('>' or '>='), got \"=\"",
        id="numeric-equals-in-range",
    ),
    pytest.param(
        on_value({"n": [{"numeric": [">", 5, "<"]}]}),
        "value.n[0].numeric",
        'numeric needs ["<op>", number] or [">"|">=", low, "<"|"<=", high], got [">", 5, "<"]',
        id="numeric-length",
    ),
    pytest.param(
        on_value({"r": [{"anything-but": {"prefix": "us-"}}]}),
        "value.r[0].anything-but",
        "anything-but with 'prefix' works on EventBridge event buses only; "
        "Lambda event filtering supports anything-but with a value or a list of values",
        id="anything-but-prefix",
    ),
    pytest.param(
        on_value({"r": [{"anything-but": ["a", 1]}]}),
        "value.r[0].anything-but[1]",
        "anything-but takes a string, a number, or a list of only strings or only numbers; got 1",
        id="anything-but-mixed",
    ),
    pytest.param(
        on_value({"r": [{"anything-but": []}]}),
        "value.r[0].anything-but",
        "anything-but needs at least one value",
        id="anything-but-empty",
    ),
    pytest.param(
        on_value({"r": [{"anything-but": None}]}),
        "value.r[0].anything-but",
        "anything-but takes a string, a number, or a list of only strings or only numbers; "
        "got null",
        id="anything-but-null",
    ),
    pytest.param(
        on_value({"f": [{"wildcard": "*/lib/*"}]}),
        "value.f[0].wildcard",
        "operator 'wildcard' works on EventBridge event buses only; "
        "Lambda event filtering does not support it",
        id="wildcard",
    ),
    pytest.param(
        on_value({"ip": [{"cidr": "10.0.0.0/24"}]}),
        "value.ip[0].cidr",
        "operator 'cidr' works on EventBridge event buses only; "
        "Lambda event filtering does not support it",
        id="cidr",
    ),
    pytest.param(
        on_value({"r": [{"prefix": 5}]}),
        "value.r[0].prefix",
        'prefix needs a string or {"equals-ignore-case": string}, got 5',
        id="prefix-number",
    ),
    pytest.param(
        on_value({"r": [{"suffix": {"equals-ignore-case": 5}}]}),
        "value.r[0].suffix.equals-ignore-case",
        "suffix needs a string, got 5",
        id="suffix-ignore-case-number",
    ),
    pytest.param(
        on_value({"r": [{"equals-ignore-case": ["a"]}]}),
        "value.r[0].equals-ignore-case",
        'equals-ignore-case needs a string, got ["a"]',
        id="equals-ignore-case-list",
    ),
    pytest.param(
        '{"$or": [{"value": ["a"]}]}',
        "$or",
        '$or must be an array of at least two pattern objects, got [{"value": ["a"]}]',
        id="or-one-alternative",
    ),
    pytest.param(
        '{"$or": [{"value": ["a"]}, {"key": ["b"]}]}',
        "$or[1].key",
        "Kafka event source mappings filter only on 'value'; field 'key' cannot be filtered",
        id="or-alternative-key",
    ),
    pytest.param(
        '{"value": {"$or": [{"a": ["x"]}, "b"]}}',
        "value.$or[1]",
        "object must be a JSON object, got string",
        id="or-alternative-not-object",
    ),
]


@pytest.mark.parametrize(("pattern", "path", "reason"), INVALID)
def test_invalid_patterns_name_path_and_rule(pattern: str, path: str, reason: str) -> None:
    with pytest.raises(FilterPatternError) as caught:
        validate_pattern(pattern)
    assert (caught.value.path, caught.value.reason) == (path, reason)
    assert str(caught.value) == (f"{path}: {reason}" if path else reason)


def test_pattern_length_limit_is_4096_characters() -> None:
    fitting = '{"value": ["x"]}'.ljust(MAX_PATTERN_LENGTH)
    validate_pattern(fitting)
    with pytest.raises(FilterPatternError) as caught:
        validate_pattern(fitting + " ")
    assert caught.value.path == ""
    assert caught.value.reason == "pattern is 4097 characters long; Lambda allows at most 4096"


def test_aws_limits_are_exposed() -> None:
    assert (MAX_PATTERN_LENGTH, MAX_FILTERS, MAX_FILTERS_WITH_QUOTA_INCREASE) == (4096, 5, 10)


def test_non_string_pattern_is_refused() -> None:
    with pytest.raises(FilterPatternError, match="pattern must be a JSON string, got dict"):
        validate_pattern({"value": ["x"]})  # type: ignore[arg-type]


def test_deep_nesting_is_refused_before_it_can_exhaust_the_stack() -> None:
    deep: Any = ["x"]
    for _ in range(MAX_NESTING_DEPTH):
        deep = {"a": deep}
    with pytest.raises(FilterPatternError, match="nests deeper than 100 levels"):
        validate_pattern(json.dumps({"value": deep}))


def test_deepest_accepted_pattern_still_matches() -> None:
    pattern: Any = ["x"]
    document: Any = "x"
    for _ in range(MAX_NESTING_DEPTH - 3):
        pattern, document = {"a": pattern}, {"a": document}
    assert matches(on_value(pattern), js(document))


def test_compile_filters_names_the_faulty_filter() -> None:
    with pytest.raises(FilterPatternError) as caught:
        compile_filters([on_value(["ok"]), on_value({"a": [{"prefx": "x"}]})])
    assert caught.value.path == "Filters[1].Pattern.value.a[0].prefx"
    with pytest.raises(FilterPatternError) as caught:
        compile_filters([on_value(["ok"]), "[]"])
    assert caught.value.path == "Filters[1].Pattern"


# --------------------------------------------------------------------------- values


def test_no_filters_let_every_record_through() -> None:
    record_filter = compile_filters([])
    assert len(record_filter) == 0
    assert record_filter.matches(None)
    assert record_filter.matches(b"\xff")


def test_matches_record_looks_at_the_value_only() -> None:
    record_filter = compile_filters([on_value(["wanted"])])
    record = Record(topic="t", partition=0, offset=1, timestamp_ms=0, key=b"wanted", value=b"no")
    assert not record_filter.matches_record(record)
    assert record_filter.matches_record(
        Record(topic="t", partition=0, offset=2, timestamp_ms=0, key=b"no", value=b"wanted")
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (on_value([{"exists": False}]), True),
        (on_value([{"exists": True}]), False),
        (on_value([None]), False),
        (on_value([{"anything-but": ["x"]}]), False),
        (on_value({"a": [{"exists": False}]}), False),
    ],
)
def test_tombstone_has_no_value(pattern: str, expected: bool) -> None:
    assert matches(pattern, None) is expected


def test_empty_value_is_the_empty_string() -> None:
    assert matches(on_value([""]), b"")
    assert not matches(on_value([{"exists": False}]), b"")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b' \n\t{"a": [1, 2]} ', {"a": [1, 2]}),
        (b"42", "42"),
        (b"[1, 2]", "[1, 2]"),
        (b'"quoted"', '"quoted"'),
        (b"{not json", "{not json"),
        (b'{"a": NaN}', '{"a": NaN}'),
        ("naïve".encode(), "naïve"),
        (b"\xff\xfe", ABSENT),
        (None, ABSENT),
    ],
)
def test_decode_value_sorts_objects_strings_and_absent(raw: bytes | None, decoded: Any) -> None:
    assert decode_value(raw) == decoded


def test_json_scalars_are_plain_strings() -> None:
    assert matches(on_value(["42"]), b"42")
    assert not matches(on_value([{"numeric": [">", 0]}]), b"42")


def test_literal_types_are_strict() -> None:
    assert not matches(on_value({"f": [True]}), js({"f": 1}))
    assert not matches(on_value({"f": [1]}), js({"f": True}))
    assert not matches(on_value({"f": ["1"]}), js({"f": 1}))
    assert not matches(on_value({"f": [None]}), js({"f": "null"}))
    assert matches(on_value({"f": [False]}), js({"f": False}))


def test_nested_arrays_are_flattened_and_objects_are_not_leaves() -> None:
    assert matches(on_value({"a": [2]}), js({"a": [[1, [2]]]}))
    assert not matches(on_value({"a": [{"exists": True}]}), js({"a": [{"b": 1}]}))
    assert matches(on_value({"a": [{"exists": False}]}), js({"a": []}))


def test_anything_but_needs_a_present_value_of_any_other_kind() -> None:
    not_error = on_value({"s": [{"anything-but": ["error"]}]})
    assert not matches(not_error, js({}))
    assert matches(not_error, js({"s": 5}))
    assert matches(not_error, js({"s": None}))
    assert matches(not_error, js({"s": ["error", "ok"]}))
    not_100 = on_value({"n": [{"anything-but": [100]}]})
    assert not matches(not_100, b'{"n": 100.0}')
    assert matches(not_100, js({"n": "100"}))
    assert matches(not_100, js({"n": True}))


def test_exists_false_does_not_match_null() -> None:
    assert not matches(on_value({"f": [{"exists": False}]}), js({"f": None}))


def test_string_operators_ignore_non_strings() -> None:
    for rule in ({"prefix": "1"}, {"suffix": "1"}, {"equals-ignore-case": "1"}):
        assert not matches(on_value({"f": [rule]}), js({"f": 1}))


def test_top_level_or_mixes_string_and_object_patterns() -> None:
    pattern = '{"$or": [{"value": ["ping"]}, {"value": {"type": ["ping"]}}]}'
    assert matches(pattern, b"ping")
    assert matches(pattern, js({"type": "ping"}))
    assert not matches(pattern, js({"type": "pong"}))


def test_or_inside_an_array_of_objects_keeps_elements_apart() -> None:
    pattern = on_value({"items": {"sku": ["a"], "$or": [{"qty": [1]}, {"gift": [True]}]}})
    assert matches(pattern, js({"items": [{"sku": "b", "qty": 1}, {"sku": "a", "gift": True}]}))
    assert not matches(pattern, js({"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}))


def test_float_literals_compare_by_spelling_alongside_other_filters() -> None:
    record_filter = compile_filters([on_value({"k": ["x"]}), '{"value": {"p": [301.5]}}'])
    assert record_filter.matches(b'{"p": 301.5}')
    assert not record_filter.matches(b'{"p": 3.015e2}')
    assert record_filter.matches(b'{"p": 3.015e2, "k": "x"}')


def test_record_filter_keeps_its_patterns() -> None:
    patterns = [on_value(["a"]), on_value(["b"])]
    record_filter = compile_filters(patterns)
    assert isinstance(record_filter, RecordFilter)
    assert record_filter.patterns == tuple(patterns)
    assert len(record_filter) == 2


# --------------------------------------------------------------------------- properties

KEYS = st.text(min_size=1, max_size=8).filter(lambda key: key != "$or")
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
JSON_OBJECTS = st.dictionaries(KEYS, JSON_VALUES, min_size=1, max_size=5)
NUMBERS = st.integers(min_value=-(10**9), max_value=10**9) | st.floats(
    min_value=-1e9, max_value=1e9, allow_nan=False
)
PLAIN_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


def scalars_in(values: list[Any]) -> list[Any]:
    found: list[Any] = []
    for item in values:
        if isinstance(item, list):
            found.extend(scalars_in(item))
        elif not isinstance(item, dict):
            found.append(item)
    return found


def equality_pattern(document: dict[str, Any]) -> dict[str, Any]:
    """Every field of ``document`` as an equals rule on its own value(s)."""
    pattern: dict[str, Any] = {}
    for key, item in document.items():
        if isinstance(item, dict):
            nested = equality_pattern(item)
            if nested:
                pattern[key] = nested
        elif isinstance(item, list):
            found = scalars_in(item)
            if found:
                pattern[key] = found
        else:
            pattern[key] = [item]
    return pattern


@given(JSON_OBJECTS)
def test_a_pattern_of_an_objects_own_values_matches_it(document: dict[str, Any]) -> None:
    pattern = equality_pattern(document)
    assume(pattern)
    text = on_value(pattern)
    assume(len(text) <= MAX_PATTERN_LENGTH)
    assert matches(text, js(document))


@given(SCALARS.filter(lambda v: isinstance(v, str) or (v is not None and not isinstance(v, bool))))
def test_anything_but_a_value_never_matches_that_value(excluded: Any) -> None:
    assert not matches(on_value({"f": [{"anything-but": [excluded]}]}), js({"f": excluded}))
    assert not matches(on_value({"f": [{"anything-but": excluded}]}), js({"f": [excluded]}))


@given(PLAIN_TEXT, PLAIN_TEXT)
def test_anything_but_on_plain_strings(excluded: str, other: str) -> None:
    assume(decode_value(excluded.encode()) == excluded)
    assume(decode_value(other.encode()) == other)
    pattern = on_value([{"anything-but": [excluded]}])
    assert not matches(pattern, excluded.encode())
    assert matches(pattern, other.encode()) is (other != excluded)


@given(
    NUMBERS,
    NUMBERS,
    NUMBERS,
    st.sampled_from([">", ">="]),
    st.sampled_from(["<", "<="]),
)
def test_numeric_range_agrees_with_python(
    low: float, high: float, value: float, lower_op: str, upper_op: str
) -> None:
    assume(low < high)
    pattern = on_value({"n": [{"numeric": [lower_op, low, upper_op, high]}]})
    above = value > low if lower_op == ">" else value >= low
    below = value < high if upper_op == "<" else value <= high
    assert matches(pattern, js({"n": value})) is (above and below)


@given(NUMBERS, NUMBERS, st.sampled_from(["=", "<", "<=", ">", ">="]))
def test_single_numeric_comparison_agrees_with_python(bound: float, value: float, op: str) -> None:
    expected = {
        "=": value == bound,
        "<": value < bound,
        "<=": value <= bound,
        ">": value > bound,
        ">=": value >= bound,
    }[op]
    assert matches(on_value({"n": [{"numeric": [op, bound]}]}), js({"n": value})) is expected


@given(PLAIN_TEXT, PLAIN_TEXT)
def test_prefix_and_suffix_of_a_string_match_it(head: str, tail: str) -> None:
    document = js({"s": head + tail})
    assert matches(on_value({"s": [{"prefix": head}]}), document)
    assert matches(on_value({"s": [{"suffix": tail}]}), document)


ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126))


@given(ASCII, ASCII)
def test_ignore_case_operators_match_any_ascii_casing(head: str, tail: str) -> None:
    document = js({"s": head.swapcase() + tail})
    assert matches(on_value({"s": [{"prefix": {"equals-ignore-case": head}}]}), document)
    assert matches(on_value({"s": [{"suffix": {"equals-ignore-case": tail.swapcase()}}]}), document)
    assert matches(on_value({"s": [{"equals-ignore-case": head + tail.swapcase()}]}), document)


def test_ignore_case_uses_unicode_case_folding() -> None:
    assert matches(on_value({"s": [{"equals-ignore-case": "STRASSE"}]}), js({"s": "straße"}))
    assert matches(
        on_value({"s": [{"prefix": {"equals-ignore-case": "\u039c"}}]}), js({"s": "\u00b5s"})
    )


POOL = [
    on_value({"a": [1]}),
    on_value({"b": [{"prefix": "x"}]}),
    on_value({"a": [{"numeric": [">", 0]}]}),
    on_value([{"anything-but": ["error"]}]),
    on_value({"c": [{"exists": False}]}),
]


@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=5), JSON_OBJECTS | PLAIN_TEXT)
def test_filters_are_ored(patterns: list[str], document: Any) -> None:
    value = document.encode() if isinstance(document, str) else js(document)
    expected = any(matches(pattern, value) for pattern in patterns)
    assert compile_filters(patterns).matches(value) is expected


@given(st.text(max_size=200) | JSON_VALUES.map(json.dumps))
def test_validation_fails_only_with_filter_pattern_error(pattern: str) -> None:
    try:
        validate_pattern(pattern)
    except FilterPatternError as exc:
        assert exc.reason
