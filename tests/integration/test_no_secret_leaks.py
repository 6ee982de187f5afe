"""No password, key or certificate body in logs, exceptions or doctor output, on any
failure path of the poller's security and of ``kafka-esm doctor``."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.cli.launcher import InvokeTarget, assemble_poller
from runtime.definition.model import parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.doctor.model import DoctorInputs
from runtime.doctor.report import run_doctor
from runtime.invokers import LocalHandlerInvoker
from runtime.pipeline.poller import PollerOptions
from runtime.security.plan import SecurityConfigError, SecurityOptions
from runtime.security.session import SecuritySession
from tests.kafka_helpers import produce
from tests.poller_harness import FAST_RETRY, RunningPoller
from tests.security_helpers import (
    client_certificate_doc,
    grant_all_but,
    mapping_request,
    relay,
    root_ca_doc,
    scram_user,
    write_secret,
)

pytestmark = pytest.mark.integration

CANARY = f"canary-{uuid.uuid4().hex}"
"""A wrong password no output may ever contain."""
_PEM_LINE = re.compile(r"^[A-Za-z0-9+/=]{40,}$", re.MULTILINE)


def _needles(kafka: ClusterInfo, *secrets: str) -> set[str]:
    """Every password, and every base64 line of every key and certificate, of the cluster."""
    found = {CANARY, *secrets, *kafka.passwords.values()}
    if kafka.key_password:
        found.add(kafka.key_password)
    for path in kafka.pki.root.glob("*"):
        if path.suffix in (".pem", ".key"):
            found.update(_PEM_LINE.findall(path.read_text(encoding="utf-8")))
    return found


def _exception_texts(error: BaseException | None) -> Iterator[str]:
    while error is not None:
        yield f"{error!s} {error!r}"
        error = error.__cause__ or error.__context__


def _poller_outputs(doc: dict[str, Any]) -> list[str]:
    """Run the poller on ``doc`` until it stops; return its exception texts and status."""
    try:
        mapping = parse_mapping(doc)
        session = SecuritySession(mapping, {}, SecurityOptions(preflight_timeout_s=20))
    except SecurityConfigError as refused:
        return list(_exception_texts(refused))
    invoker = LocalHandlerInvoker(lambda event, context: None, function_name="leaks")
    poller = assemble_poller(
        mapping,
        invoker,
        PollerOptions(retry_backoff=FAST_RETRY),
        connection=session,
        client_settings=session.client_settings,
    )
    running = RunningPoller(poller)
    running.thread.start()
    running.thread.join(60)
    if running.thread.is_alive():
        running.stop()
        pytest.fail("the poller did not stop")
    assert running.error is not None, "every case here is a failure"
    return [*_exception_texts(running.error), repr(poller.status.snapshot())]


def _doctor_outputs(doc: dict[str, Any], tmp_path: Path, **overrides: str) -> list[str]:
    path = tmp_path / f"mapping-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    target = InvokeTarget(handler="tests.unit.sample_handlers:echo")
    report = run_doctor(DoctorInputs(path, target, overrides, timeout_s=4))
    assert not report.ok
    return [report.render(), report.to_json()]


def _cases(kafka: ClusterInfo, tmp: Path, topic: str, group: str) -> dict[str, dict[str, Any]]:
    sasl, ssl = kafka.address("SASL_SSL"), kafka.address("SSL")
    ca = ("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp, root_ca_doc(kafka)))
    other_ca = ("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp, root_ca_doc(kafka, other=True)))
    wrong = {"username": "alice", "password": CANARY}
    admin = {"username": "admin", "password": kafka.passwords["admin"]}
    broken_key = client_certificate_doc(kafka, "alice", "pbes1")
    broken_key["privateKeyPassword"] = CANARY  # the wrong password for this key

    def sasl_case(
        kind: str, login: dict[str, str], *extra: tuple[str, str], server: str = sasl
    ) -> dict[str, Any]:
        return mapping_request(server, topic, group, [(kind, write_secret(tmp, login)), *extra])

    def mtls(
        client: dict[str, str] | None, *extra: tuple[str, str], server: str = ssl
    ) -> dict[str, Any]:
        access = [("CLIENT_CERTIFICATE_TLS_AUTH", write_secret(tmp, client))] if client else []
        return mapping_request(server, topic, group, [*access, *extra])

    return {
        "wrong PLAIN password": sasl_case("BASIC_AUTH", wrong, ca),
        "wrong SCRAM password": sasl_case("SASL_SCRAM_512_AUTH", wrong, ca),
        "unknown user": sasl_case(
            "SASL_SCRAM_256_AUTH", {"username": "nobody", "password": CANARY}, ca
        ),
        "secret without username": sasl_case("BASIC_AUTH", {"password": CANARY}, ca),  # type: ignore[dict-item]
        "wrong root CA (SASL)": sasl_case("SASL_SCRAM_512_AUTH", admin, other_ca),
        "no root CA": sasl_case("SASL_SCRAM_512_AUTH", admin),
        "no client certificate": mtls(None, ca),
        "untrusted client certificate": mtls(client_certificate_doc(kafka, "mallory", "pbes1"), ca),
        "wrong key password": mtls(broken_key, ca),
        "wrong root CA (mTLS)": mtls(client_certificate_doc(kafka, "admin", "pbes2"), other_ca),
    }


def test_no_failure_path_prints_a_secret(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    topic_factory: Callable[..., str],
    unique: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    topic, group = topic_factory(), unique("g")
    produce(secured_kafka.plaintext_config(), topic, [b"x"])
    user, password = scram_user(secured_kafka)
    outputs: list[str] = []
    cases = _cases(secured_kafka, tmp_path, topic, group)
    # A user missing one ACL, a broker name outside the certificate, SASL without TLS.
    login = {"username": user, "password": password}
    ca = ("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp_path, root_ca_doc(secured_kafka)))
    cases["missing ACL"] = mapping_request(
        secured_kafka.address("SASL_SSL"),
        topic,
        group,
        [("SASL_SCRAM_512_AUTH", write_secret(tmp_path, login)), ca],
    )
    grant_all_but(secured_kafka, f"User:{user}", parse_mapping(cases["missing ACL"]), "Read Topic")
    with caplog.at_level(logging.DEBUG):
        for name, doc in cases.items():
            outputs += [name, *_poller_outputs(doc), *_doctor_outputs(doc, tmp_path)]
        with relay(secured_kafka.address("SASL_SSL")) as outside:
            doc = dict(cases["wrong root CA (SASL)"])
            doc["SelfManagedEventSource"] = {
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [outside.address]}
            }
            outputs += [*_poller_outputs(doc), *_doctor_outputs(doc, tmp_path)]
        plaintext = {"security.protocol": "SASL_PLAINTEXT"}
        outputs += _doctor_outputs(cases["wrong PLAIN password"], tmp_path, **plaintext)
    captured = capfd.readouterr()
    logs = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    haystack = "\n".join([*outputs, *logs, captured.out, captured.err])
    assert "SASL authentication failed" in haystack  # the outputs are really there
    assert "Cluster failed to authorize Lambda" in haystack
    leaked = sorted(n for n in _needles(secured_kafka, password) if n in haystack)
    assert leaked == []
