"""Pick the invoker a mapping's configuration asks for.

Three ways to reach the function, chosen in this order:

1. ``handler`` given: LocalHandlerInvoker runs ``module:function`` in-process.
2. ``endpoint_kind="invoke-http"`` or ``"rie"``: HttpInvoker posts unsigned to an emulator's
   Invoke API at ``endpoint_url`` (``sam local start-lambda``); ``"rie"`` does the same
   at the one path a stock Runtime Interface Emulator serves (``functions/function``).
3. Otherwise LambdaInvoker calls AWS Lambda through boto3; ``endpoint_url``, when
   given, replaces AWS's endpoint (LocalStack, moto server) but keeps SigV4.
"""

from __future__ import annotations

from typing import Literal, get_args

from .aws_lambda import LambdaInvoker
from .http_api import HttpInvoker
from .local_handler import LocalHandlerInvoker
from .params import MAX_TIMEOUT_S
from .result import Invoker

EndpointKind = Literal["lambda", "invoke-http", "rie"]
ENDPOINT_KINDS: tuple[str, ...] = get_args(EndpointKind)


def invoker_from_config(
    function_name: str,
    *,
    handler: str | None = None,
    endpoint_url: str | None = None,
    endpoint_kind: str = "lambda",
    qualifier: str | None = None,
    region: str | None = None,
    timeout_s: float = MAX_TIMEOUT_S,
    reload: bool = False,
) -> Invoker:
    """Build the invoker for ``function_name``; see the module docstring for the rules.

    ``reload`` re-imports a local ``handler`` when its source files change."""
    if endpoint_kind not in ENDPOINT_KINDS:
        raise ValueError(
            f"endpoint_kind={endpoint_kind!r} is not valid: must be one of {list(ENDPOINT_KINDS)}"
        )
    if handler is not None:
        if endpoint_url is not None:
            raise ValueError(
                f"handler={handler!r} and endpoint_url are exclusive: a local handler "
                "needs no endpoint"
            )
        return LocalHandlerInvoker(
            handler,
            function_name=function_name,
            timeout_s=timeout_s,
            region=region,
            reload=reload,
        )
    if endpoint_kind in ("invoke-http", "rie"):
        if endpoint_url is None:
            raise ValueError(
                f"endpoint_url=None is not valid with endpoint_kind={endpoint_kind!r}: "
                "give the emulator's base URL, e.g. http://localhost:9000"
            )
        return HttpInvoker(
            function_name,
            endpoint_url=endpoint_url,
            qualifier=qualifier,
            timeout_s=timeout_s,
            path_name="function" if endpoint_kind == "rie" else None,
        )
    return LambdaInvoker(
        function_name,
        qualifier=qualifier,
        region=region,
        endpoint_url=endpoint_url,
        timeout_s=timeout_s,
    )
