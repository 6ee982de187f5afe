"""Profile the poller's hot path with py-spy, at BatchSize 10000 with 1 KB records.

py-spy samples every thread of a child process from outside (no instrumentation,
so no distortion of a loop that costs a few microseconds per record). The child
is the memory benchmark's poller (``python -m bench.memory poller ...``). The
summary lists functions by self time (where the CPU is) and by inclusive time
(which stage costs what), in percent of the samples taken while a thread was busy.

    python -m bench.profile [--records 100000] [--out bench/results]
    python -m bench.profile --summarize FILE   # an earlier raw py-spy file
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.cluster import fill_topic, kafka_cluster, new_topic

_LINE = re.compile(r" \(([^:()]+):\d+\)$")
_PLUMBING = {"Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run", "<module>"}
"""Frames every thread has: they would top the inclusive table and say nothing."""
_WAITS = {"Condition.wait", "Event.wait", "Thread.join", "Queue.get", "_Workers._serve"}
"""Leaves that are a thread waiting (for the GIL or a signal), not using the CPU. A batch
worker's own frame is a leaf only while it blocks in ``SimpleQueue.get`` (C code)."""


def frame_name(frame: str) -> str:
    """``function (file:line)`` -> ``function (file)``: one entry per function."""
    return _LINE.sub(r" (\1)", frame.strip())


def _is_busy(frames: list[str]) -> bool:
    """False for waits, start-up (imports) and the harness: what is left is the poller."""
    if not frames or frames[-1].partition(" (")[0] in _WAITS or "bench/" in frames[-1]:
        return False
    return not any("importlib" in frame for frame in frames)


def summarize(raw: Path, top: int = 15) -> str:
    """Markdown tables of the top functions by self and by inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [frame_name(f) for f in stack.split(";") if f.strip()]
        if not _is_busy(frames):
            continue
        frames = [f for f in frames if f.partition(" (")[0] not in _PLUMBING]
        if not frames:
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"samples while busy: {total}", ""]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        lines += [f"| % {title} | function |", "|---:|---|"]
        lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in counter.most_common(top)]
        lines.append("")
    return "\n".join(lines)


def record(out: Path, records: int, partitions: int, batch_size: int, rate_hz: int) -> Path:
    """Run the poller child under py-spy; return the raw (collapsed stacks) file."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = out / f"profile-b{batch_size}-p{partitions}.txt"
    with kafka_cluster() as kafka:
        topic = new_topic(kafka, partitions, prefix="profile")
        fill_topic(kafka, topic, records, 1024, partitions)
        command = [
            py_spy,
            "record",
            "--rate",
            str(rate_hz),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--",
            sys.executable,
            "-m",
            "bench.memory",
            "poller",
            kafka.bootstrap_servers,
            topic,
            str(records),
            str(batch_size),
        ]
        root = Path(__file__).resolve().parents[1]
        subprocess.run(command, cwd=root, stdin=subprocess.DEVNULL, check=True)
    return raw


def main(argv: list[str] | None = None) -> None:
    """Profile (or summarize an earlier profile) and print the top entries."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--summarize", type=Path, help="only summarize this raw py-spy file")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    raw = args.summarize
    if raw is None:
        args.out.mkdir(parents=True, exist_ok=True)
        raw = record(args.out, args.records, args.partitions, args.batch_size, args.rate)
    print(summarize(raw, args.top))


if __name__ == "__main__":
    main()
