"""Child processes of the dev tools (broker, registry, RIE): ports, spawning, stopping by pid.

Everything here works on one pid the caller started (or recorded), never on a name
pattern, so two runs on one machine cannot stop each other's servers.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from runtime.children import die_with_parent

LOOPBACK = "127.0.0.1"
__all__ = ["alive", "die_with_parent", "free_ports", "kill", "port_open", "terminate"]


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free now (the OS may hand one out again: bind soon)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_free(port: int) -> bool:
    """True when ``port`` can be bound on the loopback address now.

    SO_REUSEADDR as the JVM sets it: connections of a broker just stopped, waiting out
    TIME_WAIT on the port, do not stop the next broker from listening there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_open(address: str) -> bool:
    """True when something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def terminate(pid: int, grace_s: float) -> None:
    """SIGTERM, wait up to ``grace_s`` for a clean shutdown, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    kill(pid)


def kill(pid: int) -> None:
    """SIGKILL and wait until the process is gone: a crash, no shutdown hooks run."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid):
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone; our own children are reaped)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: ask the kernel whether it still exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return _state(pid) != "Z"
    return reaped == 0


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat.rpartition(")")[2].split()[0]
