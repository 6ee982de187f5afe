"""Lambda's Kafka event and failure records, built from plain Python values.

For unit tests of a handler or of a dead-letter consumer, without a broker: the bytes
come from the same encoder the poller sends with (``runtime.pipeline.event``) and the
same document builder its destinations write with (``runtime.destinations.documents``),
so a test that passes here sees exactly what the function sees under the poller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runtime.definition.model import parse_mapping
from runtime.destinations.documents import DocumentContext, Failure
from runtime.destinations.documents import failure_document as _document
from runtime.devtools.sample_records import RecordLike, as_records, kafka_record
from runtime.invokers import ErrorKind, InvokeResult
from runtime.pipeline.event import checked_payload
from runtime.pipeline.event import encode_record as _encode
from runtime.pipeline.failures import Condition

__all__ = ["RecordLike", "failure_document", "kafka_event", "kafka_record"]

DEFAULT_SERVERS = ("127.0.0.1:9092",)


def kafka_event(
    records: Iterable[RecordLike], bootstrap_servers: str | Sequence[str] = DEFAULT_SERVERS
) -> dict[str, Any]:
    """The event the poller sends for ``records``, parsed as the handler receives it.

    Dict records without an ``offset`` are numbered from 0 within their partition.
    EventEncodingError (a ValueError) when the event would pass Lambda's 6 MB limit, or
    when offsets do not ascend within a partition: the poller never sends such a batch.
    """
    servers = [bootstrap_servers] if isinstance(bootstrap_servers, str) else bootstrap_servers
    event: dict[str, Any] = json.loads(checked_payload(as_records(records), servers))
    return event


def failure_document(
    records: Iterable[RecordLike],
    *,
    mapping: Mapping[str, Any] | None = None,
    condition: Condition | str = Condition.RETRY_ATTEMPTS_EXHAUSTED,
    invoke_count: int = 1,
    function_error: str | None = "Unhandled",
    include_payload: bool = False,
) -> dict[str, Any]:
    """The on-failure record an SQS queue or SNS topic receives for ``records``.

    ``mapping`` is a CreateEventSourceMapping request (default: function ``my-function``
    on ``127.0.0.1:9092``, destination-less); ``include_payload`` adds the whole event
    as S3 destinations receive it. ``invoke_count=0`` (or condition
    MaximumPayloadSizeExceeded) describes records the function never saw.
    """
    parsed = parse_mapping(dict(mapping) if mapping is not None else _default_mapping())
    chosen = as_records(records)
    result = None
    if invoke_count > 0:
        result = InvokeResult.failure(
            ErrorKind.FUNCTION_ERROR,
            "the function failed",
            status_code=200,
            function_error=function_error,
            executed_version="$LATEST",
        )
    failure = Failure.of(
        Condition(condition),
        chosen,
        [_encode(r) for r in chosen],
        invoke_count=invoke_count,
        result=result,
    )
    return _document(failure, DocumentContext.for_mapping(parsed), include_payload=include_payload)


def _default_mapping() -> dict[str, Any]:
    servers = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(DEFAULT_SERVERS)}}
    return {
        "FunctionName": "my-function",
        "Topics": ["my-topic"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": servers,
    }
