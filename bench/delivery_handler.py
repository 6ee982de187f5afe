"""A handler for benchmarks that run ``kafka-esm run`` processes: each invocation
appends ``<monotonic time> <pid> <records>`` to ``$BENCH_DELIVERY_LOG``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], _context: Any) -> None:
    count = sum(len(records) for records in event["records"].values())
    with Path(os.environ["BENCH_DELIVERY_LOG"]).open("a", encoding="utf-8") as log:
        log.write(f"{time.monotonic()} {os.getpid()} {count}\n")
