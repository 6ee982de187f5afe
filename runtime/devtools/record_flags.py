"""The flags that describe sample records, shared by ``local-kafka produce`` and
``generate-event``: values on the command line, or JSON lines in a file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from runtime.cli.options import number
from runtime.devtools.sample_records import as_records
from runtime.records import Record


class FlagError(ValueError):
    """A record flag that cannot be used: the message names the flag and the rule."""


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """``[VALUE ...] --key --header --partition --tombstone --file``."""
    parser.add_argument("values", nargs="*", metavar="VALUE", help="record values (UTF-8)")
    parser.add_argument("--key", help="the key of every record given as VALUE")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a header on every record given as VALUE (repeatable)",
    )
    parser.add_argument(
        "--partition", type=number(int, 0), default=None, help="partition (default: by key)"
    )
    parser.add_argument("--tombstone", action="store_true", help="add one record with a null value")
    parser.add_argument(
        "--file",
        type=Path,
        help="JSON lines, one record each: {key, value, headers, partition, offset, "
        "timestamp}; a value may be a JSON object (written as JSON) or null (a tombstone)",
    )


def records_from_args(
    args: argparse.Namespace, topic: str, default_partition: int = 0
) -> list[Record]:
    """The records the flags describe, in order: VALUEs, the tombstone, then the file's."""
    headers = list(pairs(args.header, "--header"))
    values: list[str | None] = [*args.values, *([None] if args.tombstone else [])]
    fields: list[dict[str, Any]] = [
        {"key": args.key, "value": value, "headers": headers} for value in values
    ]
    if args.file is not None:
        fields += _records_from_file(args.file)
    if not fields:
        raise FlagError("give a VALUE, --tombstone or --file: there is no record")
    partition = default_partition if args.partition is None else args.partition
    try:
        return as_records([{**f, "topic": topic} for f in fields], partition=partition)
    except (TypeError, ValueError) as error:
        raise FlagError(str(error)) from None


def _records_from_file(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FlagError(f"--file {path}: {error.strerror}") from None
    records = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise FlagError(f"--file {path} line {line_number}: not JSON ({error})") from None
        if not isinstance(record, dict):
            raise FlagError(f"--file {path} line {line_number}: must be a JSON object")
        records.append(record)
    return records


def pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` items as pairs; FlagError names a malformed one."""
    found = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FlagError(f"{flag} {item!r} must be NAME=VALUE")
        found.append((name, value))
    return found
