"""Invokers: every transport outcome becomes the InvokeResult Lambda's ESM would see.

LambdaInvoker (boto3) and HttpInvoker both talk to ``FakeInvokeApi``, a tiny
Invoke-compatible server on 127.0.0.1, so the same wire replies are checked
through both clients. moto cannot run functions here (it needs Docker), so moto
only checks the "function not found" answer; botocore's Stubber covers the error
table.
"""

from __future__ import annotations

import io
import json
import math
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from runtime.invokers import (
    ErrorKind,
    HandlerSpecError,
    HttpInvoker,
    Invoker,
    InvokeResult,
    LambdaInvoker,
    LocalHandlerInvoker,
    classify,
    invoker_from_config,
    load_handler,
)
from runtime.invokers.params import (
    check_deadline,
    check_endpoint_url,
    check_function_name,
    check_qualifier,
    check_timeout,
)
from tests.fake_invoke_api import FakeInvokeApi, Reply
from tests.unit import sample_handlers

HANDLERS = sample_handlers.__name__
EVENT = {"eventSource": "SelfManagedKafka", "records": {"t-0": []}}
PAYLOAD = json.dumps(EVENT).encode()
INVOKE_PATH = "/2015-03-31/functions/{}/invocations"


# --------------------------------------------------------------------------- fake Invoke API


@pytest.fixture
def api() -> Iterator[FakeInvokeApi]:
    server = FakeInvokeApi()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials, no config files, no instance metadata lookups."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(params=["boto3", "http"])
def remote(request: pytest.FixtureRequest, api: FakeInvokeApi, aws_env: None) -> Callable[..., Any]:
    """Build LambdaInvoker or HttpInvoker against the fake server: same wire, two clients."""

    def make(function_name: str = "my-fn", **kwargs: Any) -> LambdaInvoker | HttpInvoker:
        if request.param == "boto3":
            return LambdaInvoker(function_name, endpoint_url=api.url, region="us-east-1", **kwargs)
        return HttpInvoker(function_name, endpoint_url=api.url, **kwargs)

    return make


def _error_reply(status: int, code: str, message: str) -> Reply:
    return Reply(
        status=status,
        body=json.dumps({"Type": "User", "message": message}).encode(),
        headers={
            "Content-Type": "application/json",
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.lambda/",
            "x-amzn-RequestId": "req-err-1",
        },
    )


# --------------------------------------------------------------------------- both remote clients


def test_remote_success_returns_reply_and_sends_one_request_response_call(
    remote: Callable[..., Any], api: FakeInvokeApi
) -> None:
    reply = b'{"batchItemFailures":[]}'
    api.reply(
        Reply(body=reply, headers={"X-Amz-Executed-Version": "7", "x-amzn-RequestId": "req-1"})
    )

    result = remote().invoke(PAYLOAD, deadline_s=5)

    assert result == InvokeResult(
        ok=True,
        error_kind=ErrorKind.NONE,
        request_id="req-1",
        status_code=200,
        executed_version="7",
        payload=reply,
    )
    [seen] = api.requests
    assert seen.path == INVOKE_PATH.format("my-fn")
    assert seen.headers["x-amz-invocation-type"] == "RequestResponse"
    assert seen.body == PAYLOAD
    assert "Qualifier" not in seen.query


def test_remote_passes_qualifier(remote: Callable[..., Any], api: FakeInvokeApi) -> None:
    assert remote(qualifier="live").invoke(PAYLOAD, deadline_s=5).ok

    assert api.requests[0].query == {"Qualifier": ["live"]}


def test_remote_quotes_an_arn_function_name(remote: Callable[..., Any], api: FakeInvokeApi) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"

    assert remote(arn).invoke(PAYLOAD, deadline_s=5).ok

    assert api.requests[0].path in (
        INVOKE_PATH.format(arn),
        INVOKE_PATH.format(arn.replace(":", "%3A")),
    )


@pytest.mark.parametrize("function_error", ["Unhandled", "Handled"])
def test_remote_function_error_is_a_failed_result_with_the_reply(
    remote: Callable[..., Any], api: FakeInvokeApi, function_error: str
) -> None:
    body = b'{"errorMessage":"bad record","errorType":"ValueError","stackTrace":[]}'
    api.reply(Reply(body=body, headers={"X-Amz-Function-Error": function_error}))

    result = remote().invoke(PAYLOAD, deadline_s=5)

    assert not result.ok
    assert result.error_kind is ErrorKind.FUNCTION_ERROR
    assert result.function_error == function_error
    assert result.status_code == 200
    assert result.payload == body
    assert "ValueError: bad record" in result.message


