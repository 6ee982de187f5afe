"""Invokers: how the poller calls the function with one batch.

One protocol (``Invoker.invoke(payload, *, deadline_s) -> InvokeResult``) and
three ways to reach the function: AWS Lambda through boto3, a Python handler in
this process, and an emulator's Invoke REST API over HTTP. ``invoker_from_config``
picks one.
"""

from .aws_lambda import LambdaInvoker
from .errors import classify
from .factory import ENDPOINT_KINDS, invoker_from_config
from .http_api import HttpInvoker
from .local_handler import HandlerSpecError, LambdaContext, LocalHandlerInvoker, load_handler
from .params import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_TIMEOUT_S
from .result import ErrorKind, Invoker, InvokeResult

__all__ = [
    "ENDPOINT_KINDS",
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "MAX_TIMEOUT_S",
    "ErrorKind",
    "HandlerSpecError",
    "HttpInvoker",
    "InvokeResult",
    "Invoker",
    "LambdaContext",
    "LambdaInvoker",
    "LocalHandlerInvoker",
    "classify",
    "invoker_from_config",
    "load_handler",
]
