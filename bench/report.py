"""The markdown tables: every figure next to its baseline and its target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.latency import BASELINE, LatencyResult
from bench.memory import MemoryResult
from bench.parallelism import ParallelismResult
from bench.synth import SynthResult
from bench.throughput import CaseResult


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    measure: str
    poller: str
    baseline: str
    ratio: str
    target: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        """The row's cells, with a verdict when there is a target."""
        verdict = "" if self.met is None else ("yes" if self.met else "**no**")
        return [self.measure, self.poller, self.baseline, self.ratio, self.target, verdict]


HEADER = ["measure", "this library", "baseline (same run)", "ratio", "target", "met"]


def table(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows``."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def _n(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def throughput_rows(results: list[CaseResult], target_ratio: float) -> list[Row]:
    """Records/s and MB/s per case; the ratio to the bare loop is checked at BatchSize
    1000 and 10000 (issue 19's per-process efficiency)."""
    rows = []
    for r in results:
        poller, base = r.poller_rate, r.baseline_rate
        checked = r.case.batch_size in (1_000, 10_000)
        rows.append(
            Row(
                f"throughput, {r.case.partitions} partition(s), BatchSize {r.case.batch_size}, "
                f"{r.case.target}",
                f"{_n(poller)} rec/s ({_n(r.megabytes(poller), 1)} MB/s)",
                f"{_n(base)} rec/s ({_n(r.megabytes(base), 1)} MB/s), bare loop",
                f"{r.ratio:.3f} ({min(r.ratios):.3f}-{max(r.ratios):.3f})",
                f">= {target_ratio:g} of the bare loop" if checked else "",
                r.ratio >= target_ratio if checked else None,
            )
        )
    return rows


def latency_rows(result: LatencyResult, p50_target: float, p99_target: float) -> list[Row]:
    """p50/p99 per poller window against the bare loop's."""
    base = f"p50 {_n(result.median_p50(BASELINE), 1)} / p99 {_n(result.median_p99(BASELINE), 1)} ms"
    rows = []
    for name in result.p50:
        if name == BASELINE:
            continue
        p50, p99 = result.median_p50(name), result.median_p99(name)
        checked = name == "window 0"
        rows.append(
            Row(
                f"latency produce -> handler, {name}",
                f"p50 {_n(p50, 1)} / p99 {_n(p99, 1)} ms",
                f"{base}, bare loop",
                f"p50 x{p50 / result.median_p50(BASELINE):.1f}",
                f"p50 <= {p50_target:g} / p99 <= {p99_target:g} ms" if checked else "",
                (p50 <= p50_target and p99 <= p99_target) if checked else None,
            )
        )
    return rows


def parallelism_row(result: ParallelismResult, target: float) -> Row:
    """8 partitions against 1, with a handler of fixed duration."""
    speedup = result.speedup(8)
    return Row(
        f"parallelism, {result.handler_s * 1000:g} ms handler, BatchSize {result.batch_size}",
        f"8 partitions: {_n(result.rate(8))} rec/s (ideal {_n(result.ideal(8))})",
        f"1 partition: {_n(result.rate(1))} rec/s (ideal {_n(result.ideal(1))})",
        f"x{speedup:.2f}",
        f">= x{target:g}",
        speedup >= target,
    )


def memory_rows(result: MemoryResult, target_mib: float) -> list[Row]:
    """Peak RSS of the poller process against the bare loop's process."""
    rows = []
    for partitions in sorted({p for _, p in result.peaks}):
        poller, bare = result.peak("poller", partitions), result.peak("bare", partitions)
        rows.append(
            Row(
                f"peak RSS, BatchSize {result.batch_size}, 1 KB, {partitions} partition(s)",
                f"{_n(poller)} MiB",
                f"{_n(bare)} MiB, bare loop",
                f"x{poller / bare:.2f}",
                f"<= {target_mib:g} MiB",
                poller <= target_mib,
            )
        )
    return rows


def synth_row(result: SynthResult, target: float) -> Row:
    """Build + synth seconds of N mappings, library against plain aws-cdk-lib."""
    if "library" not in result.runs:
        return Row(
            f"synth, {result.mappings} mappings",
            "not measured",
            f"{_n(result.seconds('plain'), 2)} s, plain aws-cdk-lib",
            "n/a",
            f"<= x{target:g}",
            None,
        )

    def seconds(variant: str) -> str:
        build, synth = result.seconds(variant, "build"), result.seconds(variant, "synth")
        return f"{_n(result.seconds(variant), 2)} s (build {_n(build, 2)} + synth {_n(synth, 2)})"

    return Row(
        f"synth, {result.mappings} mappings (build + synth)",
        seconds("library"),
        f"{seconds('plain')}, plain SelfManagedKafkaEventSource",
        f"x{result.ratio:.2f}",
        f"<= x{target:g}",
        result.ratio <= target,
    )
