"""Dev-only commands where the dev tools are missing (the container image leaves them out)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runtime.cli import devtools

REPO = Path(__file__).resolve().parents[2]


def test_a_missing_devtools_module_explains_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "runtime.devtools.local_kafka.commands", None)
    command = devtools.load("local_kafka.commands", "local-kafka")
    import argparse

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args(["up", "--home", "x"])) == devtools.MISSING_EXIT
    err = capsys.readouterr().err
    assert "kafka-esm local-kafka: the development tools" in err
    assert "pip install -e '.[dev]'" in err


def test_a_present_devtools_module_is_the_real_command() -> None:
    from runtime.devtools.local_kafka import commands

    assert devtools.load("local_kafka.commands", "local-kafka") is commands


def test_the_image_build_context_leaves_the_devtools_out() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "runtime/devtools/" in ignored
