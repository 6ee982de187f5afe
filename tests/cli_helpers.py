"""``kafka-esm`` as a child process, run by this interpreter from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

KAFKA_ESM = (sys.executable, "-m", "runtime.cli.main")
"""The CLI without relying on the console script being on PATH."""


def kafka_esm(command: str, mapping: Path, *args: str) -> list[str]:
    """The argv of ``kafka-esm <command> --mapping <mapping> <args>``."""
    return [*KAFKA_ESM, command, "--mapping", str(mapping), *args]


def run_kafka_esm(argv: list[str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to the end with text output captured; never raises on the exit code."""
    return subprocess.run(
        argv, check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s
    )
