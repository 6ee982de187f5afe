"""A handler for benchmarks that run ``kafka-esm run`` processes: each invocation
appends ``<monotonic time> <pid> <records>`` to ``$BENCH_DELIVERY_LOG`` and, when
``$BENCH_OFFSETS_LOG`` is set, one ``<partition> <offset>`` line per record there."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], _context: Any) -> None:
    records = [r for rs in event["records"].values() for r in rs]
    offsets_log = os.environ.get("BENCH_OFFSETS_LOG")
    if offsets_log:
        with Path(offsets_log).open("a", encoding="utf-8") as log:
            log.writelines(f"{r['partition']} {r['offset']}\n" for r in records)
    with Path(os.environ["BENCH_DELIVERY_LOG"]).open("a", encoding="utf-8") as log:
        log.write(f"{time.monotonic()} {os.getpid()} {len(records)}\n")
