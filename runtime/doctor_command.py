"""``kafka-esm doctor``: a preflight of a mapping before it is deployed or run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from runtime.doctor import run_doctor
from runtime.doctor_model import DoctorInputs
from runtime.invokers import MAX_TIMEOUT_S
from runtime.launcher import InvokeTarget
from runtime.mapping import ENV_VAR
from runtime.security import ALLOW_INSECURE_SASL_ENV, SecurityOptions

FAILED_EXIT = 1
"""Exit code when at least one check failed (warnings alone exit 0)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm doctor``."""
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help=f"CreateEventSourceMapping JSON file (default: ${ENV_VAR})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--handler", help="check a local Python handler 'module:function'")
    target.add_argument("--endpoint-url", help="Lambda API endpoint (emulator, LocalStack)")
    parser.add_argument(
        "--endpoint-kind",
        choices=["lambda", "invoke-http"],
        default="lambda",
        help="'invoke-http' for a bare Invoke API such as the Runtime Interface Emulator",
    )
    parser.add_argument("--qualifier", help="function version or alias")
    parser.add_argument("--region", help="AWS region of the function")
    parser.add_argument(
        "--consumer-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka setting, as given to 'kafka-esm run' (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds each network probe may take"
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run every check, print the table (or JSON); exit 1 when a check failed."""
    try:
        overrides = dict(_setting(item) for item in args.consumer_config)
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
    print(report.to_json() if args.json else report.render(), file=out)
    if not args.json and inputs.security.allow_insecure_sasl:
        print(f"note: {ALLOW_INSECURE_SASL_ENV} is set (local use only)", file=err)
    return 0 if report.ok else FAILED_EXIT


def _setting(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--consumer-config {item!r} must be KEY=VALUE")
    return key.strip(), value
