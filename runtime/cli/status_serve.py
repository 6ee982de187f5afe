"""``kafka-esm status --endpoint URL``: every mapping of a running ``kafka-esm serve``.

The list comes from the server's ListEventSourceMappings (State, LastProcessingResult as
GetEventSourceMapping reports them); the lag of each from Kafka itself, through the
mapping's own security, as ``status --mapping`` reads it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from runtime.definition.aws_json import as_request
from runtime.definition.model import MappingValidationError, parse_mapping
from runtime.observability.lag import LagReader, LagReadError
from runtime.observability.state import MappingStopped
from runtime.security.plan import SecurityOptions
from runtime.security.session import SecuritySession

SERVER_ERROR_EXIT = 1
HEADER = ("UUID", "FUNCTION", "TOPIC", "STATE", "LAG", "LASTPROCESSINGRESULT")


def list_mappings(endpoint: str) -> list[dict[str, Any]]:
    """Every mapping the server holds (following NextMarker)."""
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="kafka-esm",
        aws_secret_access_key="kafka-esm",  # noqa: S106 - a placeholder serve never checks
        config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=10),
    )
    pages = client.get_paginator("list_event_source_mappings").paginate()
    return [dict(m) for page in pages for m in page["EventSourceMappings"]]


def lag_of(answer: dict[str, Any]) -> str:
    """The mapping's OffsetLag now, or why it cannot be read (``-`` when disabled)."""
    try:
        request, _ = as_request(answer)
        mapping = parse_mapping(request)
        settings = SecuritySession(mapping, {}, SecurityOptions.from_env()).client_settings()
        return str(LagReader(mapping, settings, timeout_s=5).read().total)
    except (LagReadError, MappingStopped, MappingValidationError, ValueError) as exc:
        return f"? ({exc})".splitlines()[0][:60]


def table(mappings: list[dict[str, Any]]) -> str:
    """One line per mapping; LastProcessingResult last, as it may hold spaces."""
    rows = [HEADER] + [
        (
            m["UUID"],
            m["FunctionArn"].rsplit(":", 1)[-1],
            m["Topics"][0],
            m["State"],
            lag_of(m),
            m.get("LastProcessingResult", ""),
        )
        for m in mappings
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the table (again every ``--interval`` seconds unless ``--once``)."""
    try:
        while True:
            try:
                screen = table(list_mappings(args.endpoint))
            except (BotoCoreError, ClientError) as exc:
                print(f"kafka-esm status: {args.endpoint}: {exc}", file=err)
                return SERVER_ERROR_EXIT
            out.write(screen)
            out.flush()
            if args.once:
                return 0
            time.sleep(args.interval)
            out.write("\n")
    except KeyboardInterrupt:
        return 0
