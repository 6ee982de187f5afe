"""A liveness signal: the poll loop writes a heartbeat file; ``kafka-esm health`` checks it.

A container HEALTHCHECK needs a signal that only a working loop produces: the file is
rewritten at most every few seconds with the time and the mapping's status, so a
stuck loop (stale file) or a stopped mapping (State Disabled for an error) fails it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from runtime.observability.state import State, StateTransitionReason, StatusSnapshot

ENV_VAR = "KAFKA_ESM_HEALTH_FILE"
DEFAULT_MAX_AGE_S = 60.0
_WRITE_EVERY_S = 5.0
UNHEALTHY_EXIT = 1


def health_file() -> Path | None:
    """Where heartbeats go: ``$KAFKA_ESM_HEALTH_FILE``, or nowhere when unset."""
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


class Heartbeat:
    """Writes ``{"time": ..., "state": ..., ...}`` atomically, at most every 5 seconds."""

    def __init__(self, path: Path | None, every_s: float = _WRITE_EVERY_S) -> None:
        self._path = path
        self._every_s = every_s
        self._last = float("-inf")

    def beat(self, status: StatusSnapshot, now: float | None = None, force: bool = False) -> None:
        """Record that the loop is alive with ``status``."""
        now = time.monotonic() if now is None else now
        if self._path is None or (not force and now - self._last < self._every_s):
            return
        self._last = now
        body = {
            "time": time.time(),
            "state": status.state.value,
            "stateTransitionReason": status.state_transition_reason.value,
            "lastProcessingResult": status.last_processing_result,
        }
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body), encoding="utf-8")
        temporary.replace(self._path)


def check(path: Path, max_age_s: float, now: float | None = None) -> tuple[bool, str]:
    """(healthy, reason) for the heartbeat at ``path``."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, f"no readable heartbeat at {path}"
    age = (time.time() if now is None else now) - float(body.get("time", 0))
    if age > max_age_s:
        return False, f"heartbeat is {age:.0f} s old (limit {max_age_s:.0f} s): the loop is stuck"
    stopped = body.get("state") == State.DISABLED.value and body.get(
        "stateTransitionReason"
    ) not in (StateTransitionReason.USER_ACTION.value, StateTransitionReason.USER_INITIATED.value)
    if stopped:
        return False, f"mapping stopped: {body.get('stateTransitionReason')}: " + str(
            body.get("lastProcessingResult")
        )
    return True, f"{body.get('state')}, heartbeat {age:.0f} s old"