def test_remote_sandbox_timeout_reply_is_timeout(
    remote: Callable[..., Any], api: FakeInvokeApi
) -> None:
    body = json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: x Error: Task timed out after 3.00 seconds",
        }
    ).encode()
    api.reply(Reply(body=body, headers={"X-Amz-Function-Error": "Unhandled"}))

    result = remote().invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.function_error == "Unhandled"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (429, "TooManyRequestsException", ErrorKind.THROTTLED),
        (500, "ServiceException", ErrorKind.SERVICE_ERROR),
        (502, "ResourceNotReadyException", ErrorKind.SERVICE_ERROR),
        (404, "ResourceNotFoundException", ErrorKind.CONFIG_ERROR),
        (403, "AccessDeniedException", ErrorKind.CONFIG_ERROR),
        (502, "KMSAccessDeniedException", ErrorKind.CONFIG_ERROR),
        (413, "RequestTooLargeException", ErrorKind.PAYLOAD_TOO_LARGE),
    ],
)
def test_remote_error_replies_are_classified_and_never_retried(
    remote: Callable[..., Any], api: FakeInvokeApi, status: int, code: str, kind: ErrorKind
) -> None:
    api.reply(_error_reply(status, code, "Rate Exceeded."))
    api.reply(Reply(body=b'"a retry would have succeeded"'))

    result = remote().invoke(PAYLOAD, deadline_s=5)

    assert not result.ok
    assert result.error_kind is kind
    assert result.status_code == status
    assert result.request_id == "req-err-1"
    assert code in result.message
    assert len(api.requests) == 1


def test_remote_read_timeout_is_timeout_and_not_retried(
    remote: Callable[..., Any], api: FakeInvokeApi
) -> None:
    api.reply(Reply(block=True))

    result = remote(timeout_s=0.2).invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.status_code is None
    assert len(api.requests) == 1


def test_remote_deadline_shorter_than_timeout_bounds_the_wait(
    remote: Callable[..., Any], api: FakeInvokeApi
) -> None:
    api.reply(Reply(block=True))

    result = remote(timeout_s=840).invoke(PAYLOAD, deadline_s=0.2)

    assert result.error_kind is ErrorKind.TIMEOUT


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("kind", ["boto3", "http"])
def test_connection_refused_is_service_error(kind: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    invoker: Invoker = (
        LambdaInvoker("my-fn", endpoint_url=url, region="us-east-1")
        if kind == "boto3"
        else HttpInvoker("my-fn", endpoint_url=url)
    )

    result = invoker.invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.SERVICE_ERROR
    assert result.request_id  # a local id when no service answered
    assert not result.sent  # refused: the function did not run


# --------------------------------------------------------------------------- LambdaInvoker only


@pytest.mark.usefixtures("aws_env")
def test_dry_run_sends_dry_run_and_accepts_204(api: FakeInvokeApi) -> None:
    api.reply(Reply(status=204, body=b""))

    result = LambdaInvoker("my-fn", endpoint_url=api.url, region="us-east-1").dry_run()

    assert result.ok
    assert result.status_code == 204
    assert api.requests[0].headers["x-amz-invocation-type"] == "DryRun"


@pytest.mark.usefixtures("aws_env")
def test_dry_run_reports_missing_function_as_config_error(api: FakeInvokeApi) -> None:
    api.reply(_error_reply(404, "ResourceNotFoundException", "Function not found"))

    result = LambdaInvoker("my-fn", endpoint_url=api.url, region="us-east-1").dry_run()

    assert result.error_kind is ErrorKind.CONFIG_ERROR


def _stubbed_client() -> tuple[Any, Stubber]:
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    return client, Stubber(client)


def test_stubbed_success_sends_expected_parameters() -> None:
    client, stubber = _stubbed_client()
    reply = b'{"ok":true}'
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "ExecutedVersion": "3",
            "Payload": StreamingBody(io.BytesIO(reply), len(reply)),
            "ResponseMetadata": {"RequestId": "stub-1", "HTTPStatusCode": 200},
        },
        {
            "FunctionName": "my-fn",
            "InvocationType": "RequestResponse",
            "Payload": PAYLOAD,
            "Qualifier": "3",
        },
    )
    with stubber:
        result = LambdaInvoker("my-fn", qualifier="3", client_factory=lambda _: client).invoke(
            PAYLOAD, deadline_s=5
        )

    assert result.ok
    assert (result.payload, result.executed_version, result.request_id) == (reply, "3", "stub-1")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("TooManyRequestsException", 429, ErrorKind.THROTTLED),
        ("EC2ThrottledException", 502, ErrorKind.THROTTLED),
        ("ResourceNotFoundException", 404, ErrorKind.CONFIG_ERROR),
        ("InvalidParameterValueException", 400, ErrorKind.CONFIG_ERROR),
        ("InvalidRuntimeException", 502, ErrorKind.CONFIG_ERROR),
        ("ResourceConflictException", 409, ErrorKind.SERVICE_ERROR),
        ("ENILimitReachedException", 502, ErrorKind.SERVICE_ERROR),
        ("SerializedRequestEntityTooLargeException", 413, ErrorKind.PAYLOAD_TOO_LARGE),
    ],
)
def test_stubbed_client_errors_become_results(code: str, status: int, kind: ErrorKind) -> None:
    client, stubber = _stubbed_client()
    stubber.add_client_error("invoke", service_error_code=code, http_status_code=status)
    with stubber:
        result = LambdaInvoker("my-fn", client_factory=lambda _: client).invoke(
            PAYLOAD, deadline_s=5
        )

    assert (result.ok, result.error_kind, result.status_code) == (False, kind, status)


