"""Publishing what the poller counts: the reporter thread and its sinks.

Every ``interval_s`` (a minute by default, CloudWatch's resolution) the reporter reads
the group's offset lag from the broker, derives ``DesiredPollerCount`` from it and the
poller's workload (:mod:`runtime.observability.scaling`), and hands one
:class:`MetricsReport` to each publisher:

* :class:`EmfPublisher` writes CloudWatch Embedded Metric Format lines on stdout.
  Fargate's awslogs driver ships stdout to CloudWatch Logs, which extracts the
  metrics with no PutMetricData call. Written by hand rather than with
  aws-embedded-metrics: that library flushes through asyncio, probes the EC2
  metadata endpoint to pick a sink (outside Lambda its default sink is a CloudWatch
  agent socket, not stdout) and adds dimensions of its own (LogGroup, ServiceName,
  ServiceType); the format itself is a short JSON specification.
* :class:`PrometheusPublisher` serves ``/metrics`` for local use. prometheus-client
  is an optional extra (``metrics``) imported only when the endpoint is asked for.

Every few seconds, more often than metrics, the reporter also writes the poller's
status document for ``kafka-esm status``. Lag is read on the reporter's own thread
with its own client: a slow broker answer never stalls the poll loop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TextIO

from runtime.definition.model import EventSourceMapping
from runtime.definition.vocabulary import EsmMetric
from runtime.observability.counters import Counters, Metric
from runtime.observability.lag import LagReader, LagReadError, LagSnapshot
from runtime.observability.scaling import (
    PollerBounds,
    PollerCapacity,
    ScalingModel,
    WorkloadMeter,
)
from runtime.observability.state import MappingStatus, StatusSnapshot
from runtime.observability.status import (
    INVOKING,
    POLLING,
    StatusDocument,
    default_status_dir,
    status_path,
    write_status_document,
)
from runtime.records import PartitionId

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger("runtime.observability.counters")

DEFAULT_NAMESPACE: Final = "KafkaEsm"
OFFSET_LAG: Final = "OffsetLag"
MAX_OFFSET_LAG: Final = "MaxOffsetLag"
SUM_OFFSET_LAG: Final = "SumOffsetLag"
DESIRED_POLLER_COUNT: Final = "DesiredPollerCount"
MAPPING_DIMENSION: Final = "EventSourceMappingUUID"
_COUNT: Final = "Count"
_MAX_NAMESPACE_LENGTH: Final = 255


class ReportingSetupError(ValueError):
    """A publisher cannot start (a missing extra, a port in use); names the option."""


@dataclass(frozen=True)
class ReportingOptions:
    """How and how often a poller publishes its metrics and status."""

    interval_s: float = 60.0
    """Seconds between lag readings, metric publications and DesiredPollerCount."""
    capacity: PollerCapacity = field(default_factory=PollerCapacity)
    """What one poller carries: the capacity model behind DesiredPollerCount."""
    emf: bool = True
    """Write Embedded Metric Format lines to ``emf_stream``."""
    emf_namespace: str = DEFAULT_NAMESPACE
    emf_stream: TextIO | None = None
    """Where EMF lines go; None means stdout at the time of writing."""
    prometheus_port: int | None = None
    """Serve Prometheus metrics on this port (0 picks a free one); None serves nothing."""
    prometheus_addr: str = "127.0.0.1"
    status_dir: Path | None = None
    """Where the status document goes; None means :func:`default_status_dir`."""
    status_interval_s: float = 2.0
    lag_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("interval_s", "status_interval_s", "lag_timeout_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} {value!r} must be more than 0 seconds")
        namespace = self.emf_namespace
        if not 1 <= len(namespace) <= _MAX_NAMESPACE_LENGTH or namespace.startswith("AWS/"):
            raise ValueError(
                f"emf_namespace {namespace!r} must be 1-{_MAX_NAMESPACE_LENGTH} characters"
                " and not start with 'AWS/' (reserved for AWS services)"
            )
        port = self.prometheus_port
        if port is not None and not 0 <= port <= 65535:
            raise ValueError(f"prometheus_port {port} must be within 0-65535")


@dataclass(frozen=True)
class PartitionActivity:
    """What the poll loop is doing: partitions it owns and those with a batch in flight."""

    assigned: frozenset[PartitionId] = frozenset()
    in_flight: frozenset[PartitionId] = frozenset()


@dataclass(frozen=True)
class MetricsReport:
    """One interval's worth of metrics, as every publisher receives it."""

    timestamp_ms: int
    mapping: EventSourceMapping
    totals: Mapping[Metric, int]
    deltas: Mapping[Metric, int]
    """Counts during this interval: what CloudWatch sums per minute."""
    lag: LagSnapshot | None
    """None when the broker did not answer in time."""
    desired_pollers: int | None
    status: StatusSnapshot
    activity: PartitionActivity


