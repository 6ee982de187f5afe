"""A fake of Lambda's Invoke REST API on 127.0.0.1: what boto3 and HttpInvoker both call.

A stand-in, kept only for what AWS's real Runtime Interface Emulator cannot produce:
throttles (429), service errors (5xx with error codes), blocked replies for read
timeouts, qualifiers and the exact requests boto3 sends. Success, function errors, the
function timeout, partial batch responses and oversized replies are tested against the
real RIE (tests/integration/test_rie.py). It records every request and answers from a
queue of canned replies (200 with an empty JSON body when the queue is empty).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"null"
    headers: dict[str, str] = field(default_factory=dict)
    block: bool = False


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FakeInvokeApi:
    """Answers each POST with the next queued Reply and records what it received."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.replies: list[Reply] = []
        self.release = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, reply: Reply) -> None:
        self.replies.append(reply)

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeInvokeApi) -> None:
        super().__init__(("127.0.0.1", 0), _InvokeHandler)
        self.api = api

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out closed its socket: nothing to report."""


class _InvokeHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        api = self.server.api
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        api.requests.append(
            Seen(
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
        )
        reply = api.replies.pop(0) if api.replies else Reply()
        if reply.block:
            api.release.wait(10)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
