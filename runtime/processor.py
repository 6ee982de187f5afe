"""Settle one batch: invoke, retry on failure, and report which offsets are settled.

A processor runs on a worker thread and owns its batch until every record in it is
settled (handled by the function, or later: sent to a destination or dropped by
AWS's rules) or the poller stops. The poll loop only sees the outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from runtime.batcher import Batch, PartitionId
from runtime.event import assemble
from runtime.failures import RetryBackoff, describe_failure, stop_for
from runtime.invokers import Invoker, InvokeResult
from runtime.metrics import Counters, Metric
from runtime.state import OK, MappingStatus, MappingStopped, problem

log = logging.getLogger("runtime.batch")


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch settled. ``settled`` maps partitions to the next offset to commit."""

    batch: Batch
    settled: dict[PartitionId, int]
    complete: bool
    stopped: MappingStopped | None = None


class BatchProcessor:
    """Invokes the function with a batch and retries until it succeeds (AWS's default)."""

    def __init__(
        self,
        invoker: Invoker,
        bootstrap_servers: tuple[str, ...],
        counters: Counters,
        status: MappingStatus,
        stopping: threading.Event,
        *,
        backoff: RetryBackoff | None = None,
        invoke_timeout_s: float = 840.0,
    ) -> None:
        self._invoker = invoker
        self._servers = bootstrap_servers
        self._counters = counters
        self._status = status
        self._stopping = stopping
        self._backoff = backoff or RetryBackoff()
        self._timeout_s = invoke_timeout_s

    def process(self, batch: Batch) -> BatchOutcome:
        """Settle ``batch`` or give it back unsettled when the poller stops."""
        if not batch.records:  # every record was filtered out: nothing to invoke
            return BatchOutcome(batch, batch.next_offsets(), complete=True)
        payload = _payload(batch, self._servers)
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            result = self._invoker.invoke(payload, deadline_s=self._timeout_s)
            self._log(batch, len(payload), time.monotonic() - started, attempt, result)
            self._counters.add(Metric.INVOKED, len(batch.records))
            if result.ok:
                self._status.record_result(OK)
                return BatchOutcome(batch, batch.next_offsets(), complete=True)
            self._counters.add(Metric.FAILED_INVOKE, len(batch.records))
            self._counters.add(Metric.INVOKE_ERROR)
            self._status.record_result(problem(describe_failure(result)))
            stopped = stop_for(result)
            if stopped is not None:
                return BatchOutcome(batch, {}, complete=False, stopped=stopped)
            if self._stopping.wait(self._backoff.delay(attempt)):
                return BatchOutcome(batch, {}, complete=False)

    def _log(
        self, batch: Batch, size: int, duration_s: float, attempt: int, result: InvokeResult
    ) -> None:
        fields = {
            "batch": batch.id,
            "ranges": {f"{t}-{p}": f"{a}-{b}" for (t, p), (a, b) in batch.ranges.items()},
            "records": len(batch.records),
            "bytes": size,
            "durationMs": round(duration_s * 1000, 1),
            "attempt": attempt,
            "outcome": "OK" if result.ok else result.error_kind.value,
            "requestId": result.request_id,
        }
        if result.ok:
            log.info("batch invoked", extra=fields)
        else:
            log.warning("batch failed, will retry: %s", describe_failure(result), extra=fields)


def _payload(batch: Batch, servers: tuple[str, ...]) -> bytes:
    groups: dict[str, list[bytes]] = {}
    for record, fragment in zip(batch.records, batch.fragments, strict=True):
        groups.setdefault(record.partition_key, []).append(fragment)
    return assemble(groups, servers)