class Publisher(Protocol):
    """A sink for reports."""

    def publish(self, report: MetricsReport) -> None:
        """Take one report (called on the reporter's thread)."""

    def close(self) -> None:
        """Release what the sink holds; called once, after the last report."""


def enabled_groups(mapping: EventSourceMapping) -> frozenset[EsmMetric]:
    """MetricsConfig's groups; all of them when the mapping names none.

    AWS publishes no event or error counts without MetricsConfig; this runtime's
    default is to publish everything, and a MetricsConfig narrows it as in AWS.
    OffsetLag and DesiredPollerCount are always published.
    """
    return frozenset(mapping.metrics) if mapping.metrics else frozenset(EsmMetric)


# ---------------------------------------------------------------------------------- EMF


def emf_documents(
    report: MetricsReport, namespace: str = DEFAULT_NAMESPACE
) -> list[dict[str, Any]]:
    """The EMF documents of a report: the mapping's, then one per owned partition."""
    main = _mapping_document(report, namespace)
    return ([main] if main else []) + _partition_documents(report, namespace)


def _mapping_document(report: MetricsReport, namespace: str) -> dict[str, Any] | None:
    """Interval counts and DesiredPollerCount by mapping; OffsetLag by mapping and topic."""
    groups = enabled_groups(report.mapping)
    mapping = report.mapping
    root: dict[str, Any] = {
        MAPPING_DIMENSION: mapping.uuid,
        "FunctionName": mapping.function_name,
        "Topic": mapping.topic,
        "ConsumerGroupId": mapping.consumer_group_id,
    }
    counts = [m for m in Metric if m.group in groups and (mapping.is_queue or not m.queue_only)]
    root.update({m.value: report.deltas.get(m, 0) for m in counts})
    names = [m.value for m in counts]
    if report.desired_pollers is not None:
        root[DESIRED_POLLER_COUNT] = report.desired_pollers
        names.append(DESIRED_POLLER_COUNT)
    directives = [_directive(namespace, [MAPPING_DIMENSION], names)] if names else []
    if report.lag is not None:
        root[OFFSET_LAG] = report.lag.total
        lag_names = [OFFSET_LAG]
        if EsmMetric.KAFKA_METRICS in groups:
            root[MAX_OFFSET_LAG] = report.lag.maximum
            root[SUM_OFFSET_LAG] = report.lag.total
            lag_names += [MAX_OFFSET_LAG, SUM_OFFSET_LAG]
        directives.append(_directive(namespace, [MAPPING_DIMENSION, "Topic"], lag_names))
    return _document(report.timestamp_ms, directives, root) if directives else None


def _partition_documents(report: MetricsReport, namespace: str) -> list[dict[str, Any]]:
    """OffsetLag of each partition this poller owns (its owner alone publishes it)."""
    lag = report.lag
    if lag is None:
        return []
    owned = {p for t, p in report.activity.assigned if t == lag.topic}
    directive = _directive(namespace, [MAPPING_DIMENSION, "Topic", "Partition"], [OFFSET_LAG])
    return [
        _document(
            report.timestamp_ms,
            [directive],
            {
                MAPPING_DIMENSION: report.mapping.uuid,
                "Topic": lag.topic,
                "Partition": str(partition.partition),
                OFFSET_LAG: partition.lag,
            },
        )
        for partition in lag.partitions
        if partition.partition in owned
    ]


