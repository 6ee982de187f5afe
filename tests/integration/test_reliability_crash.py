"""At least once through crashes: SIGKILL ``kafka-esm run`` at random moments, restart it.

The function (``tests.delivery_ledger:handler``) fsyncs every record it receives to one
ledger file per run before it returns, so the ledger is what the poller may commit.
After each kill the group's committed offsets must not be ahead of the ledger, the
next run must start at or before the first offset never delivered, and each run must
deliver every partition in order. At the end nothing is lost; duplicates come only
from the uncommitted tail of each killed run.

Sizes: RELIABILITY_CRASH_RECORDS (100,000), _PARTITIONS (4), _KILLS (20),
_BATCH_SIZE (500), _BUDGET_S (420).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from runtime.devtools.local_kafka import ClusterInfo
from tests.cli_helpers import kafka_esm
from tests.conftest import REPO_ROOT
from tests.delivery_ledger import (
    LEDGER_ENV,
    Delivery,
    LedgerFile,
    Row,
    env_float,
    env_int,
    progress_after,
    redelivered_after,
    report,
    tally,
)
from tests.kafka_helpers import produce
from tests.poller_harness import mapping_doc

pytestmark = pytest.mark.integration

RECORDS = env_int("RELIABILITY_CRASH_RECORDS", 100_000)
PARTITIONS = env_int("RELIABILITY_CRASH_PARTITIONS", 4)
KILLS = env_int("RELIABILITY_CRASH_KILLS", 20)
BATCH_SIZE = env_int("RELIABILITY_CRASH_BATCH_SIZE", 500)
BUDGET_S = env_float("RELIABILITY_CRASH_BUDGET_S", 420)
_TICK_S = 0.01


class _Run:
    """One ``kafka-esm run`` process and the ledger its function writes."""

    def __init__(self, number: int, mapping: Path, workdir: Path) -> None:
        self.number = number
        self.ledger = LedgerFile(workdir / f"ledger-{number}.log", number)
        self.output = workdir / f"poller-{number}.log"
        # The poll loop writes this heartbeat once it runs: only then does SIGTERM meet
        # the poller's own handler rather than Python still starting up.
        self.heartbeat = workdir / f"health-{number}.json"
        command = kafka_esm(
            "run", mapping, "--handler", "tests.delivery_ledger:handler", "--log-level", "WARNING"
        )
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={
                    **os.environ,
                    LEDGER_ENV: str(self.ledger.path),
                    "KAFKA_ESM_HEALTH_FILE": str(self.heartbeat),
                },
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started_at = time.time()

    def kill(self) -> float:
        """SIGKILL the poller; returns when it is gone, with the moment of the kill."""
        killed_at = time.time()
        self.process.kill()
        self.process.wait(30)
        return killed_at

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"run {self.number} exited with {self.process.returncode}:\n{self.tail()}"
            )

    def tail(self) -> str:
        return "\n".join(self.output.read_text(errors="replace").splitlines()[-30:])


class _Stream:
    """Every delivery of every run, and the distinct records handled so far."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.handled: set[tuple[int, int]] = set()
        self.highest: dict[int, int] = {}

    def take(self, run: _Run) -> None:
        for delivery in run.ledger.read_new():
            self.deliveries.append(delivery)
            self.handled.add((delivery.partition, delivery.offset))
            self.highest[delivery.partition] = max(
                delivery.offset, self.highest.get(delivery.partition, -1)
            )


def _wait(
    condition: Callable[[], bool],
    run: _Run,
    stream: _Stream,
    deadline: float,
    *,
    quiet: bool = False,
) -> None:
    """Follow the ledger until ``condition``; past ``deadline`` fail, or return if ``quiet``."""
    while not condition():
        run.check_alive()
        if time.monotonic() > deadline:
            if quiet:
                return
            raise AssertionError(
                f"over the {BUDGET_S:.0f}s budget: {len(stream.handled)} of {RECORDS} handled"
            )
        time.sleep(_TICK_S)
        stream.take(run)


def _committed(kafka: ClusterInfo, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({**kafka.plaintext_config(), "group.id": group})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=15
        )
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def _produce(kafka: ClusterInfo, topic: str) -> dict[int, int]:
    per_partition = RECORDS // PARTITIONS
    ends = {}
    for partition in range(PARTITIONS):
        count = per_partition + (1 if partition < RECORDS % PARTITIONS else 0)
        values = (b"%d-%08d" % (partition, i) for i in range(count))
        ends[partition] = produce(kafka.plaintext_config(), topic, values, partition=partition)
    return ends


