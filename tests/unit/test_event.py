"""The Lambda Kafka event: exact bytes, exact size, and what real parsers read from it."""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.shared.functions import decode_header_bytes
from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from aws_lambda_powertools.utilities.parser.models import KafkaSelfManagedEventModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from runtime.pipeline.event import (
    MAX_PAYLOAD_BYTES,
    EventEncodingError,
    PayloadBuilder,
    PayloadSize,
    assemble,
    build_event,
    encode_record,
    encode_run,
)
from runtime.records import Record, TimestampType, partition_runs

SERVERS = ["b-1.example:9092", "b-2.example:9092"]
INT64 = (-(2**63), 2**63 - 1)

# ---------------------------------------------------------------- helpers


def strict_loads(payload: bytes) -> Any:
    """json.loads that fails on any float or NaN: every number Lambda sends is an integer."""

    def no_float(text: str) -> Any:
        raise AssertionError(f"non-integer number {text} in the event")

    return json.loads(payload, parse_float=no_float, parse_constant=no_float)


def build(records: list[Record], servers: list[str] = SERVERS) -> tuple[PayloadBuilder, bytes]:
    builder = PayloadBuilder(servers)
    for record in records:
        builder.add(record)
    return builder, builder.payload()


def assert_go_and_rust_can_read(event: dict[str, Any]) -> None:
    """The shapes of aws-lambda-go events.KafkaEvent and the Rust aws_lambda_events crate.

    Go: Partition/Offset int64, Timestamp int64 millis, Key/Value string (omitempty),
    Headers []map[string]JSONNumberBytes which unmarshals each value as []int8.
    Rust: partition/offset i64, key/value Option<String>, headers (required, not null)
    Vec<HashMap<String, Vec<i8>>>. Checked here as the intersection of both.
    """
    assert isinstance(event["eventSource"], str)
    assert isinstance(event["bootstrapServers"], str)
    assert isinstance(event["records"], dict)
    for records in event["records"].values():
        assert isinstance(records, list)
        for record in records:
            assert isinstance(record["topic"], str)
            assert isinstance(record["timestampType"], str)
            for name in ("partition", "offset", "timestamp"):
                assert type(record[name]) is int
                assert INT64[0] <= record[name] <= INT64[1]
            for name in ("key", "value"):
                assert name not in record or isinstance(record[name], str)
            assert isinstance(record["headers"], list)
            for header in record["headers"]:
                assert isinstance(header, dict)
                for name, values in header.items():
                    assert isinstance(name, str)
                    assert isinstance(values, list)
                    assert all(type(v) is int and -128 <= v <= 127 for v in values)


# ---------------------------------------------------------------- strategies

binary = st.binary(max_size=64)
any_value = st.none() | binary
any_timestamp = st.integers(*INT64)
headers = st.lists(
    st.tuples(
        st.sampled_from(["trace", "Trace", "x-id", 'q"uote', "é∂", ""]) | st.text(), any_value
    ),
    max_size=5,
).map(tuple)
topics = st.sampled_from(["orders", "a-1", 'weird"\\topic\n', "ünïcode"]) | st.text(min_size=1)


@st.composite
def record_batches(
    draw: st.DrawFn,
    timestamps: st.SearchStrategy[int] = any_timestamp,
    values: st.SearchStrategy[bytes | None] = any_value,
) -> list[Record]:
    """Records over a few partitions, offsets ascending within each, interleaved."""
    slots = draw(
        st.lists(st.tuples(topics, st.integers(0, 3)), min_size=1, max_size=3, unique=True)
    )
    picks = draw(st.lists(st.sampled_from(slots), min_size=1, max_size=25))
    next_offset: dict[tuple[str, int], int] = defaultdict(int)
    records = []
    for topic, partition in picks:
        offset = next_offset[(topic, partition)] + draw(st.integers(0, 2**40))
        next_offset[(topic, partition)] = offset + 1
        records.append(
            Record(
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp_ms=draw(timestamps),
                timestamp_type=draw(st.sampled_from(TimestampType)),
                key=draw(st.none() | binary),
                value=draw(values),
                headers=draw(headers),
            )
        )
    return records


servers_lists = st.lists(
    st.text(min_size=1).filter(lambda s: "," not in s), min_size=1, max_size=10
) | st.just(SERVERS)

# ---------------------------------------------------------------- the documented event


