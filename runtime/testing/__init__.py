"""Test helpers for functions triggered by Kafka: events, a real broker, the mapping.

``kafka_event`` and ``failure_document`` need no broker; ``KafkaTestCluster`` and
``run_mapping`` use a real one. The pytest fixtures (``kafka_cluster``,
``kafka_secured_cluster``, ``kafka_topic``, ``run_mapping``) come from
``runtime.testing.plugin``, which pytest loads by itself once the ``testing`` extra is
installed.
"""

from runtime.devtools.local_kafka.settings import PLAINTEXT, SASL_SSL, SSL
from runtime.testing.cluster import KafkaTestCluster
from runtime.testing.events import failure_document, kafka_event, kafka_record
from runtime.testing.harness import HandlerError, MappingRun, run_mapping

__all__ = [
    "PLAINTEXT",
    "SASL_SSL",
    "SSL",
    "HandlerError",
    "KafkaTestCluster",
    "MappingRun",
    "failure_document",
    "kafka_event",
    "kafka_record",
    "run_mapping",
]
