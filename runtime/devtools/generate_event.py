"""``kafka-esm generate-event``: the event the poller would send, from records you type.

The ``sam local generate-event`` step for a self-managed Kafka trigger, exact to the
byte (the poller's encoder: base64, signed header bytes, tombstones, keys left out when
null, ``<topic>-<partition>`` groups). Pipe it to ``kafka-esm invoke``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from runtime.devtools.record_flags import FlagError, add_record_arguments, records_from_args
from runtime.pipeline.event import EventEncodingError, checked_payload

USAGE_EXIT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm generate-event``."""
    parser.add_argument("--topic", default="my-topic", help="the records' topic")
    parser.add_argument(
        "--bootstrap-servers",
        default="127.0.0.1:9092",
        help="the event's bootstrapServers (comma-separated)",
    )
    parser.add_argument("--compact", action="store_true", help="one line, as Lambda sends it")
    add_record_arguments(parser)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the event; exit 2 naming the flag or record that cannot be encoded."""
    try:
        payload = event_bytes(args)
    except (FlagError, EventEncodingError) as error:
        print(f"kafka-esm generate-event: {error}", file=sys.stderr)
        return USAGE_EXIT
    text = payload.decode("utf-8")
    print(text if args.compact else json.dumps(json.loads(text), indent=2), file=out)
    return 0


def event_bytes(args: argparse.Namespace) -> bytes:
    """The compact event, exactly as the poller sends it."""
    servers = [s.strip() for s in args.bootstrap_servers.split(",") if s.strip()]
    return checked_payload(records_from_args(args, args.topic), servers)
