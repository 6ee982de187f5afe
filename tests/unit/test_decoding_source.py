"""DecodingSource: records wait in order while the registry is down, nothing skipped.

The inner source is a scripted list of records (the real consumer is exercised by
tests/integration/test_schema_registry.py); the decoder is the real one, over a schema
source whose availability the test switches.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from runtime.definition.vocabulary import EventRecordFormat, SchemaValidationAttribute
from runtime.observability.counters import Counters, Metric
from runtime.observability.state import MappingStatus
from runtime.pipeline.decoding import HOLD_LIMIT, DecodingSource
from runtime.pipeline.failures import RetryBackoff
from runtime.records import PartitionId, Record
from runtime.registry.decoder import RecordDecoder
from runtime.registry.schemas import RegistryUnavailable, SchemaFormat, WriterSchema

SCHEMA = {"type": "object"}


class SwitchableSchemas:
    def __init__(self) -> None:
        self.up = False

    def get(self, schema_id: str) -> WriterSchema:
        if not self.up:
            raise RegistryUnavailable("connection refused")
        import jsonschema

        return WriterSchema(SchemaFormat.JSON, jsonschema.Draft7Validator(SCHEMA))


class ScriptedSource:
    def __init__(self) -> None:
        self.batches: list[list[Record]] = []
        self.paused_now: set[PartitionId] = set()
        self.listener = None

    def subscribe(self, listener) -> None:
        self.listener = listener

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, offsets: Mapping[PartitionId, int], *, wait: bool = True) -> bool:
        return True

    def pause(self, partitions: Collection[PartitionId]) -> None:
        self.paused_now.update(partitions)

    def resume(self, partitions: Collection[PartitionId]) -> None:
        self.paused_now.difference_update(partitions)

    @property
    def paused(self) -> frozenset[PartitionId]:
        return frozenset(self.paused_now)

    def close(self) -> None:
        pass


class Listener:
    def __init__(self) -> None:
        self.revoked: list[PartitionId] = []

    def on_assigned(self, partitions: list[PartitionId]) -> None:
        pass

    def on_revoked(self, partitions: list[PartitionId], lost: bool) -> None:
        self.revoked.extend(partitions)


def _record(partition: int, offset: int) -> Record:
    return Record("t", partition, offset, 0, value=b"\x00\x00\x00\x00\x01{}")


def _source(now: list[float]):
    inner, schemas, counters = ScriptedSource(), SwitchableSchemas(), Counters()
    decoder = RecordDecoder(
        schemas,
        glue=False,
        attributes=(SchemaValidationAttribute.VALUE,),
        record_format=EventRecordFormat.JSON,
    )
    source = DecodingSource(
        inner,
        decoder,
        counters,
        MappingStatus(),
        backoff=RetryBackoff(first_s=1.0, cap_s=1.0, jitter=False),
        clock=lambda: now[0],
    )
    source.subscribe(Listener())
    return source, inner, schemas, counters


def test_records_wait_in_order_and_come_out_once_the_registry_answers():
    now = [0.0]
    source, inner, schemas, counters = _source(now)
    inner.batches = [[_record(0, 0), _record(0, 1)], [_record(0, 2)]]
    assert source.poll(10, 0) == []
    assert source.poll(10, 0) == []  # the retry is not due yet; record 2 queues behind
    assert counters.get(Metric.POLLING_ERROR) == 1
    schemas.up = True
    now[0] = 1.5
    out = source.poll(10, 0)
    assert [r.offset for r in out] == [0, 1, 2]
    assert all(r.value_schema is not None for r in out)


def test_a_partition_holding_too_many_records_is_paused_and_hidden_from_the_loop():
    now = [0.0]
    source, inner, schemas, _ = _source(now)
    inner.batches = [[_record(0, n) for n in range(HOLD_LIMIT)]]
    source.poll(HOLD_LIMIT, 0)
    assert ("t", 0) in inner.paused_now
    assert source.paused == frozenset()  # the loop's backpressure cannot resume it
    source.resume([("t", 0)])
    assert ("t", 0) in inner.paused_now
    schemas.up = True
    now[0] = 2.0
    assert len(source.poll(10, 0)) == HOLD_LIMIT
    assert ("t", 0) not in inner.paused_now


def test_a_revoked_partition_forgets_what_waited_for_the_registry():
    now = [0.0]
    source, inner, schemas, _ = _source(now)
    inner.batches = [[_record(0, 0), _record(1, 0)]]
    source.poll(10, 0)
    source.on_revoked([("t", 0)], lost=False)
    schemas.up = True
    now[0] = 2.0
    assert [(r.partition, r.offset) for r in source.poll(10, 0)] == [(1, 0)]
