"""Synth time of one app with N Kafka mappings: this library against plain aws-cdk-lib.

Both apps have one stack, one imported SCRAM secret and N functions, each with one
mapping on its own topic (BatchSize 100, TRIM_HORIZON). Each synth runs in a fresh
child process, alternating between the two, and times three phases: importing
aws-cdk-lib (the same for both), building the constructs, and ``app.synth()``.
The reported synth time is build + synth; the ratio is per pair of runs.

Run as a module, this file is the child: ``python -m bench.synth {library|plain} N``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import median

VARIANTS = ("library", "plain")
_QUIET_JSII = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
}


@dataclass
class SynthResult:
    """Seconds per run and phase (import, build, synth), for each variant."""

    mappings: int
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def seconds(self, variant: str, phase: str = "total") -> float:
        """Median seconds of ``phase`` (``total`` is build + synth) for ``variant``."""
        return median([_phase(run, phase) for run in self.runs.get(variant, [])])

    @property
    def ratio(self) -> float:
        """Median build + synth time of the library over that of plain aws-cdk-lib."""
        return self.seconds("library") / self.seconds("plain")


def _phase(run: dict[str, float], phase: str) -> float:
    return run["build"] + run["synth"] if phase == "total" else run[phase]


def measure(mappings: int, runs: int, variants: tuple[str, ...] = VARIANTS) -> SynthResult:
    """``runs`` alternating child processes per variant."""
    result = SynthResult(mappings)
    for _ in range(runs):
        for variant in variants:
            result.runs.setdefault(variant, []).append(_child_run(variant, mappings))
    return result


def _child_run(variant: str, mappings: int) -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    completed = subprocess.run(
        [sys.executable, "-m", "bench.synth", variant, str(mappings)],
        cwd=root,
        env={**os.environ, **_QUIET_JSII},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"synth child ({variant}) failed:\n{completed.stderr[-2000:]}")
    timings: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return timings


# -- the child -----------------------------------------------------------------------------
def _child(variant: str, mappings: int) -> None:
    started = time.perf_counter()
    app_module = importlib.import_module("bench.synth_app")  # aws-cdk-lib and this library
    imported = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        app, stack = app_module.new_app(outdir)
        app_module.BUILDERS[variant](stack, mappings)
        built = time.perf_counter()
        app.synth()
        synthesized = time.perf_counter()
    timings = {
        "import": imported - started,
        "build": built - imported,
        "synth": synthesized - built,
    }
    print(json.dumps(timings))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python -m bench.synth {{{'|'.join(VARIANTS)}}} MAPPINGS")
    _child(sys.argv[1], int(sys.argv[2]))