def _directive(namespace: str, dimensions: list[str], names: Iterable[str]) -> dict[str, Any]:
    return {
        "Namespace": namespace,
        "Dimensions": [dimensions],
        "Metrics": [{"Name": name, "Unit": _COUNT} for name in names],
    }


def _document(
    timestamp_ms: int, directives: list[dict[str, Any]], values: dict[str, Any]
) -> dict[str, Any]:
    return {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}, **values}


class EmfPublisher:
    """Writes each report as EMF JSON lines (one document per line, flushed)."""

    def __init__(self, stream: TextIO | None = None, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._stream = stream
        self._namespace = namespace

    def publish(self, report: MetricsReport) -> None:
        """Write the report's documents."""
        stream = self._stream or sys.stdout
        for document in emf_documents(report, self._namespace):
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller."""


# --------------------------------------------------------------------------- Prometheus


def prometheus_name(metric: str) -> str:
    """``PolledEventCount`` -> ``kafka_esm_polled_event_count``."""
    return "kafka_esm_" + re.sub(r"(?<!^)(?=[A-Z])", "_", metric).lower()


class PrometheusPublisher:
    """Serves the counters (live), lag and DesiredPollerCount (last report) and the state."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        counters: Counters,
        status: MappingStatus,
        port: int,
        addr: str = "127.0.0.1",
    ) -> None:
        try:
            from prometheus_client import (  # noqa: PLC0415 - optional extra
                CollectorRegistry,
                start_http_server,
            )
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ReportingSetupError(
                f"prometheus_port {port}: the Prometheus endpoint needs prometheus-client"
                " (pip install 'constructs-kafka[metrics]')"
            ) from None
        self._mapping = mapping
        self._counters = counters
        self._status = status
        self._latest: MetricsReport | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_collector(self))
        try:
            self._server, _thread = start_http_server(port, addr, registry=self.registry)
        except OSError as exc:
            raise ReportingSetupError(
                f"prometheus_port {port} on {addr!r} cannot be served: {exc.strerror}"
            ) from None

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_port)

    def publish(self, report: MetricsReport) -> None:
        """Keep the report: scrapes read lag and DesiredPollerCount from it."""
        self._latest = report

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def families(self) -> list[Any]:
        """The metric families of one scrape."""
        from prometheus_client.core import (  # noqa: PLC0415 - optional extra
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        uuid = self._mapping.uuid
        families: list[Any] = []
        for metric, value in self._counters.snapshot().items():
            counter = CounterMetricFamily(
                prometheus_name(metric.value), f"AWS's {metric.value}", labels=["mapping_uuid"]
            )
            counter.add_metric([uuid], value)
            families.append(counter)
        status = self._status.snapshot()
        state = GaugeMetricFamily(
            "kafka_esm_mapping_state",
            "1 for the mapping's current State, StateTransitionReason, LastProcessingResult",
            labels=["mapping_uuid", "state", "state_transition_reason", "last_processing_result"],
        )
        state.add_metric(
            [
                uuid,
                status.state.value,
                status.state_transition_reason.value,
                status.last_processing_result,
            ],
            1,
        )
        families.append(state)
        report = self._latest
        if report is not None and report.lag is not None:
            families.extend(_lag_families(report, GaugeMetricFamily))
        return families


def _lag_families(report: MetricsReport, gauge: Any) -> list[Any]:
    assert report.lag is not None
    lag, uuid = report.lag, report.mapping.uuid
    topic_lag = gauge(
        prometheus_name("TopicOffsetLag"),
        "OffsetLag of the topic",
        labels=["mapping_uuid", "topic"],
    )
    topic_lag.add_metric([uuid, lag.topic], lag.total)
    max_lag = gauge(
        prometheus_name(MAX_OFFSET_LAG), "largest partition lag", labels=["mapping_uuid", "topic"]
    )
    max_lag.add_metric([uuid, lag.topic], lag.maximum)
    partition_lag = gauge(
        prometheus_name(OFFSET_LAG),
        "OffsetLag of each partition this poller owns",
        labels=["mapping_uuid", "topic", "partition"],
    )
    owned = {p for t, p in report.activity.assigned if t == lag.topic}
    for partition in lag.partitions:
        if partition.partition in owned:
            partition_lag.add_metric([uuid, lag.topic, str(partition.partition)], partition.lag)
    families = [topic_lag, max_lag, partition_lag]
    if report.desired_pollers is not None:
        desired = gauge(
            prometheus_name(DESIRED_POLLER_COUNT),
            "pollers the lag calls for",
            labels=["mapping_uuid"],
        )
        desired.add_metric([uuid], report.desired_pollers)
        families.append(desired)
    return families


def _collector(publisher: PrometheusPublisher) -> Collector:
    from prometheus_client.registry import Collector  # noqa: PLC0415 - optional extra

    class _Families(Collector):
        def collect(self) -> Iterable[Any]:
            return publisher.families()

    return _Families()


# ----------------------------------------------------------------------------- reporter


class LagSource(Protocol):
    """Where the reporter reads lag (a :class:`~runtime.observability.lag.LagReader`)."""

    def read(self) -> LagSnapshot:
        """Lag of every partition of the topic."""
        ...

    def close(self) -> None:
        """Release the client."""
        ...


class Reporter:
    """Publishes reports every interval and the status document every few seconds."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        options: ReportingOptions,
        counters: Counters,
        status: MappingStatus,
        *,
        lag_source: LagSource | None,
        publishers: Sequence[Publisher] = (),
        workload: WorkloadMeter | None = None,
    ) -> None:
        self._mapping = mapping
        self._workload = workload or WorkloadMeter()
        self._scaling = ScalingModel(options.capacity, PollerBounds.of(mapping))
        self._options = options
        self._counters = counters
        self._status = status
        self._lag_source = lag_source
        self._publishers = list(publishers)
        self._previous = dict.fromkeys(Metric, 0)
        self._activity = PartitionActivity()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_report = 0.0
        self._latest: MetricsReport | None = None
        self._desired: int | None = None
        """The last DesiredPollerCount: a report whose lag read failed has none."""
        directory = options.status_dir or default_status_dir(mapping)
        self._host, self._pid = socket.gethostname(), os.getpid()
        self.status_path = status_path(directory, self._host, self._pid)

    @classmethod
    def for_poller(
        cls,
        mapping: EventSourceMapping,
        options: ReportingOptions,
        counters: Counters,
        status: MappingStatus,
        consumer_overrides: Mapping[str, Any] | None = None,
        *,
        workload: WorkloadMeter | None = None,
    ) -> Reporter:
        """The reporter ``options`` describe, with a lag reader on the mapping's cluster."""
        publishers: list[Publisher] = []
        if options.emf:
            publishers.append(EmfPublisher(options.emf_stream, options.emf_namespace))
        if options.prometheus_port is not None:
            publishers.append(
                PrometheusPublisher(
                    mapping, counters, status, options.prometheus_port, options.prometheus_addr
                )
            )
        reader = LagReader(
            mapping,
            consumer_overrides,
            timeout_s=options.lag_timeout_s,
            positions=workload.front if workload is not None and mapping.is_queue else None,
        )
        return cls(
            mapping,
            options,
            counters,
            status,
            lag_source=reader,
            publishers=publishers,
            workload=workload,
        )

    @property
    def latest(self) -> MetricsReport | None:
        """The last report published."""
        return self._latest

    @property
    def publishers(self) -> tuple[Publisher, ...]:
        """The sinks, in publishing order."""
        return tuple(self._publishers)

    # -- poll thread -----------------------------------------------------------------------
    def observe(self, assigned: Iterable[PartitionId], in_flight: Iterable[PartitionId]) -> None:
        """Record what the poll loop does now; cheap, called every turn of the loop."""
        activity = PartitionActivity(frozenset(assigned), frozenset(in_flight))
        with self._lock:
            self._activity = activity

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Report on a background thread until :meth:`stop`."""
        self._next_report = time.monotonic() + self._options.interval_s
        self._thread = threading.Thread(target=self._loop, daemon=True, name="metrics-reporter")
        self._thread.start()

    def stop(self) -> None:
        """Publish a last report (so that no count is lost) and release the sinks."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        _safely(self.report, "publishing the last metrics")
        _safely(self.write_status, "writing the last status document")
        for publisher in self._publishers:
            _safely(publisher.close, "closing a metrics publisher")
        if self._lag_source is not None:
            self._lag_source.close()

    def _loop(self) -> None:
        while True:
            _safely(self.write_status, "writing the status document")
            if time.monotonic() >= self._next_report:
                _safely(self.report, "publishing metrics")
                self._next_report = time.monotonic() + self._options.interval_s
            if self._stopping.wait(self._options.status_interval_s):
                return

    # -- one report ------------------------------------------------------------------------
    def report(self) -> MetricsReport:
        """Read lag, compute DesiredPollerCount, publish to every sink; returns the report."""
        totals = self._counters.snapshot()
        deltas = {m: totals[m] - self._previous[m] for m in Metric}
        self._previous = totals
        lag = self._read_lag()
        desired = self._desired_pollers(lag) if lag is not None else None
        self._desired = self._desired if desired is None else desired
        with self._lock:
            activity = self._activity
        report = MetricsReport(
            int(time.time() * 1000),
            self._mapping,
            totals,
            deltas,
            lag,
            desired,
            self._status.snapshot(),
            activity,
        )
        self._latest = report
        for publisher in self._publishers:
            _safely(partial(publisher.publish, report), "publishing metrics")
        return report

    def write_status(self) -> None:
        """Replace this process's status document."""
        with self._lock:
            activity = self._activity
        status = self._status.snapshot()
        write_status_document(
            self.status_path,
            StatusDocument(
                uuid=self._mapping.uuid,
                function_name=self._mapping.function_name,
                topic=self._mapping.topic,
                group=self._mapping.consumer_group_id,
                host=self._host,
                pid=self._pid,
                updated_at=time.time(),
                state=status.state.value,
                state_transition_reason=status.state_transition_reason.value,
                last_processing_result=status.last_processing_result,
                status_interval_s=self._options.status_interval_s,
                partitions={
                    p: INVOKING if (t, p) in activity.in_flight else POLLING
                    for t, p in activity.assigned
                    if t == self._mapping.topic
                },
                counters={m.value: v for m, v in self._counters.snapshot().items()},
                desired_pollers=self._desired,
            ),
        )

    def _desired_pollers(self, lag: LagSnapshot) -> int:
        """The model's count for this interval; a change is logged with its reasons."""
        demand = self._scaling.update(lag, self._workload.snapshot())
        if demand.desired != self._desired:
            log.info(
                "DesiredPollerCount %s: %.1f records/s to sustain (ingress %s, lag %d),"
                " %.2f pollers by throughput, %.2f by concurrency%s",
                demand.desired,
                demand.needed_per_s,
                "unknown" if demand.ingress_per_s is None else f"{demand.ingress_per_s:.1f}/s",
                lag.total,
                demand.by_throughput,
                demand.by_concurrency,
                ", function throttled" if demand.throttled else "",
            )
        return demand.desired

    def _read_lag(self) -> LagSnapshot | None:
        if self._lag_source is None:
            return None
        try:
            return self._lag_source.read()
        except LagReadError as exc:
            log.warning("offset lag not read: %s", exc)
            return None


def _safely(action: Callable[[], object], what: str) -> None:
    """A failing sink must not kill the reporter, nor the poller that stops it."""
    try:
        action()
    except Exception:
        log.exception("failed %s", what)
