"""Count what a fault did to delivery: produced, handled, duplicated, lost, reordered.

Every record a function receives becomes a :class:`Delivery` (run, partition, offset,
time, outcome). A *run* is one life of one poller: a process between two crashes, or
one poller of a group. The ledger is kept in memory for in-process pollers, or in an
fsync'd file (``LEDGER_PATH``) by :func:`handler` for pollers run as processes, so a
SIGKILL cannot lose a line the poller could have committed. :func:`tally` then judges
the deliveries against what the topic holds; :func:`report` keeps each scenario's
figures for the README table.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LEDGER_ENV = "LEDGER_PATH"
REPORT_ENV = "KAFKA_ESM_RELIABILITY_REPORT"

_write_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One record as the function received it once."""

    run: int
    partition: int
    offset: int
    at: float
    """Wall-clock seconds (``time.time()``) when the function received it."""
    ok: bool = True
    """False when this invocation failed (the record will come again)."""


def deliveries_of(event: Mapping[str, Any], run: int, ok: bool = True) -> list[Delivery]:
    """The deliveries one Lambda event carries, in the event's order."""
    now = time.time()
    return [
        Delivery(run, record["partition"], record["offset"], now, ok)
        for records in event["records"].values()
        for record in records
    ]


# -- the durable ledger of a poller process -------------------------------------------------


def handler(event: dict[str, Any], _context: Any) -> None:
    """A function for ``kafka-esm run --handler``: append the batch to ``$LEDGER_PATH``.

    One ``write`` per batch on an O_APPEND file, then fsync, before returning: what the
    poller commits after this returns is on disk, and concurrent batches never
    interleave inside a line.
    """
    lines = "".join(
        f"{d.partition} {d.offset} {d.at:.4f}\n" for d in deliveries_of(event, run=0)
    ).encode()
    with _write_lock:
        fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)


class LedgerFile:
    """Reads what :func:`handler` wrote for one run, as it grows."""

    def __init__(self, path: Path, run: int) -> None:
        self.path = path
        self.run = run
        self._position = 0
        self.deliveries: list[Delivery] = []

    def read_new(self) -> list[Delivery]:
        """Deliveries written since the last call; a torn last line waits for its end."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as file:
            file.seek(self._position)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._position += len(complete)
        new = []
        for line in complete.decode().splitlines():
            partition, offset, at = line.split()
            new.append(Delivery(self.run, int(partition), int(offset), float(at)))
        self.deliveries.extend(new)
        return new


# -- the in-memory ledger of in-process pollers -----------------------------------------


@dataclass
class Ledger:
    """Deliveries from handlers on many threads, in the order they arrived."""

    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _seen: set[tuple[int, int]] = field(default_factory=set)

    def extend(self, deliveries: Iterable[Delivery]) -> None:
        """Record ``deliveries``, in order."""
        new = list(deliveries)
        with self._lock:
            self.deliveries.extend(new)
            self._seen.update((d.partition, d.offset) for d in new if d.ok)
            self._lock.notify_all()

    def snapshot(self) -> list[Delivery]:
        """The deliveries so far."""
        with self._lock:
            return list(self.deliveries)

    def wait_for(self, condition: Callable[[Ledger], bool], timeout_s: float) -> None:
        """Block until ``condition(self)``; fail the test when ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"not reached within {timeout_s:.0f}s: {len(self._seen)} records handled"
                    )
                self._lock.wait(min(left, 0.5))

    def wait_handled(self, count: int, timeout_s: float) -> None:
        """Block until ``count`` distinct records were handled successfully."""
        self.wait_for(lambda ledger: len(ledger._seen) >= count, timeout_s)


# -- judging ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """What happened to the records of a topic, judged from every delivery."""

    produced: int
    deliveries: int
    """Every record the function received, failed attempts included."""
    handled: int
    """Distinct records the function handled successfully."""
    duplicates: int
    """Deliveries beyond the first of a record (redeliveries and retries)."""
    lost: list[tuple[int, int]]
    """(partition, offset) produced and never handled successfully."""
    skips: list[str]
    """Where a partition moved past an offset never delivered before."""
    disorder: list[str]
    """Where a run delivered a partition's records out of order."""
    most_deliveries: int
    """The most times one record was delivered."""

    def assert_at_least_once(self) -> None:
        """Nothing lost, nothing skipped, order kept within each run."""
        assert not self.lost, f"{len(self.lost)} lost, first {self.lost[:10]}"
        assert not self.skips, f"skipped: {self.skips[:10]}"
        assert not self.disorder, f"out of order: {self.disorder[:10]}"


