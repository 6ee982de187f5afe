"""EMF documents, the Prometheus view and the reporter that feeds them."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from runtime.definition.model import parse_mapping
from runtime.observability.counters import Counters, Metric
from runtime.observability.lag import LagReadError, LagSnapshot, PartitionLag
from runtime.observability.publishers import (
    DESIRED_POLLER_COUNT,
    EmfPublisher,
    MetricsReport,
    PartitionActivity,
    Reporter,
    ReportingOptions,
    emf_documents,
    prometheus_name,
)
from runtime.observability.scaling import PollerCapacity, WorkloadMeter
from runtime.observability.state import MappingStatus, State
from runtime.observability.status import INVOKING, POLLING, read_status_documents

_UNITS = {"Count", "None", "Seconds", "Milliseconds", "Bytes", "Count/Second"}


def _mapping(**fields: Any) -> Any:
    doc = {
        "FunctionName": "fn",
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9092"]}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g1"},
    }
    doc.update(fields)
    return parse_mapping(doc)


def _lag(*lags: int) -> LagSnapshot:
    partitions = tuple(PartitionLag(p, 100, 0, 100 + lag, lag) for p, lag in enumerate(lags))
    return LagSnapshot("orders", "g1", partitions, 1_700_000_000.0)


def _report(mapping: Any = None, lag: LagSnapshot | None = None, **fields: Any) -> MetricsReport:
    deltas = {m: i + 1 for i, m in enumerate(Metric)}
    values: dict[str, Any] = {
        "timestamp_ms": 1_700_000_000_123,
        "mapping": mapping or _mapping(),
        "totals": deltas,
        "deltas": deltas,
        "lag": lag,
        "desired_pollers": 2 if lag is not None else None,
        "status": MappingStatus().snapshot(),
        "activity": PartitionActivity(frozenset({("orders", 0), ("orders", 2)})),
    }
    values.update(fields)
    return MetricsReport(**values)


def _assert_valid_emf(document: dict[str, Any]) -> None:
    """The rules of AWS's "Specification: Embedded metric format" a document must follow."""
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert meta["CloudWatchMetrics"], "a document without a directive extracts nothing"
    for directive in meta["CloudWatchMetrics"]:
        assert 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(document[name], str), f"dimension {name} must be a string"
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert metric["Unit"] in _UNITS
            value = document[metric["Name"]]
            assert isinstance(value, int | float) and not isinstance(value, bool)


def _metric_names(document: dict[str, Any]) -> dict[tuple[str, ...], list[str]]:
    return {
        tuple(directive["Dimensions"][0]): [m["Name"] for m in directive["Metrics"]]
        for directive in document["_aws"]["CloudWatchMetrics"]
    }


