"""A source whose records come out decoded by the mapping's schema registry.

:class:`DecodingSource` wraps the mapping's :class:`~runtime.pipeline.source.Source`
(composition: the poll loop sees one more ``Source``) and passes each record through a
:class:`~runtime.registry.decoder.RecordDecoder` before the filter and the batcher see
it, so filters match decoded fields and the batcher measures the bytes actually sent.

When the registry cannot be asked, the partition's records wait here, in order, and the
same record is tried again after a backoff; later records of that partition wait behind
it (nothing is skipped, nothing is committed past it) and other partitions go on. A
partition holding too many records is paused until the registry answers again. Records
the registry cannot decode come out marked ``undecodable``: the batch processor gives
them to the on-failure path (condition ``SchemaDecodingFailed``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection

from runtime.observability.counters import Counters, Metric
from runtime.observability.state import MappingStatus, problem
from runtime.pipeline.failures import RetryBackoff
from runtime.pipeline.source import AssignmentListener, Source
from runtime.records import PartitionId, Record
from runtime.registry.decoder import RecordDecoder, RegistryUnavailable

log = logging.getLogger("runtime.pipeline.decoding")

HOLD_LIMIT = 1000
"""Records waiting for the registry per partition before the partition is paused."""


class DecodingSource:
    """The mapping's source, decoding each record with the schema registry."""

    def __init__(
        self,
        inner: Source,
        decoder: RecordDecoder,
        counters: Counters,
        status: MappingStatus,
        *,
        backoff: RetryBackoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._decoder = decoder
        self._counters = counters
        self._status = status
        self._backoff = backoff or RetryBackoff()
        self._clock = clock
        self._listener: AssignmentListener | None = None
        self._waiting: dict[PartitionId, deque[Record]] = {}
        self._retry_at: dict[PartitionId, float] = {}
        self._attempts: dict[PartitionId, int] = {}
        self._held: set[PartitionId] = set()
        """Partitions this source paused (too many records waiting for the registry)."""
        self._asked: set[PartitionId] = set()
        """Partitions the poll loop paused (its backpressure)."""

    # -- Source ------------------------------------------------------------------------------
    def subscribe(self, listener: AssignmentListener) -> None:
        """Join through the inner source; revocations also drop what waits here."""
        self._listener = listener
        self._inner.subscribe(self)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Decoded records: fresh ones and those whose registry retry is due."""
        for record in self._inner.poll(max_records, timeout_s):
            partition = (record.topic, record.partition)
            queue = self._waiting.get(partition)
            if queue is None:
                queue = self._waiting[partition] = deque()
            queue.append(record)
        out: list[Record] = []
        now = self._clock()
        for partition in list(self._waiting):
            if self._retry_at.get(partition, 0.0) <= now:
                self._decode_head(partition, out)
        return out

    def pause(self, partitions: Collection[PartitionId]) -> None:
        """The poll loop's backpressure."""
        self._asked.update(partitions)
        self._inner.pause(partitions)

    def resume(self, partitions: Collection[PartitionId]) -> None:
        """Resume, except partitions still waiting for the registry."""
        self._asked.difference_update(partitions)
        self._inner.resume([p for p in partitions if p not in self._held])

    @property
    def paused(self) -> frozenset[PartitionId]:
        """What the poll loop paused (a hold for the registry is this source's own)."""
        return self._inner.paused - (self._held - self._asked)

    def close(self) -> None:
        """Leave the group; records waiting here are read again by the next owner."""
        self._inner.close()

    # -- AssignmentListener --------------------------------------------------------------
    def on_assigned(self, partitions: list[PartitionId]) -> None:
        """Pass the assignment on to the poll loop."""
        if self._listener is not None:
            self._listener.on_assigned(partitions)

    def on_revoked(self, partitions: list[PartitionId], lost: bool) -> None:
        """Pass the revocation on, then forget the partitions' waiting records."""
        if self._listener is not None:
            self._listener.on_revoked(partitions, lost)
        for partition in partitions:
            self._asked.discard(partition)
            self._forget(partition, resume=False)

    # -- internals -------------------------------------------------------------------------
    def _decode_head(self, partition: PartitionId, out: list[Record]) -> None:
        queue = self._waiting[partition]
        while queue:
            try:
                out.append(self._decoder.decode(queue[0]))
            except RegistryUnavailable as error:
                self._wait_for_registry(partition, queue[0], str(error))
                return
            queue.popleft()
        if self._attempts.pop(partition, 0):
            log.info("the schema registry answers again", extra={"partition": _key(partition)})
        self._forget(partition)

    def _wait_for_registry(self, partition: PartitionId, head: Record, reason: str) -> None:
        attempt = self._attempts[partition] = self._attempts.get(partition, 0) + 1
        delay = self._backoff.delay(attempt)
        self._retry_at[partition] = self._clock() + delay
        self._counters.add(Metric.POLLING_ERROR)
        self._status.record_result(problem(f"Schema registry unreachable: {reason}"))
        log.warning(
            "the schema registry cannot be reached: %s; record %s offset %d waits (retry %d "
            "in %.1f s), nothing after it in the partition is sent or committed",
            reason,
            head.partition_key,
            head.offset,
            attempt,
            delay,
        )
        if len(self._waiting[partition]) >= HOLD_LIMIT and partition not in self._held:
            self._held.add(partition)
            self._inner.pause([partition])

    def _forget(self, partition: PartitionId, *, resume: bool = True) -> None:
        self._waiting.pop(partition, None)
        self._retry_at.pop(partition, None)
        self._attempts.pop(partition, None)
        if partition in self._held:
            self._held.discard(partition)
            if resume and partition not in self._asked:
                self._inner.resume([partition])


def _key(partition: PartitionId) -> str:
    return f"{partition[0]}-{partition[1]}"
