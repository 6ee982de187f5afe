"""The poller's security against the real broker: each cause stops it as AWS's would.

Every failing case asserts the StateTransitionReason and AWS's LastProcessingResult
message word for word, on the broker's SASL_SSL or SSL listener.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.cli.launcher import assemble_poller
from runtime.definition.model import parse_mapping
from runtime.definition.vocabulary import (
    CLUSTER_FAILED_TO_AUTHORIZE,
    INVALID_CERTIFICATE_OR_KEY,
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    SASL_AUTHENTICATION_FAILED,
    SERVER_FAILED_TO_AUTHENTICATE,
)
from runtime.devtools.local_kafka import ClusterInfo
from runtime.invokers import LocalHandlerInvoker
from runtime.observability.state import MappingStopped, State, StateTransitionReason
from runtime.pipeline.poller import Poller, PollerOptions
from runtime.security.plan import SecurityOptions
from runtime.security.secrets import SecretReader
from runtime.security.session import SecuritySession
from tests.cli_helpers import kafka_esm, run_kafka_esm
from tests.kafka_helpers import produce
from tests.poller_harness import FAST_RETRY, RecordingHandler, RunningPoller
from tests.security_helpers import (
    client_certificate_doc,
    grant_all_but,
    mapping_request,
    relay,
    root_ca_doc,
    scram_user,
    write_secret,
)
from tests.unit.pki_factory import rsa_key, traditional

pytestmark = pytest.mark.integration

AUTHN = StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR
AUTHZ = StateTransitionReason.EVENT_SOURCE_AUTHZ_ERROR
SASL = "SASL_SSL"
MTLS = "SSL"


def _poller(
    doc: dict[str, Any], handler: RecordingHandler, reader: SecretReader | None = None
) -> Poller:
    mapping = parse_mapping(doc)
    session = SecuritySession(mapping, {}, SecurityOptions(preflight_timeout_s=30), reader)
    invoker = LocalHandlerInvoker(handler, function_name=mapping.function_name, timeout_s=30)
    return assemble_poller(
        mapping,
        invoker,
        PollerOptions(retry_backoff=FAST_RETRY),
        connection=session,
        client_settings=session.client_settings,
    )


def _stopped(doc: dict[str, Any]) -> tuple[MappingStopped, Poller]:
    """Run the poller until it stops itself; fail if it keeps running."""
    running = RunningPoller(_poller(doc, RecordingHandler()))
    running.thread.start()
    running.thread.join(60)
    if running.thread.is_alive():
        running.stop()
        pytest.fail("the poller did not stop")
    assert isinstance(running.error, MappingStopped), running.error
    return running.error, running.poller


def _assert_stops(doc: dict[str, Any], reason: StateTransitionReason, message: str) -> None:
    stopped, poller = _stopped(doc)
    assert (stopped.reason, stopped.result) == (reason, f"PROBLEM: {message}")
    status = poller.status.snapshot()
    assert status.state is State.DISABLED
    assert status.state_transition_reason is reason
    assert status.last_processing_result == f"PROBLEM: {message}"


def _consumes(doc: dict[str, Any], kafka: ClusterInfo, reader: SecretReader | None = None) -> None:
    """The poller delivers a record produced before it started."""
    produce(kafka.plaintext_config(), doc["Topics"][0], [b"secured"])
    handler = RecordingHandler()
    running = RunningPoller(_poller(doc, handler, reader))
    running.thread.start()
    try:
        handler.wait_for(lambda calls: len(calls) >= 1, timeout_s=60)
    finally:
        running.stop()
    assert running.error is None
    assert handler.values() == [b"secured"]


@pytest.fixture
def names(topic_factory: Callable[..., str], unique: Callable[[str], str]) -> tuple[str, str]:
    return topic_factory(), unique("g")


def _sasl(
    kafka: ClusterInfo,
    tmp: Path,
    names: tuple[str, str],
    auth: str,
    secret: dict[str, str],
    *,
    ca: dict[str, str] | None = None,
    server: str | None = None,
) -> dict[str, Any]:
    access = [(auth, write_secret(tmp, secret))]
    if ca is not None:
        access.append(("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp, ca)))
    return mapping_request(server or kafka.address(SASL), *names, access)


def _mtls(
    kafka: ClusterInfo,
    tmp: Path,
    names: tuple[str, str],
    client: dict[str, str] | None,
    *,
    ca: dict[str, str] | None = None,
    server: str | None = None,
) -> dict[str, Any]:
    access = []
    if client is not None:
        access.append(("CLIENT_CERTIFICATE_TLS_AUTH", write_secret(tmp, client)))
    if ca is not None:
        access.append(("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp, ca)))
    return mapping_request(server or kafka.address(MTLS), *names, access)


# --- SASL_SSL ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["BASIC_AUTH", "SASL_SCRAM_256_AUTH", "SASL_SCRAM_512_AUTH"])
def test_wrong_password_stops_with_sasl_authentication_failed(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], auth: str
) -> None:
    secret = {"username": "alice", "password": "not-alices-password"}
    doc = _sasl(secured_kafka, tmp_path, names, auth, secret, ca=root_ca_doc(secured_kafka))
    _assert_stops(doc, AUTHN, SASL_AUTHENTICATION_FAILED)


def test_unknown_user_stops_with_sasl_authentication_failed(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    secret = {"username": "nobody-here", "password": "whatever"}
    doc = _sasl(
        secured_kafka, tmp_path, names, "SASL_SCRAM_512_AUTH", secret, ca=root_ca_doc(secured_kafka)
    )
    _assert_stops(doc, AUTHN, SASL_AUTHENTICATION_FAILED)


@pytest.mark.parametrize("listener", [SASL, MTLS])
@pytest.mark.parametrize("trust", ["wrong root CA", "no root CA"])
def test_untrusted_broker_stops_with_lambda_failed_to_authenticate_server(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], listener: str, trust: str
) -> None:
    ca = root_ca_doc(secured_kafka, other=True) if trust == "wrong root CA" else None
    if listener == SASL:
        secret = {"username": "admin", "password": secured_kafka.passwords["admin"]}
        doc = _sasl(secured_kafka, tmp_path, names, "SASL_SCRAM_512_AUTH", secret, ca=ca)
    else:
        client = client_certificate_doc(secured_kafka, "admin")
        doc = _mtls(secured_kafka, tmp_path, names, client, ca=ca)
    _assert_stops(doc, AUTHN, LAMBDA_FAILED_TO_AUTHENTICATE_SERVER)


@pytest.mark.parametrize("listener", [SASL, MTLS])
def test_hostname_not_in_certificate_san_stops_with_lambda_failed_to_authenticate_server(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], listener: str
) -> None:
    # The certificate names localhost and 127.0.0.1; the relay listens on 127.0.0.2.
    with relay(secured_kafka.address(listener)) as outside_san:
        ca = root_ca_doc(secured_kafka)
        if listener == SASL:
            secret = {"username": "admin", "password": secured_kafka.passwords["admin"]}
            doc = _sasl(
                secured_kafka,
                tmp_path,
                names,
                "BASIC_AUTH",
                secret,
                ca=ca,
                server=outside_san.address,
            )
        else:
            client = client_certificate_doc(secured_kafka, "admin")
            doc = _mtls(secured_kafka, tmp_path, names, client, ca=ca, server=outside_san.address)
        _assert_stops(doc, AUTHN, LAMBDA_FAILED_TO_AUTHENTICATE_SERVER)


# --- SSL (mTLS) -------------------------------------------------------------------------


def test_no_client_certificate_stops_with_server_failed_to_authenticate_lambda(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    doc = _mtls(secured_kafka, tmp_path, names, None, ca=root_ca_doc(secured_kafka))
    _assert_stops(doc, AUTHN, SERVER_FAILED_TO_AUTHENTICATE)


def test_client_certificate_from_untrusted_ca_stops_with_server_failed_to_authenticate_lambda(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    client = client_certificate_doc(secured_kafka, "mallory")
    doc = _mtls(secured_kafka, tmp_path, names, client, ca=root_ca_doc(secured_kafka))
    _assert_stops(doc, AUTHN, SERVER_FAILED_TO_AUTHENTICATE)


@pytest.mark.parametrize("defect", ["PKCS#1 key", "not PEM", "key of another certificate"])
def test_malformed_key_stops_with_provided_certificate_or_private_key_is_invalid(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], defect: str
) -> None:
    client = client_certificate_doc(secured_kafka, "alice")
    if defect == "PKCS#1 key":
        client["privateKey"] = traditional(rsa_key())
    elif defect == "not PEM":
        client["privateKey"] = (
            "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"
        )
    else:
        client["privateKey"] = client_certificate_doc(secured_kafka, "admin")["privateKey"]
    doc = _mtls(secured_kafka, tmp_path, names, client, ca=root_ca_doc(secured_kafka))
    _assert_stops(doc, AUTHN, INVALID_CERTIFICATE_OR_KEY)


# --- what works -------------------------------------------------------------------------


@pytest.mark.parametrize("key_form", ["plain", "pbes1", "pbes2"])
def test_mtls_consumes_with_plain_pbes1_and_pbes2_keys(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    key_form: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_certificate_doc(secured_kafka, "admin", key_form)
    doc = _mtls(secured_kafka, tmp_path, names, client, ca=root_ca_doc(secured_kafka))
    with caplog.at_level(logging.WARNING, logger="runtime.security.plan"):
        _consumes(doc, secured_kafka)
    pbes2_warnings = [r for r in caplog.records if "PBES2" in r.getMessage()]
    assert bool(pbes2_warnings) == (key_form == "pbes2")  # AWS's poller would refuse it


@pytest.mark.parametrize("auth", ["SASL_SCRAM_256_AUTH", "SASL_SCRAM_512_AUTH"])
def test_scram_user_with_exactly_the_required_acls_consumes(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], auth: str
) -> None:
    user, password = scram_user(secured_kafka)
    secret = {"username": user, "password": password}
    doc = _sasl(secured_kafka, tmp_path, names, auth, secret, ca=root_ca_doc(secured_kafka))
    grant_all_but(secured_kafka, f"User:{user}", parse_mapping(doc))
    _consumes(doc, secured_kafka)


def test_basic_auth_consumes(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    secret = {"username": "admin", "password": secured_kafka.passwords["admin"]}
    doc = _sasl(secured_kafka, tmp_path, names, "BASIC_AUTH", secret, ca=root_ca_doc(secured_kafka))
    _consumes(doc, secured_kafka)


# --- ACLs, one missing at a time --------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "stops"),
    [
        ("DescribeConfigs Cluster", True),  # a consumer never needs it: the start-up check does
        ("Read Group", True),  # JoinGroup: GROUP_AUTHORIZATION_FAILED
        ("Read Topic", True),  # Fetch / OffsetFetch: TOPIC_AUTHORIZATION_FAILED
        ("Describe Group", False),  # Kafka grants Describe with Read: not observable
        ("Describe Topic", False),
    ],
)
def test_each_required_acl_missing(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], missing: str, stops: bool
) -> None:
    user, password = scram_user(secured_kafka)
    secret = {"username": user, "password": password}
    doc = _sasl(
        secured_kafka, tmp_path, names, "SASL_SCRAM_512_AUTH", secret, ca=root_ca_doc(secured_kafka)
    )
    grant_all_but(secured_kafka, f"User:{user}", parse_mapping(doc), missing)
    if stops:
        produce(secured_kafka.plaintext_config(), names[0], [b"denied"])
        _assert_stops(doc, AUTHZ, CLUSTER_FAILED_TO_AUTHORIZE)
    else:
        _consumes(doc, secured_kafka)


# --- Queue mode: the same security, a share group ------------------------------------------


@pytest.mark.parametrize("missing", [None, "Read Group"])
def test_queue_mode_signs_in_like_stream_and_needs_read_on_the_share_group(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], missing: str | None
) -> None:
    from confluent_kafka.admin import AdminClient

    from runtime.pipeline.share_source import configure_share_group

    user, password = scram_user(secured_kafka)
    secret = {"username": user, "password": password}
    doc = _sasl(
        secured_kafka, tmp_path, names, "SASL_SCRAM_512_AUTH", secret, ca=root_ca_doc(secured_kafka)
    )
    del doc["StartingPosition"]
    doc["SelfManagedKafkaEventSourceConfig"]["ConsumptionMode"] = "Queue"
    configure_share_group(
        AdminClient(secured_kafka.plaintext_config()),
        names[1],
        {"share.auto.offset.reset": "earliest"},
    )
    grant_all_but(secured_kafka, f"User:{user}", parse_mapping(doc), missing)
    if missing is None:
        _consumes(doc, secured_kafka)
    else:
        produce(secured_kafka.plaintext_config(), names[0], [b"denied"])
        _assert_stops(doc, AUTHZ, CLUSTER_FAILED_TO_AUTHORIZE)


# --- rotation ---------------------------------------------------------------------------


def test_rotated_secret_is_read_again_after_an_authentication_failure(
    secured_kafka: ClusterInfo, names: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = scram_user(secured_kafka)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        manager = boto3.client("secretsmanager")
        arn = manager.create_secret(
            Name="kafka-login", SecretString=json.dumps({"username": user, "password": "old"})
        )["ARN"]
        ca_arn = manager.create_secret(
            Name="kafka-ca", SecretString=json.dumps(root_ca_doc(secured_kafka))
        )["ARN"]
        doc = mapping_request(
            secured_kafka.address(SASL),
            *names,
            [("SASL_SCRAM_512_AUTH", arn), ("SERVER_ROOT_CA_CERTIFICATE", ca_arn)],
        )
        grant_all_but(secured_kafka, f"User:{user}", parse_mapping(doc))
        reader = SecretReader()
        reader.read("SASL_SCRAM_512_AUTH", arn)  # cached before the rotation
        manager.put_secret_value(
            SecretId=arn, SecretString=json.dumps({"username": user, "password": password})
        )
        _consumes(doc, secured_kafka, reader)


# --- through the command line -----------------------------------------------------------


def _kafka_esm_run(mapping: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = kafka_esm(
        "run", mapping, "--handler", "tests.unit.sample_handlers:echo", "--metrics", "none", *extra
    )
    return run_kafka_esm(command, timeout_s=120)


def test_kafka_esm_run_exits_with_the_aws_reason_and_message(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    secret = {"username": "alice", "password": "wrong"}
    doc = _sasl(
        secured_kafka, tmp_path, names, "SASL_SCRAM_512_AUTH", secret, ca=root_ca_doc(secured_kafka)
    )
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    done = _kafka_esm_run(path)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "EVENT_SOURCE_AUTHN_ERROR: PROBLEM: SASL authentication failed" in done.stderr


def test_kafka_esm_run_refuses_sasl_without_tls(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    secret = {"username": "alice", "password": secured_kafka.passwords["alice"]}
    doc = _sasl(secured_kafka, tmp_path, names, "BASIC_AUTH", secret)
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    done = _kafka_esm_run(path, "--consumer-config", "security.protocol=SASL_PLAINTEXT")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "ESM_CONFIG_NOT_VALID" in done.stderr
    assert "SASL credentials without TLS" in done.stderr
    assert secured_kafka.passwords["alice"] not in done.stderr + done.stdout