def test_emf_publishes_interval_counts_lag_and_desired_pollers() -> None:
    documents = emf_documents(_report(lag=_lag(5, 0, 7)), namespace="Test")
    for document in documents:
        _assert_valid_emf(document)
    main = documents[0]
    assert main["_aws"]["Timestamp"] == 1_700_000_000_123
    assert main["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Test"
    assert _metric_names(main) == {
        ("EventSourceMappingUUID",): [m.value for m in Metric if not m.queue_only]
        + [DESIRED_POLLER_COUNT],
        ("EventSourceMappingUUID", "Topic"): ["OffsetLag", "MaxOffsetLag", "SumOffsetLag"],
    }
    assert main["PolledEventCount"] == 1
    assert main["CommitErrorCount"] == 10
    assert (main["OffsetLag"], main["MaxOffsetLag"], main["SumOffsetLag"]) == (12, 7, 12)
    assert main[DESIRED_POLLER_COUNT] == 2
    assert main["EventSourceMappingUUID"] == _mapping().uuid
    assert (main["FunctionName"], main["Topic"], main["ConsumerGroupId"]) == ("fn", "orders", "g1")


def test_emf_publishes_partition_lag_only_for_partitions_this_poller_owns() -> None:
    documents = emf_documents(_report(lag=_lag(5, 0, 7)))
    per_partition = [(d["Partition"], d["OffsetLag"]) for d in documents[1:]]
    assert per_partition == [("0", 5), ("2", 7)]
    assert _metric_names(documents[1]) == {
        ("EventSourceMappingUUID", "Topic", "Partition"): ["OffsetLag"]
    }


def test_emf_honours_the_mapping_metrics_config() -> None:
    mapping = _mapping(MetricsConfig={"Metrics": ["ErrorCount"]})
    main = emf_documents(_report(mapping, lag=_lag(3)))[0]
    assert _metric_names(main) == {
        ("EventSourceMappingUUID",): [
            "PollingErrorCount",
            "InvokeErrorCount",
            "CommitErrorCount",
            DESIRED_POLLER_COUNT,
        ],
        ("EventSourceMappingUUID", "Topic"): ["OffsetLag"],
    }
    assert "PolledEventCount" not in main
    assert "MaxOffsetLag" not in main


def test_emf_without_lag_still_publishes_the_counts() -> None:
    documents = emf_documents(_report(lag=None))
    assert len(documents) == 1
    _assert_valid_emf(documents[0])
    assert "OffsetLag" not in documents[0]
    assert DESIRED_POLLER_COUNT not in documents[0]


def test_emf_publisher_writes_one_json_document_per_line() -> None:
    stream = io.StringIO()
    EmfPublisher(stream).publish(_report(lag=_lag(1, 2, 3)))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"] for line in lines] == [
        "KafkaEsm"
    ] * 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("interval_s", 0, "interval_s 0 must be more than 0 seconds"),
        ("status_interval_s", -1, "status_interval_s -1 must be more than 0 seconds"),
        ("emf_namespace", "AWS/Lambda", "emf_namespace 'AWS/Lambda' must be 1-255"),
        ("emf_namespace", "", "emf_namespace '' must be 1-255"),
        ("prometheus_port", 70000, "prometheus_port 70000 must be within 0-65535"),
    ],
)
def test_reporting_options_name_the_bad_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReportingOptions(**{field: value})


def test_prometheus_names_follow_the_aws_names() -> None:
    assert prometheus_name("PolledEventCount") == "kafka_esm_polled_event_count"
    assert prometheus_name("OnFailureDestinationDeliveredEventCount") == (
        "kafka_esm_on_failure_destination_delivered_event_count"
    )


# ----------------------------------------------------------------------------- reporter


class FakeLag:
    def __init__(self, *answers: LagSnapshot | Exception) -> None:
        self.answers = list(answers)
        self.closed = False

    def read(self) -> LagSnapshot:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.reports: list[MetricsReport] = []
        self.closed = False
        self.fail = fail
        self.got_two = threading.Event()

    def publish(self, report: MetricsReport) -> None:
        self.reports.append(report)
        if len(self.reports) >= 2:
            self.got_two.set()
        if self.fail:
            raise RuntimeError("sink down")

    def close(self) -> None:
        self.closed = True


def _reporter(
    tmp_path: Path,
    lag: FakeLag,
    *publishers: Any,
    workload: WorkloadMeter | None = None,
    **options: Any,
) -> tuple[Reporter, Counters, MappingStatus]:
    counters, status = Counters(), MappingStatus()
    reporter = Reporter(
        _mapping(),
        ReportingOptions(status_dir=tmp_path, **options),
        counters,
        status,
        lag_source=lag,
        publishers=publishers,
        workload=workload,
    )
    return reporter, counters, status


def test_each_report_carries_the_counts_of_its_interval(tmp_path: Path) -> None:
    recorder, workload = Recorder(), WorkloadMeter()
    reporter, counters, _ = _reporter(
        tmp_path,
        FakeLag(_lag(25, 0)),
        recorder,
        workload=workload,
        capacity=PollerCapacity(concurrent_invocations=1, catch_up_s=1.0),
    )
    counters.add(Metric.POLLED, 7)
    first = reporter.report()
    counters.add(Metric.POLLED, 3)
    counters.add(Metric.COMMITTED, 10)
    workload.invoked(10, 1.0, ran=True, throttled=False)  # 0.1 s of function per record
    second = reporter.report()
    assert (first.deltas[Metric.POLLED], second.deltas[Metric.POLLED]) == (7, 3)
    assert second.deltas[Metric.COMMITTED] == 10
    assert second.totals[Metric.POLLED] == 10
    assert first.desired_pollers == 1  # no record invoked yet: its cost is unknown
    assert second.desired_pollers == 2  # 25 records/s x 0.1 s = 2.5 pollers, 2 partitions
    assert recorder.reports == [first, second]


