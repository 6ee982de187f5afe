"""The markdown tables: every figure next to its baseline and its target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.crash import CrashResult
from bench.latency import BASELINE, LatencyResult
from bench.memory import MemoryResult
from bench.parallelism import ParallelismResult
from bench.processes import ProcessesResult
from bench.synth import SynthResult
from bench.takeover import TakeoverResult
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


def processes_rows(results: list[ProcessesResult], target: float) -> list[Row]:
    """``--processes 2`` against one process, on 8 partitions, per handler load."""
    return [processes_row(result, target) for result in results]


def processes_row(result: ProcessesResult, target: float) -> Row:
    """``--processes 2`` against one process, on 8 partitions."""
    work = f"handler {result.cpu_us:g} us CPU/record" if result.cpu_us else "no-op handler"

    def cores(n: int) -> str:
        poller, broker = result.used(n)
        return f"pollers {poller:.2f} + broker {broker:.2f} cores"

    return Row(
        f"all cores, 8 partitions, BatchSize 1000, {work}",
        f"2 processes: {_n(result.rate(2))} rec/s ({cores(2)})",
        f"1 process: {_n(result.rate(1))} rec/s ({cores(1)})",
        f"x{result.speedup:.2f} ({min(result.ratios):.2f}-{max(result.ratios):.2f})",
        f">= x{target:g}",
        result.speedup >= target,
    )


def takeover_rows(result: TakeoverResult, restart_s: float, pause_s: float) -> list[Row]:
    """Restart to first delivery (static vs dynamic) and the pause a join costs."""
    median = result.median
    static, dynamic = median(result.restart["static"]), median(result.restart["dynamic"])
    new, classic = median(result.pause["consumer"]), median(result.pause["classic"])
    return [
        Row(
            "killed poller restarted: start -> first delivery",
            f"{static:.2f} s, static membership",
            f"{dynamic:.2f} s, dynamic member",
            f"x{static / dynamic:.2f}",
            f"<= {restart_s:g} s",
            static <= restart_s,
        ),
        Row(
            "longest pause of a running member while another joins",
            f"{new:.2f} s, KIP-848 consumer protocol",
            f"{classic:.2f} s, classic cooperative-sticky",
            f"x{new / classic:.2f}",
            f"< {pause_s:g} s",
            new < pause_s,
        ),
    ]


def crash_rows(results: list[CrashResult]) -> list[Row]:
    """Per crash run: lost (0), duplicates per kill against the bound, recovery."""
    rows = []
    for r in results:
        load = f"backlog of {r.backlog:,}" if r.backlog else "live feed"
        rows.append(
            Row(
                f"kill -9 of one of 2 members, BatchSize {r.batch_size}, {load}, {r.kills} kills",
                f"{r.lost} lost; {r.per_kill:.0f} duplicates per kill; "
                f"restart -> first delivery {r.recovery_median:.2f} s",
                f"bound: {r.bound:,} per kill (max-concurrency x BatchSize)",
                f"{r.per_kill / r.bound:.3f} of the bound",
                f"0 lost, <= {r.bound:,} per kill",
                r.lost == 0 and r.per_kill <= r.bound,
            )
        )
    return rows