def test_client_read_timeout_is_min_of_timeout_and_deadline_rounded_up() -> None:
    asked: list[float] = []
    client, stubber = _stubbed_client()

    def factory(read_timeout_s: float) -> Any:
        asked.append(read_timeout_s)
        return client

    invoker = LambdaInvoker("my-fn", timeout_s=60, client_factory=factory)
    stubber.add_client_error("invoke", service_error_code="ServiceException", http_status_code=500)
    stubber.add_client_error("invoke", service_error_code="ServiceException", http_status_code=500)
    with stubber:
        invoker.invoke(PAYLOAD, deadline_s=2.01)
        invoker.invoke(PAYLOAD, deadline_s=2.05)  # same 0.1 s step: client reused

    assert asked[0] == 60
    assert [round(t, 6) for t in asked[1:]] == [2.1]


def test_missing_credentials_is_config_error(
    api: FakeInvokeApi, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = LambdaInvoker("my-fn", endpoint_url=api.url, region="us-east-1").invoke(
        PAYLOAD, deadline_s=5
    )

    assert result.error_kind is ErrorKind.CONFIG_ERROR
    assert not result.sent  # so InvokedEventCount does not count it
    assert api.requests == []


def test_missing_region_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)

    with pytest.raises(ValueError, match="region") as refused:
        LambdaInvoker("my-fn")
    # It names what a CLI user sets, not only the Python keyword.
    assert "--region" in str(refused.value)
    assert "AWS_REGION" in str(refused.value)


@pytest.mark.usefixtures("aws_env")
def test_moto_missing_function_is_config_error() -> None:
    with mock_aws():
        invoker = LambdaInvoker("no-such-function", region="us-east-1")
        result = invoker.invoke(PAYLOAD, deadline_s=5)
        dry = invoker.dry_run()

    assert result.error_kind is ErrorKind.CONFIG_ERROR
    assert result.status_code == 404
    assert "ResourceNotFoundException" in result.message
    assert dry.error_kind is ErrorKind.CONFIG_ERROR


# --------------------------------------------------------------------------- HttpInvoker only


def test_http_infers_rie_error_without_function_error_header(api: FakeInvokeApi) -> None:
    body = b'{"errorType":"Error","errorMessage":"failure","trace":["Error: failure"]}'
    api.reply(Reply(body=body))

    result = HttpInvoker("function", endpoint_url=api.url).invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.FUNCTION_ERROR
    assert result.function_error == "Unhandled"
    assert result.payload == body


def test_http_treats_empty_reply_as_crash(api: FakeInvokeApi) -> None:
    api.reply(Reply(body=b""))

    result = HttpInvoker("function", endpoint_url=api.url).invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.FUNCTION_ERROR


def test_http_inference_can_be_turned_off(api: FakeInvokeApi) -> None:
    api.reply(Reply(body=b'{"errorType":"Error","errorMessage":"failure"}'))

    invoker = HttpInvoker("function", endpoint_url=api.url, infer_function_error=False)

    assert invoker.invoke(PAYLOAD, deadline_s=5).ok