def _check_resume(run: _Run, committed_at_kill: dict[int, int]) -> None:
    """A run starts each partition at its committed offset: never past a gap."""
    first: dict[int, int] = {}
    for delivery in run.ledger.deliveries:
        first.setdefault(delivery.partition, delivery.offset)
    for partition, offset in first.items():
        assert offset >= committed_at_kill.get(partition, 0), (
            f"run {run.number} re-read partition {partition} from {offset}, "
            f"before its commit {committed_at_kill.get(partition)}"
        )


class _Crashes:
    """Runs, kills and restarts the poller, checking the commits after every kill."""

    def __init__(self, kafka: ClusterInfo, topic: str, group: str, workdir: Path) -> None:
        self.kafka, self.topic, self.group, self.workdir = kafka, topic, group, workdir
        self.mapping = workdir / "mapping.json"
        self.stream = _Stream()
        self.runs: list[_Run] = []
        self.kills: list[float] = []
        self.committed: dict[int, int] = {}
        self.deadline = time.monotonic() + BUDGET_S

    def start(self) -> _Run:
        run = _Run(len(self.runs), self.mapping, self.workdir)
        self.runs.append(run)
        return run

    def kill_after(self, run: _Run, threshold: int, rng: random.Random) -> None:
        """Kill ``run`` once ``threshold`` records were handled (or at a random time, when
        the previous run's redelivered tail already passed it)."""
        if len(self.stream.handled) < threshold:
            _wait(lambda: len(self.stream.handled) >= threshold, run, self.stream, self.deadline)
        else:
            time.sleep(rng.uniform(0, 2.0))
        time.sleep(rng.uniform(0, 0.05))
        self.kills.append(run.kill())
        self.stream.take(run)
        _check_resume(run, self.committed)
        self.committed = _committed(self.kafka, self.group, self.topic)
        for partition, offset in self.committed.items():
            highest = self.stream.highest.get(partition, -1)
            assert offset <= highest + 1, (
                f"after kill {len(self.kills)}: partition {partition} committed {offset}, "
                f"but the function only handled up to {highest}"
            )

    def finish(self, run: _Run, ends: dict[int, int]) -> None:
        """Let ``run`` handle and commit everything, then stop it with SIGTERM."""
        _wait(lambda: len(self.stream.handled) >= RECORDS, run, self.stream, self.deadline)
        while (found := _committed(self.kafka, self.group, self.topic)) != ends:
            assert time.monotonic() < self.deadline, f"committed {found}, expected {ends}"
            _wait(lambda: False, run, self.stream, time.monotonic() + 0.5, quiet=True)
        _wait(run.heartbeat.exists, run, self.stream, self.deadline)
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(60) == 0, run.tail()
        self.stream.take(run)
        _check_resume(run, self.committed)

    def cleanup(self) -> None:
        for run in self.runs:
            if run.process.poll() is None:
                run.kill()


@pytest.mark.timeout(BUDGET_S + 120)
def test_sigkill_at_random_moments_loses_nothing(
    kafka: ClusterInfo, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "crash"))
    topic = topic_factory(partitions=PARTITIONS)
    ends = _produce(kafka, topic)
    doc = mapping_doc(kafka, topic, BatchSize=BATCH_SIZE, MaximumBatchingWindowInSeconds=0)
    crashes = _Crashes(
        kafka, topic, doc["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"], tmp_path
    )
    crashes.mapping.write_text(json.dumps(doc))
    started = time.monotonic()
    try:
        for threshold in sorted(rng.randrange(1, RECORDS) for _ in range(KILLS)):
            crashes.kill_after(crashes.start(), threshold, rng)
        crashes.finish(crashes.start(), ends)
    finally:
        crashes.cleanup()
    elapsed = time.monotonic() - started

    stream, kills = crashes.stream, crashes.kills
    result = tally(ends, stream.deliveries)
    per_kill = redelivered_after(stream.deliveries, kills)
    recovery = sorted(progress_after(stream.deliveries, kills))
    report(
        Row(
            scenario=f"crash: SIGKILL x{len(kills)}, restart",
            records=result.produced,
            lost=len(result.lost),
            duplicates=result.duplicates,
            max_duplicates_per_fault=max(per_kill, default=0),
            recovery_s=recovery[-1] if recovery else None,
            seconds=elapsed,
            note=f"{PARTITIONS} partitions, BatchSize {BATCH_SIZE}; median recovery "
            f"{recovery[len(recovery) // 2] if recovery else 0:.1f} s",
        )
    )
    result.assert_at_least_once()
    assert len(kills) == KILLS
    assert sum(per_kill) == result.duplicates  # every duplicate follows a kill
