"""An example function: it sums order totals and fails on an order it cannot price."""

from __future__ import annotations

import base64
import json
from typing import Any

TOTALS: dict[str, float] = {}
"""What the function has done, for the example tests to look at."""


def handler(event: dict[str, Any], _context: Any) -> None:
    """Lambda's entry point for a self-managed Kafka trigger."""
    for records in event["records"].values():
        for record in records:
            if "value" not in record:  # a tombstone: the order was deleted
                continue
            order = json.loads(base64.b64decode(record["value"]))
            if order["quantity"] <= 0:
                raise ValueError(f"order {order['id']} has quantity {order['quantity']}")
            TOTALS[order["id"]] = order["quantity"] * order["price"]


def dead_letter_handler(event: dict[str, Any], _context: Any) -> list[str]:
    """Reads the on-failure records an SQS destination receives: which offsets failed."""
    failed = []
    for message in event["Records"]:
        document = json.loads(message["body"])
        for partition, info in document["KafkaBatchInfo"]["recordsInfo"].items():
            failed.append(f"{partition}@{info['firstRecordOffset']}-{info['lastRecordOffset']}")
    return failed
