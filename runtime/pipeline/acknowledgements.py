"""Queue mode's ledger: the one owner of which acquired records are settled, and how.

A share group hands out records one by one under a lock, and wants each acknowledged:
ACCEPT (done), RELEASE (deliver again) or REJECT (archive). There are no partition
offsets to commit and no order to keep, so this ledger tracks records, not ranges:

* a record the filter drops is ACCEPTed at once (Stream mode commits past it);
* the processor settles each record with an :class:`~runtime.pipeline.offsets.Outcome`,
  which names its acknowledgement: handled or sent to the destination → ACCEPT,
  released → RELEASE, dropped with no destination → REJECT (so a broker-side dead-letter
  queue, KIP-1191, still sees it);
* the loop's :meth:`flush` hands the acknowledgements to the source, on the loop's thread
  (the share consumer is not thread-safe), **in the order the records were handed out**,
  per partition: a record is acknowledged only once every record before it is settled.
  librdkafka's share consumer (a preview) loses acknowledgements given out of offset
  order, and the broker then waits for their locks to expire (measured: a 30 s stall
  after every few fetches), so a batch that finishes early waits for the ones before it.

Nothing is acknowledged before the function or the destination has taken the record:
what is unsettled when a poller dies stays acquired, and the broker delivers it again
once the lock expires. On a graceful stop what is still unsettled is RELEASEd at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import groupby
from typing import Protocol

from runtime.observability.counters import Counters, Metric
from runtime.pipeline.batcher import Batch
from runtime.pipeline.offsets import Outcome
from runtime.pipeline.share_source import Acknowledgement, RecordKey
from runtime.records import PartitionId, Record

_ACKNOWLEDGEMENTS: Mapping[Outcome, Acknowledgement] = {
    Outcome.HANDLED: Acknowledgement.ACCEPT,
    Outcome.SENT_TO_DESTINATION: Acknowledgement.ACCEPT,
    Outcome.RELEASED: Acknowledgement.RELEASE,
    Outcome.DROPPED: Acknowledgement.REJECT,
}
_OUTCOME_METRICS = {
    Outcome.SENT_TO_DESTINATION: Metric.ON_FAILURE_DELIVERED,
    Outcome.DROPPED: Metric.DROPPED,
}
_ACK_METRICS = {
    Acknowledgement.ACCEPT: Metric.ACKNOWLEDGED,
    Acknowledgement.RELEASE: Metric.RELEASED,
    Acknowledgement.REJECT: Metric.REJECTED,
}


class Acknowledger(Protocol):
    """The share-group source, as this ledger uses it."""

    def acknowledge(self, records: Iterable[Record], kind: Acknowledgement) -> None:
        """Mark ``records``; sent with the next commit."""

    def commit(self, *, wait: bool = True, timeout_s: float = 30.0) -> bool:
        """Send the acknowledgements marked so far."""


class AcknowledgementLedger:
    """Per acquired record: held, then settled with an acknowledgement, then sent."""

    def __init__(self, counters: Counters, source: Acknowledger) -> None:
        self._counters = counters
        self._source = source
        self._lock = threading.Lock()
        self._records: dict[RecordKey, Record] = {}
        """Records handed out and not yet given to the source."""
        self._order: dict[PartitionId, deque[RecordKey]] = {}
        """Those records per partition, in the order they were handed out."""
        self._settled: dict[RecordKey, Acknowledgement] = {}
        """How each settled record is to be acknowledged."""
        self._batches: dict[int, Batch] = {}

    # -- no partitions: a share group assigns none to a member --------------------------
    @property
    def assigned(self) -> frozenset[PartitionId]:
        """Always empty: every member reads every partition."""
        return frozenset()

    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Never called: a share group assigns no partitions."""

    def revoke(self, partitions: Iterable[PartitionId]) -> None:
        """Never called: a share group assigns no partitions."""

    def busy(self, partition: PartitionId) -> bool:
        """Never: records of one partition may be in several batches at once (no order)."""
        return False

    def holds_any(self, partitions: Collection[PartitionId]) -> bool:
        """Never (see :meth:`busy`)."""
        return False

    def settle_skipped(self, offsets: Mapping[PartitionId, int]) -> None:
        """Nothing to do: filtered records never reach the batcher in Queue mode."""

    # -- records and batches -------------------------------------------------------------
    def read(self, record: Record, *, keep: bool) -> bool:
        """Hold a kept record; settle a filtered one ACCEPT at once (it needs no batch)."""
        return bool(self.read_all((record,), () if keep else (0,))[0])

    def read_all(
        self, records: Sequence[Record], dropped: Collection[int]
    ) -> tuple[Sequence[Record], Collection[int]]:
        """Hold every record; the kept ones go to the batcher, the dropped ones are
        settled ACCEPT at once (they need no batch)."""
        kept: list[Record] = []
        with self._lock:
            for index, record in enumerate(records):
                key = _key(record)
                self._records[key] = record
                self._order.setdefault((record.topic, record.partition), deque()).append(key)
                if index in dropped:
                    self._settled[key] = Acknowledgement.ACCEPT
                else:
                    kept.append(record)
        return kept, ()

    def begin(self, batch: Batch) -> None:
        """``batch`` goes to the function."""
        with self._lock:
            self._batches[batch.id] = batch

    @property
    def in_flight(self) -> int:
        """Batches with the function now."""
        return len(self._batches)

    def in_flight_ids(self) -> list[int]:
        """Ids of the batches with the function now (for logs)."""
        return sorted(self._batches)

    def settle(
        self, batch: Batch, records: Sequence[Record], outcome: Outcome
    ) -> Mapping[PartitionId, int]:
        """A worker settled ``records``: queue their acknowledgement for the next flush."""
        metric = _OUTCOME_METRICS.get(outcome)
        if metric is not None:
            self._counters.add(metric, len(records))
        kind = _ACKNOWLEDGEMENTS[outcome]
        with self._lock:
            for record in records:
                key = _key(record)
                if key in self._records:
                    self._settled.setdefault(key, kind)
        return {}

    def finish(self, batch: Batch, *, complete: bool) -> None:
        """``batch`` came back; what it left unsettled stays held (released on stop)."""
        with self._lock:
            self._batches.pop(batch.id, None)

    def abandon(self) -> None:
        """Stopping: RELEASE every record still held, so that it is delivered again now
        rather than when its lock expires (a function may still be running it: at least
        once allows the duplicate)."""
        with self._lock:
            self._batches.clear()
            for key in self._records:
                self._settled.setdefault(key, Acknowledgement.RELEASE)

    # -- telling the broker (the loop's thread) ------------------------------------------
    def flush(self, *, wait: bool) -> None:
        """Give the source, in hand-out order, every acknowledgement whose predecessors
        are all settled, and send them."""
        ready = self._settled_heads()
        if not ready and not wait:
            return
        for kind, run in groupby(ready, key=lambda pair: pair[1]):
            records = [record for record, _ in run]
            self._source.acknowledge(records, kind)
            self._counters.add(_ACK_METRICS[kind], len(records))
        self._source.commit(wait=wait)

    def _settled_heads(self) -> list[tuple[Record, Acknowledgement]]:
        """Per partition, the settled records at the head of the hand-out order."""
        ready: list[tuple[Record, Acknowledgement]] = []
        with self._lock:
            for order in self._order.values():
                while order and order[0] in self._settled:
                    key = order.popleft()
                    ready.append((self._records.pop(key), self._settled.pop(key)))
        return ready


def _key(record: Record) -> RecordKey:
    return (record.topic, record.partition, record.offset)
