"""Handlers that tests/unit/test_invokers.py runs through LocalHandlerInvoker."""

from __future__ import annotations

import threading
from typing import Any

#: Set by the tests to let ``blocks`` return; it waits at most 10 s on its own.
RELEASE = threading.Event()

NOT_CALLABLE = 42


def echo(event: Any, context: Any) -> dict[str, Any]:
    return {"event": event, "request_id": context.aws_request_id}


def returns_none(event: Any, context: Any) -> None:
    return None


def fails(event: Any, context: Any) -> None:
    raise ValueError(f"boom: {event.get('why')}")


def exits(event: Any, context: Any) -> None:
    raise SystemExit(3)


def unserializable(event: Any, context: Any) -> object:
    return {"when": object()}


def blocks(event: Any, context: Any) -> str:
    RELEASE.wait(10)
    return "late"


def context_fields(event: Any, context: Any) -> dict[str, Any]:
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
