"""The example app: synthesizes without credentials, lint- and nag-clean, no secrets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

from tests.cdk.conftest import cfn_lint, library_warnings, nag_report

pytestmark = pytest.mark.cdk

REPO = Path(__file__).resolve().parents[2]
STACKS = ("KafkaScramInternet", "KafkaVpcMtls", "KafkaS3OnFailure", "KafkaFargatePoller")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(REPO))
    import app as example

    out = tmp_path_factory.mktemp("app")
    example.build_app(str(out)).synth()  # build_app adds cdk-nag's AwsSolutions checks
    return out


def template(outdir: Path, name: str) -> dict:
    return json.loads((outdir / f"{name}.template.json").read_text())


def test_every_stack_is_synthesized_without_lookups(outdir: Path) -> None:
    assert sorted(p.name for p in outdir.glob("*.template.json")) == sorted(
        f"{s}.template.json" for s in STACKS
    )
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert "missing" not in manifest  # no context lookup, so no credentials needed


@pytest.mark.parametrize("name", STACKS)
def test_templates_pass_cfn_lint(outdir: Path, name: str) -> None:
    errors, warnings = cfn_lint(template(outdir, name))
    assert errors == []
    assert library_warnings(warnings) == []


def test_cdk_nag_finds_nothing_unacknowledged(outdir: Path) -> None:
    report = nag_report(outdir)
    assert report["violations"] == []
    rules = {v["ruleName"] for v in report["suppressedViolations"]}
    assert {"AwsSolutions-IAM5[Resource::*]", "AwsSolutions-SMG4"} <= rules
    assert all(len(v["reason"]) > 40 for v in report["suppressedViolations"])


def test_no_secret_value_in_any_template(outdir: Path) -> None:
    """Passwords are generated; only public certificates are ever inlined."""
    for name in STACKS:
        text = (outdir / f"{name}.template.json").read_text()
        assert "PRIVATE KEY" not in text
        for resource in template(outdir, name)["Resources"].values():
            if resource["Type"] != "AWS::SecretsManager::Secret":
                continue
            props = resource["Properties"]
            if "SecretString" in props:
                assert set(json.loads(props["SecretString"])) == {"certificate"}
            else:
                generated = props["GenerateSecretString"]
                assert generated["GenerateStringKey"] in {"password", "privateKey"}
                assert "password" not in json.loads(generated["SecretStringTemplate"])


def test_python_app_py_synthesizes_with_cdk_nag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env={
            "CDK_OUTDIR": str(tmp_path),
            "PATH": "/usr/bin:/bin",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(tmp_path.glob("*.template.json"))) == len(STACKS)
    report = nag_report(tmp_path)  # written because app.py itself applies cdk-nag
    assert report["violations"] == []
    assert len(report["suppressedViolations"]) > 0


def test_min_version_constraints_are_the_declared_lower_bounds() -> None:
    """`make min-versions` installs constraints-min.txt: each pin is pyproject's minimum."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [
        *project["dependencies"],
        *project["optional-dependencies"]["cdk"],
        *project["optional-dependencies"]["dev"],
    ]
    lower = {}
    for spec in declared:
        found = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*>=\s*([0-9][0-9.]*)", spec)
        if found:
            lower[found.group(1).lower()] = Version(found.group(3))
    pins = {}
    for line in (REPO / "constraints-min.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower()] = Version(version)
    assert {name: lower.get(name) for name in pins} == pins
    assert {"aws-cdk-lib", "constructs", "cdk-nag"} <= set(pins)