def test_http_does_not_infer_error_from_a_richer_reply(api: FakeInvokeApi) -> None:
    api.reply(Reply(body=b'{"errorType":"x","errorMessage":"y","batchItemFailures":[]}'))

    assert HttpInvoker("function", endpoint_url=api.url).invoke(PAYLOAD, deadline_s=5).ok


def test_http_reads_error_code_from_body_when_header_is_missing(api: FakeInvokeApi) -> None:
    body = json.dumps({"__type": "com.amazon#ResourceNotFoundException", "Message": "nope"})
    api.reply(Reply(status=400, body=body.encode()))

    result = HttpInvoker("function", endpoint_url=api.url).invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.CONFIG_ERROR
    assert "ResourceNotFoundException: nope" in result.message


def test_http_non_json_gateway_error_is_service_error(api: FakeInvokeApi) -> None:
    api.reply(Reply(status=502, body=b"<html>Bad Gateway</html>"))

    result = HttpInvoker("function", endpoint_url=api.url).invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.SERVICE_ERROR
    assert "HTTP 502" in result.message


def test_http_ignores_proxy_environment(
    api: FakeInvokeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)

    assert HttpInvoker("function", endpoint_url=api.url).invoke(PAYLOAD, deadline_s=5).ok


def test_http_builds_rie_url() -> None:
    invoker = HttpInvoker("function", endpoint_url="http://localhost:9000/")

    assert invoker.url == "http://localhost:9000/2015-03-31/functions/function/invocations"


# --------------------------------------------------------------------------- LocalHandlerInvoker


@pytest.fixture
def release() -> Iterator[threading.Event]:
    sample_handlers.RELEASE.clear()
    yield sample_handlers.RELEASE
    sample_handlers.RELEASE.set()


def _local(name: str, **kwargs: Any) -> LocalHandlerInvoker:
    return LocalHandlerInvoker(f"{HANDLERS}:{name}", **kwargs)


def test_local_success_passes_decoded_event_and_serializes_reply() -> None:
    result = _local("echo").invoke(PAYLOAD, deadline_s=5)

    assert result.ok
    assert (result.status_code, result.executed_version) == (200, "$LATEST")
    assert result.payload is not None
    assert json.loads(result.payload) == {"event": EVENT, "request_id": result.request_id}


def test_local_none_reply_is_json_null() -> None:
    assert _local("returns_none").invoke(PAYLOAD, deadline_s=5).payload == b"null"


def test_local_exception_is_unhandled_function_error_shaped_like_lambda() -> None:
    result = _local("fails").invoke(b'{"why": "bad offset"}', deadline_s=5)

    assert (result.ok, result.error_kind) == (False, ErrorKind.FUNCTION_ERROR)
    assert (result.status_code, result.function_error) == (200, "Unhandled")
    assert result.payload is not None
    body = json.loads(result.payload)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom: bad offset"
    assert any("sample_handlers.py" in line and "fails" in line for line in body["stackTrace"])


def test_local_system_exit_is_a_function_error_not_a_hang() -> None:
    result = _local("exits").invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.FUNCTION_ERROR
    assert result.payload is not None
    assert json.loads(result.payload)["errorType"] == "SystemExit"


def test_local_unserializable_reply_is_marshal_error() -> None:
    result = _local("unserializable").invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.FUNCTION_ERROR
    assert result.payload is not None
    assert json.loads(result.payload)["errorType"] == "Runtime.MarshalError"


def test_local_function_timeout_reports_sandbox_timedout(release: threading.Event) -> None:
    result = _local("blocks", timeout_s=0.05).invoke(PAYLOAD, deadline_s=5)

    assert result.error_kind is ErrorKind.TIMEOUT
    assert (result.status_code, result.function_error) == (200, "Unhandled")
    assert result.payload is not None
    body = json.loads(result.payload)
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Task timed out after 0.05 seconds"
    )


def test_local_handler_threads_are_reused_and_a_hung_one_is_not() -> None:
    release = threading.Event()
    served_by: list[str] = []

    def handler(event: Any, _context: object) -> None:
        served_by.append(threading.current_thread().name)
        if event.get("hang"):
            release.wait(10)

    invoker = LocalHandlerInvoker(handler, timeout_s=0.05)
    try:
        assert invoker.invoke(b"{}", deadline_s=5).ok
        assert invoker.invoke(b"{}", deadline_s=5).ok
        assert served_by[0] == served_by[1]  # one kept thread, not one per call
        hung = invoker.invoke(b'{"hang": true}', deadline_s=5)
        assert hung.error_kind is ErrorKind.TIMEOUT
        assert invoker.invoke(b"{}", deadline_s=5).ok  # not queued behind the hung handler
        assert served_by[3] != served_by[2]
    finally:
        release.set()


