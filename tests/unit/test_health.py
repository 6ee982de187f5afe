"""The heartbeat behind the container HEALTHCHECK."""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from runtime.cli import health as health_command
from runtime.observability import health
from runtime.observability.state import State, StateTransitionReason, StatusSnapshot

RUNNING = StatusSnapshot(State.ENABLED, StateTransitionReason.USER_ACTION, "OK")


def test_a_fresh_heartbeat_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    health.Heartbeat(path).beat(RUNNING)
    assert health.check(path, max_age_s=60) == (True, "Enabled, heartbeat 0 s old")


def test_a_stale_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    health.Heartbeat(path).beat(RUNNING)
    healthy, reason = health.check(path, max_age_s=60, now=time.time() + 120)
    assert not healthy and "stuck" in reason


def test_a_mapping_stopped_for_an_error_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    stopped = StatusSnapshot(
        State.DISABLED,
        StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR,
        "PROBLEM: SASL authentication failed",
    )
    health.Heartbeat(path).beat(stopped)
    healthy, reason = health.check(path, max_age_s=60)
    assert not healthy
    assert (
        reason == "mapping stopped: EVENT_SOURCE_AUTHN_ERROR: PROBLEM: SASL authentication failed"
    )


def test_heartbeats_are_throttled_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    beat = health.Heartbeat(path, every_s=5)
    beat.beat(RUNNING, now=100.0)
    path.unlink()
    beat.beat(RUNNING, now=101.0)
    assert not path.exists()
    beat.beat(RUNNING, now=101.0, force=True)
    assert path.exists()


def test_health_command_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    out = io.StringIO()
    args = argparse.Namespace(file=path, max_age=60.0)
    assert health_command.run(args, out) == 1
    health.Heartbeat(path).beat(RUNNING)
    assert health_command.run(args, out) == 0
    assert out.getvalue().splitlines() == [
        f"unhealthy: no readable heartbeat at {path}",
        "healthy: Enabled, heartbeat 0 s old",
    ]
