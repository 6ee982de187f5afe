"""``kafka-esm generate-event`` and ``kafka-esm invoke``: the local loop without a broker."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from runtime.pipeline.event import build_event
from runtime.records import Record
from tests.cli_helpers import KAFKA_ESM
from tests.conftest import REPO_ROOT


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KAFKA_ESM, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def test_generate_event_writes_the_pollers_event_from_the_command_line() -> None:
    done = _cli(
        "generate-event", "hello", "world", "--key", "k", "--header", "trace=abc",
        "--topic", "orders", "--partition", "2", "--tombstone",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    event = json.loads(done.stdout)
    records = event["records"]["orders-2"]
    assert [r["offset"] for r in records] == [0, 1, 2]
    assert [base64.b64decode(r["value"]) for r in records[:2]] == [b"hello", b"world"]
    assert "value" not in records[2]  # the tombstone
    assert records[0]["headers"] == [{"trace": [97, 98, 99]}]
    assert base64.b64decode(records[0]["key"]) == b"k"
    assert event["bootstrapServers"] == "127.0.0.1:9092"


def test_generate_event_compact_is_byte_for_byte_the_pollers(tmp_path: Path) -> None:
    lines = [
        {"value": {"id": 1}, "offset": 5, "timestamp": 1_700_000_000_000},
        {"value": None, "key": "gone", "offset": 6, "timestamp": 1_700_000_000_001},
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    done = _cli("generate-event", "--file", str(path), "--compact", "--topic", "t")
    assert done.returncode == 0, done.stderr
    expected = build_event(
        [
            Record("t", 0, 5, 1_700_000_000_000, value=b'{"id":1}'),
            Record("t", 0, 6, 1_700_000_000_001, key=b"gone"),
        ],
        ["127.0.0.1:9092"],
    )
    assert json.loads(done.stdout) == expected
    assert done.stdout.count("\n") == 1  # one line, as Lambda sends it


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        ((), "give a VALUE, --tombstone or --file"),
        (("v", "--header", "novalue"), "--header 'novalue' must be NAME=VALUE"),
        (("--partition", "-1", "v"), "--partition"),
        (("--file", "/no/such/file"), "--file /no/such/file: No such file"),
    ],
)
def test_generate_event_names_the_bad_flag(args: tuple[str, ...], rule: str) -> None:
    done = _cli("generate-event", *args)
    assert done.returncode == 2
    assert rule in done.stderr
    assert "Traceback" not in done.stderr


def test_generate_event_names_the_bad_line_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"value": "ok"}\n{"colour": "red"}\nnot json\n')
    done = _cli("generate-event", "--file", str(path))
    assert done.returncode == 2
    assert "line 3: not JSON" in done.stderr
    path.write_text('{"value": "ok"}\n{"colour": "red"}\n')
    done = _cli("generate-event", "--file", str(path))
    assert "record field(s) colour not known" in done.stderr


def test_generate_event_piped_to_invoke_runs_the_handler() -> None:
    event = _cli("generate-event", '{"n": 41}').stdout
    done = _cli("invoke", "--handler", "tests.unit.sample_handlers:echo", stdin=event)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == json.loads(event)  # echo returns its event


def test_invoke_reports_a_function_error_as_lambda_does(tmp_path: Path) -> None:
    handler = tmp_path / "broken.py"
    handler.write_text("def main(event, context):\n    return event['missing_field']\n")
    event = tmp_path / "event.json"
    event.write_text(_cli("generate-event", "x").stdout)
    done = _cli("invoke", "--event", str(event), "--handler", f"{handler}:main")
    assert done.returncode == 1
    reply = json.loads(done.stdout)
    assert reply["errorType"] == "KeyError"
    assert reply["stackTrace"]
    assert "FUNCTION_ERROR" in done.stderr


@pytest.mark.parametrize(
    ("event", "rule"),
    [("not json", "is not JSON"), (None, "No such file")],
)
def test_invoke_refuses_a_bad_event_before_calling(
    tmp_path: Path, event: str | None, rule: str
) -> None:
    path = tmp_path / "event.json"
    if event is not None:
        path.write_text(event)
    done = _cli("invoke", "--event", str(path), "--handler", "tests.unit.sample_handlers:echo")
    assert done.returncode == 2
    assert rule in done.stderr
    assert "Traceback" not in done.stderr


def test_invoke_names_a_handler_that_does_not_import() -> None:
    done = _cli("invoke", "--handler", "no_such_module:main", stdin="{}")
    assert done.returncode == 2
    assert "no_such_module" in done.stderr
    assert "Traceback" not in done.stderr
