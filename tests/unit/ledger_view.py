"""The processor's results as the poll loop sees them: through a real offsets ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runtime.observability.counters import Counters
from runtime.observability.state import MappingStopped
from runtime.pipeline.batcher import Batch
from runtime.pipeline.offsets import OffsetLedger, Outcome
from runtime.pipeline.processor import BatchProcessor
from runtime.records import PartitionId, Record


@dataclass(frozen=True)
class Settled:
    """How a batch came back, and what the ledger then allows to commit."""

    complete: bool
    settled: dict[PartitionId, int]
    """The next offset to commit per partition that moved (the ledger's committable)."""
    stopped: MappingStopped | None


class RecordingLedger:
    """A real :class:`OffsetLedger` per batch, listing what became committable at each
    settle while the batch was still being worked on."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self.ledger = OffsetLedger(counters)
        self.progress: list[dict[PartitionId, int]] = []

    def settle(self, batch: Batch, records: Sequence[Record], outcome: Outcome) -> object:
        moved = self.ledger.settle(batch, records, outcome)
        if moved:
            self.progress.append(moved)
        return moved

    def process(self, processor: BatchProcessor, batch: Batch) -> Settled:
        """Run ``batch`` through ``processor`` as the poll loop does."""
        self.ledger = OffsetLedger(self._counters)
        self.ledger.assign(batch.partitions)
        self.ledger.begin(batch)
        outcome = processor.process(batch)
        self.ledger.finish(batch, complete=outcome.complete)
        return Settled(outcome.complete, self.ledger.committable(), outcome.stopped)
