"""``kafka-esm run --processes N``: N members of one mapping's group, supervised.

One Python process uses one core (the GIL); N processes of the same mapping join the same
consumer group (or share group) and Kafka spreads the partitions (or records) over them.
This parent runs no poller: it starts each member as ``kafka-esm run`` without
``--processes``, restarts one that dies (1, 2, 4 ... 30 s apart; a member that ran a minute
starts over at 1 s), and on SIGTERM or SIGINT asks every member to drain and waits.

In Stream mode each member gets a static group membership, ``group.instance.id`` =
``<base>-<slot>`` (the base is ``--group-instance-id``, else the host name, which is unique
per Fargate task): a restarted member takes its partitions back without a rebalance of
the others, within the session timeout. Share groups have no static membership.

A member that exits with ``kafka-esm run``'s configuration or stop code is not restarted:
the same mapping would fail the same way. The others are stopped and that code returned.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from runtime.children import die_with_parent
from runtime.observability.state import CONFIG_NOT_VALID_EXIT, MAPPING_STOPPED_EXIT

log = logging.getLogger("runtime.cli.members")

MAX_PROCESSES = 64
"""The most members one ``run --processes`` starts."""
_TICK_S = 0.2
_MAX_BACKOFF_S = 30.0
_STABLE_AFTER_S = 60.0
_FINAL_EXITS = frozenset({CONFIG_NOT_VALID_EXIT, MAPPING_STOPPED_EXIT})


def member_argv(argv: Sequence[str], slot: int, instance_base: str | None) -> list[str]:
    """``kafka-esm run``'s arguments for one member: without ``--processes``, with its
    static ``--group-instance-id`` when ``instance_base`` is given (Stream mode)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in ("--processes", "--group-instance-id"):
            skip = True
            continue
        if item.startswith(("--processes=", "--group-instance-id=")):
            continue
        out.append(item)
    if instance_base is not None:
        out += ["--group-instance-id", f"{instance_base}-{slot}"]
    return out


def default_instance_base() -> str:
    """The host name: unique per machine and per Fargate task."""
    return socket.gethostname()


@dataclass
class _Member:
    slot: int
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        command = [sys.executable, "-m", "runtime.cli.main", *self.argv]
        self.process = subprocess.Popen(
            command,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads run in the child
        )
        self.started = time.monotonic()
        log.info("member %d started (pid %d)", self.slot, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def schedule_restart(self, code: int) -> None:
        ran_s = time.monotonic() - self.started
        self.restarts = 0 if ran_s >= _STABLE_AFTER_S else self.restarts + 1
        delay = min(_MAX_BACKOFF_S, 2.0 ** max(self.restarts - 1, 0))
        log.warning(
            "member %d (pid %d) exited with code %d after %.1f s; restarting in %.0f s",
            self.slot,
            self.process.pid if self.process else -1,
            code,
            ran_s,
            delay,
        )
        self.process = None
        self.next_start = time.monotonic() + delay


def run_members(
    argv: Sequence[str], count: int, instance_base: str | None, drain_timeout_s: float
) -> int:
    """Start ``count`` members and keep them running until a signal; return the exit code."""
    members = [_Member(slot, member_argv(argv, slot, instance_base)) for slot in range(count)]
    stopping = threading.Event()
    _stop_on_signals(stopping)
    code = 0
    for member in members:
        member.start()
    while not stopping.is_set():
        final = _tend(members)
        if final is not None:
            code = final
            break
        stopping.wait(_TICK_S)
    _stop_all(members, drain_timeout_s)
    return code


def _tend(members: list[_Member]) -> int | None:
    """Restart what died; a final exit code (configuration, stop) ends the run."""
    now = time.monotonic()
    for member in members:
        if member.process is None:
            if now >= member.next_start:
                member.start()
            continue
        code = member.exited()
        if code is None:
            continue
        if code in _FINAL_EXITS:
            log.error("member %d exited with code %d: stopping every member", member.slot, code)
            member.process = None
            return code
        member.schedule_restart(code)
    return None


def _stop_all(members: list[_Member], drain_timeout_s: float) -> None:
    """SIGTERM every member (each drains and commits), then wait; SIGKILL what lingers."""
    running = [m.process for m in members if m.process is not None and m.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + drain_timeout_s + 10
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("member pid %d did not stop in time: killed", process.pid)
            process.kill()
            process.wait()


def _stop_on_signals(stopping: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received: stopping every member", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
