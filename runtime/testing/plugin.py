"""The pytest plugin (entry point ``pytest11: kafka_esm``): fixtures for users' tests.

Installed with ``pip install 'constructs-kafka[testing]'``; pytest loads it by itself.
``kafka_cluster`` starts one real Apache Kafka per test session (or uses
``KAFKA_BOOTSTRAP_SERVERS``), ``kafka_topic`` makes fresh topics on it, and
``run_mapping`` runs a mapping with a Python handler and stops it when the test ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from runtime.devtools.local_kafka import LocalKafka
from runtime.devtools.local_kafka.registry import LocalSchemaRegistry, RegistryInfo
from runtime.devtools.local_kafka.settings import ClusterInfo
from runtime.testing.cluster import KafkaTestCluster
from runtime.testing.harness import MappingRun
from runtime.testing.harness import run_mapping as start_mapping
from runtime.testing.serve import ServeProcess

EXTERNAL_ENV = "KAFKA_BOOTSTRAP_SERVERS"
MARKER = "kafka"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``kafka`` marker, which every test using the broker carries."""
    config.addinivalue_line("markers", f"{MARKER}: uses the real Kafka broker (kafka_cluster)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use ``kafka_cluster`` (even through another fixture) with
    ``kafka``: ``pytest -m "not kafka"`` runs the fast ones only."""
    for item in items:
        if "kafka_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaTestCluster]:
    """A real Kafka cluster for the whole test session.

    The local Apache Kafka (KRaft, one node, bound to 127.0.0.1 on free ports; fetched
    from Maven Central once into the kafka-esm cache, needs Java 17+), stopped when the
    session ends or the test process dies. Set KAFKA_BOOTSTRAP_SERVERS to use an
    existing cluster over PLAINTEXT instead (no SASL or mTLS listeners then).
    """
    secrets = tmp_path_factory.mktemp("kafka-secrets")
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        yield KafkaTestCluster(ClusterInfo.external(external), secrets)
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    info = broker.start(die_with_parent=True)
    try:
        yield KafkaTestCluster(info, secrets)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryInfo]:
    """A real Confluent-compatible schema registry for the whole test session.

    Apicurio Registry (fetched from Maven Central once into the kafka-esm cache; needs
    Java 21+, found through JAVA_HOME or /usr/lib/jvm), in-memory, on 127.0.0.1 and a
    free port; ``.url`` is its Confluent API (``SchemaRegistryURI``). Stopped when the
    session ends or the test process dies.
    """
    registry = LocalSchemaRegistry(tmp_path_factory.mktemp("schema-registry"))
    info = registry.start(die_with_parent=True)
    try:
        yield info
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def kafka_secured_cluster(kafka_cluster: KafkaTestCluster) -> KafkaTestCluster:
    """``kafka_cluster`` with its SASL_SSL and SSL listeners; skips the test on an
    external PLAINTEXT cluster."""
    if not kafka_cluster.info.is_secured:
        pytest.skip("needs the local broker's SASL_SSL and SSL listeners")
    return kafka_cluster


@pytest.fixture
def kafka_topic(kafka_cluster: KafkaTestCluster) -> Callable[..., str]:
    """Make a fresh topic: ``kafka_topic(partitions=3, retention_ms="60000")`` returns
    its unique name."""

    def make(partitions: int = 1, **config: str) -> str:
        return kafka_cluster.create_topic(partitions, **config)

    return make


@pytest.fixture
def run_mapping() -> Iterator[Callable[..., MappingRun]]:
    """Run a mapping with a Python handler: ``run_mapping(request, handler, **options)``
    returns a started ``MappingRun`` (``wait_for(records=n)``, ``events``, ``counters``,
    ``status``); every run still going is stopped, committing, when the test ends."""
    runs: list[MappingRun] = []

    def start(mapping: Mapping[str, Any], handler: Any, **options: Any) -> MappingRun:
        run = start_mapping(mapping, handler, **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


@pytest.fixture
def kafka_esm_serve(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``kafka-esm serve`` (Lambda's event-source-mapping API on a free port):
    ``kafka_esm_serve({"my-fn": "app:handler"})`` returns a ready ``ServeProcess``;
    ``.client()`` is boto3's Lambda client for it. Stopped (SIGTERM) when the test ends."""
    started: list[ServeProcess] = []

    def start(functions: Mapping[str, str], **options: Any) -> ServeProcess:
        options.setdefault("state_dir", tmp_path_factory.mktemp("serve"))
        serve = ServeProcess(functions=functions, **options).start()
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()
