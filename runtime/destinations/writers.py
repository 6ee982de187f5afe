"""On-failure destinations: where records go once the mapping gives up on them.

``DestinationConfig.OnFailure.Destination`` names an SQS queue, an SNS topic, an S3
bucket (reached through boto3; ``endpoint_url`` or boto3's ``AWS_ENDPOINT_URL_<SERVICE>``
variables point them at an emulator) or ``kafka://<topic>`` on the source cluster,
produced with each failed record's own key. A writer either accepts a failure or
raises DeliveryError; :func:`deliver_until_accepted` retries until it is accepted,
because offsets must never move past records that no destination holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from runtime.client_settings import CONSUMER_ONLY_SETTINGS
from runtime.definition.model import DestinationKind, EventSourceMapping
from runtime.destinations.documents import (
    DocumentContext,
    Failure,
    encode_document,
    failure_document,
    kafka_failure_records,
    s3_object_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("runtime.destinations.writers")

_FIELD: Final = "DestinationConfig.OnFailure.Destination"
_AWS_CONFIG: Final = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30
)
# A failure record carries the whole one-record event (base64 value plus envelope), so
# it is larger than the record it reports; the broker's topic limit still applies.
_MAX_FAILURE_RECORD_BYTES: Final = 64 * 1024 * 1024


class DeliveryError(Exception):
    """The destination did not accept a failure; ``remaining`` is what is still undelivered."""

    def __init__(self, message: str, remaining: Failure | None = None) -> None:
        super().__init__(message)
        self.remaining = remaining


class FailureDestination(Protocol):
    """Accepts failure records; called from batch worker threads, so thread-safe."""

    @property
    def target(self) -> str:
        """The configured destination, for logs."""
        ...

    def deliver(self, failure: Failure) -> None:
        """Hand ``failure`` over durably, or raise DeliveryError."""
        ...

    def close(self) -> None:
        """Release clients; pending deliveries are flushed first."""
        ...


class SqsDestination:
    """``sqs:SendMessage`` of the failure record (no payload) to a standard queue."""

    def __init__(
        self,
        queue_arn: str,
        context: DocumentContext,
        *,
        client: SQSClient | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        _, region, account, name = _resource(queue_arn, "sqs")
        self._arn, self._name, self._account = queue_arn, name, account
        self._context = context
        self._client: SQSClient = client or _client("sqs", region, endpoint_url)
        self._url: str | None = None
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        return self._arn

    def deliver(self, failure: Failure) -> None:
        body = encode_document(failure_document(failure, self._context)).decode("utf-8")
        try:
            self._client.send_message(QueueUrl=self._queue_url(), MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            with self._lock:
                self._url = None  # the queue may have been deleted and created again
            raise DeliveryError(f"SQS SendMessage to {self._arn} failed: {_reason(exc)}") from exc

    def close(self) -> None:
        self._client.close()

    def _queue_url(self) -> str:
        with self._lock:
            if self._url is None:
                self._url = self._client.get_queue_url(
                    QueueName=self._name, QueueOwnerAWSAccountId=self._account
                )["QueueUrl"]
            return self._url


class SnsDestination:
    """``sns:Publish`` of the failure record (no payload) to a standard topic."""

    def __init__(
        self,
        topic_arn: str,
        context: DocumentContext,
        *,
        client: SNSClient | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        _, region, _, _ = _resource(topic_arn, "sns")
        self._arn = topic_arn
        self._context = context
        self._client: SNSClient = client or _client("sns", region, endpoint_url)

    @property
    def target(self) -> str:
        return self._arn

    def deliver(self, failure: Failure) -> None:
        message = encode_document(failure_document(failure, self._context)).decode("utf-8")
        try:
            self._client.publish(TopicArn=self._arn, Message=message)
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryError(f"SNS Publish to {self._arn} failed: {_reason(exc)}") from exc

    def close(self) -> None:
        self._client.close()


class S3Destination:
    """``s3:PutObject`` of the failure record with ``payload`` (the whole event)."""

    def __init__(
        self,
        bucket_arn: str,
        context: DocumentContext,
        *,
        client: S3Client | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not bucket_arn.startswith("arn:") or bucket_arn.count(":") != 5:
            raise ValueError(f"{_FIELD}={bucket_arn!r} is not an S3 bucket ARN (arn:aws:s3:::name)")
        self._arn = bucket_arn
        self._bucket = bucket_arn.rsplit(":", 1)[1]
        self._context = context
        self._client: S3Client = client or _client("s3", region, endpoint_url)

    @property
    def target(self) -> str:
        return self._arn

    def deliver(self, failure: Failure) -> None:
        document = failure_document(failure, self._context, include_payload=True)
        key = s3_object_key(failure, self._context)
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=encode_document(document),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryError(
                f"S3 PutObject to {self._arn} ({key}) failed: {_reason(exc)}"
            ) from exc

    def close(self) -> None:
        self._client.close()


class KafkaDestination:
    """Produces one record per failed record to a topic of the source cluster.

    Each failed record is written as it was read (key, value, headers) with the failure
    metadata appended as ``kafka-esm-*`` headers, so it can be replayed as it is; keyed
    records land in the partition Kafka's partitioner picks for that key.
    Deliveries are serialized: a delivery waits for every acknowledgement, and records
    the broker did not acknowledge are returned in DeliveryError.remaining. The producer
    is built on the first delivery: ``settings`` is asked then, once the source has read
    the cluster's secrets.
    """

    def __init__(
        self,
        topic: str,
        context: DocumentContext,
        settings: Callable[[], Mapping[str, Any]],
        *,
        source_topic: str,
        timeout_s: float = 15.0,
        producer_factory: Callable[[dict[str, Any]], Any] = Producer,
    ) -> None:
        if topic == source_topic:
            raise ValueError(
                f"{_FIELD}='kafka://{topic}' is not valid: must not be the source topic"
            )
        if not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r} is out of range: must be > 0 seconds")
        self._topic = topic
        self._context = context
        self._timeout_s = timeout_s
        self._settings = settings
        self._producer_factory = producer_factory
        self._producer: Any = None
        self._lock = threading.Lock()

    def _connected(self) -> Any:
        """The producer, built on first use (callers hold the lock)."""
        if self._producer is None:
            config = {
                **self._settings(),
                "acks": "all",
                "message.timeout.ms": int(self._timeout_s * 1000),
                "message.max.bytes": _MAX_FAILURE_RECORD_BYTES,
            }
            self._producer = self._producer_factory(config)
        return self._producer

    @property
    def target(self) -> str:
        return f"kafka://{self._topic}"

    def deliver(self, failure: Failure) -> None:
        outgoing = kafka_failure_records(failure, self._context)
        errors: dict[int, str] = {}
        with self._lock:
            producer = self._connected()
            for index, message in enumerate(outgoing):
                errors[index] = "not acknowledged"
                try:
                    producer.produce(
                        self._topic,
                        key=message.key,
                        value=message.value,
                        headers=list(message.headers),
                        on_delivery=_acknowledge(errors, index),
                    )
                except (KafkaException, BufferError) as exc:
                    errors[index] = str(exc)
            # message.timeout.ms is shorter than this wait: every record is resolved.
            producer.flush(self._timeout_s + 5)
        failed = [outgoing[i].source for i in sorted(errors)]
        if failed:
            first = next(iter(errors.values()))
            raise DeliveryError(
                f"produce to {self.target} failed for {len(failed)} of {len(outgoing)} "
                f"record(s): {first}",
                remaining=failure.only(failed),
            )

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self._timeout_s)


def _acknowledge(
    errors: dict[int, str], index: int
) -> Callable[[KafkaError | None, Message], None]:
    """A delivery callback that clears ``index`` from ``errors`` once acknowledged."""

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            errors.pop(index, None)
        else:
            errors[index] = error.str()

    return on_delivery


def producer_settings(
    mapping: EventSourceMapping, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The source cluster's connection settings for the destination's producer."""
    settings: dict[str, Any] = {
        "bootstrap.servers": ",".join(mapping.bootstrap_servers),
        "client.id": f"kafka-esm-{mapping.uuid[:8]}-on-failure",
    }
    dropped = CONSUMER_ONLY_SETTINGS | {"client.id"}
    settings.update({k: v for k, v in (overrides or {}).items() if k not in dropped})
    return settings


