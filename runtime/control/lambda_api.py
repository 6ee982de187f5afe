"""Lambda's REST API for event source mappings, read from botocore's service model.

The paths, methods, status codes, query-string names, which fields UpdateEventSourceMapping
takes, the error types with their HTTP status, and the shape of every answer come from
the model boto3 installs (``botocore/data/lambda/.../service-2.json``): the server speaks
exactly what the client it answers expects, and follows the model when botocore updates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

OPERATIONS: Final = (
    "CreateEventSourceMapping",
    "GetEventSourceMapping",
    "ListEventSourceMappings",
    "UpdateEventSourceMapping",
    "DeleteEventSourceMapping",
)


class ApiError(Exception):
    """An error answer: one of the operation's error shapes, with the model's status."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP status the model gives this error type."""
        shape = service_model().shape_for(self.error_type)
        return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))

    def body(self) -> dict[str, str]:
        """AWS's error body; botocore reads the type from it (and from the header)."""
        shape = service_model().shape_for(self.error_type)
        assert isinstance(shape, StructureShape)
        message_key = "Message" if "Message" in shape.members else "message"
        return {"Type": "User", message_key: self.message, "__type": self.error_type}


def invalid(message: str) -> ApiError:
    """InvalidParameterValueException (400)."""
    return ApiError("InvalidParameterValueException", message)


def not_found(message: str) -> ApiError:
    """ResourceNotFoundException (404)."""
    return ApiError("ResourceNotFoundException", message)


@cache
def service_model() -> ServiceModel:
    """Lambda's model as the installed botocore has it."""
    return botocore.session.get_session().get_service_model("lambda")


@dataclass(frozen=True)
class ApiRequest:
    """One parsed request: the operation and its input, as boto3 would have passed it."""

    operation: str
    params: dict[str, Any]
    region: str


@dataclass(frozen=True)
class _Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]


@cache
def _routes() -> tuple[_Route, ...]:
    routes = []
    for name in OPERATIONS:
        operation = service_model().operation_model(name)
        uri = operation.http["requestUri"].rstrip("/")
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(uri))
        routes.append(_Route(operation, operation.http["method"], re.compile(f"^{regex}/?$")))
    return tuple(routes)


def success_status(operation: str) -> int:
    """The status code the model gives a successful answer (202 for Create/Update/Delete)."""
    return int(service_model().operation_model(operation).http.get("responseCode", 200))


def path_known(path: str) -> bool:
    """True when ``path`` belongs to one of the served operations (whatever the method)."""
    return any(route.pattern.match(path.split("?", maxsplit=1)[0]) for route in _routes())


def parse_request(
    method: str, target: str, body: bytes, headers: Mapping[str, str]
) -> ApiRequest | None:
    """The operation ``method`` and ``target`` address with its input, or None when none
    does; ApiError when the input breaks the model's types (the body must be a JSON
    object)."""
    path, _, query = target.partition("?")
    for route in _routes():
        found = route.pattern.match(path)
        if found is None or route.method != method:
            continue
        operation = route.operation
        params = _body_params(body, operation)
        params.update(_located_params(operation, found.groupdict(), parse_qs(query)))
        return ApiRequest(operation.name, params, _region(headers))
    return None


def _body_params(body: bytes, operation: OperationModel) -> dict[str, Any]:
    if not body.strip() or operation.http["method"] in ("GET", "DELETE"):
        return {}
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise invalid(f"the request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise invalid("the request body must be a JSON object")
    return doc


def _located_params(
    operation: OperationModel, uri: Mapping[str, str], query: Mapping[str, list[str]]
) -> dict[str, Any]:
    """Members the model places in the URI or the query string, typed as the model says."""
    params: dict[str, Any] = {}
    shape = operation.input_shape
    if shape is None:
        return params
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri" and wire in uri:
            params[name] = unquote(uri[wire])
        elif location == "querystring" and wire in query:
            params[name] = _typed(name, query[wire][-1], member)
    return params


def _typed(name: str, text: str, shape: Shape) -> Any:
    if shape.type_name != "integer":
        return text
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"{name}: {text!r} is not an integer") from None
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid(f"{name}: {value} must be from {low} to {high}")
    return value


_CREDENTIAL_SCOPE: Final = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def _region(headers: Mapping[str, str]) -> str:
    """The region the client signed for (any region works), from SigV4's credential scope."""
    found = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    return found.group(1) if found else "us-east-1"


def update_members() -> frozenset[str]:
    """Top-level fields UpdateEventSourceMapping takes (besides UUID, from the path)."""
    shape = service_model().operation_model("UpdateEventSourceMapping").input_shape
    assert shape is not None
    return frozenset(shape.members) - {"UUID"}


def create_only_members() -> frozenset[str]:
    """Fields CreateEventSourceMapping takes and UpdateEventSourceMapping does not."""
    shape = service_model().operation_model("CreateEventSourceMapping").input_shape
    assert shape is not None
    return frozenset(shape.members) - update_members()


def shape_output(operation: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` cut to the operation's output shape: unknown fields left out, nested
    structures and lists walked, timestamps as the epoch seconds rest-json sends."""
    shape = service_model().operation_model(operation).output_shape
    assert isinstance(shape, StructureShape)
    shaped = _shaped(shape, values)
    assert isinstance(shaped, dict)
    return shaped


def _shaped(shape: Shape, value: Any) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return {
            name: _shaped(shape.members[name], item)
            for name, item in value.items()
            if name in shape.members and item is not None
        }
    if shape.type_name == "list" and isinstance(value, list | tuple):
        member: Shape = shape.member  # type: ignore[attr-defined]
        return [_shaped(member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {str(k): _shaped(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if shape.type_name == "timestamp" and isinstance(value, int | float):
        return float(value)
    return value
