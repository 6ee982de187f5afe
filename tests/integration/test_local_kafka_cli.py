"""``kafka-esm local-kafka up | status | down`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import KAFKA_VERSION
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_ESM_CACHE": str(REPO_ROOT / ".cache" / "kafka-esm")}
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "local-kafka", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie awaiting its reaper counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_up_status_down_leaves_no_broker(tmp_path: Path) -> None:
    home = str(tmp_path / "cluster")
    up = _cli("up", "--home", home)
    try:
        assert up.returncode == 0, up.stderr
        assert "ready in" in up.stdout
        for listener in ("PLAINTEXT", "SASL_SSL", "SSL"):
            assert f"  {listener} " in up.stdout
        status = _cli("status", "--home", home, "--json")
        described = json.loads(status.stdout)
        assert status.returncode == 0 and described["running"] is True
        assert described["version"] == KAFKA_VERSION and described["share_groups"] is True
        assert "share groups (Queue mode): on" in up.stdout
        pid = described["pid"]
        assert _alive(pid)
        passwords = json.loads((Path(home) / "state.json").read_text())["passwords"]
        assert all(p not in up.stdout + status.stdout for p in passwords.values())
        again = _cli("up", "--home", home)
        assert "already running" in again.stdout
    finally:
        down = _cli("down", "--home", home)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not _alive(pid)
    assert _cli("status", "--home", home).returncode == 3


def test_up_again_after_down_keeps_the_ports(tmp_path: Path) -> None:
    # Client configs written against the first `up` must still work after a restart.
    home = str(tmp_path / "cluster")
    listeners = []
    for _ in range(2):
        up = _cli("up", "--home", home)
        try:
            assert up.returncode == 0, up.stderr
            status = json.loads(_cli("status", "--home", home, "--json").stdout)
            listeners.append(status["listeners"])
        finally:
            assert _cli("down", "--home", home).returncode == 0
    assert listeners[0] == listeners[1]
    assert set(listeners[0]) == {"PLAINTEXT", "SASL_SSL", "SSL"}
