"""Records/s of a schema-registry mapping (Avro → JSON) against plain bytes, same topic.

Starts its own local Kafka and local schema registry (Apicurio), writes ``--records``
Avro records with confluent-kafka's serializer, then runs the poller twice on that one
topic, each in a fresh group: without SchemaRegistryConfig (the bytes as they are) and
with it (EventRecordFormat JSON, VALUE decoded). Prints one table row.

    python -m bench.registry --records 50000 --batch-size 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from bench.harness import DeliveryLog, mapping_for, run_poller
from bench.stats import median, steady_rate
from bench.throughput import NoOpHandler
from runtime.definition.model import SchemaRegistryConfig
from runtime.definition.vocabulary import EventRecordFormat, SchemaValidationAttribute
from runtime.devtools.local_kafka import LocalKafka, admin
from runtime.devtools.local_kafka.registry import LocalSchemaRegistry
from runtime.records import Record
from tests.registry_helpers import Producer, order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    broker, registry = LocalKafka(home / "kafka"), LocalSchemaRegistry(home / "registry")
    kafka = broker.start(die_with_parent=True)
    info = registry.start(die_with_parent=True)
    try:
        topic = "bench-avro"
        admin.create_topic(kafka, topic, 1, {})
        producer = Producer("AVRO", info.url, topic)
        values = [producer.value(order(n)) for n in range(1000)]
        size = sum(map(len, values)) / len(values)
        admin.produce(
            kafka,
            topic,
            (Record(topic, -1, 0, 0, value=values[n % 1000]) for n in range(args.records)),
        )
        registry_config = SchemaRegistryConfig(
            uri=info.url,
            event_record_format=EventRecordFormat.JSON,
            validated_attributes=(SchemaValidationAttribute.VALUE,),
        )
        plain, decoded = [], []
        for _ in range(args.runs):
            for rates, config in ((plain, None), (decoded, registry_config)):
                log = DeliveryLog(args.records)
                mapping = mapping_for(kafka, topic, args.batch_size, None)
                mapping = dataclasses.replace(mapping, schema_registry=config)
                run_poller(mapping, NoOpHandler(log), log, timeout_s=600)
                rates.append(steady_rate(log.marks, args.records))
        print(
            f"| Avro → JSON (registry), 1 partition, BatchSize {args.batch_size}, "
            f"{size:.0f} B values | {median(decoded):,.0f} rec/s | plain bytes, same topic "
            f"{median(plain):,.0f} rec/s | {median(decoded) / median(plain):.2f} |"
        )
    finally:
        registry.stop()
        broker.stop()


if __name__ == "__main__":
    main()