def test_local_caller_deadline_gives_up_without_a_reply(release: threading.Event) -> None:
    result = _local("blocks").invoke(PAYLOAD, deadline_s=0.05)

    assert result.error_kind is ErrorKind.TIMEOUT
    assert (result.status_code, result.function_error, result.payload) == (None, None, None)
    assert "still running" in result.message


def test_local_context_has_lambda_fields() -> None:
    invoker = _local("context_fields", function_name="orders", timeout_s=2, memory_limit_in_mb=512)

    result = invoker.invoke(PAYLOAD, deadline_s=5)

    assert result.payload is not None
    fields = json.loads(result.payload)
    assert fields["function_name"] == "orders"
    assert fields["function_version"] == "$LATEST"
    assert fields["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:orders"
    assert fields["memory_limit_in_mb"] == 512
    assert fields["aws_request_id"] == result.request_id
    assert fields["log_group_name"] == "/aws/lambda/orders"
    assert fields["log_stream_name"].endswith("/[$LATEST]" + result.request_id.replace("-", ""))
    assert 0 < fields["remaining_ms"] <= 2000


def test_local_context_from_arn_and_region() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders"

    fields = json.loads(
        _local("context_fields", function_name=arn).invoke(PAYLOAD, deadline_s=5).payload or b""
    )

    assert (fields["function_name"], fields["invoked_function_arn"]) == ("orders", arn)


def test_local_request_ids_are_unique_uuids() -> None:
    invoker = _local("echo")

    ids = {invoker.invoke(PAYLOAD, deadline_s=5).request_id for _ in range(3)}

    assert len(ids) == 3
    assert all(len(i) == 36 for i in ids)


def test_local_invalid_json_payload_is_config_error() -> None:
    result = _local("echo").invoke(b"{not json", deadline_s=5)

    assert result.error_kind is ErrorKind.CONFIG_ERROR
    assert "InvalidRequestContentException" in result.message


def test_local_oversized_payload_is_refused_before_the_handler_runs() -> None:
    payload = b'"' + b"x" * 6_291_455 + b'"'

    result = _local("fails").invoke(payload, deadline_s=5)

    assert result.error_kind is ErrorKind.PAYLOAD_TOO_LARGE
    assert result.status_code == 413


def test_local_concurrent_invocations_keep_their_own_results() -> None:
    invoker = _local("echo")
    results: dict[int, InvokeResult] = {}

    def call(n: int) -> None:
        results[n] = invoker.invoke(json.dumps({"n": n}).encode(), deadline_s=5)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for n, result in results.items():
        assert json.loads(result.payload or b"")["event"] == {"n": n}
    assert len(results) == 8


def test_load_handler_accepts_lambda_dotted_spec() -> None:
    assert load_handler(f"{HANDLERS}.echo") is sample_handlers.echo


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no_such_module_xyz:handler", "module 'no_such_module_xyz' not found"),
        (f"{HANDLERS}:missing", "has no 'missing'"),
        (f"{HANDLERS}:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not a callable"),
        ("justaname", "must be 'module:function'"),
        (f"{HANDLERS}:", "must be 'module:function'"),
        (":echo", "must be 'module:function'"),
    ],
)
def test_bad_handler_specs_name_the_spec(spec: str, expected: str) -> None:
    with pytest.raises(HandlerSpecError) as info:
        LocalHandlerInvoker(spec)

    assert f"handler={spec!r}" in str(info.value)
    assert expected in str(info.value)


