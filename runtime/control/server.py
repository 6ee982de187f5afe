"""The HTTP side of ``serve``: Lambda's REST paths in, JSON answers out (standard library).

Requests are parsed and answers shaped by runtime.control.lambda_api; the operations are
runtime.control.service's. ``GET /health`` answers 200 once the stored mappings are back.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from runtime.control.lambda_api import (
    ApiError,
    parse_request,
    path_known,
    shape_output,
    success_status,
)
from runtime.control.service import MappingService

log = logging.getLogger("runtime.control.server")

HEALTH_PATH: Final = "/health"
_MAX_BODY: Final = 6 * 1024 * 1024


class ControlServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the service its handlers call."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: MappingService) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.ready = threading.Event()

    @property
    def url(self) -> str:
        """``http://host:port`` as clients reach it."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Get, List, or the health check."""
        if self.path.split("?", maxsplit=1)[0] == HEALTH_PATH:
            ready = self.server.ready.is_set()
            body = self.server.service.health() if ready else {"status": "starting"}
            self._send(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, body)
            return
        self._dispatch()

    def do_POST(self) -> None:
        """Create."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Update."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Delete."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """No operation: answered 405 on the API's paths, 404 elsewhere."""
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._error(ApiError("InvalidParameterValueException", "the request body is too large"))
            return
        body = self.rfile.read(length) if length else b""
        try:
            request = parse_request(self.command, self.path, body, dict(self.headers.items()))
            if request is None:
                self._unknown_route()
                return
            answer = self.server.service.handle(request)
            self._send(success_status(request.operation), shape_output(request.operation, answer))
        except ApiError as error:
            self._error(error)
        except Exception:  # a bug must answer 500 like AWS's ServiceException, not hang up
            log.exception("%s %s failed", self.command, self.path)
            self._error(ApiError("ServiceException", "internal error (see serve's log)"))

    def _unknown_route(self) -> None:
        if path_known(self.path):
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"message": f"{self.command} not allowed"})
        else:
            self._send(
                HTTPStatus.NOT_FOUND,
                {"message": f"kafka-esm serve answers the event-source-mapping API: {self.path}"},
            )

    def _error(self, error: ApiError) -> None:
        self._send(error.status, error.body(), error_type=error.error_type)

    def _send(self, status: int, body: dict[str, Any], error_type: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type is not None:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to the ``runtime.control.server`` logger at DEBUG, not stderr."""
        log.debug("%s " + format, self.address_string(), *args)
