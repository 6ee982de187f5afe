"""The mapping's security, as the source's ClientConnection: secrets, sign-in, rotation.

Secrets are read when the source subscribes, not when the poller is built, so a secret
that cannot be used stops the mapping through the poller's own stop path, which records
AWS's StateTransitionReason and LastProcessingResult.

Before joining the group the source signs in with an AdminClient and asks the broker for
its configuration: that surfaces authentication errors at once and tests DescribeConfigs
on the cluster, an ACL AWS requires that a consumer never exercises.

Rotation: after an authentication failure every secret of the mapping is read again.
When only the SASL username or password changed, the running consumer takes the new
value (librdkafka's ``set_sasl_credentials``) and keeps polling; at start-up the sign-in
is simply retried. Certificates cannot be swapped in a running client: the mapping stops
as AWS's does, and its next start uses the re-read secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    ConfigResource,
    ResourceType,
)

from runtime.client_settings import consumer_class as client_class
from runtime.definition.model import EventSourceMapping
from runtime.definition.vocabulary import (
    CLUSTER_FAILED_TO_AUTHORIZE,
)
from runtime.observability.client_errors import RepeatFilter
from runtime.observability.state import MappingStopped, StateTransitionReason, problem
from runtime.security.plan import (
    AuthMethod,
    ClientSecurity,
    SecurityOptions,
    classify_client_error,
    client_creation_failure,
    plan_security,
    resolve_security,
    secret_failure,
)
from runtime.security.secrets import SecretError, SecretReader

log = logging.getLogger("runtime.security.plan")

__all__ = ["SecuritySession", "sign_in"]

_ATTEMPT_S = 0.5  # librdkafka reports a refused sign-in through error_cb, not the request
ROTATION_GRACE_S = 10.0
"""After new SASL credentials are applied, failures of older attempts are not final."""


class SecuritySession:
    """One mapping's security for one poller: settings, error classifier, rotation."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        overrides: Mapping[str, Any] | None = None,
        options: SecurityOptions | None = None,
        reader: SecretReader | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        consumer_class: Callable[[dict[str, Any]], Consumer] | None = None,
    ) -> None:
        """``consumer_class`` defaults to the mapping's own (a share consumer in Queue mode)."""
        self.options = options or SecurityOptions()
        self.plan = plan_security(mapping, overrides, self.options)  # SecurityConfigError
        self._mapping = mapping
        self._overrides = dict(overrides or {})
        self._reader = reader or SecretReader(
            endpoint_url=self.options.secrets_endpoint_url, allow_pbes2=self.options.allow_pbes2
        )
        self._clock = clock
        self._consumer_class = consumer_class or client_class(mapping)
        self._current: ClientSecurity | None = None
        self._consumer: Consumer | None = None
        self._grace_until = 0.0
        self._tls_changed = False

    # -- settings --------------------------------------------------------------------------
    def client_settings(self) -> dict[str, Any]:
        """Security settings (secrets read once) under the user's overrides.

        Raises MappingStopped when a secret cannot be read or breaks AWS's rules.
        """
        if self._current is None:
            self._current = self._resolve()
        return {**self._current.settings, **self._overrides}

    def _resolve(self) -> ClientSecurity:
        try:
            security = resolve_security(self.plan, self._reader)
        except SecretError as error:
            log.error("secret cannot be used: %s", error)
            raise secret_failure(error) from None
        for warning in security.warnings:
            log.warning("secret warning: %s", warning)
        return security

    def refresh(self) -> bool:
        """Read every secret again (rotation); True when a value changed."""
        for uri in self.plan.secret_uris:
            self._reader.invalidate(uri)
        try:
            fresh = resolve_security(self.plan, self._reader)
        except SecretError as error:
            log.warning("secret could not be read again: %s", error)
            return False
        changed = self._current is None or fresh.settings != self._current.settings
        if changed:
            log.warning("a secret of the mapping changed since it was read: using the new value")
        previous, self._current = self._current, fresh
        self._tls_changed = previous is not None and previous.tls_settings() != fresh.tls_settings()
        return changed

    # -- the consumer ------------------------------------------------------------------------
    def consumer_factory(self, settings: dict[str, Any]) -> Consumer:
        """Build the consumer and keep it, so that rotated SASL credentials reach it."""
        try:
            consumer = self._consumer_class(settings)
        except KafkaException as error:
            raise client_creation_failure(error) from None
        self._consumer = consumer
        return consumer

    def classify(self, error: KafkaError) -> MappingStopped | None:
        """The poll loop's client-error hook: stop as AWS would, unless a secret rotated."""
        stopped = classify_client_error(error, self.plan.method)
        if stopped is None:
            return None
        log.warning("authentication failed: %s", error.str(), extra={"code": error.name()})
        if self._clock() < self._grace_until:
            return None
        if self.refresh() and self._apply_in_place():
            self._grace_until = self._clock() + ROTATION_GRACE_S
            return None
        return stopped

    def _apply_in_place(self) -> bool:
        credentials = self._current.credentials if self._current else None
        if self._consumer is None or credentials is None or self._tls_changed:
            return False
        self._consumer.set_sasl_credentials(credentials.username, credentials.password)
        return True

    # -- start-up ------------------------------------------------------------------------------
    def connect(self) -> dict[str, Any]:
        """Sign in and test DescribeConfigs; on an authentication failure re-read the
        secrets once and retry. Returns the settings to build the consumer with.

        The source calls it when it subscribes, so that a secret that cannot be used stops
        the mapping through the poller's own stop path (State, LastProcessingResult)."""
        settings = self.client_settings()
        stopped = check_cluster_access(
            self._mapping, settings, self.plan.method, self.options.preflight_timeout_s
        )
        if stopped is not None and _is_authn(stopped) and self.refresh():
            settings = self.client_settings()
            stopped = check_cluster_access(
                self._mapping, settings, self.plan.method, self.options.preflight_timeout_s
            )
        if stopped is not None:
            raise stopped
        return settings


