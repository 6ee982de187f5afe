"""One mapping's poller as a child process: ``kafka-esm run``, started, followed, restarted.

Each mapping runs the same command a user runs (``python -m runtime.cli.main run``) in its
own process, so one mapping's crash, hang or stop reason cannot touch another's. A
:class:`MappingWorker` thread owns that child: it applies the wanted configuration
(restarting the poller, which drains and commits on SIGTERM), follows the poller's status
document for State and LastProcessingResult, and restarts a crashed poller with backoff.
The kernel kills the child when ``serve`` dies (PR_SET_PDEATHSIG), so no poller outlives it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from runtime.children import die_with_parent
from runtime.control.functions import FunctionTarget
from runtime.observability.health import DEFAULT_MAX_AGE_S
from runtime.observability.health import ENV_VAR as HEALTH_FILE_ENV
from runtime.observability.state import (
    CONFIG_NOT_VALID_EXIT,
    MAPPING_STOPPED_EXIT,
    NO_RECORDS_PROCESSED,
    State,
    StateTransitionReason,
    problem,
)
from runtime.observability.status import read_status_documents

log = logging.getLogger("runtime.control.supervisor")

_TICK_S: Final = 0.5
_MAX_BACKOFF_S: Final = 60.0
_STOP_GRACE_S: Final = 15.0
_STABLE_AFTER_S: Final = 60.0
"""A poller that ran this long before crashing restarts after the shortest backoff again."""
LOG_FILE: Final = "poller.log"
MAPPING_FILE: Final = "mapping.json"
STATUS_DIR: Final = "status"
HEARTBEAT_FILE: Final = "heartbeat.json"


@dataclass(frozen=True)
class Wanted:
    """What the mapping should be: the request (with its UUID), where it invokes, and a
    generation that changes with every update."""

    request: dict[str, Any]
    target: FunctionTarget
    generation: int
    deleted: bool = False

    @property
    def enabled(self) -> bool:
        """The request's Enabled (AWS's default: true)."""
        return bool(self.request.get("Enabled", True))


@dataclass(frozen=True)
class Observed:
    """What GetEventSourceMapping reports of the running mapping."""

    state: State
    reason: str
    last_processing_result: str


@dataclass(frozen=True)
class PollerCommand:
    """How a worker starts ``kafka-esm run`` (shared by every mapping of one ``serve``)."""

    drain_timeout_s: float = 30.0
    stuck_after_s: float = DEFAULT_MAX_AGE_S
    """A poller whose loop wrote no heartbeat for this long is killed and restarted."""
    extra_args: Sequence[str] = ()
    python: str = sys.executable

    def argv(self, mapping_file: Path, status_dir: Path, target: FunctionTarget) -> list[str]:
        """The child's command line."""
        return [
            self.python,
            "-m",
            "runtime.cli.main",
            "run",
            "--mapping",
            str(mapping_file),
            *target.run_flags(),
            "--status-dir",
            str(status_dir),
            "--metrics",
            "none",
            "--drain-timeout",
            f"{self.drain_timeout_s:g}",
            *self.extra_args,
        ]


