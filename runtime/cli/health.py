"""``kafka-esm health``: the container HEALTHCHECK, exit 0 while the heartbeat is fresh."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from runtime.observability.health import (
    DEFAULT_MAX_AGE_S,
    ENV_VAR,
    UNHEALTHY_EXIT,
    check,
    health_file,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm health``."""
    parser.add_argument("--file", type=Path, default=None, help=f"heartbeat file (${ENV_VAR})")
    parser.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE_S,
        help="seconds after which a heartbeat is stale",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Exit 0 when healthy, 1 otherwise (the HEALTHCHECK contract)."""
    path = args.file or health_file()
    if path is None:
        print(f"unhealthy: no heartbeat file (set {ENV_VAR} or --file)", file=out)
        return UNHEALTHY_EXIT
    healthy, reason = check(path, args.max_age)
    print(("healthy: " if healthy else "unhealthy: ") + reason, file=out)
    return 0 if healthy else UNHEALTHY_EXIT