def destination_for(
    mapping: EventSourceMapping,
    *,
    consumer_overrides: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> FailureDestination | None:
    """The writer for the mapping's on-failure destination; None when it has none.

    ``consumer_overrides`` are the source consumer's librdkafka settings (security), or
    what gives them once the secrets are read, reused for a ``kafka://`` destination;
    ``region`` names the function's region for the failure record's ``functionArn`` and
    the S3 client.
    """
    if mapping.on_failure is None:
        return None
    destination = mapping.on_failure.destination
    context = DocumentContext.for_mapping(mapping, region=region)
    kind = mapping.on_failure.kind
    if kind is DestinationKind.SQS:
        return SqsDestination(destination, context, endpoint_url=endpoint_url)
    if kind is DestinationKind.SNS:
        return SnsDestination(destination, context, endpoint_url=endpoint_url)
    if kind is DestinationKind.S3:
        return S3Destination(destination, context, region=region, endpoint_url=endpoint_url)
    topic = mapping.on_failure.kafka_topic or ""
    overrides = consumer_overrides
    return KafkaDestination(
        topic,
        context,
        lambda: producer_settings(mapping, overrides() if callable(overrides) else overrides),
        source_topic=mapping.topic,
    )


class Backoff(Protocol):
    """How long to wait before the next attempt (the mapping's retry backoff)."""

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""


def deliver_until_accepted(
    destination: FailureDestination,
    failure: Failure,
    stopping: threading.Event,
    backoff: Backoff,
) -> bool:
    """Deliver ``failure``, retrying with backoff; False only when a stop interrupted it.

    Never gives up otherwise: skipping a failure would lose its records.
    """
    pending, attempt = failure, 0
    while True:
        try:
            destination.deliver(pending)
        except DeliveryError as error:
            attempt += 1
            pending = error.remaining or pending
            log.warning(
                "on-failure destination did not accept the failure record; will retry: %s",
                error,
                extra={"destination": destination.target, "attempt": attempt},
            )
        else:
            return True
        if stopping.wait(backoff.delay(attempt)):
            return False


def _client(service: Any, region: str | None, endpoint_url: str | None) -> Any:
    """A client from a private session: boto3's default session is not thread-safe."""
    session = boto3.session.Session()
    return session.client(
        service, region_name=region, endpoint_url=endpoint_url, config=_AWS_CONFIG
    )


def _resource(arn: str, service: str) -> tuple[str, str, str, str]:
    """Partition, region, account and name of an SQS or SNS ARN; refuses FIFO targets."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != service or not all(parts[3:]):
        raise ValueError(
            f"{_FIELD}={arn!r} is not an {service.upper()} ARN "
            f"(arn:aws:{service}:<region>:<account>:<name>)"
        )
    if parts[5].endswith(".fifo"):
        raise ValueError(
            f"{_FIELD}={arn!r} is not valid: Lambda does not deliver failure records "
            f"to FIFO {'queues' if service == 'sqs' else 'topics'}"
        )
    return parts[1], parts[3], parts[4], parts[5]


def _reason(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}"
    return str(exc)
