"""The failure record Lambda sends to an on-failure destination, field by field.

SQS and SNS get one JSON document per failed batch: ``requestContext`` (request id,
function ARN, ``condition``, ``approximateInvokeCount``), ``responseContext`` (null
when the function never saw the records), ``version``, ``timestamp`` and
``KafkaBatchInfo`` with string offsets and ISO-8601 timestamps per ``<topic>-<partition>``.
S3 gets the same plus ``payload``: the whole event as an escaped JSON string. A
``kafka://`` destination gets each failed record itself (key, value, headers) with the
failure metadata appended as ``kafka-esm-*`` headers. Everything here is pure: the
writers in ``runtime.destinations.writers`` only move bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from runtime.definition.model import EventSourceMapping
from runtime.definition.vocabulary import LOCAL_ACCOUNT, LOCAL_REGION
from runtime.invokers import InvokeResult
from runtime.pipeline.event import assemble_records
from runtime.pipeline.failures import Condition
from runtime.records import Record

VERSION: Final = "1.0"
S3_KEY_PREFIX: Final = "aws/lambda"

_ARN_PARTS: Final = 6


@dataclass(frozen=True)
class Failure:
    """Records given up on together, and what is known about their last invocation."""

    condition: Condition
    records: tuple[Record, ...]
    fragments: tuple[bytes, ...]
    """Each record's encoded event fragment (``runtime.pipeline.event.encode_record``)."""
    invoke_count: int
    """Invocations that carried these records (0 when the function never saw them)."""
    result: InvokeResult | None
    """The last invocation's result; None when the function never saw these records."""
    failed_at_ms: int
    request_id: str

    def __post_init__(self) -> None:
        if not self.records:
            raise ValueError("Failure.records is empty: a failure covers at least one record")
        if len(self.records) != len(self.fragments):
            raise ValueError(
                f"Failure.fragments has {len(self.fragments)} item(s) for "
                f"{len(self.records)} record(s): must be one per record"
            )
        if self.invoke_count < 0:
            raise ValueError(f"Failure.invoke_count={self.invoke_count} is not valid: must be >= 0")

    @classmethod
    def of(
        cls,
        condition: Condition,
        records: Sequence[Record],
        fragments: Sequence[bytes],
        *,
        invoke_count: int,
        result: InvokeResult | None,
        now_ms: int | None = None,
    ) -> Failure:
        """A failure stamped now; the request id is the last invocation's, else a new one."""
        return cls(
            condition,
            tuple(records),
            tuple(fragments),
            invoke_count,
            result,
            time.time_ns() // 1_000_000 if now_ms is None else now_ms,
            result.request_id if result is not None else str(uuid.uuid4()),
        )

    def only(self, records: Sequence[Record]) -> Failure:
        """The same failure narrowed to ``records`` (what is left to deliver)."""
        keep = {(r.topic, r.partition, r.offset) for r in records}
        pairs = [
            (r, f)
            for r, f in zip(self.records, self.fragments, strict=True)
            if (r.topic, r.partition, r.offset) in keep
        ]
        return replace(
            self, records=tuple(r for r, _ in pairs), fragments=tuple(f for _, f in pairs)
        )

    def event(self, bootstrap_servers: Sequence[str]) -> bytes:
        """The Lambda event holding exactly these records."""
        return assemble_records(self.records, self.fragments, bootstrap_servers)


@dataclass(frozen=True)
class DocumentContext:
    """What every failure record of one mapping shares."""

    function_arn: str
    event_source_arn: str
    bootstrap_servers: tuple[str, ...]
    mapping_uuid: str

    @classmethod
    def for_mapping(
        cls, mapping: EventSourceMapping, *, region: str | None = None, account: str | None = None
    ) -> DocumentContext:
        """The context of ``mapping``; region and account default to the destination ARN's.

        A self-managed Kafka source has no ARN, so ``eventSourceArn`` is the mapping's UUID.
        """
        partition, arn_region, arn_account = _arn_scope(
            mapping.on_failure.destination if mapping.on_failure else ""
        )
        return cls(
            function_arn=function_arn(
                mapping.function_name, region or arn_region, account or arn_account, partition
            ),
            event_source_arn=mapping.uuid,
            bootstrap_servers=mapping.bootstrap_servers,
            mapping_uuid=mapping.uuid,
        )


def function_arn(
    function_name: str, region: str | None, account: str | None, partition: str = "aws"
) -> str:
    """The function's ARN, always an ARN: an unknown account is ``LOCAL_ACCOUNT`` and an
    unknown region ``LOCAL_REGION`` (see ``runtime.definition.vocabulary``)."""
    if function_name.startswith("arn:"):
        return function_name
    parts = function_name.split(":")
    if len(parts) >= 3 and parts[1] == "function":  # <account>:function:<name>[:<qualifier>]
        account, parts = parts[0], parts[2:]
    region, account = region or LOCAL_REGION, account or LOCAL_ACCOUNT
    return f"arn:{partition}:lambda:{region}:{account}:function:{':'.join(parts)}"


def failure_document(
    failure: Failure, context: DocumentContext, *, include_payload: bool = False
) -> dict[str, Any]:
    """The record SQS and SNS receive; with ``include_payload`` the one S3 receives."""
    event = failure.event(context.bootstrap_servers)
    document = _envelope(failure, context, failure.condition.value)
    document["KafkaBatchInfo"] = {
        "batchSize": len(failure.records),
        "eventSourceArn": context.event_source_arn,
        "bootstrapServers": ",".join(context.bootstrap_servers),
        "payloadSize": len(event),
        "recordsInfo": records_info(failure.records),
    }
    reasons = {
        f"{r.partition_key}@{r.offset}": r.undecodable
        for r in failure.records
        if r.undecodable is not None
    }
    if reasons:  # SchemaDecodingFailed: why each record could not be decoded
        document["KafkaBatchInfo"]["decodingErrors"] = reasons
    if include_payload:
        document["payload"] = event.decode("utf-8")
    return document


