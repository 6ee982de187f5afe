"""A loopback TCP relay that a test can break: reset, refuse, or stall connections.

A broker that advertises the relay's port (``LocalKafka(advertise=...)``) makes every
client connection pass through it, so a test can fail the network between the
poller and Kafka without touching either: ``cut`` resets every open connection (and
with ``refuse_s`` refuses new ones for a while), ``stall`` keeps the connections open
but stops moving bytes, as a partition of the network would.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_CHUNK = 65_536
_TICK_S = 0.05
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


class _Link:
    """One client connection and its upstream twin, relayed both ways by two threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def reset(self) -> None:
        """Close both sides with RST: the peers see the connection torn down at once."""
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.upstream)


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked on this socket
    except OSError:
        pass  # already gone
    sock.close()


class TcpProxy:
    """Relays ``127.0.0.1:<port>`` to ``upstream`` until told to fail."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        """``host:port`` to relay to; connections are refused while it is None."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_TICK_S)
        self.port: int = self._listener.getsockname()[1]
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._refuse_until = 0.0
        self._closing = threading.Event()
        self.resets = 0
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        """``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

    # -- faults ----------------------------------------------------------------------
    def cut(self, refuse_s: float = 0.0) -> int:
        """Reset every open connection, and refuse new ones for ``refuse_s``; returns how many."""
        self._refuse_until = time.monotonic() + refuse_s
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.reset()
        self.resets += len(links)
        return len(links)

    @contextmanager
    def stalled(self) -> Iterator[None]:
        """Hold every byte in both directions while inside; connections stay open."""
        self._flowing.clear()
        try:
            yield
        finally:
            self._flowing.set()

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._closing.set()
        self._flowing.set()
        self._acceptor.join(5)
        self._listener.close()
        self.cut()

    # -- relay -----------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = self._connect() if time.monotonic() >= self._refuse_until else None
            if upstream is None:
                _reset(client)
                continue
            link = _Link(client, upstream)
            with self._lock:
                self._links.add(link)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(link, source, target), daemon=True
                ).start()

    def _connect(self) -> socket.socket | None:
        if self.upstream is None:
            return None
        host, _, port = self.upstream.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=2)
        except OSError:
            return None
        upstream.settimeout(None)
        return upstream

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        try:
            while not link.closed.is_set():
                readable, _, _ = select.select([source], [], [], _TICK_S)
                if not readable:
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    break
                while not self._flowing.wait(_TICK_S):
                    if link.closed.is_set():
                        return
                target.sendall(data)
        except (OSError, ValueError):  # reset by the other pump, or by cut()
            pass
        with self._lock:
            self._links.discard(link)
        link.reset()
