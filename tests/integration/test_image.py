"""The poller's container image, built with podman and run against the local broker.

Built once per run by ``.ci/build-image`` (what ``make image`` runs; a Debian-built base
where no registry is reachable) under a unique tag that teardown removes, with every
container the tests started. The handler is mounted in, so the image itself holds none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from tests.conftest import REPO_ROOT
from tests.kafka_helpers import produce
from tests.poller_harness import mapping_doc, wait_committed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman: .ci/install-image-tools"),
]

HANDLER = """
import json, os
def handler(event, context):
    with open("/out/batches.jsonl", "a") as out:
        out.write(json.dumps(event["records"]) + "\\n")
"""


# Written by .ci/install-image-tools (which .ci/build-image runs): runc, cgroupfs, ulimits.
CONTAINERS_CONF = REPO_ROOT / ".cache" / "containers" / "containers.conf"


def _podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {"CONTAINERS_CONF": str(CONTAINERS_CONF), **os.environ}
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=check, env=env
    )


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    tag = f"localhost/kafka-esm:test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [str(REPO_ROOT / ".ci" / "build-image")],
        env={**os.environ, "IMAGE": tag},
        check=True,
        timeout=900,
    )
    yield tag
    _podman("rmi", "--force", tag, check=False)


@pytest.fixture
def containers() -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for name in started:
        _podman("rm", "--force", "--time", "0", name, check=False)


def _in_image(image: str, code: str) -> str:
    return _podman("run", "--rm", "--entrypoint", "python3", image, "-c", code).stdout.strip()


def test_the_image_holds_the_poller_only_and_runs_as_non_root(image: str) -> None:
    probe = (
        "import importlib.util as u, os; "
        "print(os.getuid(), [m for m in ('aws_cdk', 'constructs', 'pytest', 'moto',"
        " 'hypothesis', 'runtime.devtools') if u.find_spec(m)], bool(u.find_spec('runtime')))"
    )
    assert _in_image(image, probe) == "10001 [] True"


def test_the_image_consumes_passes_its_healthcheck_and_drains_on_sigterm(
    image: str,
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    tmp_path: Path,
    containers: list[str],
) -> None:
    topic = topic_factory(partitions=2)
    produce(kafka.plaintext_config(), topic, [b"order-%d" % i for i in range(20)])
    (tmp_path / "handler").mkdir()
    (tmp_path / "handler" / "image_handler.py").write_text(HANDLER)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the container's user is 10001
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    name = f"kafka-esm-test-{uuid.uuid4().hex[:8]}"
    containers.append(name)
    _podman(
        "run", "--detach", "--name", name, "--network", "host",
        "-e", f"KAFKA_ESM_MAPPING={json.dumps(doc)}",
        "-e", "PYTHONPATH=/handler",
        "-v", f"{tmp_path / 'handler'}:/handler:ro",
        "-v", f"{out}:/out",
        image, "--handler", "image_handler:handler", "--metrics", "none",
    )  # fmt: skip
    wait_committed(kafka, f"group-{topic}", topic, _ends(kafka, topic))
    handled = [
        record
        for line in (out / "batches.jsonl").read_text().splitlines()
        for records in json.loads(line).values()
        for record in records
    ]
    assert len(handled) >= 20
    assert _podman("healthcheck", "run", name, check=False).returncode == 0

    _podman("stop", "--time", "40", name, timeout=60)
    state = json.loads(_podman("inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 0, _podman("logs", name).stderr[-3000:]
    wait_committed(kafka, f"group-{topic}", topic, _ends(kafka, topic))


def _ends(kafka: ClusterInfo, topic: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**kafka.plaintext_config(), "group.id": "ends-" + topic})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in (0, 1)
        ]
    finally:
        consumer.close()
