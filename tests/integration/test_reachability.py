"""A cluster that does not answer shows as AWS shows it, and recovers without a restart."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from runtime.observability.reachability import CONNECTION_PROBLEM
from runtime.observability.state import State
from tests.kafka_helpers import produce
from tests.poller_harness import RecordingHandler, mapping_doc, running_poller
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_an_unreachable_cluster_shows_a_connection_error_then_recovers(
    kafka: ClusterInfo,
    topic_factory: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"a", b"b"])
    proxy = TcpProxy(upstream=None)  # refuses every connection until it has an upstream
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    doc["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] = [proxy.address]
    handler = RecordingHandler()
    try:
        with (
            caplog.at_level(logging.WARNING, "runtime.pipeline.source"),
            running_poller(kafka, doc, handler) as run,
        ):
            status = run.poller.status
            _until(lambda: status.snapshot().last_processing_result == CONNECTION_PROBLEM,
                   "the connection problem")  # fmt: skip
            assert status.snapshot().state is State.ENABLED  # AWS keeps such a mapping Enabled
            errors_before = run.poller.counters.get(Metric.POLLING_ERROR)
            counters = run.poller.counters  # librdkafka keeps retrying: let it say so again
            _until(lambda: counters.get(Metric.POLLING_ERROR) >= errors_before + 3, "retries")
            errors = counters.get(Metric.POLLING_ERROR)
            logged = [r for r in caplog.records if r.name == "runtime.pipeline.source"]
            proxy.upstream = kafka.bootstrap_servers  # the cluster answers again
            handler.wait_for(lambda calls: sum(c.count() for c in calls) >= 2, timeout_s=60)
            _until(lambda: status.snapshot().last_processing_result == "OK", "OK again")
    finally:
        proxy.close()
    assert errors > errors_before > 0  # every refusal counts as PollingErrorCount
    distinct = {(r.code, r.getMessage().split(" (repeated")[0]) for r in logged}  # type: ignore[attr-defined]
    assert len(logged) == len(distinct) <= 4, [r.getMessage() for r in logged]
    assert handler.values() == [b"a", b"b"]