class MappingWorker:
    """Owns one mapping's child process and its observed state; one thread per mapping."""

    def __init__(
        self,
        uuid: str,
        directory: Path,
        wanted: Wanted,
        command: PollerCommand,
        *,
        state: State,
        on_deleted: Callable[[str], None],
    ) -> None:
        self.uuid = uuid
        self.directory = directory
        self._command = command
        self._on_deleted = on_deleted
        self._cond = threading.Condition()
        self._wanted = wanted
        self._observed = Observed(
            state, StateTransitionReason.USER_ACTION.value, NO_RECORDS_PROCESSED
        )
        self._shutdown = False
        self._child: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._attempts = 0
        self._restart_at: float | None = None
        self._spawned_at = 0.0
        self._why_killed: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"mapping-{uuid[:8]}", daemon=True)

    # -- the API side ---------------------------------------------------------------------
    def start(self) -> None:
        """Start following the wanted configuration."""
        self._thread.start()

    def want(self, wanted: Wanted, state: State) -> None:
        """Apply ``wanted``; the mapping shows ``state`` (Updating, Disabling...) meanwhile."""
        with self._cond:
            self._wanted = wanted
            self._observed = Observed(
                state,
                StateTransitionReason.USER_ACTION.value,
                self._observed.last_processing_result,
            )
            self._cond.notify_all()

    def observed(self) -> Observed:
        """State, StateTransitionReason and LastProcessingResult now."""
        with self._cond:
            return self._observed

    def shutdown(self) -> None:
        """Stop the poller gracefully (``serve`` is stopping); the mapping stays stored."""
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the worker's thread to end."""
        self._thread.join(timeout_s)

    # -- the worker thread -----------------------------------------------------------------
    def _loop(self) -> None:
        applied: int | None = None
        try:
            while True:
                with self._cond:
                    wanted, shutdown = self._wanted, self._shutdown
                if shutdown or wanted.deleted:
                    self._stop_child()
                    if wanted.deleted and not shutdown:
                        self._on_deleted(self.uuid)
                    return
                if wanted.generation != applied:
                    self._apply(wanted)
                    applied = wanted.generation
                else:
                    self._follow(wanted)
                with self._cond:
                    if self._wanted.generation == applied and not self._shutdown:
                        self._cond.wait(_TICK_S)
        except Exception:  # the worker must not die silently: the mapping would look stuck
            log.exception("mapping %s: supervisor error", self.uuid)
            self._set(State.DISABLED, "supervisor error (see serve's log)", None)
            self._stop_child()
        finally:
            if self._log is not None:
                self._log.close()

    def _apply(self, wanted: Wanted) -> None:
        self._attempts, self._restart_at = 0, None
        if self._child is not None:
            self._stop_child()
        if not wanted.enabled:
            self._set(State.DISABLED, StateTransitionReason.USER_ACTION.value, None)
            return
        if self.observed().state in (State.CREATING, State.DISABLED, State.ENABLED):
            self._set(State.ENABLING, StateTransitionReason.USER_ACTION.value, None)
        self._spawn(wanted)

    def _follow(self, wanted: Wanted) -> None:
        child = self._child
        if child is not None and child.poll() is not None:
            self._child = None
            self._exited(child.returncode)
        elif (
            child is None and self._restart_at is not None and time.monotonic() >= self._restart_at
        ):
            self._restart_at = None
            self._spawn(wanted)
        elif child is not None and self._stuck(child):
            self._exited(child.returncode)
        elif child is not None:
            self._read_status(child.pid)

    def _stuck(self, child: subprocess.Popen[bytes]) -> bool:
        """True (and the child killed) when its poll loop stopped writing heartbeats: a
        hung poller holds its partitions without reading them, so it is restarted (what a
        container HEALTHCHECK does), its uncommitted batches read again."""
        limit = self._command.stuck_after_s
        if time.monotonic() - self._spawned_at < limit:
            return False
        try:
            written = (self.directory / HEARTBEAT_FILE).stat().st_mtime
        except OSError:
            written = time.time() - (time.monotonic() - self._spawned_at)
        silent_s = time.time() - written
        if silent_s < limit:
            return False
        log.warning(
            "mapping %s: poller pid %d stuck for %.0f s: killed", self.uuid, child.pid, silent_s
        )
        self._child = None
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait()
        self._why_killed = f"poller loop stuck (no heartbeat for {silent_s:.0f} s), killed"
        return True

    def _read_status(self, pid: int) -> None:
        documents, _ = read_status_documents(self.directory / STATUS_DIR)
        document = next((d for d in documents if d.pid == pid), None)
        if document is None:
            return
        current = self.observed()
        state = current.state
        if document.state == State.ENABLED.value and state in (
            State.CREATING,
            State.ENABLING,
            State.UPDATING,
        ):
            state = State.ENABLED
            self._set(
                state, StateTransitionReason.USER_ACTION.value, document.last_processing_result
            )
        elif state is State.ENABLED:
            self._set(state, current.reason, document.last_processing_result)

    def _exited(self, code: int) -> None:
        if code in (CONFIG_NOT_VALID_EXIT, MAPPING_STOPPED_EXIT):
            reason, result = self._stop_reason()
            log.warning("mapping %s stopped: %s: %s", self.uuid, reason, result)
            self._set(
                State.DISABLED, reason, result if result.startswith("PROBLEM:") else problem(result)
            )
            return
        if time.monotonic() - self._spawned_at > _STABLE_AFTER_S:
            self._attempts = 0  # it ran well for a while: this crash starts a new series
        self._attempts += 1
        delay = min(2.0 ** (self._attempts - 1), _MAX_BACKOFF_S)
        self._restart_at = time.monotonic() + delay
        why, self._why_killed = self._why_killed or f"poller exited with code {code}", None
        log.warning("mapping %s: %s; restart %d in %g s", self.uuid, why, self._attempts, delay)
        self._set(
            State.ENABLING,
            f"{why}; restart {self._attempts} in {delay:g} s (log: {self.directory / LOG_FILE})",
            problem(why),
        )

    def _stop_reason(self) -> tuple[str, str]:
        """The reason and result ``kafka-esm run`` printed last (``REASON: result``)."""
        reasons = {r.value for r in StateTransitionReason}
        try:
            lines = (self.directory / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            lines = ""
        for line in reversed(lines.splitlines()):
            head, sep, rest = line.partition(": ")
            if sep and head in reasons:
                return head, rest.strip()
        return StateTransitionReason.ESM_CONFIG_NOT_VALID.value, "the poller stopped"

    def _set(self, state: State, reason: str, result: str | None) -> None:
        with self._cond:
            previous = self._observed
            self._observed = Observed(
                state, reason, previous.last_processing_result if result is None else result
            )

    # -- the child -------------------------------------------------------------------------
    def _spawn(self, wanted: Wanted) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        mapping_file = self.directory / MAPPING_FILE
        mapping_file.write_text(json.dumps(wanted.request, indent=2), encoding="utf-8")
        if self._log is None:
            self._log = (self.directory / LOG_FILE).open("ab")
        for old in (self.directory / STATUS_DIR).glob("*.json"):
            old.unlink()  # earlier pollers' documents: only the running one's counts
        env = {
            **os.environ,
            HEALTH_FILE_ENV: str(self.directory / HEARTBEAT_FILE),
            "PYTHONUNBUFFERED": "1",
        }
        argv = self._command.argv(mapping_file, self.directory / STATUS_DIR, wanted.target)
        self._child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads run in the child
        )
        self._spawned_at = time.monotonic()
        log.info("mapping %s: poller pid %d started", self.uuid, self._child.pid)

    def _stop_child(self) -> None:
        """SIGTERM (the poller drains in-flight batches and commits), then SIGKILL."""
        child, self._child = self._child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(self._command.drain_timeout_s + _STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("mapping %s: poller pid %d ignored SIGTERM: killed", self.uuid, child.pid)
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait()
