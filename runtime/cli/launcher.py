"""Build and run a poller for a mapping: what ``kafka-esm run`` and the demo share."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

from runtime.definition.model import EventSourceMapping
from runtime.destinations.writers import destination_for
from runtime.invokers import MAX_TIMEOUT_S, Invoker, invoker_from_config
from runtime.pipeline.poller import Poller, PollerOptions
from runtime.security.plan import SecurityOptions
from runtime.security.secrets import SecretReader
from runtime.security.session import SecuritySession

log = logging.getLogger("runtime.cli.launcher")


@dataclass(frozen=True)
class InvokeTarget:
    """Where batches go: a local handler, an Invoke-compatible endpoint, or AWS Lambda."""

    handler: str | None = None
    endpoint_url: str | None = None
    endpoint_kind: str = "lambda"
    qualifier: str | None = None
    region: str | None = None
    timeout_s: float = MAX_TIMEOUT_S

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
) -> Poller:
    """A ready poller; ``consumer_overrides`` add to ``options.poller.consumer_overrides``.

    SourceAccessConfigurations secure the consumer: a setup that cannot work raises
    SecurityConfigError (a ValueError) here; secrets are read when the poller starts.
    """
    poller_options = options.poller
    if consumer_overrides:
        merged = {**poller_options.consumer_overrides, **consumer_overrides}
        poller_options = replace(poller_options, consumer_overrides=merged)
    security = SecuritySession(
        mapping, poller_options.consumer_overrides, options.security, secret_reader
    )
    region = options.target.region
    return Poller(
        mapping,
        options.target.invoker(mapping),
        poller_options,
        source_factory=security.source_factory,
        # The kafka:// destination and the lag reader reach the cluster like the consumer:
        # with the mapping's security, resolved once the source has read the secrets.
        destination_factory=lambda settings: destination_for(
            mapping, consumer_overrides=settings, region=region
        ),
        client_settings=security.client_settings,
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
