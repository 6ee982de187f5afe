"""``kafka-esm local-kafka up | status | down`` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import KAFKA_VERSION
from runtime.testing import run_mapping
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
        phases = re.findall(r"^\[\s*(\d+\.\d) s\] (\w+)", up.stderr, re.MULTILINE)
        assert [word for _, word in phases][-4:] == ["writing", "formatting", "starting", "writing"]
        stamps = [float(at) for at, _ in phases]
        assert stamps == sorted(stamps), up.stderr
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


def test_a_hand_written_sasl_mapping_works_with_the_cli_helpers_alone(tmp_path: Path) -> None:
    # Topic, records, ACLs and secrets from `kafka-esm local-kafka` only: no AdminClient code.
    home = str(tmp_path / "cluster")
    up = _cli("up", "--home", home)
    try:
        assert up.returncode == 0, up.stderr
        assert "file:// secrets for SourceAccessConfigurations" in up.stdout
        status = json.loads(_cli("status", "--home", home, "--json").stdout)
        secrets = status["secrets"]
        assert {"alice", "bob", "admin", "root-ca", "alice-certificate"} <= set(secrets)
        passwords = json.loads((Path(home) / "state.json").read_text())["passwords"]
        assert all(p not in up.stdout for p in passwords.values())

        created = _cli("topic", "create", "orders", "--partitions", "3", "--home", home)
        assert created.returncode == 0, created.stderr
        again = _cli("topic", "create", "orders", "--home", home)
        assert again.returncode == 1 and "already exists" in again.stderr
        listed = json.loads(_cli("topic", "list", "--json", "--home", home).stdout)
        assert listed["orders"] == 3
        wrote = _cli("produce", "orders", "one", "two", "--key", "k", "--home", home)
        assert wrote.returncode == 0 and "wrote 2 record(s)" in wrote.stdout

        mapping = {
            "FunctionName": "f",
            "Topics": ["orders"],
            "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [status["listeners"]["SASL_SSL"]]}
            },
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "orders-consumer"},
            "SourceAccessConfigurations": [
                {"Type": "SASL_SCRAM_512_AUTH", "URI": secrets["alice"]},
                {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": secrets["root-ca"]},
            ],
        }
        path = tmp_path / "m.json"
        path.write_text(json.dumps(mapping))
        bad = _cli("acl", "grant", "--mapping", str(path), "--principal", "alice", "--home", home)
        assert bad.returncode == 2 and "must be User:<name>" in bad.stderr
        dry = _cli("acl", "grant", "--mapping", str(path), "--principal", "User:alice",
                   "--dry-run", "--home", home)  # fmt: skip
        assert "would grant: ALLOW User:alice Read on Topic orders" in dry.stdout
        granted = _cli("acl", "grant", "--mapping", f"file://{path}", "--principal",
                       "User:alice", "--home", home)  # fmt: skip
        assert granted.returncode == 0, granted.stderr
        assert granted.stdout.count("granted: ALLOW User:alice") == 5

        with run_mapping(mapping, lambda event, context: None) as run:
            run.wait_for(records=2, timeout=60)
        assert sorted(run.values()) == [b"one", b"two"]
    finally:
        assert _cli("down", "--home", home).returncode == 0
    stopped = _cli("topic", "list", "--home", home)
    assert stopped.returncode == 3 and "local-kafka up" in stopped.stderr
