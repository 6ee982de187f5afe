"""The per-mapping counters AWS publishes, counted by the poller's stages.

Names are AWS's (PolledEventCount, FilteredOutEventCount, ...). Stages call
``add``; publishers (logs, EMF, Prometheus) read ``snapshot`` without stopping them.
Each counter belongs to one of the groups a mapping's MetricsConfig selects.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from enum import StrEnum

from runtime.definition.vocabulary import EsmMetric

PartitionId = tuple[str, int]


class Metric(StrEnum):
    """AWS's per-mapping event counts for Kafka event source mappings."""

    POLLED = "PolledEventCount"
    FILTERED_OUT = "FilteredOutEventCount"
    INVOKED = "InvokedEventCount"
    FAILED_INVOKE = "FailedInvokeEventCount"
    DROPPED = "DroppedEventCount"
    ON_FAILURE_DELIVERED = "OnFailureDestinationDeliveredEventCount"
    COMMITTED = "CommittedEventCount"
    POLLING_ERROR = "PollingErrorCount"
    INVOKE_ERROR = "InvokeErrorCount"
    COMMIT_ERROR = "CommitErrorCount"

    @property
    def group(self) -> EsmMetric:
        """The MetricsConfig group that turns this metric on."""
        return _GROUPS.get(self, EsmMetric.EVENT_COUNT)


_GROUPS = {
    Metric.POLLING_ERROR: EsmMetric.ERROR_COUNT,
    Metric.INVOKE_ERROR: EsmMetric.ERROR_COUNT,
    Metric.COMMIT_ERROR: EsmMetric.ERROR_COUNT,
}


class Counters:
    """Monotonic counters, safe to bump from the poll loop and the batch workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(Metric, 0)

    def add(self, metric: Metric, amount: int = 1) -> None:
        """Count ``amount`` more of ``metric``."""
        if amount:
            with self._lock:
                self._values[metric] += amount

    def get(self, metric: Metric) -> int:
        """The current value of ``metric``."""
        with self._lock:
            return self._values[metric]

    def snapshot(self) -> dict[Metric, int]:
        """All counters, read together."""
        with self._lock:
            return dict(self._values)


class CommitTally:
    """Counts records, not offsets, from poll to commit: the CommittedEventCount.

    Offsets are not records (compacted topics and transaction markers leave gaps), and
    filtered-out records settle without a batch. The poll loop reports each record it
    buffers, each offset it settles and each commit that succeeded; only that thread
    calls the tally, so it needs no lock.
    """

    def __init__(self) -> None:
        self._waiting: dict[PartitionId, deque[int]] = {}
        self._settled: dict[PartitionId, int] = {}

    def polled(self, partition: PartitionId, offset: int) -> None:
        """A record was buffered; a record read again (after a seek) counts once."""
        waiting = self._waiting.get(partition)
        if waiting is None:  # not setdefault: it would build a deque per record
            waiting = self._waiting[partition] = deque()
        while waiting and waiting[-1] >= offset:
            waiting.pop()
        waiting.append(offset)

    def settled(self, partition: PartitionId, next_offset: int) -> None:
        """Every buffered record of ``partition`` below ``next_offset`` awaits its commit."""
        waiting = self._waiting.get(partition)
        count = 0
        while waiting and waiting[0] < next_offset:
            waiting.popleft()
            count += 1
        if count:
            self._settled[partition] = self._settled.get(partition, 0) + count

    def committed(self, partitions: Iterable[PartitionId]) -> int:
        """Records the commit of ``partitions`` covered; they are counted only once."""
        return sum(self._settled.pop(partition, 0) for partition in partitions)

    def forget(self, partitions: Iterable[PartitionId]) -> None:
        """Revoked partitions: their uncommitted records belong to the next owner."""
        for partition in partitions:
            self._waiting.pop(partition, None)
            self._settled.pop(partition, None)
