"""``kafka-esm``: the command line of the poller and of the local cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runtime import demo, doctor_command, health, run_command, status_command
from runtime.local_kafka import commands as local_kafka_commands


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each sub-command's module registers its own flags."""
    parser = argparse.ArgumentParser(
        prog="kafka-esm",
        description="Lambda's self-managed Kafka event source mapping, run anywhere.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local = commands.add_parser(
        "local-kafka", help="a real local Apache Kafka for development and tests"
    )
    local_kafka_commands.add_arguments(local)
    run_parser = commands.add_parser(
        "run", help="run a mapping definition: poll Kafka, invoke the function"
    )
    run_command.add_arguments(run_parser)
    demo_parser = commands.add_parser(
        "demo", help="local Kafka + sample records + a mapping with a sample handler"
    )
    demo.add_arguments(demo_parser)
    health_parser = commands.add_parser(
        "health", help="exit 0 when the poller's heartbeat is fresh (container HEALTHCHECK)"
    )
    health.add_arguments(health_parser)
    status_parser = commands.add_parser(
        "status", help="live table: per-partition offsets, lag, records/s, state"
    )
    status_command.add_arguments(status_parser)
    doctor_parser = commands.add_parser(
        "doctor", help="preflight a mapping: network, TLS, sign-in, ACLs, topic, group, function"
    )
    doctor_command.add_arguments(doctor_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kafka-esm`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "local-kafka":
        return local_kafka_commands.run(args)
    if args.command == "run":
        return run_command.run(args)
    if args.command == "demo":
        return demo.run(args)
    if args.command == "health":
        return health.run(args)
    if args.command == "status":
        return status_command.run(args)
    if args.command == "doctor":
        return doctor_command.run(args)
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects the rest


if __name__ == "__main__":
    sys.exit(main())
