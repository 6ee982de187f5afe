"""``kafka-esm doctor`` against the real broker: each check fails for the right reason."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AclPermissionType
from moto import mock_aws

from runtime.cli.launcher import InvokeTarget
from runtime.definition.model import AclOperation, AclRequirement, AclResourceType, parse_mapping
from runtime.devtools.local_kafka import ClusterInfo
from runtime.doctor.model import CheckResult, DoctorInputs, DoctorReport, Status
from runtime.doctor.report import run_doctor
from tests.cli_helpers import KAFKA_ESM, kafka_esm, run_kafka_esm
from tests.conftest import REPO_ROOT
from tests.kafka_helpers import produce
from tests.security_helpers import (
    acl_bindings,
    client_certificate_doc,
    grant,
    grant_all_but,
    mapping_request,
    relay,
    root_ca_doc,
    scram_user,
    write_secret,
)

pytestmark = pytest.mark.integration

HANDLER = InvokeTarget(handler="tests.unit.sample_handlers:echo")
AUTHN = "EVENT_SOURCE_AUTHN_ERROR: PROBLEM: "
AUTHZ = "EVENT_SOURCE_AUTHZ_ERROR: PROBLEM: Cluster failed to authorize Lambda"


def _doctor(
    doc: dict[str, Any],
    tmp_path: Path,
    target: InvokeTarget = HANDLER,
    overrides: dict[str, str] | None = None,
    timeout_s: float = 10,
) -> DoctorReport:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    inputs = DoctorInputs(path, target, overrides or {}, timeout_s=timeout_s)
    return run_doctor(inputs)


def _row(report: DoctorReport, check: str) -> CheckResult:
    rows = [r for r in report.results if r.check == check]
    assert len(rows) == 1, [(r.check, r.status) for r in report.results]
    return rows[0]


def _failed(report: DoctorReport) -> list[str]:
    return [r.check for r in report.results if r.status is Status.FAIL]


def _skipped_steps(report: DoctorReport) -> list[int]:
    return [r.step for r in report.results if r.status is Status.SKIP]


def _root_ca(kafka: ClusterInfo, tmp_path: Path) -> tuple[str, str]:
    """The SERVER_ROOT_CA_CERTIFICATE access configuration of ``kafka``'s own CA."""
    return ("SERVER_ROOT_CA_CERTIFICATE", write_secret(tmp_path, root_ca_doc(kafka)))


def _client_certificate(
    kafka: ClusterInfo, tmp_path: Path, client: str, key_form: str = "plain"
) -> tuple[str, str]:
    """The CLIENT_CERTIFICATE_TLS_AUTH access configuration of one of the PKI's clients."""
    doc = client_certificate_doc(kafka, client, key_form)
    return ("CLIENT_CERTIFICATE_TLS_AUTH", write_secret(tmp_path, doc))


@pytest.fixture
def names(topic_factory: Callable[..., str], unique: Callable[[str], str]) -> tuple[str, str]:
    return topic_factory(), unique("g")


@pytest.fixture
def admin_sasl(secured_kafka: ClusterInfo, tmp_path: Path) -> list[tuple[str, str]]:
    """SourceAccessConfigurations of a working SCRAM sign-in as the super user."""
    login = {"username": "admin", "password": secured_kafka.passwords["admin"]}
    return [
        ("SASL_SCRAM_512_AUTH", write_secret(tmp_path, login)),
        _root_ca(secured_kafka, tmp_path),
    ]


