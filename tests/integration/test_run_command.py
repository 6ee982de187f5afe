"""``kafka-esm run`` as a process: redelivery after a crash, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from tests.cli_helpers import kafka_esm, run_kafka_esm
from tests.conftest import REPO_ROOT
from tests.kafka_helpers import produce
from tests.poller_harness import committed, mapping_doc

pytestmark = pytest.mark.integration


def _start(mapping: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    command = kafka_esm("run", mapping, "--handler", "tests.integration.crash_handler:handler")
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _offsets(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(line.split()[1]) for line in log.read_text().splitlines()]


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[str], timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            process.kill()
            stderr = process.communicate()[1] or ""  # None when stderr went to a file
            raise AssertionError(f"timed out; stderr:\n{stderr[-3000:]}")
        time.sleep(0.05)


def test_a_poller_killed_before_its_commit_redelivers_that_batch(
    kafka: ClusterInfo, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"r%d" % i for i in range(20)])
    mapping = tmp_path / "mapping.json"
    doc = mapping_doc(kafka, topic, BatchSize=5, MaximumBatchingWindowInSeconds=0)
    mapping.write_text(json.dumps(doc))
    log = tmp_path / "delivered.log"
    env = {"CRASH_LOG": str(log), "CRASH_AT_OFFSET": "12", "CRASH_MARKER": str(tmp_path / "m")}

    first = _start(mapping, env)
    assert first.wait(timeout=60) == -signal.SIGKILL
    first.communicate()
    before_restart = _offsets(log)
    assert before_restart[-5:] == [10, 11, 12, 13, 14]  # the batch it died in
    resume_from = committed(kafka, f"group-{topic}", topic)[0]
    assert resume_from <= 10  # nothing of the dying batch was committed

    second = _start(mapping, env)
    _wait_for(lambda: 19 in _offsets(log), second)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0, second.communicate()[1][-3000:]
    after_restart = _offsets(log)[len(before_restart) :]
    assert after_restart == list(range(resume_from, 20))  # redelivered, in order, no gaps
    assert committed(kafka, f"group-{topic}", topic) == [20]


def test_an_invalid_mapping_does_not_start(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"FunctionName": "f", "Topics": ["t1"], "BatchSize": 0}))
    done = run_kafka_esm(kafka_esm("run", mapping))
    assert done.returncode == 2
    assert done.stderr.startswith("ESM_CONFIG_NOT_VALID: ")
    assert "BatchSize: 0" in done.stderr
    assert "StartingPosition" in done.stderr


_FAILING = "def main(event, context):\n    raise KeyError('not fixed yet')\n"
_FIXED = """import os

def main(event, context):
    with open(os.environ["DELIVERED_LOG"], "a", encoding="utf-8") as log:
        for records in event["records"].values():
            log.writelines(f"{r['offset']}\\n" for r in records)
"""


def test_reload_picks_up_a_fix_and_loses_no_record(
    kafka: ClusterInfo, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"r%d" % i for i in range(10)])
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(mapping_doc(kafka, topic, BatchSize=4)))
    handler, log = tmp_path / "app.py", tmp_path / "delivered.log"
    handler.write_text(_FAILING)
    command = kafka_esm("run", mapping, "--handler", f"{handler}:main", "--reload")
    errors = tmp_path / "stderr.log"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, "DELIVERED_LOG": str(log)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            _wait_for(lambda: "not fixed yet" in errors.read_text(), process)  # retrying
            handler.write_text(_FIXED)
            _wait_for(lambda: log.exists() and "9\n" in log.read_text(), process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    delivered = [int(line) for line in log.read_text().split()]
    assert sorted(set(delivered)) == list(range(10)), errors.read_text()[-3000:]
    assert "reloaded handler" in errors.read_text()
    assert committed(kafka, f"group-{topic}", topic) == [10]