def test_handler_module_that_raises_on_import(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_on_import_mod.py").write_text("raise RuntimeError('no config')\n")
    (tmp_path / "missing_dep_mod.py").write_text("import not_installed_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(HandlerSpecError, match="raised RuntimeError: no config"):
        load_handler("broken_on_import_mod:handler")
    with pytest.raises(HandlerSpecError, match="importing module 'missing_dep_mod' failed"):
        load_handler("missing_dep_mod:handler")


# --------------------------------------------------------------------------- factory and protocol


@pytest.mark.usefixtures("aws_env")
def test_factory_picks_each_invoker() -> None:
    local = invoker_from_config("orders", handler=f"{HANDLERS}:echo")
    http = invoker_from_config(
        "function", endpoint_url="http://localhost:9000", endpoint_kind="invoke-http"
    )
    aws = invoker_from_config("orders", endpoint_url="http://localhost:4566", region="us-east-1")
    default = invoker_from_config("orders")

    assert isinstance(local, LocalHandlerInvoker)
    assert isinstance(http, HttpInvoker)
    assert isinstance(aws, LambdaInvoker)
    assert isinstance(default, LambdaInvoker)
    for invoker in (local, http, aws, default):
        assert isinstance(invoker, Invoker)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"handler": f"{HANDLERS}:echo", "endpoint_url": "http://x:1"}, "exclusive"),
        ({"endpoint_kind": "invoke-http"}, "endpoint_url=None is not valid"),
        ({"endpoint_kind": "grpc"}, "endpoint_kind='grpc' is not valid"),
        ({"endpoint_url": "ftp://x", "region": "us-east-1"}, "endpoint_url='ftp://x'"),
    ],
)
def test_factory_rejects_bad_combinations(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        invoker_from_config("orders", **kwargs)


# --------------------------------------------------------------------------- shared rules


def test_result_rejects_contradictory_ok_flag() -> None:
    with pytest.raises(ValueError, match="ok=True contradicts error_kind=THROTTLED"):
        InvokeResult(ok=True, error_kind=ErrorKind.THROTTLED, request_id="r")


def test_failure_messages_are_truncated() -> None:
    result = InvokeResult.failure(ErrorKind.SERVICE_ERROR, "x" * 10_000)

    assert len(result.message) == 500
    assert result.request_id


@pytest.mark.parametrize("value", [840, 0.05, 1])
def test_timeout_accepts_up_to_fourteen_minutes(value: float) -> None:
    assert check_timeout(value) == value


@pytest.mark.parametrize("value", [0, -1, 840.001, 900, math.nan, math.inf, True, "3"])
def test_timeout_rejects_out_of_range(value: Any) -> None:
    with pytest.raises(ValueError, match=r"timeout_s="):
        check_timeout(value)


@pytest.mark.parametrize("value", [0, -0.5, math.nan])
def test_deadline_must_be_positive(value: float) -> None:
    with pytest.raises(ValueError, match="deadline_s="):
        check_deadline(value)


def test_invoke_rejects_bad_deadline() -> None:
    with pytest.raises(ValueError, match="deadline_s=0"):
        _local("echo").invoke(PAYLOAD, deadline_s=0)


@pytest.mark.parametrize("value", ["", "a" * 171, "my fn"])
def test_function_name_rules(value: str) -> None:
    with pytest.raises(ValueError, match="function_name="):
        check_function_name(value)


@pytest.mark.parametrize("value", ["", "a/b", "x" * 129])
def test_qualifier_rules(value: str) -> None:
    with pytest.raises(ValueError, match="qualifier="):
        check_qualifier(value)
    assert check_qualifier("$LATEST") == "$LATEST"


@pytest.mark.parametrize(
    "value", ["localhost:9000", "ftp://host", "http://", "http://h:port", "http://h?x=1"]
)
def test_endpoint_url_rules(value: str) -> None:
    with pytest.raises(ValueError, match="endpoint_url="):
        check_endpoint_url(value)


def test_endpoint_url_with_credentials_never_echoes_them() -> None:
    with pytest.raises(ValueError) as info:
        check_endpoint_url("http://admin:s3cr3t@localhost:9000")

    assert "s3cr3t" not in str(info.value)
    assert "must not carry credentials" in str(info.value)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("", 429, ErrorKind.THROTTLED),
        ("", 404, ErrorKind.CONFIG_ERROR),
        ("", 413, ErrorKind.PAYLOAD_TOO_LARGE),
        ("", 503, ErrorKind.SERVICE_ERROR),
        (None, None, ErrorKind.SERVICE_ERROR),
        ("SomethingNew", 500, ErrorKind.SERVICE_ERROR),
        ("SnapStartNotReadyException", 409, ErrorKind.SERVICE_ERROR),
        ("RecursiveInvocationException", 400, ErrorKind.CONFIG_ERROR),
    ],
)
def test_classify_falls_back_to_status(
    code: str | None, status: int | None, kind: ErrorKind
) -> None:
    assert classify(code, status) is kind