FAILURE_HEADER_PREFIX: Final = "kafka-esm-"
"""Prefix of the failure metadata headers on a ``kafka://`` destination's records."""


@dataclass(frozen=True)
class KafkaFailureRecord:
    """What a ``kafka://`` destination writes for one failed record: the record itself
    (key, value and headers unchanged) with the failure metadata appended as headers."""

    source: Record
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def key(self) -> bytes | None:
        """The failed record's key, so the record lands where its key sends it."""
        return self.source.key

    @property
    def value(self) -> bytes | None:
        """The failed record's value, byte for byte (None for a tombstone)."""
        return self.source.value

    def header(self, name: str) -> bytes | None:
        """The last header called ``name`` (metadata headers come last)."""
        return next((v for k, v in reversed(self.headers) if k == name), None)


def kafka_failure_records(failure: Failure, context: DocumentContext) -> list[KafkaFailureRecord]:
    """One record per failed record, as a ``kafka://`` destination receives them.

    Headers, after the record's own: ``kafka-esm-condition``, ``-source-topic``,
    ``-source-partition``, ``-source-offset``, ``-source-timestamp`` (ISO-8601),
    ``-function-arn``, ``-mapping-uuid``, ``-approximate-invoke-count``, ``-request-id``,
    and ``kafka-esm-failure``: the SQS document's fields (requestContext, responseContext,
    version, timestamp, KafkaBatchInfo with this record's recordInfo) as compact JSON.
    """
    out = []
    for record in failure.records:
        document = _envelope(failure, context, failure.condition.value)
        document["KafkaBatchInfo"] = {
            "batchSize": 1,
            "eventSourceArn": context.event_source_arn,
            "bootstrapServers": ",".join(context.bootstrap_servers),
            "recordInfo": {
                "topic": record.topic,
                "partition": str(record.partition),
                "offset": str(record.offset),
                "timestamp": iso_ms(record.timestamp_ms),
            },
        }
        if record.undecodable is not None:  # SchemaDecodingFailed: why, never the contents
            document["KafkaBatchInfo"]["recordInfo"]["decodingError"] = record.undecodable
        metadata = {
            "condition": failure.condition.value,
            "source-topic": record.topic,
            "source-partition": str(record.partition),
            "source-offset": str(record.offset),
            "source-timestamp": iso_ms(record.timestamp_ms) or "",
            "function-arn": context.function_arn,
            "mapping-uuid": context.mapping_uuid,
            "approximate-invoke-count": str(failure.invoke_count),
            "request-id": failure.request_id,
        }
        headers = [(FAILURE_HEADER_PREFIX + k, v.encode("utf-8")) for k, v in metadata.items()]
        headers.append((FAILURE_HEADER_PREFIX + "failure", encode_document(document)))
        out.append(KafkaFailureRecord(record, (*record.headers, *headers)))
    return out


def records_info(records: Sequence[Record]) -> dict[str, dict[str, str | None]]:
    """First and last offset (strings) and timestamp (ISO-8601) per ``<topic>-<partition>``."""
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.partition_key, []).append(record)
    info = {}
    for key, group in grouped.items():
        first = min(group, key=lambda r: r.offset)
        last = max(group, key=lambda r: r.offset)
        info[key] = {
            "firstRecordOffset": str(first.offset),
            "lastRecordOffset": str(last.offset),
            "firstRecordTimestamp": iso_ms(first.timestamp_ms),
            "lastRecordTimestamp": iso_ms(last.timestamp_ms),
        }
    return info


def s3_object_key(failure: Failure, context: DocumentContext) -> str:
    """``aws/lambda/<ESM-UUID>/<topic>-<partition>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>``.

    AWS documents this layout for stream sources with the shard ID; for Kafka the
    shard's place holds the first failed record's ``<topic>-<partition>``.
    """
    moment = datetime.fromtimestamp(failure.failed_at_ms // 1000, tz=UTC)
    return (
        f"{S3_KEY_PREFIX}/{context.mapping_uuid}/{failure.records[0].partition_key}/"
        f"{moment:%Y/%m/%d}/{moment:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
    )


def encode_document(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as the destinations receive it."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def iso_ms(epoch_ms: int) -> str | None:
    """``2019-11-14T00:38:06.021Z``; None for a record without a timestamp."""
    if epoch_ms < 0:
        return None
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def _envelope(failure: Failure, context: DocumentContext, condition: str) -> dict[str, Any]:
    return {
        "requestContext": {
            "requestId": failure.request_id,
            "functionArn": context.function_arn,
            "condition": condition,
            "approximateInvokeCount": failure.invoke_count,
        },
        "responseContext": _response_context(failure),
        "version": VERSION,
        "timestamp": iso_ms(failure.failed_at_ms),
    }


def _response_context(failure: Failure) -> dict[str, Any] | None:
    """The last reply; null when the function never saw the records."""
    result = failure.result
    if result is None or failure.condition is Condition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED:
        return None
    context: dict[str, Any] = {
        "statusCode": result.status_code,
        "executedVersion": result.executed_version,
    }
    if result.function_error:
        context["functionError"] = result.function_error
    return context


def _arn_scope(arn: str) -> tuple[str, str | None, str | None]:
    """Partition, region and account of an ARN (``aws``, None, None when absent)."""
    parts = arn.split(":")
    if len(parts) < _ARN_PARTS or parts[0] != "arn":
        return "aws", None, None
    return parts[1], parts[3] or None, parts[4] or None
