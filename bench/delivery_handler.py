"""A handler for benchmarks that run ``kafka-esm run`` processes: each invocation
appends ``<monotonic time> <pid> <records>`` to ``$BENCH_DELIVERY_LOG`` and, when
``$BENCH_OFFSETS_LOG`` is set, one ``<partition> <offset>`` line per record there. With
``$BENCH_CPU_US_PER_RECORD`` it first spends that much CPU time per record, as a handler
that does real work would (the time is the thread's own CPU time, not wall time)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], _context: Any) -> None:
    records = [r for rs in event["records"].values() for r in rs]
    cpu_us = float(os.environ.get("BENCH_CPU_US_PER_RECORD", "0"))
    if cpu_us:
        until = time.thread_time() + cpu_us * len(records) / 1e6
        while time.thread_time() < until:
            pass
    offsets_log = os.environ.get("BENCH_OFFSETS_LOG")
    if offsets_log:
        with Path(offsets_log).open("a", encoding="utf-8") as log:
            log.writelines(f"{r['partition']} {r['offset']}\n" for r in records)
    with Path(os.environ["BENCH_DELIVERY_LOG"]).open("a", encoding="utf-8") as log:
        log.write(f"{time.monotonic()} {os.getpid()} {len(records)}\n")
