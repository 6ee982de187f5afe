"""Parameters every invoker shares, validated once with errors that name the field.

The limits are Lambda's own, so a batch that passes here behaves the same when the
mapping later runs in AWS.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from runtime.definition.limits import MAX_FUNCTION_TIMEOUT_S

#: Lambda's longest timeout for a function behind an event source mapping (14 min).
MAX_TIMEOUT_S = float(MAX_FUNCTION_TIMEOUT_S)
#: Lambda's synchronous request payload quota (6 MB).
MAX_REQUEST_BYTES = 6_291_456
#: Lambda's synchronous response quota, as its ``Function.ResponseSizeTooLarge`` error states it.
MAX_RESPONSE_BYTES = 6_291_556

_QUALIFIER_RE = re.compile(r"^[a-zA-Z0-9$_-]{1,128}$")
_MAX_FUNCTION_NAME_CHARS = 170


def check_timeout(value: float, name: str = "timeout_s") -> float:
    """Validate a timeout: a finite number of seconds in (0, 840]."""
    seconds = _finite_seconds(value, name)
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise ValueError(
            f"{name}={value!r} is out of range: must be > 0 and <= {MAX_TIMEOUT_S:g} s "
            "(Lambda's 14-minute maximum for event source mappings)"
        )
    return seconds


def check_deadline(value: float) -> float:
    """Validate ``deadline_s``: the seconds the caller will wait for this call, > 0."""
    seconds = _finite_seconds(value, "deadline_s")
    if seconds <= 0:
        raise ValueError(f"deadline_s={value!r} is out of range: must be > 0 seconds")
    return seconds


def _finite_seconds(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not valid: must be a finite number of seconds")
    return float(value)


def check_function_name(value: str) -> str:
    """Validate FunctionName: a name, partial ARN or ARN of 1-170 characters."""
    if not isinstance(value, str) or not value or len(value) > _MAX_FUNCTION_NAME_CHARS:
        raise ValueError(
            f"function_name={value!r} is not valid: must be 1-{_MAX_FUNCTION_NAME_CHARS} characters"
        )
    if any(ch.isspace() for ch in value):
        raise ValueError(f"function_name={value!r} is not valid: must not contain whitespace")
    return value


def check_qualifier(value: str | None) -> str | None:
    """Validate Qualifier (a version or alias): 1-128 of ``[a-zA-Z0-9$_-]``."""
    if value is not None and not (isinstance(value, str) and _QUALIFIER_RE.fullmatch(value)):
        raise ValueError(
            f"qualifier={value!r} is not valid: must be 1-128 characters of [a-zA-Z0-9$_-]"
        )
    return value


def check_endpoint_url(value: str) -> str:
    """Validate an http(s) endpoint URL with a host and no credentials; drop a trailing /."""
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        _ = parts and parts.port  # a port that is not a number raises here
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"endpoint_url={value!r} is not valid: must be an http:// or https:// URL with a host"
        )
    if parts.username is not None or parts.password is not None:
        shown = f"{parts.scheme}://***@{parts.hostname}"
        raise ValueError(
            f"endpoint_url={shown!r} is not valid: must not carry credentials (user:password@)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"endpoint_url={value!r} is not valid: must not have a query or fragment")
    return value.rstrip("/")
