"""How a mapping's SourceAccessConfigurations secure its Kafka client, and what AWS says when
that fails.

Three pure steps, shared by the poller and ``kafka-esm doctor``:

1. :func:`plan_security` reads the mapping (no I/O): which authentication, which
   ``security.protocol``. SASL always runs over TLS, as in AWS; SASL over plaintext is
   refused unless :attr:`SecurityOptions.allow_insecure_sasl` is set *and* every
   bootstrap server is a loopback address.
2. :func:`resolve_security` reads the secrets (:class:`~runtime.security.secrets.SecretReader`) and
   turns them into librdkafka settings. Secret values live only in
   :class:`ClientSecurity`, whose ``repr`` hides them.
3. :func:`classify_client_error` maps librdkafka's client errors to the
   StateTransitionReason and the LastProcessingResult message AWS shows, word for word.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from runtime.definition.model import EventSourceMapping, SourceAccessConfiguration, SourceAccessType
from runtime.definition.vocabulary import (
    INVALID_CERTIFICATE_OR_KEY,
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    SASL_AUTHENTICATION_FAILED,
    SERVER_FAILED_TO_AUTHENTICATE,
)
from runtime.observability.state import MappingStopped, StateTransitionReason, problem
from runtime.security.secrets import (
    SecretAccessDeniedError,
    SecretError,
    SecretInvalidError,
    SecretReader,
    UsernamePassword,
    client_tls_material,
)

__all__ = [
    "ALLOW_INSECURE_SASL_ENV",
    "AuthMethod",
    "ClientSecurity",
    "SecurityConfigError",
    "SecurityOptions",
    "SecurityPlan",
    "classify_client_error",
    "client_creation_failure",
    "is_loopback",
    "plan_security",
    "resolve_security",
    "secret_failure",
]

ALLOW_INSECURE_SASL_ENV = "KAFKA_ESM_ALLOW_INSECURE_SASL"
"""Set to ``1`` to allow SASL without TLS against a loopback broker (local use only)."""

_SASL_MECHANISMS: Mapping[SourceAccessType, str] = {
    SourceAccessType.BASIC_AUTH: "PLAIN",
    SourceAccessType.SASL_SCRAM_256_AUTH: "SCRAM-SHA-256",
    SourceAccessType.SASL_SCRAM_512_AUTH: "SCRAM-SHA-512",
}
_SUPPORTED_AUTH = (*_SASL_MECHANISMS, SourceAccessType.CLIENT_CERTIFICATE_TLS_AUTH)
_UNSUPPORTED_AUTH = frozenset(
    {
        SourceAccessType.OAUTHBEARER_AUTH,
        SourceAccessType.IAM_AUTH,
        SourceAccessType.IAM_OAUTHBEARER_AUTH,
    }
)
_PROTOCOL = "security.protocol"
_TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class AuthMethod(StrEnum):
    """How the client proves who it is."""

    NONE = "none"
    SASL = "SASL"
    MTLS = "mTLS"


_METHOD_PROTOCOLS: Mapping[AuthMethod, frozenset[str]] = {
    AuthMethod.SASL: frozenset({"SASL_SSL", "SASL_PLAINTEXT"}),
    AuthMethod.MTLS: frozenset({"SSL"}),
}
"""The protocols each method works over (SASL_PLAINTEXT only when allowed, see above)."""


class SecurityConfigError(ValueError):
    """The mapping's security cannot work here; AWS would report ESM_CONFIG_NOT_VALID."""


