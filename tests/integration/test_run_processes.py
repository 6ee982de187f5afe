"""``kafka-esm run --processes N`` on the real broker: members, static membership,
a member killed and restarted, SIGTERM draining them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from runtime.devtools.local_kafka import ClusterInfo
from tests.cli_helpers import kafka_esm, run_kafka_esm
from tests.conftest import REPO_ROOT
from tests.fault_harness import wait_until
from tests.kafka_helpers import produce
from tests.poller_harness import mapping_doc

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def instance_ids(kafka: ClusterInfo, group: str) -> set[str]:
    admin = AdminClient(kafka.plaintext_config())
    described = admin.describe_consumer_groups([group])[group].result(timeout=15)
    return {m.group_instance_id for m in described.members}


def delivered(log: Path) -> set[tuple[int, int]]:
    if not log.exists():
        return set()
    return {(int(p), int(o)) for p, o in (line.split() for line in log.read_text().splitlines())}


def test_members_share_the_partitions_restart_after_a_crash_and_drain_on_sigterm(
    kafka: ClusterInfo, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=4)
    group = f"group-{topic}"
    for partition in range(4):
        produce(kafka.plaintext_config(), topic, [b"v"] * 10, partition=partition)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(mapping_doc(kafka, topic, BatchSize=5)), encoding="utf-8")
    log = tmp_path / "delivered.txt"
    env = {
        **os.environ,
        "CRASH_LOG": str(log),
        "CRASH_AT_OFFSET": "7",  # the member holding it SIGKILLs itself, once
        "CRASH_MARKER": str(tmp_path / "crashed"),
    }
    argv = kafka_esm("run", mapping, "--handler", "tests.integration.crash_handler:handler")
    argv += ["--processes", "2", "--group-instance-id", "slot", "--metrics", "none"]
    parent = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        wanted = {(p, o) for p in range(4) for o in range(10)}
        wait_until(lambda: delivered(log) >= wanted, 90, "every record delivered")
        assert (tmp_path / "crashed").exists(), "a member was killed mid-batch"
        wait_until(lambda: len(children(parent.pid)) == 2, 30, "two members again")
        assert instance_ids(kafka, group) == {"slot-0", "slot-1"}
        members = children(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(60) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert not any(Path(f"/proc/{pid}").exists() for pid in members)


def test_static_membership_is_refused_in_queue_mode(kafka: ClusterInfo, tmp_path: Path) -> None:
    doc = mapping_doc(kafka, "queue-topic")
    del doc["StartingPosition"]
    doc["SelfManagedKafkaEventSourceConfig"]["ConsumptionMode"] = "Queue"
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(doc), encoding="utf-8")
    argv = kafka_esm("run", mapping, "--handler", "tests.unit.sample_handlers:echo")
    result = run_kafka_esm([*argv, "--group-instance-id", "x"])
    assert result.returncode == 2
    assert "--group-instance-id is not supported with ConsumptionMode Queue" in result.stderr
    assert "Traceback" not in result.stderr


def test_static_members_on_the_kip_848_consumer_protocol_share_the_partitions(
    kafka: ClusterInfo, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=4)
    group = f"group-{topic}"
    for partition in range(4):
        produce(kafka.plaintext_config(), topic, [b"v"] * 5, partition=partition)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(mapping_doc(kafka, topic)), encoding="utf-8")
    log = tmp_path / "delivered.txt"
    env = {**os.environ, "CRASH_LOG": str(log)}
    argv = kafka_esm("run", mapping, "--handler", "tests.integration.crash_handler:handler")
    argv += ["--processes", "2", "--group-protocol", "consumer", "--metrics", "none"]
    parent = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        wanted = {(p, o) for p in range(4) for o in range(5)}
        wait_until(lambda: delivered(log) >= wanted, 60, "every record delivered")
        admin = AdminClient(kafka.plaintext_config())
        described = admin.describe_consumer_groups([group])[group].result(timeout=15)
        assert described.type.name == "CONSUMER"
        assert len(described.members) == 2
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(60) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
