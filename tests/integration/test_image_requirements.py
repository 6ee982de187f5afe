"""The container image's install step, proven without a container engine.

A clean virtualenv gets exactly what runtime/Dockerfile installs (runtime/requirements.txt,
then the package without dependencies); the poller's CLI from there consumes the real
broker and invokes an Invoke-compatible endpoint, and its HEALTHCHECK command answers.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from tests.conftest import REPO_ROOT
from tests.fake_invoke_api import FakeInvokeApi
from tests.kafka_helpers import produce
from tests.poller_harness import mapping_doc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, "-r", str(REPO_ROOT / "runtime" / "requirements.txt")], check=True)
    # What the Dockerfile copies, staged apart from the checkout: a stale build/ folder of
    # an earlier local install must not stand in for the sources under test.
    context = tmp_path_factory.mktemp("context")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, context / name)
    shutil.copytree(
        REPO_ROOT / "runtime",
        context / "runtime",
        ignore=shutil.ignore_patterns("__pycache__", "devtools"),
    )
    subprocess.run([*pip, "--no-deps", str(context)], check=True)
    return venv


@pytest.fixture
def invoke_api() -> Iterator[FakeInvokeApi]:
    api = FakeInvokeApi()
    yield api
    api.stop()


def _imports(venv: Path, module: str) -> bool:
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {module}"], capture_output=True, check=False
    )
    return probe.returncode == 0


def test_the_image_carries_the_poller_and_nothing_else(image_venv: Path) -> None:
    assert _imports(image_venv, "runtime.pipeline.poller")
    assert _imports(image_venv, "confluent_kafka")
    for absent in ("aws_cdk", "constructs", "pytest", "moto", "hypothesis"):
        assert not _imports(image_venv, absent), f"{absent} must not be in the image"


def test_the_image_install_runs_a_mapping_against_the_real_broker(
    image_venv: Path,
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    invoke_api: FakeInvokeApi,
    tmp_path: Path,
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"a", b"b", b"c"])
    heartbeat = tmp_path / "health.json"
    env = {
        **os.environ,
        "PATH": f"{image_venv / 'bin'}:{os.environ['PATH']}",
        "KAFKA_ESM_MAPPING": json.dumps(
            mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
        ),
        "KAFKA_ESM_HEALTH_FILE": str(heartbeat),
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    env.pop("PYTHONPATH", None)
    poller = subprocess.Popen(
        [
            str(image_venv / "bin" / "kafka-esm"),
            "run",
            "--endpoint-kind",
            "invoke-http",
            "--endpoint-url",
            invoke_api.url,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not invoke_api.requests and time.monotonic() < deadline and poller.poll() is None:
            time.sleep(0.05)
        assert invoke_api.requests, poller.communicate(timeout=5)[1][-2000:]
        event = json.loads(invoke_api.requests[0].body)
        values = [base64.b64decode(r["value"]) for r in event["records"][f"{topic}-0"]]
        assert values == [b"a", b"b", b"c"]
        health = subprocess.run(
            [str(image_venv / "bin" / "kafka-esm"), "health"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert health.returncode == 0, health.stdout
    finally:
        poller.send_signal(signal.SIGTERM)
        assert poller.wait(timeout=60) == 0