def test_documented_example_is_reproduced_byte_for_byte() -> None:
    documented = {
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": "b-1.example:9092,b-2.example:9092",
        "records": {
            "mytopic-0": [
                {
                    "topic": "mytopic",
                    "partition": 0,
                    "offset": 15,
                    "timestamp": 1545084650987,
                    "timestampType": "CREATE_TIME",
                    "key": "YWJj",
                    "value": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
                    "headers": [
                        {"headerKey": [104, 101, 97, 100, 101, 114, 86, 97, 108, 117, 101]}
                    ],
                }
            ]
        },
    }
    record = Record(
        "mytopic", 0, 15, 1545084650987, key=b"abc", value=b"Hello, this is a test.",
        headers=(("headerKey", b"headerValue"),),
    )  # fmt: skip
    builder, payload = build([record])
    assert payload == json.dumps(documented, separators=(",", ":")).encode()
    assert builder.size == len(payload)


def test_max_payload_is_lambdas_six_megabytes() -> None:
    assert MAX_PAYLOAD_BYTES == 6 * 1024 * 1024


def test_key_is_omitted_when_the_record_has_none_but_kept_when_empty() -> None:
    event = build_event(
        [Record("t", 0, 1, 1, value=b"v"), Record("t", 0, 2, 1, key=b"", value=b"v")], SERVERS
    )
    first, second = event["records"]["t-0"]
    assert "key" not in first
    assert second["key"] == ""


def test_tombstone_has_no_value_field_and_empty_value_is_an_empty_string() -> None:
    event = build_event(
        [Record("t", 0, 1, 1, key=b"k"), Record("t", 0, 2, 1, key=b"k", value=b"")], SERVERS
    )
    tombstone, empty = event["records"]["t-0"]
    assert "value" not in tombstone
    assert tombstone["key"] == "aw=="
    assert empty["value"] == ""


def test_headers_are_always_present_ordered_repeated_and_signed() -> None:
    record = Record(
        "t", 0, 1, 1, value=b"v",
        headers=(("b", b"\x00\x7f\x80\xff"), ("a", b"1"), ("b", b""), ("a", b"2")),
    )  # fmt: skip
    without = Record("t", 0, 2, 1, value=b"v")
    event = build_event([record, without], SERVERS)
    with_headers, no_headers = event["records"]["t-0"]
    assert with_headers["headers"] == [
        {"b": [0, 127, -128, -1]},
        {"a": [49]},
        {"b": []},
        {"a": [50]},
    ]
    assert no_headers["headers"] == []


def test_header_with_null_value_becomes_an_empty_object_like_aws_sends() -> None:
    record = Record("t", 0, 1, 1, value=b"v", headers=(("a", b"1"), ("gone", None), ("c", b"3")))
    assert b'"headers":[{"a":[49]},{},{"c":[51]}]' in encode_record(record)


def test_log_append_time_and_integer_fields_keep_their_json_types() -> None:
    record = Record("t", 7, 2**62, 1_700_000_000_123, TimestampType.LOG_APPEND_TIME, b"k", b"v")
    _, payload = build([record])
    (sent,) = strict_loads(payload)["records"]["t-7"]
    assert sent["timestampType"] == "LOG_APPEND_TIME"
    assert (sent["partition"], sent["offset"], sent["timestamp"]) == (7, 2**62, 1_700_000_000_123)
    assert all(type(sent[name]) is int for name in ("partition", "offset", "timestamp"))
    assert list(sent) == [
        "topic", "partition", "offset", "timestamp", "timestampType", "key", "value", "headers",
    ]  # fmt: skip


def test_several_partitions_share_a_payload_in_first_seen_order() -> None:
    records = [
        Record("t", 2, 10, 1, value=b"a"),
        Record("t", 0, 5, 1, value=b"b"),
        Record("t", 2, 11, 1, value=b"c"),
        Record("t", 1, 1, 1, value=b"d"),
        Record("t", 0, 9, 1, value=b"e"),
    ]
    event = build_event(records, SERVERS)
    assert list(event["records"]) == ["t-2", "t-0", "t-1"]
    assert [r["offset"] for r in event["records"]["t-2"]] == [10, 11]
    assert [r["offset"] for r in event["records"]["t-0"]] == [5, 9]
    assert event["bootstrapServers"] == "b-1.example:9092,b-2.example:9092"
    assert event["eventSource"] == "SelfManagedKafka"


