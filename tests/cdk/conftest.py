"""Helpers for the CDK tests: stacks, a function, cfn-lint and cdk-nag runs.

jsii warns loudly on Node 20 (the machines' version); silence it before aws_cdk loads.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from cfnlint.api import ManualArgs, lint

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ENV = cdk.Environment(account=ACCOUNT, region=REGION)
SERVERS = ["b-1.kafka.example.com:9096", "b-2.kafka.example.com:9096"]


def new_stack(name: str = "Test", app: cdk.App | None = None) -> cdk.Stack:
    app = app or cdk.App()
    app.node.set_context(
        f"availability-zones:account={ACCOUNT}:region={REGION}", [f"{REGION}a", f"{REGION}b"]
    )
    return cdk.Stack(app, name, env=ENV)


def new_function(
    scope: cdk.Stack, name: str = "Fn", timeout: cdk.Duration | None = None
) -> lambda_.Function:
    return lambda_.Function(
        scope,
        name,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
        timeout=timeout,
    )


def cfn_lint(template: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) of cfn-lint on a template: each the path, then the finding."""
    matches = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
    lines = [(m.rule.id, f"{'/'.join(map(str, m.path))} {m}") for m in matches]
    errors = [line for rule, line in lines if rule.startswith("E")]
    warnings = [line for rule, line in lines if rule.startswith("W")]
    return errors, warnings


NOT_THE_LIBRARY = re.compile(r"^Resources/(Consumer|Fn|Vpc|AccessLogs)[A-Za-z0-9]*[/ ]")
"""Logical ids of the apps' and tests' own aws-cdk-lib resources (the function, the VPC,
the log bucket): their cfn-lint warnings (W3005 role dependency, W3010 literal AZs,
W3045 bucket ACL) are aws-cdk-lib's, not this library's."""


def library_warnings(warnings: list[str]) -> list[str]:
    """The cfn-lint warnings on this library's own resources."""
    return [w for w in warnings if not NOT_THE_LIBRARY.search(w)]


def nag_report(outdir: Path) -> dict[str, Any]:
    """cdk-nag's AwsSolutions plugin report of a synthesized assembly."""
    report = json.loads((outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    return plugin


def synth_with_nag(app: cdk.App) -> tuple[cdk.cx_api.CloudAssembly | None, str]:
    """Synthesize with cdk-nag's AwsSolutions checks; (assembly, "") or (None, error)."""
    from cdk_nag import AwsSolutionsChecks

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        return app.synth(), ""
    except Exception as error:  # jsii turns the validation failure into a RuntimeError
        return None, str(error)


@pytest.fixture
def stack() -> cdk.Stack:
    return new_stack()


@pytest.fixture
def make_stack() -> Callable[..., cdk.Stack]:
    return new_stack


def new_trigger(stack: cdk.Stack, construct_id: str = "Trigger", **props: Any) -> Any:
    """A trigger of ``orders`` on ``SERVERS`` from LATEST, with ``props`` on top (a new
    function unless one is given)."""
    from constructs_kafka import SelfManagedKafkaTrigger, StartingPosition

    defaults: dict[str, Any] = {
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "starting_position": StartingPosition.LATEST,
    }
    if "function" not in props:
        defaults["function"] = new_function(stack, f"{construct_id}Fn")
    return SelfManagedKafkaTrigger(stack, construct_id, **{**defaults, **props})
