"""A real Apache Kafka (KRaft, from Maven Central jars) for development and tests."""

from runtime.devtools.local_kafka.broker import BrokerStartError, LocalKafka
from runtime.devtools.local_kafka.jars import KAFKA_VERSION, BrokerFetchError, ensure_broker_jars
from runtime.devtools.local_kafka.settings import ClusterInfo, ListenerNotAvailable

__all__ = [
    "KAFKA_VERSION",
    "BrokerFetchError",
    "BrokerStartError",
    "ClusterInfo",
    "ListenerNotAvailable",
    "LocalKafka",
    "ensure_broker_jars",
]
