"""What the doctor's Kafka checks share: clients built from the mapping's settings, whose
librdkafka logs are kept for hints instead of printed, and the answers they found."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient

from runtime.definition.model import EventSourceMapping
from runtime.definition.vocabulary import (
    CLUSTER_FAILED_TO_AUTHORIZE,
)
from runtime.doctor.model import DoctorInputs, Findings, Status, aws_error
from runtime.observability.state import MappingStopped, StateTransitionReason, problem

__all__ = ["AUTHZ_ERROR", "ClusterView", "LogCapture", "client_config", "refused"]

AUTHZ_ERROR = aws_error(
    MappingStopped(
        StateTransitionReason.EVENT_SOURCE_AUTHZ_ERROR, problem(CLUSTER_FAILED_TO_AUTHORIZE)
    )
)
_DENIED = frozenset(
    {
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)


class LogCapture(logging.Handler):
    """Keeps librdkafka's log lines for hints instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def client_config(found: Findings, captured: LogCapture, **extra: Any) -> dict[str, Any]:
    """librdkafka settings of the mapping (security and overrides) logging into ``captured``."""
    assert found.mapping is not None
    logger = logging.Logger("kafka-esm.doctor.librdkafka")
    logger.addHandler(captured)
    return {
        **found.settings,
        "bootstrap.servers": ",".join(found.mapping.bootstrap_servers),
        "logger": logger,
        **extra,
    }


class ClusterView:
    """The mapping's view of the cluster during the ACL, topic and group checks."""

    def __init__(self, inputs: DoctorInputs, found: Findings) -> None:
        assert found.mapping is not None
        self.mapping: EventSourceMapping = found.mapping
        self.found = found
        self.timeout_s = inputs.timeout_s
        self.captured = LogCapture()
        self.admin = AdminClient(client_config(found, self.captured))

    def consumer(self, **extra: Any) -> Consumer:
        """A consumer in the mapping's group; ``extra`` settings win."""
        settings = client_config(self.found, self.captured, **extra)
        return Consumer({"group.id": self.mapping.consumer_group_id, **settings})

    def topic_error(self, topic: str) -> KafkaError | None:
        """The metadata error of ``topic`` (None: it exists and may be described)."""
        metadata = self.admin.list_topics(topic=topic, timeout=self.timeout_s).topics[topic]
        if topic == self.mapping.topic and metadata.error is None:
            self.found.topic_partitions = len(metadata.partitions)
        return metadata.error

    def topic_unknown(self) -> bool:
        """True when the mapping's topic does not exist (asked once)."""
        if self.found.topic_partitions is None and not self.found.topic_missing:
            error = self.topic_error(self.mapping.topic)
            self.found.topic_missing = (
                error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            )
        return self.found.topic_missing


def refused(error: KafkaError, operation: str) -> tuple[Status, str]:
    """FAIL when the broker denied ``operation``; WARN when it failed for another reason."""
    if error.code() in _DENIED:
        return Status.FAIL, f"{operation} denied: {error.name()}"
    return Status.WARN, f"{operation} not tested: {error.str()}"
