"""``kafka-esm doctor``: a preflight of a mapping before it is deployed or run."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from runtime.cli.launcher import InvokeTarget
from runtime.cli.options import (
    add_consumer_config_argument,
    add_invoke_target_arguments,
    add_mapping_argument,
    parse_settings,
)
from runtime.cli.terminal import painter_for, width_of
from runtime.doctor.model import DoctorInputs
from runtime.doctor.report import run_doctor
from runtime.invokers import MAX_TIMEOUT_S
from runtime.security.plan import ALLOW_INSECURE_SASL_ENV, SecurityOptions

FAILED_EXIT = 1
"""Exit code when at least one check failed (warnings alone exit 0)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm doctor``."""
    add_mapping_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_invoke_target_arguments(parser)
    add_consumer_config_argument(parser)
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds each network probe may take"
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run every check, print the table (or JSON); exit 1 when a check failed."""
    try:
        overrides = parse_settings(args.consumer_config)
    except ValueError as error:
        print(f"kafka-esm doctor: {error}", file=err)
        return 2
    inputs = DoctorInputs(
        mapping_path=args.mapping,
        target=InvokeTarget(
            args.handler,
            args.endpoint_url,
            args.endpoint_kind,
            args.qualifier,
            args.region,
            MAX_TIMEOUT_S,
        ),
        overrides=overrides,
        security=SecurityOptions.from_env(),
        timeout_s=args.timeout,
    )
    report = run_doctor(inputs)
    if args.json:
        print(report.to_json(), file=out)
    else:
        print(report.render(width_of(out), painter_for(out)), file=out)
    if not args.json and inputs.security.allow_insecure_sasl:
        print(f"note: {ALLOW_INSECURE_SASL_ENV} is set (local use only)", file=err)
    return 0 if report.ok else FAILED_EXIT
