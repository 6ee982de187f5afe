"""Small Kafka client helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from runtime.devtools.local_kafka import ClusterInfo


def create_topic(
    kafka: ClusterInfo, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    """Create ``name`` and wait until the broker confirms it."""
    admin = AdminClient(kafka.plaintext_config())
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
    )
    futures[name].result(timeout=30)


def produce(
    config: dict[str, str],
    topic: str,
    values: Iterable[bytes | None],
    *,
    partition: int | None = None,
    timestamps: Iterable[int] | None = None,
    key: bytes | None = None,
) -> int:
    """Produce ``values`` synchronously (acks=all); return how many were written."""
    producer = Producer({**config, "acks": "all", "linger.ms": 5})
    stamps = iter(timestamps) if timestamps is not None else None
    errors: list[KafkaError] = []
    count = 0
    for value in values:
        kwargs: dict[str, object] = {"value": value, "key": key}
        if partition is not None:
            kwargs["partition"] = partition
        if stamps is not None:
            kwargs["timestamp"] = next(stamps)
        producer.produce(topic, on_delivery=lambda err, _msg: err and errors.append(err), **kwargs)
        count += 1
    remaining = producer.flush(30)
    if errors or remaining:
        raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
    return count


def consume(
    config: dict[str, str], topic: str, group: str, expected: int, timeout_s: float = 30.0
) -> list[Message]:
    """Read ``expected`` records from the start of ``topic`` as ``group``; raise on errors."""
    consumer = Consumer(
        {
            **config,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(expected - len(messages), timeout=0.5):
                if message.error():
                    raise KafkaException(message.error())
                messages.append(message)
    finally:
        consumer.close()
    return messages


def connection_error(config: dict[str, str], timeout_s: float = 15.0) -> KafkaError | None:
    """The most telling error a client sees when it connects with ``config``; None if none.

    librdkafka reports the cause (for example ``_AUTHENTICATION``) through ``error_cb``,
    served by ``poll``; the metadata request itself only fails with a transport error.
    """
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1.0)
        except KafkaException as exc:
            admin.poll(0.2)
            if errors:
                break
            last: KafkaError = exc.args[0]
        else:
            return None
    else:
        errors.append(last)
    for error in errors:
        if error.code() == KafkaError._AUTHENTICATION:
            return error
    return errors[0]
