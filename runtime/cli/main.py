"""``kafka-esm``: the command line of the poller and of the local cluster.

Each sub-command lives in its own module with two functions, ``add_arguments(parser)``
and ``run(args) -> exit code``; this module only lists them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Protocol

from runtime.cli import devtools, health, serve, status
from runtime.cli import doctor as doctor_command
from runtime.cli import invoke as invoke_command
from runtime.cli import run as run_command

demo = devtools.load("demo", "demo")
local_kafka_commands = devtools.load("local_kafka.commands", "local-kafka")
generate_event = devtools.load("generate_event", "generate-event")


class Command(Protocol):
    """What a sub-command module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser, /) -> None:
        """Register the sub-command's flags."""

    def run(self, args: argparse.Namespace, /) -> int:
        """Carry it out; return the exit code."""


COMMANDS: tuple[tuple[str, str, Command], ...] = (
    ("run", "run a mapping definition: poll Kafka, invoke the function", run_command),
    ("demo", "local Kafka + sample records + a mapping with a sample handler", demo),
    ("doctor", "preflight a mapping: network, TLS, sign-in, ACLs, topic, group, function",
     doctor_command),
    ("status", "live table: per-partition offsets, lag, records/s, state", status),
    ("serve", "Lambda's event-source-mapping API on this machine, one poller per mapping",
     serve),
    ("health", "exit 0 when the poller's heartbeat is fresh (container HEALTHCHECK)", health),
    ("local-kafka", "a real local Apache Kafka for development and tests", local_kafka_commands),
    ("generate-event", "print the event the poller sends for records you give (no broker)",
     generate_event),
    ("invoke", "call the function once with an event file, as the poller would", invoke_command),
)  # fmt: skip


BROKEN_PIPE_EXIT = 141
"""128 + SIGPIPE, what a shell reports for a writer whose reader went away (``| head``)."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` states each flag's default, unless there is none or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default: Any = action.default
        shown = default not in (None, False, [], argparse.SUPPRESS)
        if shown and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text


def version() -> str:
    """The installed distribution's version (``0+unknown`` when run from a bare tree)."""
    try:
        return metadata.version("constructs-kafka")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each sub-command's module registers its own flags."""
    parser = argparse.ArgumentParser(
        prog="kafka-esm",
        description="Lambda's self-managed Kafka event source mapping, run anywhere.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary, module in COMMANDS:
        command = commands.add_parser(
            name, help=summary, description=summary, formatter_class=DefaultsHelpFormatter
        )
        module.add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kafka-esm`` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # run --processes starts members
    module = next(module for name, _, module in COMMANDS if name == args.command)
    try:
        return module.run(args)
    except BrokenPipeError:
        # The reader left (``kafka-esm local-kafka status | head -1``): not an error to
        # report, and Python must not try again to flush into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
