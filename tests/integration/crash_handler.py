"""A handler for subprocess tests: logs each offset durably, and can kill its own process.

``CRASH_LOG`` is the file it appends ``partition offset`` lines to (fsync'd, so a
SIGKILL loses nothing already written); when ``CRASH_AT_OFFSET`` is in a batch and
``CRASH_MARKER`` does not exist yet, it creates the marker and SIGKILLs the poller,
mid-batch and before any commit of that batch.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], _context: Any) -> None:
    lines = [
        f"{record['partition']} {record['offset']}\n"
        for records in event["records"].values()
        for record in records
    ]
    with Path(os.environ["CRASH_LOG"]).open("a", encoding="utf-8") as log:
        log.writelines(lines)
        log.flush()
        os.fsync(log.fileno())
    crash_at = os.environ.get("CRASH_AT_OFFSET")
    marker = Path(os.environ.get("CRASH_MARKER", "/nonexistent/marker"))
    offsets = {int(line.split()[1]) for line in lines}
    if crash_at is not None and int(crash_at) in offsets and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
