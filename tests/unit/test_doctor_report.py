"""The doctor without a broker: step order and skipping, the table, JSON, step 1 and 8."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.cli.launcher import InvokeTarget
from runtime.doctor.checks import check_configuration, check_function
from runtime.doctor.model import CheckResult, DoctorInputs, DoctorReport, Findings, Status
from runtime.doctor.report import STEPS, Step, run_doctor
from tests.unit.pki_factory import make_pki, pkcs8, pkcs8_pbes2

PASSWORD = "k3y-Pa55word"


def _inputs(tmp_path: Path, doc: dict[str, Any], **kwargs: Any) -> DoctorInputs:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    target = InvokeTarget(handler="tests.unit.sample_handlers:echo")
    return DoctorInputs(path, kwargs.pop("target", target), **kwargs)


def _doc(*access: tuple[str, str], **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "FunctionName": "fn",
        "Topics": ["orders"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1:9096"]}},
        "SourceAccessConfigurations": [{"Type": t, "URI": u} for t, u in access],
    }
    doc.update(fields)
    return doc


def _secret(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / f"secret-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return f"file://{path}"


def _only_config(inputs: DoctorInputs) -> DoctorReport:
    function = next(step for step in STEPS if step.title == "function")
    return run_doctor(inputs, [STEPS[0], function])


# --- orchestration ----------------------------------------------------------------------


def _step(number: int, status: Status, needs: tuple[int, ...] = ()) -> Step:
    def check(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
        return [CheckResult(number, f"check {number}", status, "detail")]

    return Step(number, f"step {number}", check, needs)


def test_a_failed_step_skips_the_steps_that_need_it(tmp_path: Path) -> None:
    steps = [
        _step(1, Status.PASS),
        _step(2, Status.FAIL, (1,)),
        _step(3, Status.PASS, (1, 2)),
        _step(4, Status.PASS, (3,)),  # needs a skipped step: skipped too
        _step(5, Status.WARN, (1,)),
    ]
    report = run_doctor(DoctorInputs(tmp_path / "m.json"), steps)
    assert [(r.step, r.status) for r in report.results] == [
        (1, Status.PASS),
        (2, Status.FAIL),
        (3, Status.SKIP),
        (4, Status.SKIP),
        (5, Status.WARN),
    ]
    assert report.results[2].detail == "not run: step 2 did not pass"
    assert not report.ok


def test_a_crashing_check_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    def crashes(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
        raise RuntimeError("boom")

    report = run_doctor(DoctorInputs(tmp_path / "m.json"), [Step(1, "bad", crashes)])
    assert [(r.status, r.detail) for r in report.results] == [
        (Status.FAIL, "the check itself failed: RuntimeError")
    ]


def test_warnings_and_skips_alone_are_ok() -> None:
    rows = (
        CheckResult(1, "a", Status.WARN, "w"),
        CheckResult(2, "b", Status.SKIP, "s"),
        CheckResult(3, "c", Status.PASS, "p"),
    )
    assert DoctorReport("m.json", rows).ok


# --- output -----------------------------------------------------------------------------


def test_the_table_has_one_column_per_field_and_a_verdict() -> None:
    rows = (
        CheckResult(1, "configuration", Status.PASS, "valid mapping"),
        CheckResult(
            4,
            "authentication",
            Status.FAIL,
            "as User:alice: SASL authentication error",
            "EVENT_SOURCE_AUTHN_ERROR: PROBLEM: SASL authentication failed",
            "check the password",
        ),
    )
    lines = DoctorReport("m.json", rows).render(width=140).splitlines()
    assert lines[0] == "kafka-esm doctor: m.json"
    assert lines[2].split() == ["#", "CHECK", "RESULT", "AWS", "ERROR", "FIX"]
    assert lines[4].split()[:3] == ["1", "configuration", "PASS"]
    failed = lines[5]
    assert failed.split()[:3] == ["4", "authentication", "FAIL"]
    assert "EVENT_SOURCE_AUTHN_ERROR:" in failed and "check the password" in failed
    assert lines[-1] == "FAILED: 1 failed, 0 warnings, 1 passed"


def test_json_names_every_field() -> None:
    row = CheckResult(
        5, "ACL Read Group", Status.FAIL, "denied", "EVENT_SOURCE_AUTHZ_ERROR", "grant"
    )
    document = json.loads(DoctorReport("m.json", (row,)).to_json())
    assert document == {
        "mapping": "m.json",
        "ok": False,
        "checks": [
            {
                "step": 5,
                "check": "ACL Read Group",
                "status": "fail",
                "detail": "denied",
                "awsError": "EVENT_SOURCE_AUTHZ_ERROR",
                "fix": "grant",
            }
        ],
    }


# --- step 1: configuration, and step 8 for a local handler ------------------------------


def test_an_unreadable_mapping_fails_step_1(tmp_path: Path) -> None:
    report = run_doctor(DoctorInputs(tmp_path / "absent.json"))
    assert report.results[0].status is Status.FAIL
    assert "absent.json" in report.results[0].detail
    assert {r.status for r in report.results[1:]} == {Status.SKIP}


def test_unsupported_authentication_fails_step_1(tmp_path: Path) -> None:
    doc = _doc(("OAUTHBEARER_AUTH", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"))
    report = _only_config(_inputs(tmp_path, doc))
    security = next(r for r in report.results if r.check == "security")
    assert security.status is Status.FAIL and "OAUTHBEARER_AUTH" in security.detail


def test_secret_problems_name_fields_and_awss_message(tmp_path: Path) -> None:
    pki = make_pki()
    client = {"certificate": pki.chain(), "privateKey": pkcs8(make_pki().leaf.key)}
    doc = _doc(("CLIENT_CERTIFICATE_TLS_AUTH", _secret(tmp_path, client)))
    found = Findings()
    rows = check_configuration(_inputs(tmp_path, doc), found)
    secret = next(r for r in rows if r.check == "auth secret")
    assert secret.status is Status.FAIL
    assert "privateKey: does not match the public key of certificate[0]" in secret.detail
    assert secret.aws_error == (
        "EVENT_SOURCE_AUTHN_ERROR: PROBLEM: Provided certificate or private key is invalid"
    )
    assert found.settings == {}  # nothing to connect with


def test_a_working_configuration_fills_the_settings_and_warns_about_local_files(
    tmp_path: Path,
) -> None:
    pki = make_pki()
    client = {
        "certificate": pki.chain(),
        "privateKey": pkcs8_pbes2(pki.leaf.key, PASSWORD),
        "privateKeyPassword": PASSWORD,
    }
    doc = _doc(("CLIENT_CERTIFICATE_TLS_AUTH", _secret(tmp_path, client)))
    found = Findings()
    rows = check_configuration(_inputs(tmp_path, doc), found)
    statuses = {r.check: r.status for r in rows}
    assert statuses == {
        "configuration": Status.PASS,
        "AWS compatibility": Status.WARN,  # file:// secrets
        "security": Status.PASS,
        "auth secret": Status.WARN,  # PBES2: readable here, refused by AWS
    }
    assert found.settings["security.protocol"] == "SSL"
    assert found.settings["ssl.key.pem"] == pkcs8(pki.leaf.key)


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        ("tests.unit.sample_handlers:echo", Status.PASS),
        ("tests.unit.sample_handlers:nope", Status.FAIL),
    ],
)
def test_step_8_loads_a_local_handler(tmp_path: Path, handler: str, status: Status) -> None:
    inputs = _inputs(tmp_path, _doc(), target=InvokeTarget(handler=handler))
    found = Findings()
    check_configuration(inputs, found)
    assert [r.status for r in check_function(inputs, found)] == [status]