@dataclass(frozen=True)
class SecurityOptions:
    """Local choices that AWS's mapping has no field for."""

    allow_insecure_sasl: bool = False
    """Allow ``security.protocol=SASL_PLAINTEXT`` (an override) for loopback brokers only."""
    allow_pbes2: bool = True
    """This runtime opens PBES2 keys (AWS's poller does not): a warning, not an error."""
    secrets_endpoint_url: str | None = None
    """Secrets Manager endpoint (an emulator); None: AWS's."""
    preflight_timeout_s: float = 15.0
    """How long the poller's start-up sign-in and DescribeConfigs check may take."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SecurityOptions:
        """Options from ``KAFKA_ESM_ALLOW_INSECURE_SASL``; everything else at its default."""
        values = os.environ if env is None else env
        allow = values.get(ALLOW_INSECURE_SASL_ENV, "").strip().lower() in _TRUE_WORDS
        return cls(allow_insecure_sasl=allow)


@dataclass(frozen=True)
class SecurityPlan:
    """What the mapping asks for, before any secret is read."""

    method: AuthMethod
    protocol: str
    authentication: SourceAccessConfiguration | None = None
    root_ca: SourceAccessConfiguration | None = None
    notes: tuple[str, ...] = ()

    @property
    def sasl_mechanism(self) -> str | None:
        """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 for SASL methods."""
        auth = self.authentication
        return _SASL_MECHANISMS.get(auth.type) if auth is not None else None

    @property
    def uses_tls(self) -> bool:
        """True when the connection is encrypted (SSL or SASL_SSL)."""
        return self.protocol in _TLS_PROTOCOLS

    @property
    def secret_uris(self) -> tuple[str, ...]:
        """The URIs of every secret the plan reads."""
        entries = (self.authentication, self.root_ca)
        return tuple(e.uri for e in entries if e is not None and e.uri)

    def describe(self) -> str:
        """One line for people: protocol and method, never a secret."""
        auth = self.authentication
        how = "no authentication" if auth is None else auth.type.value
        trust = "private root CA" if self.root_ca else "system CAs"
        tls = f", {trust}" if self.uses_tls else ""
        notes = "".join(f"; {note}" for note in self.notes)
        return f"{self.protocol}, {how}{tls}{notes}"


@dataclass(frozen=True, repr=False)
class ClientSecurity:
    """librdkafka settings that carry the secrets; never printed."""

    settings: dict[str, str]
    credentials: UsernamePassword | None = None
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ClientSecurity(keys={sorted(self.settings)})"

    def tls_settings(self) -> dict[str, str]:
        """The TLS part only: what cannot change in a running client."""
        return {k: v for k, v in self.settings.items() if k.startswith("ssl.")}


# --- 1. the plan ----------------------------------------------------------------------


def plan_security(
    mapping: EventSourceMapping,
    overrides: Mapping[str, Any] | None = None,
    options: SecurityOptions | None = None,
) -> SecurityPlan:
    """The protocol and method the mapping needs; SecurityConfigError when it cannot work.

    ``overrides`` are the user's librdkafka settings: one that drops TLS under SASL, or
    drops the authentication the mapping asks for, is refused.
    """
    options = options or SecurityOptions()
    auth = _authentication(mapping)
    method = AuthMethod.NONE
    if auth is not None:
        method = AuthMethod.SASL if auth.type in _SASL_MECHANISMS else AuthMethod.MTLS
    root_ca = mapping.server_root_ca_certificate
    default = _default_protocol(method, root_ca is not None)
    protocol = str((overrides or {}).get(_PROTOCOL, default)).upper()
    _check_protocol(mapping, method, default, protocol, options)
    notes: tuple[str, ...] = ()
    if protocol == "SASL_PLAINTEXT":
        notes = (f"SASL without TLS, allowed by {ALLOW_INSECURE_SASL_ENV} for a local broker",)
    return SecurityPlan(method, protocol, auth, root_ca, notes)


def _authentication(mapping: EventSourceMapping) -> SourceAccessConfiguration | None:
    auth = mapping.authentication
    if auth is not None and auth.type in _UNSUPPORTED_AUTH:
        index = mapping.source_access_configurations.index(auth)
        supported = ", ".join(t.value for t in _SUPPORTED_AUTH)
        raise SecurityConfigError(
            f"SourceAccessConfigurations[{index}].Type {auth.type.value!r} is not supported "
            f"by this runtime: use one of {supported}"
        )
    return auth


def _default_protocol(method: AuthMethod, has_root_ca: bool) -> str:
    if method is AuthMethod.SASL:
        return "SASL_SSL"
    if method is AuthMethod.MTLS or has_root_ca:
        return "SSL"
    return "PLAINTEXT"


def _check_protocol(
    mapping: EventSourceMapping,
    method: AuthMethod,
    default: str,
    protocol: str,
    options: SecurityOptions,
) -> None:
    """An override may change the protocol only where the mapping's security still holds."""
    if protocol == default:
        return
    given = f"the consumer setting {_PROTOCOL}={protocol!r}"
    if protocol == "SASL_PLAINTEXT":
        _check_insecure_sasl(mapping, given, options)
    allowed = _METHOD_PROTOCOLS.get(method)
    if allowed is not None and protocol not in allowed:
        raise SecurityConfigError(
            f"{given} conflicts with SourceAccessConfigurations, which authenticate with "
            f"{method.value} over {default}: remove the setting"
        )
    if mapping.server_root_ca_certificate is not None and protocol not in _TLS_PROTOCOLS:
        raise SecurityConfigError(
            f"{given} turns TLS off, but SourceAccessConfigurations give a "
            "SERVER_ROOT_CA_CERTIFICATE: remove the setting"
        )


def _check_insecure_sasl(mapping: EventSourceMapping, given: str, options: SecurityOptions) -> None:
    """SASL without TLS sends credentials readable on the wire: local brokers only."""
    if not options.allow_insecure_sasl:
        raise SecurityConfigError(
            f"{given} would send SASL credentials without TLS; AWS runs SASL over TLS only "
            f"(SASL_SSL). For a local broker set {ALLOW_INSECURE_SASL_ENV}=1"
        )
    remote = [s for s in mapping.bootstrap_servers if not is_loopback(s)]
    if remote:
        raise SecurityConfigError(
            f"{given} is allowed by {ALLOW_INSECURE_SASL_ENV} for loopback brokers only; "
            f"KAFKA_BOOTSTRAP_SERVERS has {', '.join(remote)}"
        )


def is_loopback(server: str) -> bool:
    """True for ``localhost`` or a loopback address (``host:port``, IPv6 in brackets)."""
    host = server.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- 2. the secrets -------------------------------------------------------------------