def _is_authn(stopped: MappingStopped) -> bool:
    return stopped.reason is StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR


_PREFLIGHT_LOG = logging.getLogger("runtime.security.plan.librdkafka")
_PREFLIGHT_LOG.addFilter(RepeatFilter())  # a closed port is refused many times a second


def check_cluster_access(
    mapping: EventSourceMapping,
    settings: Mapping[str, Any],
    method: AuthMethod,
    timeout_s: float,
) -> MappingStopped | None:
    """Sign in with ``settings`` and describe one broker's configuration.

    Returns AWS's stop for an authentication failure or a missing DescribeConfigs ACL;
    None when both work, and also when the cluster cannot be reached within
    ``timeout_s`` (the consumer then keeps trying, as Lambda does).
    """
    errors: list[KafkaError] = []
    config = {
        **settings,
        "bootstrap.servers": ",".join(mapping.bootstrap_servers),
        "error_cb": errors.append,
        "logger": _PREFLIGHT_LOG,
    }
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    broker_id, refused = sign_in(admin, errors, method, timeout_s)
    if refused is not None:
        log.warning("sign-in failed: %s", refused.str(), extra={"code": refused.name()})
        return classify_client_error(refused, method)
    if broker_id is None:
        log.warning("cluster not reachable in %.0f s; the consumer keeps trying", timeout_s)
        return None
    return _describe_configs(admin, broker_id, max(deadline - time.monotonic(), 1.0))


def sign_in(
    admin: AdminClient, errors: list[KafkaError], method: AuthMethod, timeout_s: float
) -> tuple[int | None, KafkaError | None]:
    """Ask for metadata until the cluster answers or refuses the client.

    ``errors`` is the list the client's ``error_cb`` appends to: librdkafka reports a
    refused sign-in there, while the metadata request itself just times out. Returns
    the lowest broker id (None without an answer) and the error AWS would stop for.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            brokers = admin.list_topics(timeout=_ATTEMPT_S).brokers
        except KafkaException:
            admin.poll(0.1)
        else:
            return (min(brokers) if brokers else None), None
        refused = next((e for e in errors if classify_client_error(e, method) is not None), None)
        if refused is not None:
            return None, refused
    return None, None


def _describe_configs(
    admin: AdminClient, broker_id: int, timeout_s: float
) -> MappingStopped | None:
    resource = ConfigResource(ResourceType.BROKER, str(broker_id))
    try:
        admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            log.error("DescribeConfigs on the cluster denied: %s", error.str())
            return MappingStopped(
                StateTransitionReason.EVENT_SOURCE_AUTHZ_ERROR, problem(CLUSTER_FAILED_TO_AUTHORIZE)
            )
        log.warning("DescribeConfigs failed: %s", error.str())
    return None
