"""The doctor's text fits the terminal, is coloured on a TTY only, and never in JSON."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from runtime.cli import doctor as doctor_cli
from runtime.cli.main import build_parser
from runtime.cli.terminal import Colour, Painter, painter_for, width_of
from runtime.doctor.model import CheckResult, DoctorReport, Status

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/orders/consumer-AbCdEf"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _report() -> DoctorReport:
    return DoctorReport(
        "m.json",
        (
            CheckResult(1, "configuration", Status.PASS, "valid: fn reads orders as group g"),
            CheckResult(
                5,
                "ACL Read Topic",
                Status.FAIL,
                f"Fetch from orders-0 denied for the secret {ARN}",
                "EVENT_SOURCE_AUTHZ_ERROR: PROBLEM: Cluster failed to authorize Lambda",
                "kafka-acls.sh --bootstrap-server b-1.example.com:9096 --command-config "
                "admin.properties --add --allow-principal User:alice --operation Read --topic x",
            ),
            CheckResult(8, "function", Status.SKIP, "not run: step 1 did not pass"),
        ),
    )


def _words(text: str) -> str:
    """The text without spaces, read column by column when it is a table."""
    lines = ANSI.sub("", text).splitlines()
    header = next((line for line in lines if line.startswith("#  CHECK")), None)
    if header is None:
        return "".join("".join(lines).split())
    starts = [header.index(name) for name in ("RESULT", "AWS ERROR", "FIX")]
    bounds = [*zip(starts, [*starts[1:], None], strict=True)]
    return "".join("".join(line[a:b] for line in lines).replace(" ", "") for a, b in bounds)


@pytest.mark.parametrize("width", [60, 80, 99, 100, 120, 160])
def test_every_line_fits_and_nothing_is_lost(width: int) -> None:
    text = _report().render(width)
    assert max(len(line) for line in text.splitlines()) <= width
    for expected in (ARN, "User:alice", "Cluster failed to authorize Lambda"):
        assert "".join(expected.split()) in _words(text)  # cut across lines, never dropped


def test_a_narrow_terminal_gets_one_block_per_check() -> None:
    lines = _report().render(80).splitlines()
    assert "5. FAIL  ACL Read Topic" in lines
    assert any(line.startswith("    AWS error: EVENT_SOURCE_AUTHZ_ERROR") for line in lines)
    assert any(line.startswith("    fix: kafka-acls.sh") for line in lines)
    assert not any(line.startswith("#  CHECK") for line in lines)


@pytest.mark.parametrize("width", [80, 132])
def test_colour_marks_the_status_words_only(width: int) -> None:
    painted = _report().render(width, Painter(enabled=True))
    assert f"\033[{Colour.RED.value}mFAIL\033[0m" in painted
    assert f"\033[{Colour.GREEN.value}mPASS" in painted
    assert ANSI.sub("", painted) == _report().render(width)


@pytest.mark.parametrize(
    ("tty", "env", "enabled"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"TERM": "dumb"}, False),
        (True, {"NO_COLOR": ""}, True),  # no-color.org: set and not empty
    ],
)
def test_colour_only_on_a_tty_without_no_color(
    tty: bool, env: dict[str, str], enabled: bool
) -> None:
    stream = FakeTTY() if tty else io.StringIO()
    assert painter_for(stream, env).enabled is enabled


def test_a_pipe_is_100_columns_unless_columns_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert width_of(io.StringIO()) == 100
    monkeypatch.setenv("COLUMNS", "72")
    assert width_of(io.StringIO()) == 72


def _doctor(tmp_path: Path, *flags: str) -> str:
    mapping = tmp_path / "m.json"
    mapping.write_text('{"FunctionName": "f"}', encoding="utf-8")  # fails step 1: no broker
    args = build_parser().parse_args(["doctor", "--mapping", str(mapping), *flags])
    out = FakeTTY()
    assert doctor_cli.run(args, out=out, err=io.StringIO()) == doctor_cli.FAILED_EXIT
    return out.getvalue()


def test_the_cli_colours_a_tty_but_never_its_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert ANSI.search(_doctor(tmp_path))
    document = _doctor(tmp_path, "--json")
    assert not ANSI.search(document) and json.loads(document)["ok"] is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(_doctor(tmp_path))