def resolve_security(plan: SecurityPlan, reader: SecretReader) -> ClientSecurity:
    """The plan's librdkafka settings with its secrets read; raises SecretError subclasses."""
    settings: dict[str, str] = {_PROTOCOL: plan.protocol}
    warnings: list[str] = []
    if plan.uses_tls:
        # librdkafka's default, made explicit: the broker's name must be in its certificate.
        settings["ssl.endpoint.identification.algorithm"] = "https"
    if plan.root_ca is not None and plan.root_ca.uri:
        root = reader.root_certificate(plan.root_ca.uri)
        settings.update(root.librdkafka_config())
        warnings += [f"{plan.root_ca.type.value}: {w}" for w in root.warnings]
    credentials = None
    auth = plan.authentication
    if auth is not None and auth.uri and plan.method is AuthMethod.SASL:
        credentials = reader.username_password(auth.type.value, auth.uri)
        settings.update(
            {
                "sasl.mechanism": _SASL_MECHANISMS[auth.type],
                "sasl.username": credentials.username,
                "sasl.password": credentials.password,
            }
        )
        warnings += [f"{auth.type.value}: {w}" for w in credentials.warnings]
    elif auth is not None and auth.uri:
        certificate = reader.client_certificate(auth.uri)
        settings.update(client_tls_material(certificate).librdkafka_config())
        warnings += [f"{auth.type.value}: {w}" for w in certificate.warnings]
    return ClientSecurity(settings, credentials, tuple(warnings))


def secret_failure(error: SecretError) -> MappingStopped:
    """The stop for a secret that cannot be used (the error never holds its value).

    A secret that breaks AWS's rules gets AWS's message and EVENT_SOURCE_AUTHN_ERROR.
    AWS documents no message for an unreadable secret: this runtime reports
    FUNCTION_CONFIG_NOT_VALID when access is denied (the execution role lacks
    ``secretsmanager:GetSecretValue``) and ESM_CONFIG_NOT_VALID otherwise.
    """
    if isinstance(error, SecretInvalidError):
        message = error.aws_message or INVALID_CERTIFICATE_OR_KEY
        return MappingStopped(StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR, problem(message))
    if isinstance(error, SecretAccessDeniedError):
        return MappingStopped(StateTransitionReason.FUNCTION_CONFIG_NOT_VALID, problem(str(error)))
    return MappingStopped(StateTransitionReason.ESM_CONFIG_NOT_VALID, problem(str(error)))


# --- 3. client errors -----------------------------------------------------------------

_CLIENT_REJECTS_SERVER = re.compile(
    r"certificate verify failed|could not be verified|hostname mismatch"
    r"|self[- ]signed certificate|unable to get local issuer",
    re.IGNORECASE,
)
_SERVER_REJECTS_CLIENT = re.compile(
    r"alert (bad certificate|certificate required|unknown ca|certificate unknown"
    r"|certificate expired|certificate revoked|unsupported certificate|access denied)"
    r"|alert number (42|43|44|45|46|48|49|116)\b",
    re.IGNORECASE,
)
_KEY_OR_CERTIFICATE = re.compile(r"ssl\.(key|certificate)|private key|certificate", re.IGNORECASE)
_SASL = re.compile(r"\bSASL\b", re.IGNORECASE)
_AUTH_CODES = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError._TRANSPORT})


def classify_client_error(error: KafkaError, method: AuthMethod) -> MappingStopped | None:
    """AWS's stop for a librdkafka client error, or None for errors it retries through.

    librdkafka reports every TLS and SASL failure as ``_SSL``, ``_TRANSPORT`` or
    ``_AUTHENTICATION``; only the text tells who refused whom. Connection refusals,
    timeouts and disconnects stay None: the client keeps retrying, as Lambda does.
    """
    if error.code() not in _AUTH_CODES:
        return None
    text = error.str()
    if _CLIENT_REJECTS_SERVER.search(text):
        return _authn(LAMBDA_FAILED_TO_AUTHENTICATE_SERVER)
    if _SERVER_REJECTS_CLIENT.search(text):
        return _authn(SERVER_FAILED_TO_AUTHENTICATE)
    if error.code() == KafkaError._AUTHENTICATION:
        sasl = method is AuthMethod.SASL or _SASL.search(text) is not None
        return _authn(SASL_AUTHENTICATION_FAILED if sasl else SERVER_FAILED_TO_AUTHENTICATE)
    return None


def client_creation_failure(error: KafkaException) -> MappingStopped:
    """librdkafka refused the settings: a key or certificate it cannot load, or a bad setting."""
    text = error.args[0].str() if error.args and isinstance(error.args[0], KafkaError) else ""
    if _KEY_OR_CERTIFICATE.search(text):
        return _authn(INVALID_CERTIFICATE_OR_KEY)
    return MappingStopped(StateTransitionReason.ESM_CONFIG_NOT_VALID, problem(text or str(error)))


def _authn(message: str) -> MappingStopped:
    return MappingStopped(StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR, problem(message))
