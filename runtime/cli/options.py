"""Flags that several ``kafka-esm`` commands share, defined once so they read the same."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from runtime.definition.model import ENV_VAR


def add_mapping_argument(parser: argparse.ArgumentParser) -> None:
    """``--mapping FILE``, else the mapping JSON from the environment."""
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help=f"CreateEventSourceMapping JSON file (default: ${ENV_VAR})",
    )


def add_invoke_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Where batches go: a local handler or an endpoint, plus qualifier and region."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--handler", help="a local Python handler 'module:function'")
    target.add_argument("--endpoint-url", help="Lambda API endpoint (emulator, LocalStack)")
    parser.add_argument(
        "--endpoint-kind",
        choices=["lambda", "invoke-http", "rie"],
        default="lambda",
        help="'invoke-http': a bare Invoke API (sam local start-lambda); 'rie': a stock Lambda"
        " Runtime Interface Emulator (one function, at /functions/function/invocations)",
    )
    parser.add_argument("--qualifier", help="function version or alias to invoke")
    parser.add_argument(
        "--region",
        help="AWS region of the function (default: from the ARN or the AWS configuration)",
    )


def add_consumer_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--consumer-config KEY=VALUE``, repeatable: extra librdkafka settings."""
    parser.add_argument(
        "--consumer-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka setting (repeatable); the mapping's security is added",
    )


def parse_settings(items: Iterable[str]) -> dict[str, str]:
    """The ``--consumer-config`` values as a dict; ValueError names a malformed one."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--consumer-config {item!r} must be KEY=VALUE")
        settings[key.strip()] = value
    return settings
