"""At least once through a rebalance storm: pollers join and leave the group mid-stream.

Pollers of one mapping run in this process, each a run of the ledger; every
RELIABILITY_STORM_PERIOD_S (1.0) one joins or one leaves gracefully, between 1 and
RELIABILITY_STORM_MAX_POLLERS (4), for RELIABILITY_STORM_CHANGES (16) changes, while a
live producer writes RELIABILITY_STORM_RATE (1,000) records/s over 4 partitions.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from tests.delivery_ledger import (
    Ledger,
    Row,
    env_float,
    env_int,
    progress_after,
    redelivered_after,
    report,
    tally,
)
from tests.fault_harness import Fleet, LiveProducer, committed_offsets, end_offsets, wait_until
from tests.poller_harness import mapping_doc

pytestmark = pytest.mark.integration

PARTITIONS = 4
CHANGES = env_int("RELIABILITY_STORM_CHANGES", 16)
PERIOD_S = env_float("RELIABILITY_STORM_PERIOD_S", 1.0)
MAX_POLLERS = env_int("RELIABILITY_STORM_MAX_POLLERS", 4)
RATE = env_float("RELIABILITY_STORM_RATE", 1_000)


@pytest.mark.timeout(240)
def test_pollers_joining_and_leaving_mid_stream_lose_and_skip_nothing(
    kafka: ClusterInfo, topic_factory: Callable[..., str]
) -> None:
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "storm"))
    topic = topic_factory(partitions=PARTITIONS)
    ledger = Ledger()
    doc = mapping_doc(kafka, topic, BatchSize=100, MaximumBatchingWindowInSeconds=0)
    fleet = Fleet(doc, ledger, function=lambda _event, _context: time.sleep(0.005))
    group = doc["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]
    producer = LiveProducer(kafka.plaintext_config(), topic, PARTITIONS, RATE).start()
    started = time.monotonic()
    changes: list[float] = []
    try:
        fleet.start().wait_assigned(PARTITIONS)
        ledger.wait_handled(int(RATE), timeout_s=60)
        for _ in range(CHANGES):
            time.sleep(rng.uniform(0.5, 1.5) * PERIOD_S)
            fleet.check_alive()
            size = len(fleet.running)
            joins = size == 1 or (size < MAX_POLLERS and rng.random() < 0.5)
            changes.append(time.time())
            if joins:
                fleet.start()
            else:
                fleet.stop(rng.choice(fleet.running))
        producer.stop()
        ends = end_offsets(kafka.plaintext_config(), topic, PARTITIONS)
        ledger.wait_handled(sum(ends.values()), timeout_s=120)
        wait_until(
            lambda: committed_offsets(kafka.plaintext_config(), group, topic, PARTITIONS) == ends,
            60,
            "committed offsets reach the end of the topic",
        )
    finally:
        producer.stop(flush_s=0)
        fleet.stop_all()
    seconds = time.monotonic() - started

    deliveries = ledger.snapshot()
    result = tally(ends, deliveries)
    recovery = progress_after(deliveries, changes)
    report(
        Row(
            scenario=f"rebalance storm: {CHANGES} joins/leaves, up to {MAX_POLLERS} pollers",
            records=result.produced,
            lost=len(result.lost),
            duplicates=result.duplicates,
            max_duplicates_per_fault=max(redelivered_after(deliveries, changes), default=0),
            recovery_s=max(recovery, default=None),
            seconds=seconds,
            note=f"{len(fleet.stopped)} pollers ran",
        )
    )
    result.assert_at_least_once()
