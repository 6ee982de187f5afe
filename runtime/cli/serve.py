"""``kafka-esm serve``: Lambda's event-source-mapping API on this machine, many mappings.

boto3 (``endpoint_url=``) and the AWS CLI (``--endpoint-url``) create, list, update and
delete mappings; each runs ``kafka-esm run`` in its own process (runtime.control). Stored
mappings come back, with the same UUID and consumer group, when ``serve`` starts again.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from runtime.cli.options import number
from runtime.control.functions import (
    FunctionSpecError,
    FunctionTarget,
    load_functions_file,
    parse_function_flags,
)
from runtime.control.lambda_api import ApiError
from runtime.control.server import ControlServer
from runtime.control.service import Functions, MappingService
from runtime.control.store import MappingStore, StateFileError
from runtime.control.supervisor import PollerCommand
from runtime.definition import aws_json
from runtime.definition.model import MappingLoadError, MappingValidationError, load_mapping
from runtime.observability.logs import configure_logging

log = logging.getLogger("runtime.cli.serve")

CONFIG_NOT_VALID_EXIT = 2
DEFAULT_PORT = 9001


def default_state_dir() -> Path:
    """``$KAFKA_ESM_CACHE/serve``, else ``~/.cache/kafka-esm/serve`` (the cache the local
    broker's jars use, so one folder holds everything kafka-esm keeps)."""
    cache = os.environ.get("KAFKA_ESM_CACHE")
    if cache:
        return Path(cache).expanduser() / "serve"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kafka-esm" / "serve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=number(int, 0, 65535), default=DEFAULT_PORT, help="port (0: any free)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the mappings (SQLite), their logs and status go"
        " (default: $KAFKA_ESM_CACHE/serve or ~/.cache/kafka-esm/serve)",
    )
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="a FunctionName's code: NAME=module:function (a local handler), NAME=http://host:port"
        " (an Invoke API) or NAME=rie+http://host:port (a Runtime Interface Emulator); repeatable",
    )
    parser.add_argument(
        "--functions", type=Path, help='a JSON file {"NAME": "SPEC"} of the same entries'
    )
    parser.add_argument(
        "--local-only",
        action="store_true",
        help="refuse a FunctionName not given with --function/--functions instead of looking"
        " it up in AWS Lambda",
    )
    parser.add_argument(
        "--mappings",
        type=Path,
        metavar="DIR",
        help="create each *.json mapping in DIR at start (one kept by its UUID, given or"
        " derived, is not created twice)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=number(float, 0),
        default=PollerCommand.drain_timeout_s,
        help="seconds a poller may finish in-flight batches when stopped or updated",
    )
    parser.add_argument(
        "--stuck-after",
        type=number(float, 5),
        default=PollerCommand.stuck_after_s,
        help="seconds without a heartbeat from a poller's loop before it is killed and restarted",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])


def run(args: argparse.Namespace, err: TextIO = sys.stderr) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code."""
    configure_logging(args.log_level)
    state_dir = args.state_dir or default_state_dir()
    try:
        functions = _functions(args)
        store = MappingStore(state_dir)
    except (FunctionSpecError, StateFileError) as exc:
        print(f"kafka-esm serve: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    service = MappingService(
        store, functions, PollerCommand(args.drain_timeout, args.stuck_after), state_dir
    )
    try:
        server = ControlServer((args.host, args.port), service)
    except OSError as exc:
        print(f"kafka-esm serve: cannot listen on {args.host}:{args.port}: {exc}", file=err)
        store.close()
        return CONFIG_NOT_VALID_EXIT
    try:
        resumed = service.resume()
        problems = _preload(service, args.mappings) if args.mappings else []
        for problem in problems:
            print(f"kafka-esm serve: {problem}", file=err)
        if problems:
            return CONFIG_NOT_VALID_EXIT
        return _serve(server, service, resumed, state_dir, err)
    finally:
        service.shutdown()
        server.server_close()
        store.close()


def _functions(args: argparse.Namespace) -> Functions:
    targets: dict[str, FunctionTarget] = {}
    if args.functions is not None:
        targets.update(load_functions_file(args.functions))
    for name, target in parse_function_flags(args.function).items():
        targets[name] = target  # a flag wins over the file
    return Functions(targets, aws_lookup=not args.local_only)


def _preload(service: MappingService, directory: Path) -> list[str]:
    """Create the mappings of ``directory``'s JSON files; one problem line per bad file."""
    if not directory.is_dir():
        return [f"--mappings {directory}: not a directory"]
    problems = []
    for path in sorted(directory.glob("*.json")):
        try:
            mapping = load_mapping(path)
            created = service.preload(path, mapping)
        except (MappingLoadError, MappingValidationError, aws_json.AwsJsonError) as exc:
            problems.append(f"--mappings: {exc}")
            continue
        except ApiError as exc:
            problems.append(f"--mappings: {path}: {exc.error_type}: {exc.message}")
            continue
        log.info("--mappings: %s %s (%s)", "created" if created else "kept", mapping.uuid, path)
    return problems


def _serve(
    server: ControlServer, service: MappingService, resumed: int, state_dir: Path, err: TextIO
) -> int:
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received: stopping every poller", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    thread = threading.Thread(target=server.serve_forever, name="serve-http", daemon=True)
    thread.start()
    server.ready.set()
    print(
        f"kafka-esm serve: listening on {server.url} ({resumed} stored mappings resumed;"
        f" state in {state_dir})",
        file=err,
        flush=True,
    )
    stop.wait()
    server.shutdown()
    return 0
