"""Invoke through Lambda's Invoke REST API over plain HTTP, for emulators.

The AWS Lambda Runtime Interface Emulator (RIE), ``sam local start-lambda`` and
similar tools serve ``POST /2015-03-31/functions/{name}/invocations`` without
SigV4; real AWS needs signed requests, so use LambdaInvoker there.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import quote

from .errors import classify
from .params import (
    MAX_RESPONSE_BYTES,
    MAX_TIMEOUT_S,
    check_deadline,
    check_endpoint_url,
    check_function_name,
    check_qualifier,
    check_timeout,
)
from .result import ErrorKind, InvokeResult, new_request_id, reply_result

_RIE_TIMEOUT = b"Task timed out after "
_ERROR_KEYS = frozenset({"errorType", "errorMessage", "stackTrace", "trace", "requestId", "cause"})


class HttpInvoker:
    """One unsigned RequestResponse call to ``{endpoint_url}/2015-03-31/functions/...``.

    The RIE does not send ``X-Amz-Function-Error`` (its issue #20): with
    ``infer_function_error`` (default) a reply without that header whose body is
    a Lambda error document (``errorType`` and ``errorMessage`` only, plus
    ``stackTrace``/``trace``/``requestId``/``cause``), or an empty body (the RIE's
    answer when the runtime process dies), counts as an ``Unhandled`` error.
    """

    def __init__(
        self,
        function_name: str,
        *,
        endpoint_url: str,
        qualifier: str | None = None,
        timeout_s: float = MAX_TIMEOUT_S,
        infer_function_error: bool = True,
        path_name: str | None = None,
    ) -> None:
        # A stock RIE serves one function under the name "function", whatever it is called.
        name = quote(path_name or check_function_name(function_name), safe="")
        base = check_endpoint_url(endpoint_url)
        self._url = f"{base}/2015-03-31/functions/{name}/invocations"
        if check_qualifier(qualifier) is not None:
            self._url += f"?Qualifier={quote(str(qualifier), safe='')}"
        self._timeout_s = check_timeout(timeout_s)
        self._infer = infer_function_error
        # Proxies from the environment would route a local emulator's traffic away from it.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        """The Invoke URL every call posts to."""
        return self._url

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        """POST the payload once; waits at most ``min(timeout_s, deadline_s)`` per socket read."""
        wait_s = min(self._timeout_s, check_deadline(deadline_s))
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked to be http(s))
            self._url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Amz-Invocation-Type": "RequestResponse",
            },
        )
        try:
            with self._opener.open(request, timeout=wait_s) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
                return self._reply(response.status, response.headers, body)
        except urllib.error.HTTPError as exc:
            with exc:
                return _error_result(exc.code, exc.headers, exc.read(MAX_RESPONSE_BYTES), self._url)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return _timeout_result(wait_s)
            return _connection_result(exc.reason)
        except TimeoutError:
            return _timeout_result(wait_s)
        except (http.client.HTTPException, OSError) as exc:
            return _connection_result(exc)

    def _reply(self, status: int, headers: Message, body: bytes) -> InvokeResult:
        request_id = headers.get("x-amzn-RequestId") or new_request_id()
        if len(body) > MAX_RESPONSE_BYTES:
            return InvokeResult.failure(
                ErrorKind.SERVICE_ERROR,
                f"reply is larger than Lambda's {MAX_RESPONSE_BYTES}-byte response quota",
                request_id=request_id,
                status_code=status,
            )
        function_error = headers.get("X-Amz-Function-Error")
        if not function_error and self._infer and body.startswith(_RIE_TIMEOUT):
            # The RIE's answer after it killed the runtime at AWS_LAMBDA_FUNCTION_TIMEOUT:
            # a 200 with this text, no error header; Lambda says Sandbox.Timedout.
            return InvokeResult.failure(
                ErrorKind.TIMEOUT, body[:200].decode("utf-8", "replace"), request_id=request_id
            )
        if not function_error and self._infer and _looks_like_error(body):
            function_error = "Unhandled"
        return reply_result(
            status_code=status,
            function_error=function_error,
            executed_version=headers.get("X-Amz-Executed-Version"),
            payload=body,
            request_id=request_id,
        )


def _looks_like_error(body: bytes) -> bool:
    """An empty body or a Lambda error document: what the RIE returns for a failed function."""
    if not body.strip():
        return True
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and {"errorType", "errorMessage"} <= document.keys()
        and document.keys() <= _ERROR_KEYS
    )


_NOT_FOUND_HINT = (
    "no function at {url}: check --endpoint-url and the mapping's FunctionName; a stock"
    " Lambda RIE serves only /2015-03-31/functions/function/invocations (use --endpoint-kind"
    " rie for it)"
)


def _error_result(status: int, headers: Message, body: bytes, url: str) -> InvokeResult:
    """An HTTP error from the Invoke API: its code is in ``x-amzn-ErrorType`` or the body."""
    code, message = _error_code(headers, body)
    if status == 404 and not code:
        message = _NOT_FOUND_HINT.format(url=url)
    return InvokeResult.failure(
        classify(code, status),
        f"Invoke failed: {code or 'HTTP ' + str(status)}: {message}",
        request_id=headers.get("x-amzn-RequestId"),
        status_code=status,
    )


def _error_code(headers: Message, body: bytes) -> tuple[str, str]:
    code = (headers.get("x-amzn-ErrorType") or "").split(":", 1)[0]
    try:
        document = json.loads(body)
    except ValueError:
        return code, body[:200].decode("utf-8", "replace")
    if not isinstance(document, dict):
        return code, ""
    if not code:
        code = str(document.get("__type") or document.get("code") or "").rsplit("#", 1)[-1]
    message = document.get("Message") or document.get("message") or ""
    return code, str(message)


def _timeout_result(wait_s: float) -> InvokeResult:
    return InvokeResult.failure(
        ErrorKind.TIMEOUT, f"no reply within {wait_s:g} s; the function may still be running"
    )


def _connection_result(reason: object) -> InvokeResult:
    # Refused or unresolvable: the request never left; a reset may come after it did.
    sent = not isinstance(reason, ConnectionRefusedError | socket.gaierror)
    return InvokeResult.failure(
        ErrorKind.SERVICE_ERROR, f"Invoke endpoint unreachable: {reason}", sent=sent
    )
