"""Metrics and status on the real broker: exact counts, EMF, Prometheus, ``kafka-esm status``."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import status as status_command
from runtime.devtools.local_kafka import ClusterInfo
from runtime.observability.counters import Metric
from runtime.observability.publishers import ReportingOptions
from runtime.observability.status import POLLING, read_status_documents
from runtime.pipeline.poller import PollerOptions
from tests.conftest import REPO_ROOT
from tests.kafka_helpers import produce
from tests.poller_harness import (
    FAST_RETRY,
    RecordingHandler,
    mapping_doc,
    running_poller,
    wait_committed,
)

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., str]


class EmfSink(io.StringIO):
    """A stream the reporter writes EMF lines to, which a test can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            written = super().write(text)
            self._changed.notify_all()
            return written

    def documents(self) -> list[dict[str, Any]]:
        with self._changed:
            return [json.loads(line) for line in self.getvalue().splitlines()]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool]) -> None:
        with self._changed:
            ok = self._changed.wait_for(lambda: predicate(self._parsed()), timeout=30)
        assert ok, f"no such EMF document; last: {self._parsed()[-3:]}"

    def _parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


def _mapping_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if "Partition" not in d]


def _wait_for_state(status_dir: Path, state: str, idle: bool = False) -> None:
    deadline = time.monotonic() + 30
    while True:
        documents, _ = read_status_documents(status_dir)
        if documents and documents[0].state == state:
            activity = set(documents[0].partitions.values())
            reported = documents[0].desired_pollers is not None  # a report with lag went by
            if reported and (not idle or activity == {POLLING}):
                return
        assert time.monotonic() < deadline, f"no status document says {state}: {documents}"
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status_args(mapping: Path, status_dir: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    status_command.add_arguments(parser)
    return parser.parse_args(["--mapping", str(mapping), "--status-dir", str(status_dir), "--once"])


def test_counts_are_exact_on_a_known_stream_and_reach_every_publisher(
    kafka: ClusterInfo, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    pytest.importorskip("prometheus_client")
    topic = topic_factory(partitions=2)
    for partition in range(2):
        values = [json.dumps({"n": i, "keep": i % 4 != 0}).encode() for i in range(20)]
        produce(kafka.plaintext_config(), topic, values, partition=partition)

    def fail_once(_event: dict[str, Any], number: int) -> None:
        if number == 0:
            raise RuntimeError("first call fails")

    handler = RecordingHandler(behaviour=fail_once)
    sink = EmfSink()
    port = _free_port()
    reporting = ReportingOptions(
        interval_s=0.2,
        status_interval_s=0.1,
        emf_stream=sink,
        status_dir=tmp_path,
        prometheus_port=port,
    )
    doc = mapping_doc(
        kafka,
        topic,
        BatchSize=5,
        MaximumBatchingWindowInSeconds=0,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": {"keep": [True]}})}]},
    )
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(doc))
    options = PollerOptions(retry_backoff=FAST_RETRY, reporting=reporting)
    with running_poller(kafka, doc, handler, options) as running:
        wait_committed(kafka, f"group-{topic}", topic, [20, 20])
        sink.wait_for(lambda docs: any(d.get("OffsetLag") == 0 for d in docs))
        _wait_for_state(tmp_path, "Enabled", idle=True)  # no batch left with the function
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        out = io.StringIO()
        assert status_command.run(_status_args(mapping_file, tmp_path), out) == 0
    counts = running.poller.counters.snapshot()
    first_batch = handler.calls[0].count()
    assert counts == {
        Metric.POLLED: 40,
        Metric.FILTERED_OUT: 10,
        Metric.INVOKED: 30 + first_batch,  # the failed batch was sent twice
        Metric.FAILED_INVOKE: first_batch,
        Metric.DROPPED: 0,
        Metric.ON_FAILURE_DELIVERED: 0,
        Metric.COMMITTED: 40,
        Metric.POLLING_ERROR: 0,
        Metric.INVOKE_ERROR: 1,
        Metric.COMMIT_ERROR: 0,
        # Queue mode's counts stay at zero in Stream mode.
        Metric.ACKNOWLEDGED: 0,
        Metric.RELEASED: 0,
        Metric.REJECTED: 0,
        Metric.REDELIVERED: 0,
    }
    assert sum(c.count() for c in handler.calls) == counts[Metric.INVOKED]

    # EMF: the interval counts add up to the totals, the last lag is zero.
    documents = _mapping_documents(sink.documents())
    for metric, total in counts.items():
        if metric.queue_only:  # EMF publishes them for Queue mappings only
            assert all(metric.value not in d for d in documents), metric
            continue
        assert sum(d[metric.value] for d in documents) == total, metric
    assert documents[-1]["OffsetLag"] == 0
    assert documents[-1]["DesiredPollerCount"] == 1

    # Prometheus: live totals and the state.
    text = scraped.decode()
    assert "kafka_esm_committed_event_count_total" in text
    assert 'state="Enabled"' in text

    # kafka-esm status: offsets from Kafka, state from the poller's status document.
    screen = out.getvalue()
    assert "State Enabled (User action)  LastProcessingResult OK" in screen
    rows = [line.split() for line in screen.splitlines() if line[:1].isdigit()]
    assert [row[:4] for row in rows] == [["0", "20", "20", "0"], ["1", "20", "20", "0"]]
    assert all(row[5] == "caught-up" for row in rows), screen
    assert "DesiredPollerCount 1" in screen


def test_offset_lag_is_end_minus_committed_per_partition_and_topic(
    kafka: ClusterInfo, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=3)
    for partition, count in enumerate((4, 7, 9)):
        produce(kafka.plaintext_config(), topic, [b"x"] * count, partition=partition)
    release = threading.Event()
    handler = RecordingHandler(behaviour=lambda _e, _n: release.wait(30))
    sink = EmfSink()
    reporting = ReportingOptions(
        interval_s=0.2, status_interval_s=0.1, emf_stream=sink, status_dir=tmp_path
    )
    doc = mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)
    options = PollerOptions(retry_backoff=FAST_RETRY, reporting=reporting)
    with running_poller(kafka, doc, handler, options) as running:
        running.wait_assigned(3)
        # Nothing is committed while the function holds every batch.
        sink.wait_for(lambda docs: any(d.get("OffsetLag") == 20 for d in docs))
        lags = {d["Partition"]: d["OffsetLag"] for d in sink.documents() if "Partition" in d}
        assert lags == {"0": 4, "1": 7, "2": 9}
        topic_doc = next(d for d in sink.documents() if d.get("OffsetLag") == 20)
        assert (topic_doc["MaxOffsetLag"], topic_doc["SumOffsetLag"]) == (9, 20)
        release.set()
        sink.wait_for(lambda docs: docs[-1].get("OffsetLag") == 0 and "Partition" in docs[-1])


