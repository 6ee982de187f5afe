"""How many pollers a mapping needs: the ``DesiredPollerCount`` a Fargate service follows.

AWS states what one event poller carries: up to 5 MB/s of throughput or up to 5
concurrent invocations. It evaluates the lag every minute, never runs more consumers
than partitions, and runs fewer when the function is throttled. This module turns that
into a number each interval:

* the rate to sustain: records written to the topic per second (from two lag readings,
  so every poller of the group agrees) plus the lag worked off within ``catch_up_s``;
* pollers by throughput: that rate times the bytes of a record (as this poller polled
  them), over one poller's bytes per second;
* pollers by concurrency: that rate times the invocation seconds of a record (as this
  poller's function calls took), over one poller's concurrent invocations;
* the larger of the two, rounded up, within MinimumPollers..MaximumPollers and never
  above the partition count in Stream mode (Queue mode's share group lets several
  pollers read one partition, so there the count may pass it; its backlog is the end
  offset minus the delivered front, see :meth:`WorkloadMeter.front`);
* throttled during the interval: at most one fewer than the last count.

Until a record was polled and invoked, the cost of a record is unknown and the count
stays at the lower bound (AWS starts with one consumer too).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

from runtime.definition.model import (
    DEFAULT_MAXIMUM_POLLERS,
    DEFAULT_MINIMUM_POLLERS,
    EventSourceMapping,
)
from runtime.observability.lag import LagSnapshot
from runtime.records import Record

_KEY = attrgetter("key")
_VALUE = attrgetter("value")

AWS_POLLER_BYTES_PER_S = 5 * 1024 * 1024
"""AWS: "up to 5 MB/s" per event poller (taken as MiB, so CDK's ``Size`` states it)."""
AWS_POLLER_CONCURRENCY = 5
"""AWS: "up to 5 concurrent invocations" per event poller."""
DEFAULT_CATCH_UP_S = 300.0
"""How soon the lag should be worked off (AWS does not say); one scale-in cooldown."""


@dataclass(frozen=True)
class PollerCapacity:
    """What one poller is taken to carry, and how fast the lag should go."""

    bytes_per_s: int = AWS_POLLER_BYTES_PER_S
    concurrent_invocations: int = AWS_POLLER_CONCURRENCY
    catch_up_s: float = DEFAULT_CATCH_UP_S

    def __post_init__(self) -> None:
        for name in ("bytes_per_s", "concurrent_invocations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} {value!r} must be a whole number of at least 1")
        if not self.catch_up_s > 0:
            raise ValueError(f"catch_up_s {self.catch_up_s!r} must be more than 0 seconds")


@dataclass(frozen=True)
class PollerBounds:
    """MinimumPollers and MaximumPollers; on-demand mappings get AWS's defaults."""

    minimum: int = DEFAULT_MINIMUM_POLLERS
    maximum: int = DEFAULT_MAXIMUM_POLLERS

    per_partition: bool = True
    """Stream mode: one poller per partition at most. False in Queue mode."""

    @classmethod
    def of(cls, mapping: EventSourceMapping) -> PollerBounds:
        """The bounds ``ProvisionedPollerConfig`` sets, else 1..200."""
        config = mapping.provisioned_poller_config
        per_partition = not mapping.is_queue
        if config is None:
            return cls(per_partition=per_partition)
        return cls(config.minimum_pollers, config.maximum_pollers, per_partition)

    def clamp(self, wanted: int, partitions: int) -> int:
        """``wanted`` within the bounds, the upper one at most ``partitions`` in Stream
        mode (and at least 1: a topic being created has no partitions yet)."""
        high = max(1, min(self.maximum, partitions) if self.per_partition else self.maximum)
        return max(min(self.minimum, high), min(wanted, high))


@dataclass(frozen=True)
class Workload:
    """What a poller did, as running totals (an interval is the difference of two)."""

    records_polled: int = 0
    bytes_polled: int = 0
    records_sent: int = 0
    """Records in invocations the function ran, retries included."""
    invoke_s: float = 0.0
    """Seconds spent in those invocations, summed over concurrent ones."""
    throttles: int = 0

    def since(self, earlier: Workload) -> Workload:
        """The interval from ``earlier`` to this one."""
        return Workload(
            self.records_polled - earlier.records_polled,
            self.bytes_polled - earlier.bytes_polled,
            self.records_sent - earlier.records_sent,
            self.invoke_s - earlier.invoke_s,
            self.throttles - earlier.throttles,
        )


class WorkloadMeter:
    """The one owner of the workload totals; the source and the processor add to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = Workload()
        self._front: dict[int, int] = {}

    def delivered(self, records: Sequence[Record]) -> None:
        """Queue mode: move the delivered front of each partition past ``records``."""
        front = self._front
        with self._lock:
            for record in records:
                if record.offset >= front.get(record.partition, 0):
                    front[record.partition] = record.offset + 1

    def front(self) -> dict[int, int]:
        """Queue mode's stand-in for committed offsets: per partition, the offset after
        the highest one the share group delivered to this poller. A share group's own
        start offset cannot be read through librdkafka's admin API, so the backlog is
        the end offset minus this front."""
        with self._lock:
            return dict(self._front)

    def polled(self, records: Sequence[Record]) -> None:
        """Count records read from the cluster, with their key and value bytes."""
        # map/filter keep the per-record work in C: this runs for every record polled.
        size = sum(map(len, filter(None, map(_KEY, records))))
        size += sum(map(len, filter(None, map(_VALUE, records))))
        with self._lock:
            totals = self._totals
            self._totals = replace(
                totals,
                records_polled=totals.records_polled + len(records),
                bytes_polled=totals.bytes_polled + size,
            )

    def invoked(self, records: int, seconds: float, *, ran: bool, throttled: bool) -> None:
        """Count one invocation; one the function never ran (unsent, throttled) adds no
        cost, only its throttle."""
        with self._lock:
            totals = self._totals
            self._totals = replace(
                totals,
                records_sent=totals.records_sent + (records if ran else 0),
                invoke_s=totals.invoke_s + (seconds if ran else 0.0),
                throttles=totals.throttles + int(throttled),
            )

    def snapshot(self) -> Workload:
        """The totals now."""
        with self._lock:
            return self._totals


@dataclass(frozen=True)
class Demand:
    """One interval's reasoning, kept so logs and tests can say why a count was chosen."""

    ingress_per_s: float | None
    """Records written to the topic per second; None on the first reading."""
    needed_per_s: float
    by_throughput: float
    by_concurrency: float
    throttled: bool
    desired: int


class ScalingModel:
    """Turns successive lag readings and workload totals into ``DesiredPollerCount``."""

    def __init__(self, capacity: PollerCapacity, bounds: PollerBounds) -> None:
        self.capacity = capacity
        self.bounds = bounds
        self._lag: LagSnapshot | None = None
        self._workload = Workload()
        self._bytes_per_record: float | None = None
        self._seconds_per_record: float | None = None
        self._desired: int | None = None

    def update(self, lag: LagSnapshot, workload: Workload) -> Demand:
        """The count for this interval, from ``lag`` and the totals at the same moment."""
        interval = workload.since(self._workload)
        self._learn_costs(interval)
        ingress = _ingress_per_s(self._lag, lag)
        needed = (ingress or 0.0) + lag.total / self.capacity.catch_up_s
        by_throughput = needed * (self._bytes_per_record or 0.0) / self.capacity.bytes_per_s
        by_concurrency = (
            needed * (self._seconds_per_record or 0.0) / self.capacity.concurrent_invocations
        )
        wanted = math.ceil(round(max(by_throughput, by_concurrency), 6))  # 3.0000001 is 3
        throttled = interval.throttles > 0
        if throttled and self._desired is not None:
            wanted = min(wanted, self._desired - 1)
        desired = self.bounds.clamp(wanted, lag.partition_count)
        self._lag, self._workload, self._desired = lag, workload, desired
        return Demand(ingress, needed, by_throughput, by_concurrency, throttled, desired)

    def _learn_costs(self, interval: Workload) -> None:
        """Keep the latest measured cost of a record; an idle interval changes nothing."""
        if interval.records_polled > 0:
            self._bytes_per_record = interval.bytes_polled / interval.records_polled
        if interval.records_sent > 0:
            self._seconds_per_record = interval.invoke_s / interval.records_sent


def _ingress_per_s(before: LagSnapshot | None, after: LagSnapshot) -> float | None:
    """Records appended per second between two readings (partitions in both only)."""
    if before is None or after.read_at <= before.read_at:
        return None
    ends = {p.partition: p.end for p in before.partitions}
    written = sum(
        max(p.end - ends[p.partition], 0) for p in after.partitions if p.partition in ends
    )
    return written / (after.read_at - before.read_at)
