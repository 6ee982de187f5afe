"""Handlers ``kafka-esm serve`` runs in its poller processes (tests/integration/test_serve.py).

``record`` appends one line per record, ``<batch size> <topic> <partition> <offset> <value>``,
to ``$SERVE_DELIVERY_DIR/<function name>.log``; ``crash`` kills its process (a poller crash).
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any


def record(event: dict[str, Any], context: Any) -> None:
    lines = []
    records = [r for batch in event["records"].values() for r in batch]
    for item in records:
        value = base64.b64decode(item["value"]).decode()
        lines.append(
            f"{len(records)} {item['topic']} {item['partition']} {item['offset']} {value}\n"
        )
    path = Path(os.environ["SERVE_DELIVERY_DIR"]) / f"{context.function_name}.log"
    with path.open("a", encoding="utf-8") as log:
        log.write("".join(lines))
    time.sleep(float(os.environ.get("SERVE_HANDLER_DELAY", "0")))


def crash(event: dict[str, Any], context: Any) -> None:
    os._exit(70)