def test_records_map_key_is_topic_dash_partition() -> None:
    event = build_event([Record("my-topic.v2", 12, 0, 1, value=b"x")], ["h:1"])
    assert list(event["records"]) == ["my-topic.v2-12"]


def test_an_empty_builder_is_a_valid_event_with_no_records() -> None:
    builder = PayloadBuilder(["h:9092"])
    assert strict_loads(builder.payload())["records"] == {}
    assert builder.size == len(builder.payload())
    assert len(builder) == 0


# ---------------------------------------------------------------- exact size


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=record_batches(), servers=servers_lists)
def test_payload_size_predicts_the_exact_payload_length_at_every_step(
    records: list[Record], servers: list[str]
) -> None:
    size = PayloadSize(servers)
    builder = PayloadBuilder(servers)
    for record in records:
        fragment = encode_record(record)
        assert size.try_add(record.partition_key, record.offset, len(fragment), sys.maxsize)
        builder.add(record, fragment)
        assert builder.size == size.size == len(builder.payload())
    assert len(builder) == len(records)
    assert_go_and_rust_can_read(strict_loads(builder.payload()))


@settings(max_examples=100, deadline=None)
@given(records=record_batches())
def test_assemble_joins_fragments_exactly_as_the_builder_does(records: list[Record]) -> None:
    groups: dict[str, list[bytes]] = defaultdict(list)
    for record in records:
        groups[record.partition_key].append(encode_record(record))
    _, payload = build(records)
    assert assemble(groups, SERVERS) == payload


def test_payload_size_cuts_a_batch_before_it_would_pass_six_megabytes() -> None:
    # 1.2 MB values are 1.6 MB in base64: three fit in 6 MB, a fourth does not.
    records = [Record("big", 0, n, 1, value=bytes([n]) * 1_200_000) for n in range(5)]
    size = PayloadSize(SERVERS)
    builder = PayloadBuilder(SERVERS)
    added = 0
    for record in records:
        fragment = encode_record(record)
        before = size.size
        if not size.try_add(record.partition_key, record.offset, len(fragment)):
            assert size.size == before  # nothing counted
            assert before + len(fragment) > MAX_PAYLOAD_BYTES
            break
        builder.add(record, fragment)
        added += 1
    assert added == 3
    assert len(builder.payload()) == builder.size == size.size <= MAX_PAYLOAD_BYTES


def test_payload_size_is_inclusive_of_the_limit() -> None:
    record = Record("t", 0, 0, 1, value=b"v")
    fragment = encode_record(record)
    builder = PayloadBuilder(SERVERS)
    builder.add(record, fragment)
    exact = len(builder.payload())
    assert PayloadSize(SERVERS).try_add(record.partition_key, 0, len(fragment), limit=exact)
    assert not PayloadSize(SERVERS).try_add(record.partition_key, 0, len(fragment), exact - 1)


def test_the_encoder_is_swappable_and_its_fragments_are_sent_unchanged() -> None:
    calls = []

    def encoder(record: Record) -> bytes:
        calls.append(record.offset)
        return b'{"offset":%d}' % record.offset

    builder = PayloadBuilder(["h:1"], encoder=encoder)
    builder.add(Record("t", 0, 4, 1))
    builder.add(Record("t", 0, 5, 1), fragment=b'{"given":true}')
    assert calls == [4]
    assert builder.payload().endswith(b'"records":{"t-0":[{"offset":4},{"given":true}]}}')
    assert builder.size == len(builder.payload())


# ---------------------------------------------------------------- powertools


def pt_header(values: list[int]) -> bytes:
    """Powertools' own decoding of a header value (what decoded_headers uses)."""
    decoded: bytes = decode_header_bytes(values)  # type: ignore[no-untyped-call]
    return decoded


def _powertools_view(records: list[Record]) -> list[Record]:
    """What a function using Powertools' KafkaEvent data class gets back."""
    _, payload = build(records)
    event = KafkaEvent(json.loads(payload))
    assert event.event_source == "SelfManagedKafka"
    assert event.decoded_bootstrap_servers == SERVERS
    return [
        Record(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            timestamp_ms=r.timestamp,
            timestamp_type=TimestampType(r.timestamp_type),
            key=r.decoded_key,
            value=None if r.get("value") is None else r.decoded_value,
            headers=tuple((k, pt_header(v)) for h in r.headers for k, v in h.items()),
        )
        for r in event.records
    ]


def _without_null_headers(record: Record) -> Record:
    """AWS drops a null header's key (it sends ``{}``), so that is all a parser can see."""
    kept = tuple(h for h in record.headers if h[1] is not None)
    return dataclasses.replace(record, headers=kept)


