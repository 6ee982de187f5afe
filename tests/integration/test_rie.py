"""The HTTP invoker and ``kafka-esm run --function-dir`` against AWS's real Lambda RIE.

The RIE is built once per session from its pinned Go module; the function under it is
``tests/rie_function/app.py``, run by ``awslambdaric`` as in AWS's base images.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from runtime.devtools.rie import RuntimeEmulator, build_rie
from runtime.invokers import ErrorKind, invoker_from_config
from runtime.invokers.http_api import HttpInvoker
from runtime.invokers.params import MAX_RESPONSE_BYTES
from tests.cli_helpers import kafka_esm, run_kafka_esm
from tests.conftest import REPO_ROOT
from tests.kafka_helpers import produce
from tests.poller_harness import mapping_doc, wait_committed

pytestmark = pytest.mark.integration

FUNCTION_DIR = REPO_ROOT / "tests" / "rie_function"
TIMEOUT_S = 2


@pytest.fixture(scope="session")
def rie_binary() -> Path:
    return build_rie()


@pytest.fixture(scope="module")
def emulator(rie_binary: Path) -> Iterator[RuntimeEmulator]:
    with RuntimeEmulator(FUNCTION_DIR, "app.handler", timeout_s=TIMEOUT_S) as running:
        yield running


@pytest.fixture
def invoker(emulator: RuntimeEmulator) -> HttpInvoker:
    built = invoker_from_config(
        "orders-fn", endpoint_url=emulator.endpoint_url, endpoint_kind="rie"
    )
    assert isinstance(built, HttpInvoker)
    return built


def _call(invoker: HttpInvoker, **event: object) -> object:
    return invoker.invoke(json.dumps(event).encode(), deadline_s=30)


def test_success_returns_the_functions_reply(invoker: HttpInvoker) -> None:
    result = _call(invoker, action="echo", value=7)
    assert result.ok, result.message
    assert json.loads(result.payload) == {"echo": 7, "function": "test_function"}


def test_a_raised_exception_is_an_unhandled_function_error(invoker: HttpInvoker) -> None:
    result = _call(invoker, action="fail")
    assert result.error_kind is ErrorKind.FUNCTION_ERROR
    assert result.function_error == "Unhandled"  # inferred: the RIE sends no such header
    document = json.loads(result.payload)
    assert (document["errorType"], document["errorMessage"]) == ("ValueError", "asked to fail")


def test_the_rie_kills_a_function_past_its_timeout(invoker: HttpInvoker) -> None:
    started = time.monotonic()
    result = _call(invoker, action="sleep", seconds=TIMEOUT_S + 5)
    assert result.error_kind is ErrorKind.TIMEOUT, result
    assert time.monotonic() - started < TIMEOUT_S + 4
    assert _call(invoker, action="echo", value=1).ok  # the RIE restarts the runtime


def test_a_reply_over_six_mb_fails_the_call(invoker: HttpInvoker) -> None:
    result = _call(invoker, action="big", bytes=MAX_RESPONSE_BYTES + 1)
    assert not result.ok
    assert result.error_kind is ErrorKind.SERVICE_ERROR  # the RIE answers 502
    assert result.status_code == 502


def test_a_404_names_the_path_a_stock_rie_serves(emulator: RuntimeEmulator) -> None:
    by_name = invoker_from_config(
        "orders-fn", endpoint_url=emulator.endpoint_url, endpoint_kind="invoke-http"
    )
    result = by_name.invoke(b"{}", deadline_s=10)
    assert result.error_kind is ErrorKind.CONFIG_ERROR
    assert "/2015-03-31/functions/function/invocations" in result.message
    assert "--endpoint-kind rie" in result.message


def test_run_function_dir_applies_a_partial_batch_response_and_stops_cleanly(
    kafka: ClusterInfo, topic_factory: object, tmp_path: Path, rie_binary: Path
) -> None:
    topic = topic_factory()  # type: ignore[operator]
    values = [b"ok-0", b"retry-once", b"ok-2", b"ok-3"]
    produce(kafka.plaintext_config(), topic, values)
    mapping = tmp_path / "mapping.json"
    doc = mapping_doc(
        kafka,
        topic,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=0,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    mapping.write_text(json.dumps(doc))
    log = tmp_path / "delivered.log"
    command = kafka_esm(
        "run",
        mapping,
        *("--function-dir", str(FUNCTION_DIR), "--function-handler", "app.handler"),
        *("--metrics", "none"),
    )
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "RIE_TEST_LOG": str(log)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_committed(kafka, f"group-{topic}", topic, [4])
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]
    offsets = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert offsets[:4] == [0, 1, 2, 3]
    assert offsets[4:] == [1, 2, 3]  # resumed from the reported failure
    assert "under the RIE at http://127.0.0.1:" in stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--function-dir", "tests/rie_function"], "--function-dir needs --function-handler"),
        (["--function-handler", "app.handler"], "--function-handler needs --function-dir"),
        (["--function-dir", "nowhere", "--function-handler", "app.h"], "not a directory"),
        (["--function-dir", "tests/rie_function", "--function-handler", "app"], "module.function"),
        (["--function-dir", "tests/rie_function", "--function-handler", "nope.h"], "no module"),
        (
            [
                "--function-dir",
                "tests/rie_function",
                "--function-handler",
                "app.handler",
                "--handler",
                "m:f",
            ],
            "excludes --handler",
        ),
    ],
)
def test_bad_function_dir_flags_are_named(
    kafka: ClusterInfo, tmp_path: Path, flags: list[str], message: str
) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(mapping_doc(kafka, "unused")))
    done = run_kafka_esm(kafka_esm("run", mapping, *flags))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
