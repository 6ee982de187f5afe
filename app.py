"""Example CDK app: synthesizes with ``python app.py`` or ``npx cdk synth``, no credentials.

The account and region are fixed example values from cdk.json's context, so the
templates are the same on every machine and no AWS lookup is ever made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk

HERE = Path(__file__).resolve().parent


def example_environment(app: cdk.App) -> cdk.Environment:
    """The example account and region: cdk.json context, also when run as ``python app.py``."""
    context = json.loads((HERE / "cdk.json").read_text())["context"]
    account = (
        app.node.try_get_context("constructs-kafka:account") or context["constructs-kafka:account"]
    )
    region = (
        app.node.try_get_context("constructs-kafka:region") or context["constructs-kafka:region"]
    )
    return cdk.Environment(account=account, region=region)


def build_app(outdir: str | None = None) -> cdk.App:
    """Every example stack of this library."""
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR"))
    env = example_environment(app)
    cdk.Stack(app, "KafkaExamplePlaceholder", env=env)  # replaced by the construct examples
    return app


if __name__ == "__main__":
    build_app().synth()
