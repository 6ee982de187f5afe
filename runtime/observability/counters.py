"""The per-mapping counters AWS publishes, counted by the poller's stages.

Names are AWS's (PolledEventCount, FilteredOutEventCount, ...). Stages call
``add``; publishers (logs, EMF, Prometheus) read ``snapshot`` without stopping them.
Each counter belongs to one of the groups a mapping's MetricsConfig selects.
"""

from __future__ import annotations

import threading
from enum import StrEnum

from runtime.definition.vocabulary import EsmMetric


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
    # Queue mode (share groups) only:
    ACKNOWLEDGED = "AcknowledgedEventCount"
    """Records acknowledged ACCEPT: handled, filtered out or sent to the destination (the
    name AWS's Queue-mode dashboards use; Queue's counterpart of CommittedEventCount)."""
    RELEASED = "ReleasedEventCount"
    """Records given back to the share group for redelivery (this project's name)."""
    REJECTED = "RejectedEventCount"
    """Records acknowledged REJECT: dropped with no destination (this project's name)."""
    REDELIVERED = "RedeliveredEventCount"
    """Records received with a delivery count above 1 (this project's name)."""

    @property
    def group(self) -> EsmMetric:
        """The MetricsConfig group that turns this metric on."""
        return _GROUPS.get(self, EsmMetric.EVENT_COUNT)

    @property
    def queue_only(self) -> bool:
        """True for the share-group counts, published only for Queue mappings."""
        return self in _QUEUE_ONLY


_QUEUE_ONLY = frozenset({Metric.ACKNOWLEDGED, Metric.RELEASED, Metric.REJECTED, Metric.REDELIVERED})

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