def _grouped(records: list[Record]) -> list[Record]:
    """Records in the event's order: partitions in first-seen order, then offset."""
    order = list(dict.fromkeys(r.partition_key for r in records))
    return sorted(records, key=lambda r: (order.index(r.partition_key), r.offset))


@settings(max_examples=150, deadline=None)
@given(records=record_batches())
def test_powertools_data_class_reads_back_every_record(records: list[Record]) -> None:
    expected = [_without_null_headers(r) for r in _grouped(records)]
    assert _powertools_view(records) == expected


def test_powertools_data_class_reads_binary_tombstones_and_headers_above_127() -> None:
    records = [
        Record("t", 0, 1, 1, key=b"\xff\xfe", value=b"\x80\x00\xc3("),
        Record("t", 0, 2, 1, key=b"deleted"),
        Record("t", 3, 0, 1, value=b"", headers=(("h", b"\xff\x80"), ("h", b"\x7f"))),
    ]
    assert _powertools_view(records) == records


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@settings(max_examples=100, deadline=None)
@given(
    records=record_batches(
        # pydantic reads numbers above 2e10 as milliseconds, smaller ones as seconds.
        timestamps=st.integers(10**12, 4 * 10**12),
        # the parser model decodes values as UTF-8 and needs one (see the upstream_gap tests).
        values=st.text(max_size=40).map(str.encode),
    )
)
def test_powertools_parser_model_validates_and_round_trips(records: list[Record]) -> None:
    _, payload = build(records)
    model = KafkaSelfManagedEventModel.model_validate(json.loads(payload))
    assert model.bootstrapServers == SERVERS
    assert list(model.records) == list(dict.fromkeys(r.partition_key for r in records))
    parsed = [r for group in model.records.values() for r in group]
    for got, want in zip(parsed, _grouped(records), strict=True):
        assert (got.topic, got.partition, got.offset) == (want.topic, want.partition, want.offset)
        assert got.timestamp == EPOCH + timedelta(milliseconds=want.timestamp_ms)
        assert got.timestampType == want.timestamp_type.value
        assert got.key == want.key
        assert got.value == (want.value or b"").decode()  # never None here
        assert got.headers == [{} if v is None else {k: v} for k, v in want.headers]


def _parser_error_fields(payload: bytes) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        KafkaSelfManagedEventModel.model_validate(json.loads(payload))
    return [error["loc"] for error in caught.value.errors()]


def test_upstream_gap_powertools_parser_model_refuses_tombstones() -> None:
    """KafkaRecordModel requires `value`, which AWS leaves out of a tombstone.

    If this fails, Powertools now reads tombstones: drop the caveat from the README.
    """
    _, payload = build([Record("t", 0, 1, 1_700_000_000_000, key=b"k")])
    assert _parser_error_fields(payload) == [("records", "t-0", 0, "value")]


def test_upstream_gap_powertools_parser_model_refuses_binary_values() -> None:
    """KafkaRecordModel decodes `value` as UTF-8 text, so binary values fail.

    If this fails, Powertools now reads binary values: drop the caveat from the README.
    """
    _, payload = build([Record("t", 0, 1, 1_700_000_000_000, value=b"\xff\xfe")])
    assert _parser_error_fields(payload) == [("records", "t-0", 0, "value")]


def test_key_and_value_are_standard_base64() -> None:
    key, value = bytes(range(256)), b"\xfb\xff" * 10
    (sent,) = build_event([Record("t", 0, 0, 1, key=key, value=value)], SERVERS)["records"]["t-0"]
    assert base64.b64decode(sent["key"], validate=True) == key
    assert base64.b64decode(sent["value"], validate=True) == value
    assert "-" not in sent["value"] and "_" not in sent["value"]  # not the URL-safe alphabet


# ---------------------------------------------------------------- errors


