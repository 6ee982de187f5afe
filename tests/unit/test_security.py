"""Security without a broker: the plan, the settings, AWS's error states, rotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from confluent_kafka import KafkaError, KafkaException

from runtime.cli.launcher import InvokeTarget, LaunchOptions, assemble_poller, build_poller
from runtime.definition.model import EventSourceMapping, parse_mapping
from runtime.invokers import LocalHandlerInvoker
from runtime.observability.state import (
    INVALID_CERTIFICATE_OR_KEY,
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    SASL_AUTHENTICATION_FAILED,
    SERVER_FAILED_TO_AUTHENTICATE,
    MappingStopped,
    State,
    StateTransitionReason,
)
from runtime.security.plan import (
    ALLOW_INSECURE_SASL_ENV,
    AuthMethod,
    SecurityConfigError,
    SecurityOptions,
    classify_client_error,
    client_creation_failure,
    plan_security,
    resolve_security,
    secret_failure,
)
from runtime.security.secret_checks import CLIENT_CERTIFICATE_TLS_AUTH, check_secret
from runtime.security.secrets import (
    SecretAccessDeniedError,
    SecretInvalidError,
    SecretNotFoundError,
    SecretReader,
    SecretReadError,
)
from runtime.security.session import ROTATION_GRACE_S, SecuritySession
from tests.unit.pki_factory import make_pki, pem, pkcs8, pkcs8_pbes2

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka"
AUTHN = StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR
PASSWORD = "s3cr3t-Pa55word"


def _mapping(
    *access: tuple[str, str | None], servers: tuple[str, ...] = ("b-1:9096",)
) -> EventSourceMapping:
    return parse_mapping(
        {
            "FunctionName": "fn",
            "Topics": ["orders"],
            "StartingPosition": "LATEST",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(servers)}},
            "SourceAccessConfigurations": [
                {"Type": t} if uri is None else {"Type": t, "URI": uri} for t, uri in access
            ],
        }
    )


def _secret(folder: Path, doc: dict[str, Any]) -> str:
    path = folder / f"{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return f"file://{path}"


# --- the plan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("access", "method", "protocol", "mechanism"),
    [
        ((), AuthMethod.NONE, "PLAINTEXT", None),
        ((("SERVER_ROOT_CA_CERTIFICATE", ARN),), AuthMethod.NONE, "SSL", None),
        ((("BASIC_AUTH", ARN),), AuthMethod.SASL, "SASL_SSL", "PLAIN"),
        ((("SASL_SCRAM_256_AUTH", ARN),), AuthMethod.SASL, "SASL_SSL", "SCRAM-SHA-256"),
        ((("SASL_SCRAM_512_AUTH", ARN),), AuthMethod.SASL, "SASL_SSL", "SCRAM-SHA-512"),
        ((("CLIENT_CERTIFICATE_TLS_AUTH", ARN),), AuthMethod.MTLS, "SSL", None),
    ],
)
def test_each_access_configuration_picks_its_protocol(
    access: tuple[tuple[str, str], ...], method: AuthMethod, protocol: str, mechanism: str | None
) -> None:
    plan = plan_security(_mapping(*access))
    assert (plan.method, plan.protocol, plan.sasl_mechanism) == (method, protocol, mechanism)
    assert plan.secret_uris == tuple(uri for _, uri in access)


@pytest.mark.parametrize("kind", ["IAM_AUTH", "OAUTHBEARER_AUTH"])
def test_authentication_this_runtime_lacks_is_refused_naming_the_field(kind: str) -> None:
    uri = None if kind == "IAM_AUTH" else ARN
    with pytest.raises(
        SecurityConfigError, match=rf"SourceAccessConfigurations\[0\]\.Type '{kind}'"
    ):
        plan_security(_mapping((kind, uri)))


def test_sasl_over_plaintext_is_refused_without_the_local_setting() -> None:
    overrides = {"security.protocol": "SASL_PLAINTEXT"}
    with pytest.raises(SecurityConfigError, match=ALLOW_INSECURE_SASL_ENV) as refused:
        plan_security(_mapping(("BASIC_AUTH", ARN)), overrides)
    assert "without TLS" in str(refused.value)


@pytest.mark.parametrize("server", ["localhost:9092", "127.0.0.1:9092", "127.0.0.2:9092"])
def test_sasl_over_plaintext_is_allowed_for_loopback_brokers_with_the_setting(server: str) -> None:
    plan = plan_security(
        _mapping(("SASL_SCRAM_512_AUTH", ARN), servers=(server,)),
        {"security.protocol": "sasl_plaintext"},
        SecurityOptions(allow_insecure_sasl=True),
    )
    assert (plan.protocol, plan.uses_tls) == ("SASL_PLAINTEXT", False)
    assert plan.notes


def test_sasl_over_plaintext_stays_refused_for_a_remote_broker() -> None:
    mapping = _mapping(("BASIC_AUTH", ARN), servers=("127.0.0.1:9092", "kafka.example.com:9092"))
    with pytest.raises(SecurityConfigError, match=r"kafka\.example\.com:9092"):
        plan_security(
            mapping,
            {"security.protocol": "SASL_PLAINTEXT"},
            SecurityOptions(allow_insecure_sasl=True),
        )


@pytest.mark.parametrize(
    ("access", "protocol"),
    [
        (("BASIC_AUTH", ARN), "SSL"),
        (("BASIC_AUTH", ARN), "PLAINTEXT"),
        (("CLIENT_CERTIFICATE_TLS_AUTH", ARN), "PLAINTEXT"),
        (("CLIENT_CERTIFICATE_TLS_AUTH", ARN), "SASL_SSL"),
        (("SERVER_ROOT_CA_CERTIFICATE", ARN), "PLAINTEXT"),
    ],
)
def test_an_override_that_drops_the_mappings_security_is_refused(
    access: tuple[str, str], protocol: str
) -> None:
    with pytest.raises(SecurityConfigError, match=f"security.protocol='{protocol}'"):
        plan_security(_mapping(access), {"security.protocol": protocol})


def test_options_from_the_environment() -> None:
    assert SecurityOptions.from_env({ALLOW_INSECURE_SASL_ENV: "1"}).allow_insecure_sasl
    assert not SecurityOptions.from_env({ALLOW_INSECURE_SASL_ENV: "no"}).allow_insecure_sasl
    assert not SecurityOptions.from_env({}).allow_insecure_sasl


# --- the settings -----------------------------------------------------------------------


def test_sasl_settings_carry_the_secret_but_never_print_it(tmp_path: Path) -> None:
    pki = make_pki()
    login = _secret(tmp_path, {"username": "alice", "password": PASSWORD})
    ca = _secret(tmp_path, {"certificate": pem(pki.root)})
    plan = plan_security(
        _mapping(("SASL_SCRAM_256_AUTH", login), ("SERVER_ROOT_CA_CERTIFICATE", ca))
    )
    security = resolve_security(plan, SecretReader())
    assert security.settings == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.pem": pem(pki.root),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
    }
    assert PASSWORD not in repr(security)
    assert "BEGIN" not in repr(security)


def test_a_pbes2_key_is_decrypted_in_memory_with_a_warning(tmp_path: Path) -> None:
    pki = make_pki()
    client = _secret(
        tmp_path,
        {
            "certificate": pki.chain(),
            "privateKey": pkcs8_pbes2(pki.leaf.key, PASSWORD),
            "privateKeyPassword": PASSWORD,
        },
    )
    plan = plan_security(_mapping((CLIENT_CERTIFICATE_TLS_AUTH, client)))
    security = resolve_security(plan, SecretReader(allow_pbes2=True))
    assert security.settings["ssl.key.pem"] == pkcs8(pki.leaf.key)  # decrypted, PKCS#8
    assert "ssl.key.password" not in security.settings
    assert any("PBES2" in w for w in security.warnings)
    assert all(PASSWORD not in w for w in security.warnings)


def test_aws_refuses_what_this_runtime_warns_about(tmp_path: Path) -> None:
    pki = make_pki()
    secret = json.dumps(
        {
            "certificate": pki.chain(),
            "privateKey": pkcs8_pbes2(pki.leaf.key, PASSWORD),
            "privateKeyPassword": PASSWORD,
        }
    )
    assert (
        check_secret(CLIENT_CERTIFICATE_TLS_AUTH, secret).aws_message == INVALID_CERTIFICATE_OR_KEY
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            SecretNotFoundError(ARN, "ResourceNotFoundException"),
            StateTransitionReason.ESM_CONFIG_NOT_VALID,
        ),
        (
            SecretAccessDeniedError(ARN, "AccessDeniedException"),
            StateTransitionReason.FUNCTION_CONFIG_NOT_VALID,
        ),
        (SecretReadError(ARN, "throttled"), StateTransitionReason.ESM_CONFIG_NOT_VALID),
    ],
)
def test_unreadable_secrets_stop_with_a_reason_naming_the_secret(
    error: Exception, reason: StateTransitionReason
) -> None:
    stopped = secret_failure(error)  # type: ignore[arg-type]
    assert stopped.reason is reason
    assert stopped.result.startswith("PROBLEM: secret " + ARN)


def test_an_invalid_secret_stops_with_awss_message() -> None:
    result = check_secret(
        CLIENT_CERTIFICATE_TLS_AUTH, json.dumps({"certificate": "x", "privateKey": "y"})
    )
    stopped = secret_failure(SecretInvalidError(ARN, CLIENT_CERTIFICATE_TLS_AUTH, result))
    assert (stopped.reason, stopped.result) == (AUTHN, f"PROBLEM: {INVALID_CERTIFICATE_OR_KEY}")


# --- client errors ----------------------------------------------------------------------

_PREFIX = "sasl_ssl://127.0.0.1:9094/bootstrap: "


@pytest.mark.parametrize(
    ("code", "text", "method", "message"),
    [
        (
            KafkaError._AUTHENTICATION,
            "SASL authentication error: Authentication failed: Invalid username or password",
            AuthMethod.SASL,
            SASL_AUTHENTICATION_FAILED,
        ),
        (
            KafkaError._AUTHENTICATION,
            "SASL authentication error: Authentication failed during authentication due to "
            "invalid credentials with SASL mechanism SCRAM-SHA-512",
            AuthMethod.SASL,
            SASL_AUTHENTICATION_FAILED,
        ),
        (
            KafkaError._SSL,
            "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: "
            "broker certificate could not be verified, verify that ssl.ca.location is correctly "
            "configured or root CA certificates are installed",
            AuthMethod.SASL,
            LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
        ),
        (
            KafkaError._TRANSPORT,
            "Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: "
            "SSL alert number 42",
            AuthMethod.MTLS,
            SERVER_FAILED_TO_AUTHENTICATE,
        ),
        (
            KafkaError._SSL,
            "SSL handshake failed: tlsv13 alert certificate required",
            AuthMethod.NONE,
            SERVER_FAILED_TO_AUTHENTICATE,
        ),
        (
            KafkaError._AUTHENTICATION,
            "authentication failed",
            AuthMethod.MTLS,
            SERVER_FAILED_TO_AUTHENTICATE,
        ),
    ],
)
def test_client_errors_map_to_awss_messages(
    code: int, text: str, method: AuthMethod, message: str
) -> None:
    stopped = classify_client_error(KafkaError(code, _PREFIX + text), method)
    assert stopped is not None
    assert (stopped.reason, stopped.result) == (AUTHN, f"PROBLEM: {message}")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:9094 failed: Connection refused"),
        (KafkaError._TRANSPORT, "Disconnected: SSL connection closed by peer"),
        (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"),
        (KafkaError._TIMED_OUT, "certificate verify failed"),  # not an auth code
    ],
)
def test_errors_the_client_retries_through_do_not_stop(code: int, text: str) -> None:
    assert classify_client_error(KafkaError(code, _PREFIX + text), AuthMethod.SASL) is None


def test_librdkafka_refusing_a_key_is_an_invalid_key() -> None:
    refused = KafkaException(
        KafkaError(KafkaError._INVALID_ARG, "ssl.key.pem failed: not in PEM format?")
    )
    assert client_creation_failure(refused).result == f"PROBLEM: {INVALID_CERTIFICATE_OR_KEY}"
    other = KafkaException(KafkaError(KafkaError._INVALID_ARG, "Invalid value for fetch.max.bytes"))
    assert client_creation_failure(other).reason is StateTransitionReason.ESM_CONFIG_NOT_VALID


# --- the session: rotation and the poller's stop path -----------------------------------


class _FakeConsumer:
    """Stands in for confluent_kafka.Consumer: records the credentials it is given."""

    instances: ClassVar[list[_FakeConsumer]] = []

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.credentials: list[tuple[str, str]] = []
        _FakeConsumer.instances.append(self)

    def set_sasl_credentials(self, username: str, password: str) -> None:
        self.credentials.append((username, password))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_SASL_FAILED = KafkaError(KafkaError._AUTHENTICATION, _PREFIX + "SASL authentication error: bad")


def _sasl_session(tmp_path: Path, clock: _Clock) -> tuple[SecuritySession, Path, _FakeConsumer]:
    login = tmp_path / "login.json"
    login.write_text(json.dumps({"username": "alice", "password": "old"}), encoding="utf-8")
    mapping = _mapping(("SASL_SCRAM_512_AUTH", f"file://{login}"))
    session = SecuritySession(mapping, clock=clock, consumer_class=_FakeConsumer)  # type: ignore[arg-type]
    consumer = session.consumer_factory(session.client_settings())
    assert isinstance(consumer, _FakeConsumer)
    return session, login, consumer


def test_a_rotated_sasl_password_reaches_the_running_consumer(tmp_path: Path) -> None:
    clock = _Clock()
    session, login, consumer = _sasl_session(tmp_path, clock)
    login.write_text(json.dumps({"username": "alice", "password": "new"}), encoding="utf-8")
    assert session.classify(_SASL_FAILED) is None  # re-read, applied, keep polling
    assert consumer.credentials == [("alice", "new")]
    assert session.classify(_SASL_FAILED) is None  # an older attempt, within the grace
    clock.now += ROTATION_GRACE_S + 1
    stopped = session.classify(_SASL_FAILED)  # same secret, still refused: stop
    assert stopped is not None and stopped.result == f"PROBLEM: {SASL_AUTHENTICATION_FAILED}"
    assert consumer.credentials == [("alice", "new")]


def test_an_unchanged_secret_stops_at_the_first_failure(tmp_path: Path) -> None:
    session, _, consumer = _sasl_session(tmp_path, _Clock())
    stopped = session.classify(_SASL_FAILED)
    assert stopped is not None and stopped.reason is AUTHN
    assert consumer.credentials == []


def test_a_rotated_certificate_cannot_be_swapped_in_a_running_client(tmp_path: Path) -> None:
    first, second = make_pki(), make_pki()
    secret = tmp_path / "client.json"
    secret.write_text(
        json.dumps({"certificate": first.chain(), "privateKey": pkcs8(first.leaf.key)})
    )
    mapping = _mapping((CLIENT_CERTIFICATE_TLS_AUTH, f"file://{secret}"))
    session = SecuritySession(mapping, consumer_class=_FakeConsumer)  # type: ignore[arg-type]
    session.consumer_factory(session.client_settings())
    secret.write_text(
        json.dumps({"certificate": second.chain(), "privateKey": pkcs8(second.leaf.key)})
    )
    error = KafkaError(KafkaError._TRANSPORT, _PREFIX + "SSL alert number 42")
    stopped = session.classify(error)
    assert stopped is not None and stopped.result == f"PROBLEM: {SERVER_FAILED_TO_AUTHENTICATE}"
    assert session.client_settings()["ssl.certificate.pem"] == second.chain()  # for the next start


def test_a_key_librdkafka_refuses_stops_as_an_invalid_key(tmp_path: Path) -> None:
    def refuses(settings: dict[str, Any]) -> Any:
        raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "ssl.key.pem failed: bad"))

    session = SecuritySession(_mapping(), consumer_class=refuses)
    with pytest.raises(MappingStopped, match=INVALID_CERTIFICATE_OR_KEY):
        session.consumer_factory({})


@pytest.mark.parametrize(
    ("doc", "reason", "message"),
    [
        (None, StateTransitionReason.ESM_CONFIG_NOT_VALID, "no such file"),
        ({"username": "alice"}, AUTHN, SASL_AUTHENTICATION_FAILED),
    ],
)
def test_a_secret_that_cannot_be_used_stops_the_poller_with_its_state(
    tmp_path: Path, doc: dict[str, str] | None, reason: StateTransitionReason, message: str
) -> None:
    login = tmp_path / "login.json"
    if doc is not None:
        login.write_text(json.dumps(doc), encoding="utf-8")
    mapping = _mapping(("BASIC_AUTH", f"file://{login}"))
    _FakeConsumer.instances.clear()
    session = SecuritySession(mapping, consumer_class=_FakeConsumer)  # type: ignore[arg-type]
    poller = assemble_poller(
        mapping,
        LocalHandlerInvoker(lambda event, context: None, function_name="fn"),
        connection=session,
    )
    with pytest.raises(MappingStopped) as stopped:
        poller.run()
    assert stopped.value.reason is reason and message in stopped.value.result
    status = poller.status.snapshot()
    assert (status.state, status.state_transition_reason) == (State.DISABLED, reason)
    assert status.last_processing_result == stopped.value.result
    assert _FakeConsumer.instances == []  # stopped before any client was built


def test_build_poller_refuses_sasl_over_plaintext(tmp_path: Path) -> None:
    mapping = _mapping(("BASIC_AUTH", _secret(tmp_path, {"username": "a", "password": PASSWORD})))
    options = LaunchOptions(InvokeTarget(handler="tests.unit.sample_handlers:echo"))
    with pytest.raises(ValueError, match="without TLS"):
        build_poller(mapping, options, {"security.protocol": "SASL_PLAINTEXT"})