def test_a_lag_read_failure_publishes_counts_without_lag(tmp_path: Path) -> None:
    recorder = Recorder()
    reporter, _, _ = _reporter(tmp_path, FakeLag(LagReadError("broker down")), recorder)
    report = reporter.report()
    assert report.lag is None
    assert report.desired_pollers is None
    assert recorder.reports == [report]


def test_a_failing_publisher_does_not_stop_the_others(tmp_path: Path) -> None:
    broken, healthy = Recorder(fail=True), Recorder()
    reporter, _, _ = _reporter(tmp_path, FakeLag(_lag(0)), broken, healthy)
    reporter.report()
    assert len(healthy.reports) == 1


def test_the_status_document_says_what_each_owned_partition_does(tmp_path: Path) -> None:
    reporter, _, status = _reporter(tmp_path, FakeLag(_lag(4, 0, 0)))
    status.transition(State.ENABLED)
    status.record_result("OK")
    reporter.observe([("orders", 0), ("orders", 1), ("other", 5)], [("orders", 1)])
    reporter.report()
    reporter.write_status()
    documents, problems = read_status_documents(tmp_path)
    assert problems == []
    [document] = documents
    assert document.partitions == {0: POLLING, 1: INVOKING}
    assert (document.state, document.last_processing_result) == ("Enabled", "OK")
    assert document.desired_pollers == 1
    assert document.counters["PolledEventCount"] == 0
    assert reporter.status_path.parent == tmp_path


def test_stop_publishes_a_last_report_and_closes_the_publishers(tmp_path: Path) -> None:
    recorder, lag = Recorder(), FakeLag(_lag(0))
    reporter, counters, _ = _reporter(tmp_path, lag, recorder)
    counters.add(Metric.INVOKED, 5)
    reporter.stop()
    assert [r.deltas[Metric.INVOKED] for r in recorder.reports] == [5]
    assert recorder.closed
    assert lag.closed
    assert reporter.status_path.exists()


def test_the_thread_reports_every_interval_until_stopped(tmp_path: Path) -> None:
    recorder = Recorder()
    reporter, _, _ = _reporter(
        tmp_path, FakeLag(_lag(1)), recorder, interval_s=0.01, status_interval_s=0.01
    )
    reporter.start()
    try:
        assert recorder.got_two.wait(10), "no second report"
    finally:
        reporter.stop()
    published = len(recorder.reports)
    assert published >= 3  # two from the thread, one last on stop
    assert reporter.status_path.exists()


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_serves_live_counts_state_and_the_last_lag(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import generate_latest

    from runtime.observability.publishers import PrometheusPublisher

    counters, status = Counters(), MappingStatus()
    mapping = _mapping()
    publisher = PrometheusPublisher(mapping, counters, status, port=0)
    try:
        counters.add(Metric.POLLED, 42)
        status.transition(State.ENABLED)
        publisher.publish(_report(mapping, lag=_lag(5, 0, 7)))
        text = generate_latest(publisher.registry).decode()
    finally:
        publisher.close()
    uuid = mapping.uuid
    assert f'kafka_esm_polled_event_count_total{{mapping_uuid="{uuid}"}} 42.0' in text
    assert f'kafka_esm_topic_offset_lag{{mapping_uuid="{uuid}",topic="orders"}} 12.0' in text
    assert f'kafka_esm_offset_lag{{mapping_uuid="{uuid}",partition="2",topic="orders"}} 7.0' in (
        text
    )
    assert 'partition="1"' not in text, "partition 1 is not owned by this poller"
    assert f'kafka_esm_desired_poller_count{{mapping_uuid="{uuid}"}} 2.0' in text
    assert 'state="Enabled"' in text
    assert 'last_processing_result="No records processed"' in text
