"""A trivial Invoke API endpoint in its own process: what the poller costs without a handler.

The throughput benchmark's local handler decodes every event in the poller's process,
which is the local mode's cost but not the poller's. Through this sink the poller builds
and POSTs each event exactly as it does to the Runtime Interface Emulator or any Invoke
API, and the sink only reads the body and answers ``null`` (a success), on another core.

Run as a module, this file is the sink: ``python -m bench.sink`` prints its URL.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"null")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per invocation would cost more than the answer."""


@contextmanager
def invoke_sink() -> Iterator[str]:
    """Start the sink process; yield its endpoint URL; stop it (by its pid) after."""
    root = Path(__file__).resolve().parents[1]
    with subprocess.Popen(
        [sys.executable, "-m", "bench.sink"], cwd=root, stdout=subprocess.PIPE, text=True
    ) as sink:
        assert sink.stdout is not None
        try:
            url = sink.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"the invoke sink did not start: {url!r}")
            yield url
        finally:
            sink.terminate()
            sink.wait(10)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
