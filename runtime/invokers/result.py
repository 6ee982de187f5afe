"""What one invocation returned, in the terms the failure policy decides on.

Every invoker (AWS Lambda, a local handler, an Invoke-compatible HTTP endpoint)
reduces its transport's outcome to one ``InvokeResult``: the poller never sees a
transport exception, so retry, bisect and stop decisions live in one place.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

#: The ``errorType`` Lambda puts in the reply when the function ran past its timeout.
SANDBOX_TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"

_MAX_MESSAGE_CHARS = 500


class ErrorKind(StrEnum):
    """Why an invocation failed; the failure policy maps each kind to an action."""

    NONE = "NONE"
    #: The function ran and failed (``X-Amz-Function-Error``): retry, bisect, destination.
    FUNCTION_ERROR = "FUNCTION_ERROR"
    #: Lambda refused for lack of concurrency (429): back off and retry.
    THROTTLED = "THROTTLED"
    #: The function ran past its timeout, or the caller's deadline passed first.
    TIMEOUT = "TIMEOUT"
    #: Lambda or the transport failed (5xx, connection error): retry.
    SERVICE_ERROR = "SERVICE_ERROR"
    #: The request is over Lambda's 6 MB quota: retrying cannot help; AWS reports
    #: such a batch with condition MaximumPayloadSizeExceeded.
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    #: No call can succeed until someone fixes configuration (function not found,
    #: access denied, invalid runtime, KMS, VPC): AWS stops the consumer with
    #: StateTransitionReason FUNCTION_CONFIG_NOT_VALID.
    CONFIG_ERROR = "CONFIG_ERROR"


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """One invocation's outcome; ``payload`` is the function's reply when it gave one."""

    ok: bool
    error_kind: ErrorKind
    request_id: str
    status_code: int | None = None
    function_error: str | None = None
    executed_version: str | None = None
    payload: bytes | None = None
    message: str = ""
    sent: bool = True
    """False when the request never left (no credentials, endpoint refused the connection):
    the function did not run, so InvokedEventCount does not count it."""

    def __post_init__(self) -> None:
        if self.ok != (self.error_kind is ErrorKind.NONE):
            raise ValueError(
                f"InvokeResult: ok={self.ok} contradicts error_kind={self.error_kind.value}; "
                "ok must be True exactly when error_kind is NONE"
            )

    @classmethod
    def failure(
        cls,
        kind: ErrorKind,
        message: str,
        *,
        request_id: str | None = None,
        status_code: int | None = None,
        function_error: str | None = None,
        executed_version: str | None = None,
        payload: bytes | None = None,
        sent: bool = True,
    ) -> InvokeResult:
        """A failed call; ``request_id`` defaults to a local UUID when no service gave one."""
        return cls(
            ok=False,
            error_kind=kind,
            request_id=request_id or new_request_id(),
            status_code=status_code,
            function_error=function_error,
            executed_version=executed_version,
            payload=payload,
            message=truncate(message),
            sent=sent,
        )


@runtime_checkable
class Invoker(Protocol):
    """Calls the function once with one batch; never raises for a failed call.

    The poller calls ``invoke`` from worker threads (one batch in flight per
    partition), so implementations must be thread-safe.
    """

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        """Send ``payload`` (the event JSON) and wait at most ``deadline_s`` seconds."""
        ...


def new_request_id() -> str:
    """A request id for outcomes no service numbered (connection errors, local calls)."""
    return str(uuid.uuid4())


def truncate(text: str) -> str:
    """Keep messages short enough for LastProcessingResult and logs."""
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."


def reply_result(
    *,
    status_code: int,
    function_error: str | None,
    executed_version: str | None,
    payload: bytes,
    request_id: str,
) -> InvokeResult:
    """Turn a reply that Lambda accepted (2xx) into a result, as the ESM reads it."""
    if not function_error:
        return InvokeResult(
            ok=True,
            error_kind=ErrorKind.NONE,
            request_id=request_id,
            status_code=status_code,
            executed_version=executed_version,
            payload=payload,
        )
    error_type, error_message = _error_fields(payload)
    kind = (
        ErrorKind.TIMEOUT if error_type == SANDBOX_TIMEOUT_ERROR_TYPE else ErrorKind.FUNCTION_ERROR
    )
    return InvokeResult.failure(
        kind,
        f"function error ({function_error}): {error_type or 'unknown'}: {error_message}",
        request_id=request_id,
        status_code=status_code,
        function_error=function_error,
        executed_version=executed_version,
        payload=payload,
    )


def _error_fields(payload: bytes) -> tuple[str, str]:
    """``errorType`` and ``errorMessage`` of a Lambda error reply, empty when absent."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("errorType", "")), str(body.get("errorMessage", ""))
