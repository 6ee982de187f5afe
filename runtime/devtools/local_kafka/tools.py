"""``kafka-esm local-kafka topic | acl | produce``: a mapping's prerequisites, by command.

Topic auto-creation is off on the local broker (as on most production clusters) and
the secured listeners enforce ACLs, so a mapping written by hand needs its topic and
its ACLs first; these commands make both without AdminClient code.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from confluent_kafka import KafkaException

from runtime.cli.options import add_mapping_argument, number
from runtime.definition.model import load_mapping
from runtime.devtools.local_kafka import admin
from runtime.devtools.local_kafka.settings import ClusterInfo
from runtime.devtools.record_flags import FlagError, add_record_arguments, pairs, records_from_args

USAGE_EXIT = 2
REFUSED_EXIT = 1


class ToolError(Exception):
    """Bad input: one line for the user, exit 2."""


def add_topic_arguments(parser: argparse.ArgumentParser) -> None:
    """``topic create NAME [--partitions N] [--config KEY=VALUE]`` and ``topic list``."""
    parser.add_argument("operation", choices=("create", "list"), help="what to do")
    parser.add_argument("name", nargs="?", help="the topic (create)")
    parser.add_argument(
        "--partitions", type=number(int, 1, 10_000), default=1, help="partitions (create)"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="topic setting such as retention.ms=60000 (repeatable; create)",
    )


def add_acl_arguments(parser: argparse.ArgumentParser) -> None:
    """``acl grant --mapping M --principal P``: exactly the ACLs the mapping needs."""
    parser.add_argument("operation", choices=("grant",), help="what to do")
    add_mapping_argument(parser)
    parser.add_argument(
        "--principal",
        required=True,
        help="who the consumer authenticates as: User:<SASL user> or User:<certificate CN>",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the ACLs, create none")


def add_produce_arguments(parser: argparse.ArgumentParser) -> None:
    """``produce TOPIC [VALUE ...]`` or ``--file records.jsonl``: sample records."""
    parser.add_argument("topic", help="the topic to write to")
    add_record_arguments(parser)


def run(action: str, info: ClusterInfo, args: argparse.Namespace, out: TextIO) -> int:
    """Carry out ``topic``, ``acl`` or ``produce`` on the running cluster ``info``."""
    try:
        if action == "topic":
            return _topic(info, args, out)
        if action == "acl":
            return _acl(info, args, out)
        return _produce(info, args, out)
    except (ToolError, FlagError) as error:
        print(f"kafka-esm local-kafka {action}: {error}", file=sys.stderr)
        return USAGE_EXIT
    except KafkaException as error:
        print(f"kafka-esm local-kafka {action}: the broker refused: {error}", file=sys.stderr)
        return REFUSED_EXIT


# -- topic -------------------------------------------------------------------------------
def _topic(info: ClusterInfo, args: argparse.Namespace, out: TextIO) -> int:
    if args.operation == "list":
        topics = admin.list_topics(info)
        if args.json:
            print(json.dumps(topics), file=out)
        for name, partitions in topics.items() if not args.json else ():
            print(f"{name}  ({partitions} partition{'s' if partitions != 1 else ''})", file=out)
        return 0
    if not args.name:
        raise ToolError("topic create needs a NAME")
    config = dict(pairs(args.config, "--config"))
    admin.create_topic(info, args.name, args.partitions, config)
    print(f"created topic {args.name} ({args.partitions} partition(s))", file=out)
    return 0


# -- acl ---------------------------------------------------------------------------------
def _acl(info: ClusterInfo, args: argparse.Namespace, out: TextIO) -> int:
    if not args.principal.startswith("User:") or args.principal == "User:":
        raise ToolError(
            f"--principal {args.principal!r} must be User:<name>: the SASL username, or "
            "for mTLS the certificate's CN (the local broker maps CN=alice to User:alice)"
        )
    try:
        mapping = load_mapping(args.mapping)
    except ValueError as error:  # MappingLoadError, MappingValidationError
        raise ToolError(str(error)) from None
    acls = mapping.required_acls()
    if not args.dry_run:
        admin.create_acls(info, admin.acl_bindings(args.principal, acls))
    verb = "would grant" if args.dry_run else "granted"
    for acl in acls:
        print(f"{verb}: {admin.describe_acl(args.principal, acl)}", file=out)
    return 0


# -- produce -----------------------------------------------------------------------------
def _produce(info: ClusterInfo, args: argparse.Namespace, out: TextIO) -> int:
    # partition -1: the producer's partitioner chooses (by key), as a plain producer does
    records = records_from_args(args, args.topic, default_partition=-1)
    count = admin.produce(info, args.topic, records)
    print(f"wrote {count} record(s) to {args.topic}", file=out)
    return 0