def test_a_working_mapping_passes_every_step(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    report = _doctor(
        mapping_request(secured_kafka.address("SASL_SSL"), *names, admin_sasl), tmp_path
    )
    assert report.ok, report.render()
    assert sorted({r.step for r in report.results}) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert _row(report, "authentication").detail.startswith("signed in as User:admin")


# --- 1. configuration -------------------------------------------------------------------


def test_an_invalid_mapping_fails_step_1_and_skips_the_rest(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    doc = mapping_request(secured_kafka.address("SASL_SSL"), *names, [], BatchSize=0)
    report = _doctor(doc, tmp_path)
    row = _row(report, "configuration")
    assert row.status is Status.FAIL and "BatchSize" in row.detail
    assert "InvalidParameterValueException" in (row.aws_error or "")
    assert _skipped_steps(report) == [2, 3, 4, 5, 6, 7, 8, 9]  # 9: the schema registry


def test_a_malformed_key_fails_step_1_with_aws_message(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    client = client_certificate_doc(secured_kafka, "admin")
    client["privateKey"] = client["privateKey"].replace("PRIVATE KEY", "RSA PRIVATE KEY")
    access = [("CLIENT_CERTIFICATE_TLS_AUTH", write_secret(tmp_path, client))]
    report = _doctor(mapping_request(secured_kafka.address("SSL"), *names, access), tmp_path)
    row = _row(report, "auth secret")
    assert row.status is Status.FAIL and "privateKey" in row.detail
    assert row.aws_error == AUTHN + "Provided certificate or private key is invalid"
    assert 2 in _skipped_steps(report)


def test_a_pbes2_key_works_here_but_warns_that_aws_refuses_it(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    access = [
        _client_certificate(secured_kafka, tmp_path, "admin", "pbes2"),
        _root_ca(secured_kafka, tmp_path),
    ]
    report = _doctor(mapping_request(secured_kafka.address("SSL"), *names, access), tmp_path)
    row = _row(report, "auth secret")
    assert row.status is Status.WARN and "PBES2" in row.detail
    assert row.aws_error == AUTHN + "Provided certificate or private key is invalid"
    assert report.ok, report.render()


def test_sasl_without_tls_fails_step_1(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    doc = mapping_request(secured_kafka.address("SASL_SSL"), *names, admin_sasl[:1])
    report = _doctor(doc, tmp_path, overrides={"security.protocol": "SASL_PLAINTEXT"})
    row = _row(report, "security")
    assert row.status is Status.FAIL and "without TLS" in row.detail


# --- 2. network -------------------------------------------------------------------------


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    ("server", "reason"),
    [(None, "Connection refused"), ("no-such-host.invalid:9092", "DNS cannot resolve")],
)
def test_an_unreachable_server_fails_step_2(
    tmp_path: Path, names: tuple[str, str], server: str | None, reason: str
) -> None:
    address = server or _closed_port()
    report = _doctor(mapping_request(address, *names, []), tmp_path)
    row = _row(report, f"reach {address}")
    assert row.status is Status.FAIL and reason in row.detail
    assert _skipped_steps(report) == [3, 4, 5, 6, 7]


# --- 3. TLS -----------------------------------------------------------------------------


def test_the_wrong_root_ca_fails_step_3(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    access = [
        admin_sasl[0],
        (
            "SERVER_ROOT_CA_CERTIFICATE",
            write_secret(tmp_path, root_ca_doc(secured_kafka, other=True)),
        ),
    ]
    server = secured_kafka.address("SASL_SSL")
    report = _doctor(mapping_request(server, *names, access), tmp_path)
    row = _row(report, f"TLS {server}")
    assert row.status is Status.FAIL
    assert "not trusted by the root CA of SERVER_ROOT_CA_CERTIFICATE" in row.detail
    assert "unrelated CA" in row.detail
    assert row.aws_error == AUTHN + "Lambda failed to authenticate server"
    assert _skipped_steps(report) == [4, 5, 6, 7]


def test_a_hostname_outside_the_certificate_san_fails_step_3(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    with relay(secured_kafka.address("SASL_SSL")) as outside:
        report = _doctor(mapping_request(outside.address, *names, admin_sasl), tmp_path)
    row = _row(report, f"TLS {outside.address}")
    assert row.status is Status.FAIL
    assert "'127.0.0.2' is not in the broker certificate's SAN (localhost, 127.0.0.1)" in row.detail
    assert row.aws_error == AUTHN + "Lambda failed to authenticate server"


def test_tls_to_a_plaintext_listener_fails_step_3(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    server = secured_kafka.address("PLAINTEXT")
    report = _doctor(mapping_request(server, *names, admin_sasl), tmp_path)
    row = _row(report, f"TLS {server}")
    assert row.status is Status.FAIL and "may not speak TLS" in row.detail


# --- 4. authentication ------------------------------------------------------------------


def test_a_wrong_password_fails_step_4(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    login = {"username": "alice", "password": "wrong"}
    access = [("SASL_SCRAM_256_AUTH", write_secret(tmp_path, login)), admin_sasl[1]]
    report = _doctor(mapping_request(secured_kafka.address("SASL_SSL"), *names, access), tmp_path)
    row = _row(report, "authentication")
    assert row.status is Status.FAIL
    assert row.aws_error == AUTHN + "SASL authentication failed"
    assert _skipped_steps(report) == [5, 6, 7]


@pytest.mark.parametrize("client", ["mallory", None])
def test_an_untrusted_or_missing_client_certificate_fails_step_4(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], client: str | None
) -> None:
    access = [_root_ca(secured_kafka, tmp_path)]
    if client:
        access.append(_client_certificate(secured_kafka, tmp_path, client))
    report = _doctor(mapping_request(secured_kafka.address("SSL"), *names, access), tmp_path)
    row = _row(report, "authentication")
    assert row.status is Status.FAIL
    assert row.aws_error == AUTHN + "Server failed to authenticate Lambda"


def test_mtls_against_a_sasl_listener_fails_step_4_with_a_hint(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    access = [
        _client_certificate(secured_kafka, tmp_path, "admin"),
        _root_ca(secured_kafka, tmp_path),
    ]
    doc = mapping_request(secured_kafka.address("SASL_SSL"), *names, access)
    report = _doctor(doc, tmp_path, timeout_s=4)
    row = _row(report, "authentication")
    assert (
        row.status is Status.FAIL and "closed the connection after the TLS handshake" in row.detail
    )
    assert row.aws_error == AUTHN + "Server failed to authenticate Lambda"


# --- 5. ACLs ----------------------------------------------------------------------------


def _user_access(kafka: ClusterInfo, tmp_path: Path) -> tuple[str, list[tuple[str, str]]]:
    user, password = scram_user(kafka)
    login = {"username": user, "password": password}
    return f"User:{user}", [
        ("SASL_SCRAM_512_AUTH", write_secret(tmp_path, login)),
        _root_ca(kafka, tmp_path),
    ]


@pytest.mark.parametrize(
    ("missing", "fails"),
    [
        ("DescribeConfigs Cluster", True),
        ("Describe Group", False),  # Kafka grants Describe with Read
        ("Read Group", True),
        ("Describe Topic", False),
        ("Read Topic", True),
    ],
)
def test_each_required_acl_missing(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str], missing: str, fails: bool
) -> None:
    principal, access = _user_access(secured_kafka, tmp_path)
    doc = mapping_request(secured_kafka.address("SASL_SSL"), *names, access)
    grant_all_but(secured_kafka, principal, parse_mapping(doc), missing)
    produce(secured_kafka.plaintext_config(), names[0], [b"x"])
    report = _doctor(doc, tmp_path)
    row = _row(report, f"ACL {missing}")
    if fails:
        assert row.status is Status.FAIL, report.render()
        assert row.aws_error == AUTHZ
        operation, resource = missing.split()
        assert f"--allow-principal {principal} --operation {operation}" in (row.fix or "")
        assert _failed(report) == [f"ACL {missing}"] or resource != "Cluster"
    else:
        assert row.status is Status.PASS and "implied by Read" in row.detail
        assert report.ok, report.render()


def test_an_mtls_acl_fix_names_the_mapped_principal_and_works_as_given(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    access = [
        _client_certificate(secured_kafka, tmp_path, "alice"),
        _root_ca(secured_kafka, tmp_path),
    ]
    doc = mapping_request(secured_kafka.address("SSL"), *names, access)
    produce(secured_kafka.plaintext_config(), names[0], [b"x"])
    before = _doctor(doc, tmp_path)
    assert "signed in as User:alice " in _row(before, "authentication").detail
    fix = _row(before, "ACL DescribeConfigs Cluster").fix or ""
    helper = fix.split(" (every ACL")[0]
    mapping = tmp_path / "mapping.json"
    assert helper == f"kafka-esm local-kafka acl grant --mapping {mapping} --principal User:alice"
    assert f"kafka-acls.sh --bootstrap-server {secured_kafka.address('SSL')} " in fix
    granted = run_kafka_esm([*KAFKA_ESM, *helper.split()[1:], "--home", str(secured_kafka.home)])
    assert granted.returncode == 0, granted.stderr
    after = _doctor(doc, tmp_path)
    assert after.ok, after.render()


def test_the_principal_follows_the_brokers_mapping_rules(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    access = [
        _client_certificate(secured_kafka, tmp_path, "admin"),
        _root_ca(secured_kafka, tmp_path),
    ]
    report = _doctor(mapping_request(secured_kafka.address("SSL"), *names, access), tmp_path)
    # admin may DescribeConfigs, so the rules come from the broker (see test_principal.py)
    assert "signed in as User:admin " in _row(report, "authentication").detail


@pytest.mark.parametrize("resource", [AclResourceType.GROUP, AclResourceType.TOPIC])
def test_a_denied_describe_fails_its_acl_check(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    resource: AclResourceType,
) -> None:
    principal, access = _user_access(secured_kafka, tmp_path)
    doc = mapping_request(secured_kafka.address("SASL_SSL"), *names, access)
    grant_all_but(secured_kafka, principal, parse_mapping(doc))
    name = names[1] if resource is AclResourceType.GROUP else names[0]
    denied = AclRequirement(resource, name, AclOperation.DESCRIBE)
    grant(secured_kafka, acl_bindings(principal, [denied], AclPermissionType.DENY))
    report = _doctor(doc, tmp_path)
    row = _row(report, f"ACL Describe {resource.value}")
    assert row.status is Status.FAIL and row.aws_error == AUTHZ
    if resource is AclResourceType.GROUP:  # the group's offsets cannot be read either
        assert _row(report, "group").status is Status.FAIL
    else:  # nor can the topic be seen
        assert _row(report, "topic").status is Status.SKIP


# --- 6. topic and 7. group --------------------------------------------------------------


def test_a_missing_topic_fails_step_6(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    unique: Callable[[str], str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    doc = mapping_request(
        secured_kafka.address("SASL_SSL"), unique("absent"), unique("g"), admin_sasl
    )
    report = _doctor(doc, tmp_path)
    row = _row(report, "topic")
    assert row.status is Status.FAIL and "does not exist" in row.detail
    assert _row(report, "ACL Read Topic").status is Status.SKIP


def test_step_7_reports_committed_offsets_and_running_members(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    topic, group = names
    produce(secured_kafka.plaintext_config(), topic, [b"a", b"b", b"c"])
    with _member(secured_kafka, topic, group, commit=1):
        report = _doctor(
            mapping_request(secured_kafka.address("SASL_SSL"), *names, admin_sasl), tmp_path
        )
    row = _row(report, "group")
    assert row.status is Status.WARN, report.render()
    assert f"{topic}-0=1 (lag 2)" in row.detail and "StartingPosition is ignored" in row.detail
    assert "share the partitions" in row.detail
    assert _row(report, "ACL Read Group").status is Status.PASS  # refused politely, not joined


@contextmanager
def _member(kafka: ClusterInfo, topic: str, group: str, commit: int) -> Iterator[Consumer]:
    """A running consumer of ``group`` that committed offset ``commit`` on partition 0."""
    consumer = Consumer(
        {
            **kafka.plaintext_config(),
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    consumer.subscribe([topic])
    try:
        for _ in range(150):
            consumer.poll(0.1)
            if consumer.assignment():
                break
        assert consumer.assignment(), "the member was not assigned"
        consumer.commit(offsets=[TopicPartition(topic, 0, commit)], asynchronous=False)
        yield consumer
    finally:
        consumer.close()


# --- 8. function ------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _deploy(name: str) -> None:
    role = boto3.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )


@pytest.mark.parametrize("deployed", [True, False])
def test_step_8_dry_runs_the_function(
    aws: None, tmp_path: Path, names: tuple[str, str], secured_kafka: ClusterInfo, deployed: bool
) -> None:
    if deployed:
        _deploy("security-test")
    report = _doctor(
        mapping_request(secured_kafka.address("PLAINTEXT"), *names, []), tmp_path, InvokeTarget()
    )
    row = _row(report, "function")
    if deployed:
        assert row.status is Status.PASS and "DryRun Invoke allowed" in row.detail
    else:
        assert row.status is Status.FAIL and "ResourceNotFoundException" in row.detail
        assert "ResourceNotFoundException" in (row.aws_error or "")


def test_step_8_fails_for_a_handler_that_does_not_load(
    secured_kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    doc = mapping_request(secured_kafka.address("PLAINTEXT"), *names, [])
    report = _doctor(doc, tmp_path, InvokeTarget(handler="tests.unit.sample_handlers:missing"))
    assert _row(report, "function").status is Status.FAIL


# --- the command ------------------------------------------------------------------------


def test_the_command_prints_a_table_and_json_and_exits_1_on_failure(
    secured_kafka: ClusterInfo,
    tmp_path: Path,
    names: tuple[str, str],
    admin_sasl: list[tuple[str, str]],
) -> None:
    login = {"username": "alice", "password": "wrong"}
    access = [("BASIC_AUTH", write_secret(tmp_path, login)), admin_sasl[1]]
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping_request(secured_kafka.address("SASL_SSL"), *names, access)))
    command = kafka_esm("doctor", path, "--handler", HANDLER.handler or "")
    table, as_json = (
        subprocess.run(
            [*command, *extra],
            check=False,
            cwd=REPO_ROOT,
            env={**os.environ, "COLUMNS": "140"},  # a table; a 100-column pipe gets blocks
            capture_output=True,
            text=True,
            timeout=120,
        )
        for extra in ([], ["--json"])
    )
    assert (table.returncode, as_json.returncode) == (1, 1), table.stderr
    header = table.stdout.splitlines()[2].split()
    assert header == ["#", "CHECK", "RESULT", "AWS", "ERROR", "FIX"]
    assert "EVENT_SOURCE_AUTHN_ERROR:" in table.stdout  # the exact message wraps in its cell
    assert table.stdout.rstrip().splitlines()[-1].startswith("FAILED: 1 failed")
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["check"] for c in failed] == ["authentication"]
    assert failed[0]["awsError"] == AUTHN + "SASL authentication failed"


# --- 7. Queue mode: the share group --------------------------------------------------------


def _queue_doc(kafka: ClusterInfo, topic: str, group: str) -> dict[str, Any]:
    return {
        "FunctionName": "doctor-queue",
        "Topics": [topic],
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap_servers]}
        },
        "SelfManagedKafkaEventSourceConfig": {"ConsumptionMode": "Queue", "ConsumerGroupId": group},
    }


def test_queue_mode_checks_the_share_group_and_its_lock_against_the_timeout(
    kafka: ClusterInfo, tmp_path: Path, names: tuple[str, str]
) -> None:
    from confluent_kafka.admin import AdminClient

    from runtime.pipeline.share_source import configure_share_group

    topic, group = names
    configure_share_group(
        AdminClient(kafka.plaintext_config()), group, {"share.record.lock.duration.ms": "20000"}
    )
    short = InvokeTarget(handler="tests.unit.sample_handlers:echo", timeout_s=10)
    row = _row(_doctor(_queue_doc(kafka, topic, group), tmp_path, short), "share group")
    assert row.status is Status.PASS, row
    assert "record lock 20000 ms (group " in row.detail
    long = InvokeTarget(handler="tests.unit.sample_handlers:echo", timeout_s=60)
    row = _row(_doctor(_queue_doc(kafka, topic, group), tmp_path, long), "share group")
    assert row.status is Status.WARN, row
    assert "20000 ms" in row.detail and "60000 ms" in row.detail
    assert row.fix is not None and "share.record.lock.duration.ms=60000" in row.fix