def tally(produced: Mapping[int, int], deliveries: Sequence[Delivery]) -> Tally:
    """Judge ``deliveries`` (in arrival order) against ``produced`` (partition -> end offset).

    Every partition starts at offset 0. Skipped: a delivery above every offset the
    partition saw before plus one. Disorder: within one run, a record delivered for the
    first time in that run below one the run delivered before (retries and
    redeliveries repeat earlier offsets, which is allowed).
    """
    expected = {(p, o) for p, end in produced.items() for o in range(end)}
    handled = {(d.partition, d.offset) for d in deliveries if d.ok}
    counts = Counter((d.partition, d.offset) for d in deliveries)
    return Tally(
        produced=len(expected),
        deliveries=len(deliveries),
        handled=len(handled & expected),
        duplicates=len(deliveries) - len(counts),
        lost=sorted(expected - handled),
        skips=_skips(deliveries),
        disorder=_disorder(deliveries),
        most_deliveries=max(counts.values(), default=0),
    )


def _skips(deliveries: Iterable[Delivery]) -> list[str]:
    highest: dict[int, int] = defaultdict(lambda: -1)
    found = []
    for d in deliveries:
        if d.offset > highest[d.partition] + 1:
            found.append(f"partition {d.partition}: {highest[d.partition]} -> {d.offset}")
        highest[d.partition] = max(highest[d.partition], d.offset)
    return found


def _disorder(deliveries: Iterable[Delivery]) -> list[str]:
    seen: dict[tuple[int, int], set[int]] = defaultdict(set)
    highest: dict[tuple[int, int], int] = {}
    found = []
    for d in deliveries:
        key = (d.run, d.partition)
        if d.offset in seen[key]:
            continue  # a retry or a redelivery: it repeats, it does not reorder
        if key in highest and d.offset < highest[key]:
            found.append(f"run {d.run} partition {d.partition}: {highest[key]} then {d.offset}")
        seen[key].add(d.offset)
        highest[key] = max(d.offset, highest.get(key, d.offset))
    return found


def redelivered_after(deliveries: Sequence[Delivery], faults: Sequence[float]) -> list[int]:
    """Duplicates per fault (sorted start times): each repeat counts for the last fault
    before it; repeats before the first fault count for none."""
    counts = [0] * len(faults)
    seen: set[tuple[int, int]] = set()
    for d in sorted(deliveries, key=lambda item: item.at):
        record = (d.partition, d.offset)
        index = bisect.bisect_right(faults, d.at) - 1
        if record in seen and index >= 0:
            counts[index] += 1
        seen.add(record)
    return counts


def progress_after(deliveries: Sequence[Delivery], moments: Sequence[float]) -> list[float]:
    """Per moment: seconds until a record never delivered before was handled."""
    ordered = sorted(deliveries, key=lambda item: item.at)
    waits = []
    for moment in moments:
        before = {(d.partition, d.offset) for d in ordered if d.at < moment}
        first_new = next(
            (
                d.at
                for d in ordered
                if d.at >= moment and d.ok and (d.partition, d.offset) not in before
            ),
            None,
        )
        if first_new is not None:
            waits.append(first_new - moment)
    return waits


def held_back(deliveries: Sequence[Delivery]) -> list[float]:
    """Per record that failed at least once and was later handled: seconds from its first
    failed delivery to its first successful one (how long failures held it back)."""
    failed: dict[tuple[int, int], float] = {}
    handled: dict[tuple[int, int], float] = {}
    for d in deliveries:
        target = handled if d.ok else failed
        target.setdefault((d.partition, d.offset), d.at)
    return [handled[r] - at for r, at in failed.items() if r in handled and handled[r] >= at]


# -- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One scenario's figures, as the README table shows them."""

    scenario: str
    records: int
    lost: int
    duplicates: int
    max_duplicates_per_fault: int
    recovery_s: float | None
    """The longest wait, after a fault, until a new record was handled."""
    seconds: float
    note: str = ""


def report(row: Row) -> None:
    """Print ``row`` and append it to ``$KAFKA_ESM_RELIABILITY_REPORT`` when set."""
    print(f"RELIABILITY {json.dumps(asdict(row))}")
    target = os.environ.get(REPORT_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as file:
            file.write(json.dumps(asdict(row)) + "\n")


def markdown_table(rows: Iterable[Row]) -> str:
    """The README table of ``rows``."""
    lines = [
        "| scenario | records | lost | duplicates (total / worst fault) | recovery | test time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        recovery = "-" if row.recovery_s is None else f"{row.recovery_s:.1f} s"
        lines.append(
            f"| {row.scenario} | {row.records:,} | {row.lost} | "
            f"{row.duplicates:,} / {row.max_duplicates_per_fault:,} | {recovery} | "
            f"{row.seconds:.0f} s |"
        )
    return "\n".join(lines)


def env_int(name: str, default: int) -> int:
    """An integer knob of the reliability suite (sizes, counts), from the environment."""
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    """A float knob of the reliability suite (budgets, rates), from the environment."""
    return float(os.environ.get(name, default))


if __name__ == "__main__":
    import sys

    source = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ[REPORT_ENV])
    rows = [Row(**json.loads(line)) for line in source.read_text().splitlines() if line]
    print(markdown_table(rows))
