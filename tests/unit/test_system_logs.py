"""LoggingConfig.SystemLogLevel: AWS's ESM system log records, at the configured level."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.definition.model import parse_mapping
from runtime.observability.system_logs import install_system_logs
from tests.cli_helpers import kafka_esm
from tests.conftest import REPO_ROOT

UUID = "6f1f7c35-1d6c-4a0e-9b0e-2b0e7c1d9a11"


def _mapping(level: str | None, function: str = "fn") -> Any:
    doc: dict[str, Any] = {
        "UUID": UUID,
        "FunctionName": function,
        "Topics": ["orders"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}},
    }
    if level:
        doc["LoggingConfig"] = {"SystemLogLevel": level}
    return parse_mapping(doc)


@pytest.fixture
def runtime_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger("runtime")
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit_each_kind() -> None:
    logging.getLogger("runtime.observability.state").info(
        "state Enabling -> Enabled", extra={"state": "Enabled"}
    )
    logging.getLogger("runtime.pipeline.processor").info(
        "batch invoked", extra={"records": 3, "offsets": {"orders-0": "0-2"}}
    )
    logging.getLogger("runtime.pipeline.source").warning(
        "polling error: not authorized", extra={"code": "TOPIC_AUTHORIZATION_FAILED"}
    )
    logging.getLogger("runtime.cli.run").warning("not an ESM event")


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("WARN", ["WARN"]),
        ("INFO", ["INFO", "WARN"]),
        ("DEBUG", ["INFO", "DEBUG", "WARN"]),
    ],
)
def test_each_level_includes_the_less_detailed_ones(
    runtime_logger: logging.Logger, level: str, expected: list[str]
) -> None:
    runtime_logger.setLevel(logging.WARNING)  # --log-level WARNING: system logs still get INFO
    stream = io.StringIO()
    install_system_logs(_mapping(level), stream, region="eu-west-1")
    _emit_each_kind()
    documents = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [d["logLevel"] for d in documents] == expected
    warn = documents[-1]
    assert warn == {
        "eventType": "ESM_PROCESSING_EVENT",
        "timestamp": warn["timestamp"],
        "resourceArn": f"arn:aws:lambda:eu-west-1:000000000000:event-source-mapping:{UUID}",
        "eventSourceArn": UUID,
        "eventProcessorId": f"{UUID}/0",
        "logLevel": "WARN",
        "error": {
            "errorMessage": "polling error: not authorized",
            "errorCode": "org.apache.kafka.common.errors.TopicAuthorizationException",
        },
    }
    assert abs(warn["timestamp"] / 1000 - time.time()) < 60


def test_without_logging_config_nothing_is_installed(runtime_logger: logging.Logger) -> None:
    before = list(runtime_logger.handlers)
    assert install_system_logs(_mapping(None), io.StringIO()) is None
    assert runtime_logger.handlers == before


def test_the_function_arn_gives_region_and_account(runtime_logger: logging.Logger) -> None:
    stream = io.StringIO()
    arn = "arn:aws:lambda:ap-south-1:111122223333:function:fn"
    install_system_logs(_mapping("INFO", arn), stream)
    logging.getLogger("runtime.observability.state").info("state change")
    [document] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert document["resourceArn"] == (
        f"arn:aws:lambda:ap-south-1:111122223333:event-source-mapping:{UUID}"
    )
    assert document["eventType"] == "ESM_STATE_EVENT" and document["message"] == "state change"


def test_run_writes_them_to_the_system_log_file(tmp_path: Path) -> None:
    mapping = tmp_path / "m.json"
    doc = {
        "FunctionName": "f",
        "Topics": ["t1"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}},
        "LoggingConfig": {"SystemLogLevel": "INFO"},
    }
    mapping.write_text(json.dumps(doc))
    system_log = tmp_path / "esm.jsonl"
    argv = kafka_esm("run", mapping, "--handler", "tests.unit.sample_handlers:echo",
                     "--metrics", "none", "--system-log", str(system_log))  # fmt: skip
    process = subprocess.Popen(argv, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while "ESM_STATE_EVENT" not in (system_log.read_text() if system_log.exists() else ""):
            assert time.monotonic() < deadline, "no system log for the state change"
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    documents = [json.loads(line) for line in system_log.read_text().splitlines()]
    assert documents[0]["eventType"] == "ESM_STATE_EVENT" and documents[0]["logLevel"] == "INFO"
    assert documents[0]["message"] == "state Creating -> Enabling"
    assert "eventType" not in stderr  # the poller's own log is unchanged
