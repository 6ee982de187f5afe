"""What happens after a failed invocation: wait, retry, split, and when to give up.

AWS's default for Kafka is to retry a failing batch until it succeeds. The mapping's
error-handling fields narrow that: MaximumRetryAttempts and MaximumRecordAgeInSeconds
bound the retries, BisectBatchOnFunctionError splits a failing batch to isolate the bad
record, and a destination receives what is given up on. This module holds those
decisions; the processor carries them out.

The backoff is exponential with full jitter, so that many partitions failing together
do not retry in lockstep against a struggling function.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from runtime.definition.limits import MAX_RECORD_AGE_S, MAX_RETRY_ATTEMPTS, MIN_RECORD_AGE_S
from runtime.definition.model import INFINITE, EventSourceMapping
from runtime.invokers import ErrorKind, InvokeResult
from runtime.observability.state import MappingStopped, StateTransitionReason, problem
from runtime.records import Record

# Errors of the function itself (it ran and failed or ran out of time): they count as a
# retry and may bisect. Throttles and service faults never reached the function: AWS
# retries those until the records expire, without counting them.
_FUNCTION_ERRORS = frozenset({ErrorKind.FUNCTION_ERROR, ErrorKind.TIMEOUT})


class Condition(StrEnum):
    """Why records were given up on, as the failure record's ``condition`` names it."""

    RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
    RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED = "MaximumPayloadSizeExceeded"
    SCHEMA_DECODING_FAILED = "SchemaDecodingFailed"
    """Ours (AWS names none): the schema registry cannot decode the record."""


@dataclass(frozen=True)
class RetryBackoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, first * 2**n))``."""

    first_s: float = 0.2
    cap_s: float = 30.0
    jitter: bool = True

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        ceiling = min(self.cap_s, self.first_s * (2 ** max(0, retry - 1)))
        return random.uniform(0, ceiling) if self.jitter else ceiling  # noqa: S311 - not crypto


@dataclass(frozen=True)
class FailurePolicy:
    """The mapping's error-handling fields, with AWS's defaults (retry until success).

    ``maximum_retry_attempts`` is the *effective* limit: ``for_mapping`` applies AWS's
    cap of 10 when retries are infinite and an on-failure destination is set.
    """

    maximum_retry_attempts: int = INFINITE
    maximum_record_age_s: int = INFINITE
    bisect: bool = False
    report_item_failures: bool = False

    def __post_init__(self) -> None:
        retries, age = self.maximum_retry_attempts, self.maximum_record_age_s
        if type(retries) is not int or not (
            retries == INFINITE or 0 <= retries <= MAX_RETRY_ATTEMPTS
        ):
            raise ValueError(
                f"MaximumRetryAttempts={retries!r} is not valid: must be -1 (infinite) "
                f"or 0-{MAX_RETRY_ATTEMPTS}"
            )
        if type(age) is not int or not (
            age == INFINITE or MIN_RECORD_AGE_S <= age <= MAX_RECORD_AGE_S
        ):
            raise ValueError(
                f"MaximumRecordAgeInSeconds={age!r} is not valid: must be -1 (infinite) "
                f"or {MIN_RECORD_AGE_S}-{MAX_RECORD_AGE_S}"
            )

    @classmethod
    def for_mapping(cls, mapping: EventSourceMapping) -> FailurePolicy:
        """The policy a mapping asks for."""
        return cls(
            maximum_retry_attempts=mapping.effective_maximum_retry_attempts,
            maximum_record_age_s=mapping.maximum_record_age_in_seconds,
            bisect=mapping.bisect_batch_on_function_error,
            report_item_failures=mapping.report_batch_item_failures,
        )

    def retries_exhausted(self, retries: int) -> bool:
        """True once ``retries`` (not counting the first invocation) is over the limit."""
        return self.maximum_retry_attempts != INFINITE and retries > self.maximum_retry_attempts

    def expired(self, record: Record, now_ms: int) -> bool:
        """True when ``record`` is older than MaximumRecordAgeInSeconds (Kafka timestamp).

        A record without a timestamp (negative) never expires: its age is unknown.
        """
        if self.maximum_record_age_s == INFINITE or record.timestamp_ms < 0:
            return False
        return now_ms - record.timestamp_ms > self.maximum_record_age_s * 1000

    @property
    def ages(self) -> bool:
        """True when records can expire (MaximumRecordAgeInSeconds is set)."""
        return self.maximum_record_age_s != INFINITE

    @property
    def unbounded(self) -> bool:
        """True when nothing ends the retries of a failing batch but a success."""
        return self.maximum_retry_attempts == INFINITE and self.maximum_record_age_s == INFINITE

    def splits(self, result: InvokeResult, size: int) -> bool:
        """Bisect after a function error when the batch still has two records or more."""
        return self.bisect and size > 1 and is_function_error(result)


def is_function_error(result: InvokeResult) -> bool:
    """The function ran and failed: the attempt counts toward MaximumRetryAttempts."""
    return result.error_kind in _FUNCTION_ERRORS


def stop_for(result: InvokeResult) -> MappingStopped | None:
    """A result no retry can fix stops the mapping, as AWS does (FUNCTION_CONFIG_NOT_VALID)."""
    if result.error_kind is ErrorKind.CONFIG_ERROR:
        return MappingStopped(
            StateTransitionReason.FUNCTION_CONFIG_NOT_VALID, problem(result.message or "invalid")
        )
    return None


def describe_failure(result: InvokeResult) -> str:
    """A log-ready cause: kind, function error and message (no payload bodies)."""
    parts = [result.error_kind.value]
    if result.function_error:
        parts.append(result.function_error)
    if result.message:
        parts.append(result.message)
    return ": ".join(parts)


UNBOUNDED_RETRY_HINT = (
    "this batch keeps failing and nothing ends its retries (MaximumRetryAttempts and "
    "MaximumRecordAgeInSeconds are -1, AWS's default): its partition stays blocked until "
    "the function succeeds. Set MaximumRetryAttempts (0-10000) or MaximumRecordAgeInSeconds "
    "to give up, with DestinationConfig.OnFailure to keep what is given up on, or "
    "BisectBatchOnFunctionError to isolate the record that fails"
)
"""Logged once per batch after HINT_AFTER_RETRIES failed retries under the default policy."""
HINT_AFTER_RETRIES = 3


@dataclass
class RepeatedErrors:
    """The function's errors seen so far, by type and the line that raised them, so that
    each distinct one is logged with its stack trace once and then only counted.

    Shared by the worker threads (one processor serves them all), hence the lock."""

    _seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, result: InvokeResult) -> tuple[int, str | None]:
        """How many times this error was seen (1 the first time) and its stack trace."""
        document = error_document(result)
        if document is None:
            return 0, None
        trace = _trace_text(document)
        key = (str(document.get("errorType")), trace.rstrip().rsplit("\n", 1)[-1])
        with self._lock:
            self._seen[key] += 1
            return self._seen[key], trace


def error_document(result: InvokeResult) -> dict[str, object] | None:
    """Lambda's error document in a function error's reply (Lambda, the RIE and local
    handlers all send ``errorType``, ``errorMessage`` and ``stackTrace``), else None."""
    if not result.function_error or not result.payload:
        return None
    try:
        document = json.loads(result.payload)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "errorType" in document else None


def _trace_text(document: dict[str, object]) -> str:
    frames = document.get("stackTrace")
    lines = [str(frame).rstrip("\n") for frame in frames] if isinstance(frames, list) else []
    return "\n".join(lines)
