"""The throughput plot: records/s against BatchSize, poller and bare loop, per partition count.

matplotlib is optional (the ``bench`` extra); without it the plot is skipped with
a note, and the tables still print. ``python -m bench.plot results.json out.png``
draws it again from a saved run.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from bench.processes import ProcessesResult
from bench.throughput import Case, CaseResult


def plot_throughput(results: list[CaseResult], path: Path) -> str:
    """Write the PNG; returns a line saying where (or why it was skipped)."""
    try:
        importlib.import_module("matplotlib").use("Agg")  # no display: write files only
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]')"
    figure, axes = plt.subplots(figsize=(8.5, 4.5), dpi=120)
    groups = sorted({(r.case.partitions, r.case.target) for r in results})
    for index, (partitions, target) in enumerate(groups):
        color = f"C{index}"  # one color per group: poller solid, baseline dashed
        rows = sorted(
            (r for r in results if (r.case.partitions, r.case.target) == (partitions, target)),
            key=lambda r: r.case.batch_size,
        )
        sizes = [r.case.batch_size for r in rows]
        poller = [r.poller_rate for r in rows]
        baseline = [r.baseline_rate for r in rows]
        axes.plot(sizes, poller, "o-", color=color, label=f"poller, {partitions} p, {target}")
        axes.plot(sizes, baseline, "s--", color=color, label=f"bare loop, {partitions} p")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("BatchSize")
    axes.set_ylabel("records/s (1 KB records, median)")
    axes.set_title("Throughput of one process vs a bare confluent-kafka loop")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return f"plot written to {path}"


def plot_processes(results: list[ProcessesResult], path: Path) -> str:
    """Records/s with 1 and 2 processes per handler load (bars: the median; dots: each run)."""
    try:
        importlib.import_module("matplotlib").use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]')"
    figure, panels = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4), dpi=120)
    for axes, result in zip(list(getattr(panels, "flat", [panels])), results, strict=True):
        counts = sorted(result.rates)
        labels = [f"{n} process{'es' if n > 1 else ''}" for n in counts]
        axes.bar(labels, [result.rate(n) for n in counts], color=["C0", "C1"])
        for label, n in zip(labels, counts, strict=True):
            axes.plot([label] * len(result.rates[n]), result.rates[n], "k.", markersize=6)
        goal = 1.7 * result.rate(1)
        axes.axhline(goal, color="grey", linewidth=0.8, linestyle=":", label="x1.7 of 1 process")
        work = f"handler {result.cpu_us:g} us CPU/record" if result.cpu_us else "no-op handler"
        axes.set_title(f"{work}: x{result.speedup:.2f}", fontsize=10)
        axes.set_ylabel("records/s (1 KB records, 8 partitions)")
        axes.legend(fontsize=8, loc="upper left")
    figure.suptitle("kafka-esm run --processes N on 2 cores (the broker on the same machine)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return f"plot written to {path}"


def load_throughput(results_json: Path) -> list[CaseResult]:
    """The throughput results of a run saved by ``bench.run_all``."""
    saved = json.loads(results_json.read_text())["throughput"]
    return [
        CaseResult(Case(**r["case"]), r["record_size"], r["poller"], r["baseline"]) for r in saved
    ]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.plot RESULTS_JSON OUTPUT_PNG")
    print(plot_throughput(load_throughput(Path(sys.argv[1])), Path(sys.argv[2])))