def test_offsets_must_ascend_within_a_partition() -> None:
    builder = PayloadBuilder(SERVERS)
    builder.add(Record("t", 0, 5, 1))
    builder.add(Record("t", 1, 3, 1))  # another partition may go lower
    with pytest.raises(EventEncodingError, match=r"t-0 offset 5 must be greater .*\(5\)"):
        builder.add(Record("t", 0, 5, 1))
    assert len(builder) == 2
    assert builder.size == len(builder.payload())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topic": ""}, "topic must be a non-empty string, got ''"),
        ({"topic": 7}, "topic must be a non-empty string, got 7"),
        ({"partition": -1}, "partition must be a non-negative int, got -1"),
        ({"partition": True}, "partition must be a non-negative int, got True"),
        ({"offset": 1.5}, "offset must be a non-negative int, got 1.5"),
        ({"offset": -1}, "offset must be a non-negative int, got -1"),
        ({"offset": "3"}, "offset must be a non-negative int, got '3'"),
        ({"timestamp_ms": 1.0}, r"timestamp_ms must be an int \(epoch milliseconds\), got 1.0"),
        ({"timestamp_type": "EVENT_TIME"}, "timestamp_type must be one of CREATE_TIME, "
         "LOG_APPEND_TIME, NO_TIMESTAMP_TYPE, got 'EVENT_TIME'"),
        ({"key": "secret-key"}, "key must be bytes or None, got str"),
        ({"value": "secret-value"}, "value must be bytes or None, got str"),
        ({"headers": "h"}, r"headers must be a tuple of \(str, bytes \| None\) pairs, got str"),
        ({"headers": (("h",),)}, r"headers\[0\] must be a \(str, bytes \| None\) pair"),
        ({"headers": (("a", b""), (b"k", b"v"))}, r"headers\[1\] key must be a string, got bytes"),
        ({"headers": (("a", "secret-h"),)}, r"headers\[0\] value must be bytes or None, got str"),
        ({"headers": (("\ud800", b"v"),)}, r"headers\[0\] key '\\ud800' must be valid Unicode"),
    ],
)  # fmt: skip
def test_invalid_records_name_the_field_and_the_rule(change: dict[str, Any], message: str) -> None:
    fields = {"topic": "t", "partition": 0, "offset": 0, "timestamp_ms": 1, "value": b"v"}
    record = Record(**{**fields, **change})
    with pytest.raises(EventEncodingError, match=message) as caught:
        encode_record(record)
    assert "secret" not in str(caught.value)
    with pytest.raises(EventEncodingError, match=message):
        PayloadBuilder(SERVERS).add(record)


def test_something_that_is_not_a_record_is_named() -> None:
    with pytest.raises(
        EventEncodingError, match=r"record must be a runtime\.records\.Record, got dict"
    ):
        encode_record({"topic": "t"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ([], r"bootstrap_servers must be a non-empty list of host:port strings, got \[\]"),
        ("b1:9092,b2:9092", "bootstrap_servers must be a non-empty list .* got 'b1:9092,b2:9092'"),
        (["b1:9092", ""], r"bootstrap_servers\[1\] must be a non-empty host:port string"),
        (["b1:9092,b2:9092"], r"bootstrap_servers\[0\] .*without commas.*got 'b1:9092,b2:9092'"),
        ([9092], r"bootstrap_servers\[0\] must be .* got 9092"),
    ],
)
def test_invalid_bootstrap_servers_are_refused(servers: Any, message: str) -> None:
    with pytest.raises(EventEncodingError, match=message):
        PayloadBuilder(servers)
    with pytest.raises(EventEncodingError, match=message):
        assemble({}, servers)


@settings(max_examples=150, deadline=None)
@given(records=record_batches())
def test_a_run_of_records_is_encoded_exactly_as_record_by_record(records: list[Record]) -> None:
    """encode_run's column path (one template per run) and its fallback for mixed shapes
    write the very bytes encode_record writes."""
    for (topic, partition), start, stop in partition_runs(records):
        run = records[start:stop]
        assert all((r.topic, r.partition) == (topic, partition) for r in run)
        assert encode_run(run) == [encode_record(r) for r in run]


@pytest.mark.parametrize("keyed", [False, True])
def test_a_run_read_from_kafka_takes_the_column_path_and_matches(keyed: bool) -> None:
    run = [
        Record(
            "orders",
            3,
            100 + n,
            1_700_000_000_000 + n,
            key=b"k%d" % n if keyed else None,
            value=bytes([n]) * n,
        )
        for n in range(50)
    ]
    assert encode_run(run) == [encode_record(r) for r in run]
    assert encode_run([]) == []


def test_a_run_with_an_invalid_record_is_refused_naming_it() -> None:
    run = [Record("orders", 0, 1, 5, value=b"a"), Record("orders", 0, -2, 5, value=b"b")]
    with pytest.raises(EventEncodingError, match="offset must be a non-negative int"):
        encode_run(run)
