"""Shared fixtures: one real Kafka broker for the whole run, unique names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.devtools.local_kafka import ClusterInfo, LocalKafka
from tests.kafka_helpers import create_topic

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A real broker: started once per run, or ``KAFKA_BOOTSTRAP_SERVERS`` if set."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield ClusterInfo.external(external)
        return
    cache = Path(os.environ.get("KAFKA_ESM_CACHE", REPO_ROOT / ".cache" / "kafka-esm"))
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), cache_dir=cache)
    info = broker.start(die_with_parent=True)
    try:
        yield info
    finally:
        broker.stop()


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
