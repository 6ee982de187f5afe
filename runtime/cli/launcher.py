"""Build and run a poller for a mapping: the one wiring point of the runtime.

``kafka-esm run``, the demo, the benchmarks and the tests all build pollers here.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import TYPE_CHECKING, Any

from runtime.client_settings import consumer_class
from runtime.definition.filters import compile_filters
from runtime.definition.model import EventSourceMapping
from runtime.destinations.writers import FailureDestination, destination_for
from runtime.invokers import MAX_TIMEOUT_S, Invoker, invoker_from_config
from runtime.observability.counters import Counters
from runtime.observability.health import Heartbeat, health_file
from runtime.observability.publishers import Reporter, ReportingOptions
from runtime.observability.scaling import WorkloadMeter
from runtime.observability.state import MappingStatus
from runtime.pipeline.acknowledgements import AcknowledgementLedger
from runtime.pipeline.batcher import Batcher
from runtime.pipeline.failures import FailurePolicy
from runtime.pipeline.offsets import Ledger, OffsetLedger
from runtime.pipeline.poller import Poller, PollerOptions, PollerParts
from runtime.pipeline.processor import BatchProcessor, Redelivery
from runtime.pipeline.share_source import ShareSource
from runtime.pipeline.source import ClientConnection, ConsumerGroupSource, PlainConnection, Source
from runtime.security.plan import SecurityOptions
from runtime.security.secrets import SecretReader
from runtime.security.session import SecuritySession

if TYPE_CHECKING:
    from runtime.definition.model import SchemaRegistryConfig
    from runtime.registry.schemas import SchemaSource

log = logging.getLogger("runtime.cli.launcher")

MAX_SHARE_FETCH = 10_000
"""The most records one share fetch asks for (each is locked from the moment it arrives)."""


@dataclass(frozen=True)
class InvokeTarget:
    """Where batches go: a local handler, an Invoke-compatible endpoint, or AWS Lambda."""

    handler: str | None = None
    endpoint_url: str | None = None
    endpoint_kind: str = "lambda"
    qualifier: str | None = None
    region: str | None = None
    timeout_s: float = MAX_TIMEOUT_S
    reload: bool = False
    """Re-import the local handler when its files change (``--reload``)."""

    def invoker(self, mapping: EventSourceMapping) -> Invoker:
        """The invoker for the mapping's FunctionName."""
        return invoker_from_config(
            mapping.function_name,
            handler=self.handler,
            endpoint_url=self.endpoint_url,
            endpoint_kind=self.endpoint_kind,
            qualifier=self.qualifier,
            region=self.region,
            timeout_s=self.timeout_s,
            reload=self.reload,
        )


@dataclass(frozen=True)
class LaunchOptions:
    """Everything besides the mapping that a run needs."""

    target: InvokeTarget = field(default_factory=InvokeTarget)
    poller: PollerOptions = field(default_factory=PollerOptions)
    security: SecurityOptions = field(default_factory=SecurityOptions.from_env)


def build_poller(
    mapping: EventSourceMapping,
    options: LaunchOptions,
    consumer_overrides: Mapping[str, Any] | None = None,
    *,
    secret_reader: SecretReader | None = None,
    invoker: Invoker | None = None,
) -> Poller:
    """A ready poller; ``consumer_overrides`` add to ``options.poller.consumer_overrides``.

    ``invoker`` replaces ``options.target``'s (the pytest plugin passes a Python callable).

    SourceAccessConfigurations secure the consumer: a setup that cannot work raises
    SecurityConfigError (a ValueError) here; secrets are read when the poller starts.
    An on-failure destination that AWS would refuse raises ValueError here too.
    """
    poller_options = options.poller
    if consumer_overrides:
        merged = {**poller_options.consumer_overrides, **consumer_overrides}
        poller_options = replace(poller_options, consumer_overrides=merged)
    security = SecuritySession(
        mapping,
        poller_options.consumer_overrides,
        options.security,
        secret_reader,
    )
    # The kafka:// destination and the lag reader reach the cluster like the consumer:
    # with the mapping's security, resolved once the source has read the secrets.
    destination = destination_for(
        mapping, consumer_overrides=security.client_settings, region=options.target.region
    )
    schemas = None
    if mapping.schema_registry is not None:
        reader = secret_reader or SecretReader(
            endpoint_url=options.security.secrets_endpoint_url,
            allow_pbes2=options.security.allow_pbes2,
        )
        schemas = _schema_source(mapping.schema_registry, reader)
    return assemble_poller(
        mapping,
        invoker or options.target.invoker(mapping),
        poller_options,
        connection=security,
        destination=destination,
        client_settings=security.client_settings,
        function_timeout_s=options.target.timeout_s,
        schemas=schemas,
    )


