"""Run every benchmark against a fresh local Kafka and print one markdown table.

    python -m bench.run_all                 # everything, ~15 minutes on 2 cores
    python -m bench.run_all --runs 5 --records 200000
    python -m bench.run_all --only throughput,latency --bootstrap 127.0.0.1:9092

Every figure is the median of ``--runs`` runs and sits next to a baseline measured
in the same run. Results also go to ``--out`` (results.md, results.json and
throughput.png).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import (
    crash,
    environment,
    latency,
    memory,
    parallelism,
    processes,
    report,
    synth,
    takeover,
    throughput,
)
from bench.cluster import FilledTopics, kafka_cluster
from bench.plot import plot_processes, plot_throughput
from runtime.devtools.local_kafka import ClusterInfo

SECTIONS = (
    "throughput",
    "latency",
    "parallelism",
    "memory",
    "processes",
    "takeover",
    "crash",
    "synth",
)
TARGETS = {
    "throughput_ratio": 0.25,
    "latency_p50_ms": 20.0,
    "latency_p99_ms": 100.0,
    "parallelism": 6.0,
    "rss_mib": 300.0,
    "processes_speedup": 1.7,
    "restart_s": 3.0,
    "rebalance_pause_s": 1.0,
    "synth_ratio": 1.5,
}


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; every size has a flag so a run can be made smaller or larger."""
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    add = parser.add_argument
    add("--runs", type=int, default=3, help="runs per figure; the median is reported")
    add("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    add("--bootstrap", help="use this PLAINTEXT cluster instead of starting a local broker")
    add("--out", type=Path, default=Path("bench/results"), help="where results are written")
    add("--record-size", type=int, default=1024, help="bytes per record value")
    add("--records", type=int, default=300_000, help="records per topic (throughput, memory)")
    add("--batch-sizes", type=_ints, default=[100, 1000, 10_000])
    add("--partitions", type=_ints, default=[1, 8], help="partition counts to compare")
    add(
        "--invoke",
        default=",".join(throughput.TARGETS),
        help=f"comma-separated throughput targets of {throughput.TARGETS}",
    )
    add(
        "--batches-per-case",
        type=int,
        default=100,
        help="throughput reads min(records, this x BatchSize)",
    )
    add("--latency-rate", type=float, default=100.0, help="records/s during the latency run")
    add("--latency-seconds", type=float, default=10.0, help="produce time per latency run")
    add("--handler-ms", type=float, default=50.0, help="handler time in the parallelism run")
    add("--parallel-batch-size", type=int, default=100)
    add("--parallel-batches", type=int, default=30, help="batches per partition")
    add("--memory-batch-size", type=int, default=10_000)
    add("--processes-records", type=int, default=1_000_000, help="records on the 8-partition topic")
    add(
        "--processes-cpu-us",
        type=float,
        default=20.0,
        help="the second processes run's handler CPU per record",
    )
    add("--crash-kills", type=int, default=6)
    add("--crash-batch-size", type=int, default=200)
    add("--crash-backlog", type=int, default=100_000, help="the second crash run's backlog")
    add("--synth-mappings", type=int, default=20)
    add("--synth-runs", type=int, help="synth runs (default: --runs)")
    args = parser.parse_args(argv)
    args.sections = [s for s in args.only.split(",") if s]
    args.invoke_targets = [t for t in args.invoke.split(",") if t]
    if set(args.invoke_targets) - set(throughput.TARGETS):
        parser.error(f"--invoke={args.invoke!r}: use one or more of {throughput.TARGETS}")
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--only={args.only!r}: unknown section(s) {sorted(unknown)}; use {SECTIONS}")
    return args


class Timer:
    """Seconds per section, printed as they finish so a long run shows progress."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` and log how long it took and how loaded the machine was."""
        print(f"-- {name} ...", flush=True)
        started = time.monotonic()
        value = action()
        self.seconds[name] = time.monotonic() - started
        load = environment.load_average()[0]
        print(f"-- {name}: {self.seconds[name]:.0f} s (load average {load:.1f})", flush=True)
        return value


def main(argv: list[str] | None = None) -> None:
    """Run the chosen sections and print (and save) the results table."""
    args = parse_args(argv)
    timer = Timer()
    load_before = environment.load_average()
    results: dict[str, Any] = {}
    kafka_sections = [s for s in args.sections if s != "synth"]
    if kafka_sections:
        with kafka_cluster(args.bootstrap) as kafka:
            topics = FilledTopics(kafka, args.record_size)  # filled on first use
            for section in kafka_sections:
                results[section] = timer.run(section, partial(_run, section, kafka, topics, args))
    if "synth" in args.sections:
        runs = args.synth_runs or args.runs
        results["synth"] = timer.run("synth", lambda: synth.measure(args.synth_mappings, runs))
    text = _render(results, args, load_before, environment.load_average(), timer)
    print(text)
    _save(args.out, text, results, args)


def _run(section: str, kafka: ClusterInfo, topics: FilledTopics, args: argparse.Namespace) -> Any:
    if section == "throughput":
        cases = [
            throughput.Case(p, b, target)
            for target in args.invoke_targets
            for p in args.partitions
            for b in args.batch_sizes
        ]
        return throughput.measure(
            kafka,
            topics,
            cases,
            records=args.records,
            batches_per_case=args.batches_per_case,
            record_size=args.record_size,
            runs=args.runs,
        )
    if section == "latency":
        return latency.measure(
            kafka,
            rate_per_s=args.latency_rate,
            duration_s=args.latency_seconds,
            record_size=args.record_size,
            runs=args.runs,
        )
    if section == "parallelism":
        return parallelism.measure(
            kafka,
            topics,
            handler_s=args.handler_ms / 1000,
            batch_size=args.parallel_batch_size,
            batches_per_partition=args.parallel_batches,
            runs=args.runs,
        )
    if section == "processes":
        return [
            processes.measure(kafka, records=args.processes_records, runs=args.runs, cpu_us=cpu)
            for cpu in (0.0, args.processes_cpu_us)
        ]
    if section == "takeover":
        return takeover.measure(kafka, runs=args.runs)
    if section == "crash":
        return [
            crash.measure(
                kafka, kills=args.crash_kills, batch_size=args.crash_batch_size, backlog=backlog
            )
            for backlog in (0, args.crash_backlog)
        ]
    return memory.measure(
        kafka,
        topics,
        partition_counts=args.partitions,
        records=args.records,
        batch_size=args.memory_batch_size,
        runs=args.runs,
    )


def _render(
    results: dict[str, Any],
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    timer: Timer,
) -> str:
    rows: list[report.Row] = []
    if "throughput" in results:
        rows += report.throughput_rows(results["throughput"], TARGETS["throughput_ratio"])
    if "latency" in results:
        rows += report.latency_rows(
            results["latency"], TARGETS["latency_p50_ms"], TARGETS["latency_p99_ms"]
        )
    if "parallelism" in results:
        rows.append(report.parallelism_row(results["parallelism"], TARGETS["parallelism"]))
    if "memory" in results:
        rows += report.memory_rows(results["memory"], TARGETS["rss_mib"])
    if "processes" in results:
        rows += report.processes_rows(results["processes"], TARGETS["processes_speedup"])
    if "takeover" in results:
        rows += report.takeover_rows(
            results["takeover"], TARGETS["restart_s"], TARGETS["rebalance_pause_s"]
        )
    if "crash" in results:
        rows += report.crash_rows(results["crash"])
    if "synth" in results:
        rows.append(report.synth_row(results["synth"], TARGETS["synth_ratio"]))
    versions = ", ".join(f"{k} {v}" for k, v in environment.versions().items())
    return "\n".join(
        [
            f"Machine: {environment.describe()}",
            f"Versions: {versions}",
            f"Median of {args.runs} runs; {args.record_size}-byte records; "
            f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
            f"total {sum(timer.seconds.values()):.0f} s; "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            report.table(rows),
            "",
        ]
    )


def _save(out: Path, text: str, results: dict[str, Any], args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    raw = {name: _plain(value) for name, value in results.items()}
    (out / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    if "throughput" in results:
        print(plot_throughput(results["throughput"], out / "throughput.png"))
    if "processes" in results:
        print(plot_processes(results["processes"], out / "processes.png"))
    print(f"results written to {out}/")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    main()
