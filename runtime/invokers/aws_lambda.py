"""Invoke a deployed function through the Lambda API, as the ESM does.

The SDK's own retries are off: the ESM's failure policy (retry limits, record
age, bisect) must see every failed attempt, and one call must not silently turn
into three invocations of a function that already ran.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from .errors import classify
from .params import (
    MAX_TIMEOUT_S,
    check_deadline,
    check_endpoint_url,
    check_function_name,
    check_qualifier,
    check_timeout,
)
from .result import ErrorKind, InvokeResult, new_request_id, reply_result

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

#: Builds a Lambda client whose socket read timeout is the given number of seconds.
ClientFactory = Callable[[float], "LambdaClient"]

_CLIENT_CACHE_SIZE = 4
_TIMEOUT_STEP_S = 0.1


class LambdaInvoker:
    """``lambda:Invoke`` with InvocationType RequestResponse, one attempt per call.

    ``timeout_s`` bounds how long one call waits for the reply; set it a little
    above the function's own timeout so that Lambda's ``Sandbox.Timedout`` reply
    arrives before the client gives up. ``deadline_s`` can shorten one call.
    """

    def __init__(
        self,
        function_name: str,
        *,
        qualifier: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = MAX_TIMEOUT_S,
        connect_timeout_s: float = 10.0,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._function_name = check_function_name(function_name)
        self._qualifier = check_qualifier(qualifier)
        self._timeout_s = check_timeout(timeout_s)
        connect_s = check_timeout(connect_timeout_s, "connect_timeout_s")
        if endpoint_url is not None:
            endpoint_url = check_endpoint_url(endpoint_url)
        self._factory = client_factory or _boto3_factory(region, endpoint_url, connect_s)
        self._clients: OrderedDict[float, LambdaClient] = OrderedDict()
        self._lock = threading.Lock()
        self._client_for(self._timeout_s)  # fail fast on a missing region

    @property
    def function_name(self) -> str:
        """The FunctionName sent with every call."""
        return self._function_name

    def invoke(self, payload: bytes, *, deadline_s: float) -> InvokeResult:
        """Invoke once; waits at most ``min(timeout_s, deadline_s)`` for the reply."""
        wait_s = min(self._timeout_s, check_deadline(deadline_s))
        return self._call("RequestResponse", payload, wait_s)

    def dry_run(self) -> InvokeResult:
        """Check that the function exists and may be invoked, without running it.

        Lambda answers 204 to ``InvocationType=DryRun`` when the caller has
        ``lambda:InvokeFunction`` on an existing function (and version/alias).
        """
        return self._call("DryRun", b"{}", min(self._timeout_s, 30.0))

    def _call(
        self, invocation_type: Literal["RequestResponse", "DryRun"], payload: bytes, wait_s: float
    ) -> InvokeResult:
        client = self._client_for(wait_s)
        try:
            if self._qualifier is None:
                response = client.invoke(
                    FunctionName=self._function_name,
                    InvocationType=invocation_type,
                    Payload=payload,
                )
            else:
                response = client.invoke(
                    FunctionName=self._function_name,
                    InvocationType=invocation_type,
                    Payload=payload,
                    Qualifier=self._qualifier,
                )
            body = response["Payload"].read()
        except ClientError as exc:
            return _client_error_result(exc)
        except BotoCoreError as exc:
            return _transport_error_result(exc, wait_s)
        return reply_result(
            status_code=response["StatusCode"],
            function_error=response.get("FunctionError"),
            executed_version=response.get("ExecutedVersion"),
            payload=body,
            request_id=response["ResponseMetadata"].get("RequestId") or new_request_id(),
        )

    def _client_for(self, wait_s: float) -> LambdaClient:
        """A client whose read timeout is ``wait_s`` rounded up to 0.1 s, cached (LRU of 4).

        botocore fixes the read timeout per client, so a shorter deadline needs
        its own client; callers almost always pass the same deadline.
        """
        key = math.ceil(round(wait_s / _TIMEOUT_STEP_S, 6)) * _TIMEOUT_STEP_S
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._factory(key)
                self._clients[key] = client
                while len(self._clients) > _CLIENT_CACHE_SIZE:
                    self._clients.popitem(last=False)
            self._clients.move_to_end(key)
            return client


def _boto3_factory(
    region: str | None, endpoint_url: str | None, connect_timeout_s: float
) -> ClientFactory:
    """Clients from one private session: boto3's default session is not thread-safe."""
    session = boto3.session.Session()

    def make(read_timeout_s: float) -> LambdaClient:
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=read_timeout_s,
            connect_timeout=min(connect_timeout_s, read_timeout_s),
            tcp_keepalive=True,
        )
        try:
            return session.client(
                "lambda", region_name=region, endpoint_url=endpoint_url, config=config
            )
        except NoRegionError:
            raise ValueError(
                "no AWS region is configured for the function: give --region"
                " (region= from Python) or set AWS_REGION"
            ) from None

    return make


def _client_error_result(exc: ClientError) -> InvokeResult:
    """An error reply from Lambda: classify its code (throttle, config, service)."""
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = error.get("Code", "")
    status = meta.get("HTTPStatusCode")
    return InvokeResult.failure(
        classify(code, status),
        f"Invoke failed: {code or 'HTTP ' + str(status)}: {error.get('Message', '')}",
        request_id=meta.get("RequestId"),
        status_code=status,
    )


def _transport_error_result(exc: BotoCoreError, wait_s: float) -> InvokeResult:
    """No reply: a timeout, missing credentials or a connection fault."""
    if isinstance(exc, ReadTimeoutError):
        return InvokeResult.failure(
            ErrorKind.TIMEOUT, f"no reply within {wait_s:g} s; the function may still be running"
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ParamValidationError):
        return InvokeResult.failure(ErrorKind.CONFIG_ERROR, f"Invoke not sent: {exc}", sent=False)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return InvokeResult.failure(ErrorKind.SERVICE_ERROR, f"Invoke not sent: {exc}", sent=False)
    return InvokeResult.failure(ErrorKind.SERVICE_ERROR, f"Invoke failed: {exc}")