def test_run_prints_emf_on_stdout_and_status_reads_its_state(
    kafka: ClusterInfo, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    topic = topic_factory()
    produce(kafka.plaintext_config(), topic, [b"r%d" % i for i in range(10)])
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(mapping_doc(kafka, topic, MaximumBatchingWindowInSeconds=0)))
    base = [sys.executable, "-m", "runtime.cli.main"]
    status_dir = str(tmp_path / "status")
    poller = subprocess.Popen(
        [
            *base,
            "run",
            "--mapping",
            str(mapping),
            "--handler",
            "tests.unit.sample_handlers:returns_none",
            "--metrics-interval",
            "0.3",
            "--status-dir",
            status_dir,
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_committed(kafka, f"group-{topic}", topic, [10])
        _wait_for_state(Path(status_dir), "Enabled")
        status = subprocess.run(
            [*base, "status", "--mapping", str(mapping), "--status-dir", status_dir, "--once"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        poller.send_signal(signal.SIGTERM)
        stdout, stderr = poller.communicate(timeout=60)
    assert poller.returncode == 0, stderr[-2000:]
    assert status.returncode == 0, status.stderr
    assert "State Enabled" in status.stdout, status.stdout
    assert any(line.split()[:4] == ["0", "10", "10", "0"] for line in status.stdout.splitlines())
    documents = _mapping_documents([json.loads(line) for line in stdout.splitlines()])
    assert sum(d["PolledEventCount"] for d in documents) == 10
    assert sum(d["CommittedEventCount"] for d in documents) == 10
    assert documents[-1]["OffsetLag"] == 0
    # After a clean stop the status document says so.
    final = json.loads(next(Path(status_dir).glob("*.json")).read_text())
    assert (final["State"], final["StateTransitionReason"]) == ("Disabled", "User action")
