"""Run a Python handler in this process, the way Lambda's Python runtime calls it.

For development without AWS: the handler gets the decoded event and a
Lambda-like context; its reply, exception or timeout comes back exactly as
Lambda would report it, so the failure policy cannot tell the difference.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from msgspec.json import decode as _fast_loads

from runtime.definition.vocabulary import LOCAL_ACCOUNT, LOCAL_REGION

from .params import (
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    MAX_TIMEOUT_S,
    check_deadline,
    check_function_name,
    check_timeout,
)
from .reloader import HandlerReloader
from .result import (
    SANDBOX_TIMEOUT_ERROR_TYPE,
    ErrorKind,
    InvokeResult,
    new_request_id,
    reply_result,
)

Handler = Callable[[Any, "LambdaContext"], Any]

LATEST = "$LATEST"
_UNHANDLED = "Unhandled"
_ARN_NAME_INDEX = 6


class HandlerSpecError(ValueError):
    """A handler spec that does not name an importable callable."""


class LambdaContext:
    """The context object Lambda's Python runtime passes as the handler's second argument."""

    def __init__(
        self,
        *,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        timeout_s: float,
    ) -> None:
        self.function_name = function_name
        self.function_version = LATEST
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        today = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{today}/[{LATEST}]{aws_request_id.replace('-', '')}"
        self.identity: object | None = None
        self.client_context: object | None = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out, never below 0."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def decode_event(payload: bytes) -> Any:
    """The payload as Lambda's Python runtime hands it over (``json.loads``'s result).

    msgspec decodes the poller's events (megabytes of base64 strings) 2.4x faster than
    ``json``; what msgspec refuses but ``json`` reads (numbers beyond 64 bits, ``NaN``)
    is decoded by ``json``, so the handler sees what Lambda would give it.
    """
    try:
        return _fast_loads(payload)
    except ValueError:
        return json.loads(payload)


def load_handler(spec: str) -> Handler:
    """Import ``module:function`` (or Lambda's ``module.function``, or a file
    ``path/to/app.py:function``) and return the callable."""
    module_name, attr = _split_spec(spec)
    try:
        module = _import(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise HandlerSpecError(
                f"handler={spec!r}: module {module_name!r} not found "
                "(is its directory on PYTHONPATH, or give its file: path/to/app.py:handler)"
            ) from exc
        raise HandlerSpecError(
            f"handler={spec!r}: importing module {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:
        raise HandlerSpecError(
            f"handler={spec!r}: importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    target = getattr(module, attr, None)
    if target is None:
        raise HandlerSpecError(f"handler={spec!r}: module {module_name!r} has no {attr!r}")
    if not callable(target):
        raise HandlerSpecError(
            f"handler={spec!r}: {attr!r} is a {type(target).__name__}, not a callable"
        )
    handler: Handler = target
    return handler


def _import(module_name: str) -> ModuleType:
    """The module, by name or, for a ``.py`` path, from that file with its folder on
    ``sys.path`` (as Lambda's task root is), so that its sibling imports work. A module
    name resolves from the current folder too, as ``python -m`` does."""
    if not module_name.endswith(".py"):
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        return importlib.import_module(module_name)
    path = Path(module_name).resolve()
    if not path.is_file():
        raise ModuleNotFoundError(f"no file {module_name}", name=module_name)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ModuleNotFoundError(f"{module_name} cannot be imported", name=module_name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _split_spec(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str):
        raise HandlerSpecError(f"handler={spec!r}: must be a string 'module:function'")
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr.isidentifier():
        raise HandlerSpecError(
            f"handler={spec!r}: must be 'module:function' (or Lambda's 'module.function')"
        )
    return module_name, attr


@dataclass
class _Outcome:
    """Filled by the handler thread; ``done`` is set once ``result`` is final."""

    done: threading.Event = field(default_factory=threading.Event)
    result: InvokeResult | None = None


@dataclass
class _Call:
    handler: Handler
    event: Any
    context: LambdaContext
    outcome: _Outcome = field(default_factory=_Outcome)


class _Sandboxes:
    """Handler threads kept between invocations, each running one call at a time (as a
    Lambda sandbox serves one event at a time).

    A new thread per call cost the caller two waits for the GIL (the new thread's start,
    then the caller's return from ``Thread.start``); while the poll loop keeps the GIL
    busy each wait lasts up to the switch interval (5 ms), and a batch waited for three
    of them. A kept thread is woken by its queue: one wait. A thread whose handler timed
    out comes back to the pool only once the handler returns, so a hung handler never
    delays another call.
    """

    def __init__(self, run: Callable[[_Call], None]) -> None:
        """``run`` fills a call's result and never raises; the pool sets its ``done``."""
        self._run = run
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Call]] = []
        self._started = 0

    def call(self, call: _Call) -> None:
        """Start ``call`` on an idle thread, or on a new one when every thread is busy."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            self._started += 1
            threading.Thread(
                target=self._serve, args=(inbox,), name=f"handler-{self._started}", daemon=True
            ).start()
        inbox.put(call)

    def _serve(self, inbox: queue.SimpleQueue[_Call]) -> None:
        while True:
            call = inbox.get()
            self._run(call)
            with self._lock:  # idle before the caller wakes: its next call finds this thread
                self._idle.append(inbox)
            call.outcome.done.set()
            del call  # an idle thread holds no event


class LocalHandlerInvoker:
    """Calls a Python handler in-process, on a thread of its own per concurrent invocation.

    A handler that runs past ``timeout_s`` yields a TIMEOUT result, but Python
    cannot kill a thread: the handler keeps running in its (daemon) thread until
    it returns, and its late reply is discarded. Concurrent invocations run the
    handler concurrently, so it must be thread-safe (in Lambda each sandbox
    serves one event at a time).
    """

    def __init__(
        self,
        handler: str | Handler,
        *,
        function_name: str = "local-function",
        timeout_s: float = MAX_TIMEOUT_S,
        memory_limit_in_mb: int = 128,
        region: str | None = None,
        reload: bool = False,
    ) -> None:
        # A spec string is imported; a callable (tests, embedding) is used as it is.
        self._spec = (
            handler if isinstance(handler, str) else getattr(handler, "__name__", "handler")
        )
        self._reloader: HandlerReloader | None = None
        if reload:
            if not isinstance(handler, str):
                raise ValueError("reload=True needs a handler spec 'module:function'")
            self._reloader = HandlerReloader(handler, load_handler)
            self._handler = self._reloader.current()
        else:
            self._handler = load_handler(handler) if isinstance(handler, str) else handler
        self._timeout_s = check_timeout(timeout_s)
        name = check_function_name(function_name)
        if name.startswith("arn:"):
            parts = name.split(":")
            if len(parts) <= _ARN_NAME_INDEX or parts[_ARN_NAME_INDEX - 1] != "function":
                raise ValueError(
                    f"function_name={name!r} is not valid: an ARN must look like "
                    "arn:aws:lambda:<region>:<account>:function:<name>"
                )
            self._arn, self._name = name, parts[_ARN_NAME_INDEX]
        else:
            region_name = region or LOCAL_REGION
            self._arn = f"arn:aws:lambda:{region_name}:{LOCAL_ACCOUNT}:function:{name}"
            self._name = name
        if type(memory_limit_in_mb) is not int or not 128 <= memory_limit_in_mb <= 10240:
            raise ValueError(
                f"memory_limit_in_mb={memory_limit_in_mb!r} is out of range: must be 128-10240"
            )
        self._memory = memory_limit_in_mb
        self._sandboxes = _Sandboxes(self._run)

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        """Run the handler once; waits at most ``min(timeout_s, deadline_s)``."""
        wait_s = min(self._timeout_s, check_deadline(deadline_s))
        request_id = new_request_id()
        if len(payload) > MAX_REQUEST_BYTES:
            return InvokeResult.failure(
                ErrorKind.PAYLOAD_TOO_LARGE,
                f"RequestTooLargeException: {len(payload)} byte payload is too large "
                f"(limit {MAX_REQUEST_BYTES} bytes)",
                request_id=request_id,
                status_code=413,
            )
        try:
            event = decode_event(payload)
        except ValueError as exc:
            return InvokeResult.failure(
                ErrorKind.CONFIG_ERROR,
                f"InvalidRequestContentException: payload is not JSON: {exc}",
                request_id=request_id,
                status_code=400,
            )
        context = LambdaContext(
            function_name=self._name,
            invoked_function_arn=self._arn,
            memory_limit_in_mb=self._memory,
            aws_request_id=request_id,
            timeout_s=self._timeout_s,
        )
        handler = self._reloader.current() if self._reloader else self._handler
        call = _Call(handler, event, context)
        self._sandboxes.call(call)
        if call.outcome.done.wait(wait_s) and call.outcome.result is not None:
            return call.outcome.result
        return self._timed_out(request_id, wait_s)

    @staticmethod
    def _run(call: _Call) -> None:
        """Call the handler and keep its reply as Lambda reports it; never raises."""
        request_id = call.context.aws_request_id
        try:
            value = call.handler(call.event, call.context)
            call.outcome.result = _value_reply(request_id, value)
        except BaseException as exc:  # a handler's SystemExit is an error too, as in Lambda
            call.outcome.result = _error_reply(request_id, _exception_body(exc))

    def _timed_out(self, request_id: str, wait_s: float) -> InvokeResult:
        if wait_s < self._timeout_s:
            return InvokeResult.failure(
                ErrorKind.TIMEOUT,
                f"deadline_s passed after {wait_s:g} s; handler {self._spec!r} is still running",
                request_id=request_id,
            )
        body = {
            "errorType": SANDBOX_TIMEOUT_ERROR_TYPE,
            "errorMessage": (
                f"RequestId: {request_id} Error: Task timed out after {self._timeout_s:.2f} seconds"
            ),
        }
        return _error_reply(request_id, body)


def _value_reply(request_id: str, value: Any) -> InvokeResult:
    """Serialize the handler's return value as Lambda's Python runtime does."""
    try:
        reply = json.dumps(value).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        body = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
        }
        return _error_reply(request_id, body)
    if len(reply) > MAX_RESPONSE_BYTES:
        body = {
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
        return _error_reply(request_id, body)
    return reply_result(
        status_code=200,
        function_error=None,
        executed_version=LATEST,
        payload=reply,
        request_id=request_id,
    )


def _exception_body(exc: BaseException) -> dict[str, Any]:
    """Lambda's error document for an exception the handler did not catch."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _error_reply(request_id: str, body: dict[str, Any]) -> InvokeResult:
    return reply_result(
        status_code=200,
        function_error=_UNHANDLED,
        executed_version=LATEST,
        payload=json.dumps(body).encode(),
        request_id=request_id,
    )
