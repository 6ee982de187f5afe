"""``kafka-esm invoke``: call the function once with an event file, without a broker.

The ``sam local invoke -e`` loop: the event (``kafka-esm generate-event`` writes one)
goes to the same invokers the poller uses (a local handler, an Invoke-compatible
endpoint such as the RIE, or Lambda), and the reply is printed as Lambda returns it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from runtime.cli.options import add_invoke_target_arguments, number
from runtime.invokers import MAX_REQUEST_BYTES, MAX_TIMEOUT_S, ErrorKind, invoker_from_config

FUNCTION_ERROR_EXIT = 1
USAGE_EXIT = 2
STDIN = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm invoke``."""
    parser.add_argument(
        "--event",
        default=STDIN,
        help="the event JSON file, or - for standard input (kafka-esm generate-event | ...)",
    )
    add_invoke_target_arguments(parser)
    parser.add_argument(
        "--function-name",
        default="local-function",
        help="FunctionName (a name or ARN; the function to call unless --handler is given)",
    )
    parser.add_argument(
        "--function-timeout",
        type=number(float, 0.001, MAX_TIMEOUT_S),
        default=60.0,
        help="seconds the invocation may take (at most 840)",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Invoke once; exit 0 on success, 1 on a function error or timeout, 2 on bad input."""
    try:
        payload = _read_event(args.event)
        invoker = invoker_from_config(
            args.function_name,
            handler=args.handler,
            endpoint_url=args.endpoint_url,
            endpoint_kind=args.endpoint_kind,
            qualifier=args.qualifier,
            region=args.region,
            timeout_s=args.function_timeout,
        )
    except ValueError as error:
        print(f"kafka-esm invoke: {error}", file=err)
        return USAGE_EXIT
    result = invoker.invoke(payload, deadline_s=args.function_timeout)
    if result.payload is not None:
        print(result.payload.decode("utf-8", errors="replace"), file=out)
    if result.ok:
        return 0
    print(f"kafka-esm invoke: {result.error_kind.value}: {result.message}", file=err)
    if result.error_kind in (ErrorKind.FUNCTION_ERROR, ErrorKind.TIMEOUT):
        return FUNCTION_ERROR_EXIT
    return USAGE_EXIT


def _read_event(source: str) -> bytes:
    """The event's bytes; ValueError names the source when it is unreadable or not JSON."""
    try:
        data = sys.stdin.buffer.read() if source == STDIN else Path(source).read_bytes()
    except OSError as error:
        raise ValueError(f"--event {source}: {error.strerror}") from None
    if len(data) > MAX_REQUEST_BYTES:
        raise ValueError(
            f"--event {source} is {len(data)} bytes: Lambda accepts at most "
            f"{MAX_REQUEST_BYTES} bytes (6 MB) in one synchronous invocation"
        )
    try:
        json.loads(data)
    except ValueError as error:
        where = "standard input" if source == STDIN else source
        raise ValueError(f"--event {where} is not JSON: {error}") from None
    return data
