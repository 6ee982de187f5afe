"""ReportBatchItemFailures replies: what counts as success, where to resume, what fails.

Replies come from Powertools' BatchProcessor (EventType.Kafka), the way a real
function produces them, and by hand for the malformed cases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

from runtime.pipeline.batch_responses import BatchResponseError, lowest_failed_offsets
from runtime.pipeline.event import build_event
from runtime.records import Record

SENT = {"orders-0": {3, 4, 5, 6}, "orders-1": {10, 11}}


def reply(body: Any) -> bytes:
    return json.dumps(body).encode()


def failures(*items: Any) -> bytes:
    return reply({"batchItemFailures": [{"itemIdentifier": item} for item in items]})


def powertools_reply(records: list[Record], bad: set[tuple[int, int]]) -> bytes:
    """What a function built on Powertools answers for ``records``."""

    def record_handler(record: KafkaEventRecord) -> None:
        if (record.partition, record.offset) in bad:
            raise ValueError("bad record")

    event = build_event(records, ["b-1:9092"])
    answer = process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=BatchProcessor(event_type=EventType.Kafka),
    )
    return reply(answer)


def sample() -> list[Record]:
    return [
        Record("orders", p, o, 1_700_000_000_000, value=b"x")
        for p, offsets in ((0, (3, 4, 5, 6)), (1, (10, 11)))
        for o in offsets
    ]


def test_powertools_reply_gives_the_lowest_failed_offset_per_partition() -> None:
    payload = powertools_reply(sample(), {(0, 6), (0, 4), (1, 11)})
    assert lowest_failed_offsets(payload, SENT) == {"orders-0": 4, "orders-1": 11}


def test_powertools_reply_with_no_failures_is_success() -> None:
    assert lowest_failed_offsets(powertools_reply(sample(), set()), SENT) == {}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        b"",
        b"  \n",
        b"null",
        b"{}",
        reply({"batchItemFailures": []}),
        reply({"batchItemFailures": None}),
        reply({"statusCode": 200}),
    ],
)
def test_empty_replies_mean_the_whole_batch_succeeded(payload: bytes | None) -> None:
    assert lowest_failed_offsets(payload, SENT) == {}


def test_hand_written_failures_resume_from_the_lowest_offset() -> None:
    payload = failures(
        {"partition": "orders-0", "offset": 5},
        {"partition": "orders-0", "offset": 3},
        {"partition": "orders-0", "offset": 6},
    )
    assert lowest_failed_offsets(payload, SENT) == {"orders-0": 3}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "reply is not valid: not JSON"),
        (reply([1, 2]), "reply=[1, 2] is not valid: must be a JSON object"),
        (reply("ok"), 'reply="ok" is not valid'),
        (reply({"batchItemFailures": {}}), "batchItemFailures={} is not valid: must be a list"),
        (
            reply({"batchItemFailures": [7]}),
            "batchItemFailures[0]=7 is not valid: must be an object",
        ),
        (
            reply({"batchItemFailures": [{"itemIdentifier": "orders-0-3"}]}),
            'batchItemFailures[0].itemIdentifier="orders-0-3" is not valid: must be an object',
        ),
        (
            reply({"batchItemFailures": [{}]}),
            "batchItemFailures[0].itemIdentifier=null is not valid",
        ),
        (
            failures({"partition": 0, "offset": 3}),
            "batchItemFailures[0].itemIdentifier.partition=0 is not valid: must be a",
        ),
        (
            failures({"partition": "orders-0", "offset": "3"}),
            'batchItemFailures[0].itemIdentifier.offset="3" is not valid: must be an integer',
        ),
        (
            failures({"partition": "orders-0", "offset": 3.0}),
            "batchItemFailures[0].itemIdentifier.offset=3.0 is not valid",
        ),
        (
            failures({"partition": "orders-0", "offset": True}),
            "batchItemFailures[0].itemIdentifier.offset=true is not valid",
        ),
        (
            failures(
                {"partition": "orders-0", "offset": 3}, {"partition": "orders-2", "offset": 3}
            ),
            'batchItemFailures[1].itemIdentifier.partition="orders-2" is not in the batch: '
            "it holds orders-0, orders-1",
        ),
        (
            failures({"partition": "orders-1", "offset": 12}),
            "batchItemFailures[0].itemIdentifier.offset=12 is not in the batch: "
            "partition orders-1 was sent 2 record(s) at offsets 10-11",
        ),
    ],
)
def test_malformed_replies_fail_the_whole_batch_naming_the_problem(
    payload: bytes, message: str
) -> None:
    with pytest.raises(BatchResponseError) as caught:
        lowest_failed_offsets(payload, SENT)
    assert str(caught.value).startswith(message)


def test_an_offset_inside_the_range_but_not_sent_is_not_in_the_batch() -> None:
    sent = {"orders-0": {3, 5}}  # offset 4 was filtered out, never sent
    with pytest.raises(BatchResponseError, match=r"offset=4 is not in the batch"):
        lowest_failed_offsets(failures({"partition": "orders-0", "offset": 4}), sent)


def test_long_values_are_shortened_in_the_message() -> None:
    with pytest.raises(BatchResponseError) as caught:
        lowest_failed_offsets(reply("x" * 500), SENT)
    assert len(str(caught.value)) < 200 and "..." in str(caught.value)
