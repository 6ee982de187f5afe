"""A share-group member in its own process, for the kill -9 test.

Reads the mapping JSON from ``argv[1]``, polls until it holds records, prints their
offsets as one line (``offsets 3 4 5``) and then waits, holding them unacknowledged,
until the test SIGKILLs it: a poller dying mid-batch.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import ShareConsumer

from runtime.definition.model import parse_mapping
from runtime.observability.counters import Counters
from runtime.pipeline.share_source import ShareSource
from runtime.pipeline.source import PlainConnection


def main() -> None:
    mapping = parse_mapping(json.loads(sys.argv[1]))
    source = ShareSource(mapping, Counters(), PlainConnection(consumer_factory=ShareConsumer))
    source.subscribe()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = source.poll(mapping.batch_size, 1.0)
        if records:
            print("offsets", *(r.offset for r in records), flush=True)
            break
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