def assemble_poller(
    mapping: EventSourceMapping,
    invoker: Invoker,
    options: PollerOptions | None = None,
    *,
    connection: ClientConnection | None = None,
    destination: FailureDestination | None = None,
    client_settings: Callable[[], Mapping[str, Any]] | None = None,
    counters: Counters | None = None,
    status: MappingStatus | None = None,
    function_timeout_s: float = MAX_TIMEOUT_S,
    schemas: SchemaSource | None = None,
) -> Poller:
    """The one place that builds a poller's parts and wires them together.

    ``connection`` reaches the cluster (default: ``options.consumer_overrides`` as they
    are); ``client_settings`` gives the resolved settings the lag reader uses;
    ``function_timeout_s`` is checked against a share group's record lock (Queue mode);
    ``schemas`` is the mapping's schema registry (default: the one its
    SchemaRegistryConfig names, secrets read from Secrets Manager or ``file://``).
    """
    options = options or PollerOptions()
    counters = counters or Counters()
    status = status or MappingStatus()
    stopping = threading.Event()
    connection = connection or PlainConnection(options.consumer_overrides, consumer_class(mapping))
    settings = client_settings or (lambda: options.consumer_overrides)
    workload = WorkloadMeter()
    source: Source
    ledger: Ledger
    redelivery: Redelivery | None = None
    if mapping.is_queue:
        source = redelivery = ShareSource(
            mapping,
            counters,
            connection,
            status=status,
            workload=workload,
            max_poll_records=_share_fetch_size(mapping, options),
            function_timeout_s=function_timeout_s,
        )
        ledger = AcknowledgementLedger(counters, redelivery)
    else:
        source = ConsumerGroupSource(
            mapping, counters, connection, status=status, workload=workload
        )
        ledger = OffsetLedger(counters, source)
    if mapping.schema_registry is not None:
        # Records are decoded before the filter and the batcher see them.
        from runtime.pipeline.decoding import DecodingSource  # noqa: PLC0415 - optional extra
        from runtime.registry.clients import decoder_for  # noqa: PLC0415

        registry = schemas or _schema_source(mapping.schema_registry, SecretReader())
        source = DecodingSource(
            source,
            decoder_for(mapping.schema_registry, registry),
            counters,
            status,
            backoff=options.retry_backoff,
        )
    parts = PollerParts(
        source=source,
        ledger=ledger,
        batcher=Batcher(
            mapping.bootstrap_servers,
            mapping.batch_size,
            mapping.batching_window_seconds,
            busy=ledger.busy,
        ),
        processor=BatchProcessor(
            invoker,
            mapping.bootstrap_servers,
            counters,
            status,
            stopping,
            ledger=ledger,
            backoff=options.retry_backoff,
            policy=FailurePolicy.for_mapping(mapping),
            destination=destination,
            workload=workload,
            redelivery=redelivery,
        ),
        counters=counters,
        status=status,
        stopping=stopping,
        record_filter=compile_filters(mapping.filter_patterns) if mapping.filter_patterns else None,
        destination=destination,
        reporter=_reporter(
            mapping, options.reporting, counters, status, settings, workload=workload
        ),
        heartbeat=Heartbeat(health_file()),
    )
    return Poller(mapping, parts, options)


def _share_fetch_size(mapping: EventSourceMapping, options: PollerOptions) -> int:
    """Records one share fetch asks for: enough for ``max_concurrency`` batches at once,
    since the share consumer fetches again only once all of them are acknowledged."""
    return min(mapping.batch_size * options.max_concurrency, MAX_SHARE_FETCH)


def _schema_source(config: SchemaRegistryConfig, reader: SecretReader) -> SchemaSource:
    """The mapping's schema registry; the decoding libraries are an optional extra."""
    try:
        from runtime.registry.clients import schema_source  # noqa: PLC0415
    except ImportError as missing:
        raise ValueError(
            "SchemaRegistryConfig needs the schema-registry extra (fastavro, protobuf, "
            "jsonschema): pip install 'constructs-kafka[schema-registry]' "
            f"({missing.name} is not installed)"
        ) from None
    return schema_source(config, reader)


def _reporter(
    mapping: EventSourceMapping,
    reporting: ReportingOptions | None,
    counters: Counters,
    status: MappingStatus,
    settings: Callable[[], Mapping[str, Any]],
    *,
    workload: WorkloadMeter,
) -> Callable[[], Reporter] | None:
    if reporting is None:
        return None
    return lambda: Reporter.for_poller(
        mapping, reporting, counters, status, settings(), workload=workload
    )


def run_until_signalled(poller: Poller) -> None:
    """Run ``poller`` in this thread; SIGTERM and SIGINT stop it gracefully."""
    if threading.current_thread() is threading.main_thread():

        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s received: stopping", signal.Signals(signum).name)
            poller.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    poller.run()
