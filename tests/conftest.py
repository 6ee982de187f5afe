"""Shared fixtures: one real Kafka broker for the whole run, unique names per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from runtime.testing import KafkaTestCluster
from tests.kafka_helpers import create_topic

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka(kafka_cluster: KafkaTestCluster) -> ClusterInfo:
    """A real broker: the plugin's ``kafka_cluster`` (one per run, or
    ``KAFKA_BOOTSTRAP_SERVERS``), as the ``ClusterInfo`` these tests use."""
    return kafka_cluster.info


@pytest.fixture(scope="session")
def secured_kafka(kafka: ClusterInfo) -> ClusterInfo:
    """The broker's SASL_SSL and SSL listeners; skipped on an external PLAINTEXT cluster."""
    if not kafka.is_secured:
        pytest.skip("needs the local broker's secured listeners")
    return kafka


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses: topics and groups are never shared between tests."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic_factory(kafka: ClusterInfo, unique: Callable[[str], str]) -> Callable[..., str]:
    """Create a fresh topic and return its name."""

    def make(partitions: int = 1, prefix: str = "t", **config: str) -> str:
        name = unique(prefix)
        create_topic(kafka, name, partitions, config)
        return name

    return make
