"""The demo's Lambda handler: prints each batch it receives, as a real function would log."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

_print_lock = threading.Lock()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Summarize the batch per partition: offsets, keys and the first order."""
    lines = [f"batch {context.aws_request_id[:8]} from {event['eventSource']}:"]
    for partition_key, records in event["records"].items():
        first = json.loads(base64.b64decode(records[0]["value"]))
        keys = sorted({base64.b64decode(r["key"]).decode() for r in records if "key" in r})
        lines.append(
            f"  {partition_key}: offsets {records[0]['offset']}..{records[-1]['offset']} "
            f"({len(records)} records, keys {', '.join(keys)}), first order {first}"
        )
    with _print_lock:
        print("\n".join(lines), flush=True)
    return {"handled": sum(len(r) for r in event["records"].values())}
