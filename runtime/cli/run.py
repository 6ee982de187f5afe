"""``kafka-esm run``: run one mapping definition until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from runtime.cli import devtools
from runtime.cli.launcher import InvokeTarget, LaunchOptions, build_poller, run_until_signalled
from runtime.cli.members import MAX_PROCESSES, default_instance_base, run_members
from runtime.cli.options import (
    add_consumer_config_argument,
    add_invoke_target_arguments,
    add_mapping_argument,
    check_settings,
    number,
    parse_settings,
)
from runtime.definition.model import (
    EventSourceMapping,
    MappingLoadError,
    MappingValidationError,
    aws_only_problems,
    aws_provisioned_mode_problems,
    load_mapping,
)
from runtime.definition.rules import PROVISIONED_RULE
from runtime.invokers import MAX_TIMEOUT_S
from runtime.observability.logs import configure_logging
from runtime.observability.publishers import (
    DEFAULT_NAMESPACE,
    ReportingOptions,
    ReportingSetupError,
)
from runtime.observability.scaling import PollerCapacity
from runtime.observability.state import (
    CONFIG_NOT_VALID_EXIT,
    MAPPING_STOPPED_EXIT,
    MappingStopped,
    StateTransitionReason,
)
from runtime.observability.system_logs import install_system_logs
from runtime.pipeline.poller import PollerOptions
from runtime.process_tuning import poll_loop_tuning

log = logging.getLogger("runtime.cli.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm run``."""
    add_mapping_argument(parser)
    add_invoke_target_arguments(parser)
    parser.add_argument(
        "--function-timeout",
        type=number(float, 0.001, MAX_TIMEOUT_S),
        default=MAX_TIMEOUT_S,
        help="seconds one invocation may take (at most 840)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=number(int, 1),
        default=PollerOptions.max_concurrency,
        help="batches in flight at once, one per partition at most",
    )
    parser.add_argument(
        "--processes",
        type=number(int, 1, MAX_PROCESSES),
        default=1,
        help="members of the mapping's group to run, each a process of its own (a process "
        "uses one core), supervised: one that dies is restarted, SIGTERM drains them all",
    )
    parser.add_argument(
        "--group-instance-id",
        default=None,
        metavar="ID",
        help="static group membership (librdkafka group.instance.id; Stream mode): a "
        "restarted poller takes its partitions back without a rebalance. With --processes "
        "each member gets ID-<slot> (default with --processes: the host name)",
    )
    parser.add_argument(
        "--group-protocol",
        choices=["classic", "consumer"],
        default="classic",
        help="the consumer group protocol: 'consumer' is KIP-848 (Apache Kafka 4.0+), where "
        "the broker moves partitions one by one and a rebalance stops no other member",
    )
    parser.add_argument(
        "--drain-timeout",
        type=number(float, 0),
        default=PollerOptions.drain_timeout_s,
        help="seconds in-flight batches may finish after a stop signal",
    )
    parser.add_argument(
        "--system-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="where the ESM system logs of LoggingConfig.SystemLogLevel go, as JSON lines"
        " (default: stderr, beside the poller's own log)",
    )
    parser.add_argument(
        "--aws-strict",
        action="store_true",
        help="refuse what CreateEventSourceMapping would refuse: fields AWS allows only with"
        " ProvisionedPollerConfig, file:// secrets, filters over the quota",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="re-import the --handler's code when its files change, between invocations"
        " (nothing is lost or skipped; a failed reload keeps the previous code)",
    )
    _add_function_dir_arguments(parser)
    add_consumer_config_argument(parser)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    _add_reporting_arguments(parser)


def _add_function_dir_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("a function directory under AWS's Runtime Interface Emulator")
    group.add_argument(
        "--function-dir",
        type=Path,
        help="run this directory's Python function under the real RIE (development installs)",
    )
    group.add_argument(
        "--function-handler",
        help="Lambda's handler setting for --function-dir, 'module.function' (e.g. app.handler)",
    )


def _check_function_dir_flags(args: argparse.Namespace) -> None:
    """ValueError naming the flags that cannot go together."""
    if args.function_dir is None:
        if args.function_handler is not None:
            raise ValueError("--function-handler needs --function-dir")
        return
    if args.function_handler is None:
        raise ValueError("--function-dir needs --function-handler 'module.function'")
    if args.handler is not None or args.endpoint_url is not None:
        raise ValueError("--function-dir excludes --handler and --endpoint-url")


def _start_emulator(args: argparse.Namespace, err: TextIO) -> Any:
    """The running RIE for --function-dir, None without it; ValueError for bad flags."""
    _check_function_dir_flags(args)
    if args.function_dir is None:
        return None
    rie = devtools.load("rie", "run --function-dir")
    if isinstance(rie, devtools.Missing):
        rie.run(args)
        raise ValueError("--function-dir needs the development tools")
    emulator = rie.RuntimeEmulator(
        args.function_dir, args.function_handler, timeout_s=args.function_timeout
    )
    try:
        url = emulator.start()
    except rie.RieError as exc:
        raise ValueError(f"--function-dir: {exc}") from exc
    print(
        f"function {args.function_handler} from {args.function_dir} under the RIE at {url}",
        file=err,
    )
    return emulator


def _add_reporting_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metrics, status and scaling")
    group.add_argument(
        "--metrics",
        choices=["auto", "emf", "none"],
        default="auto",
        help="'emf': CloudWatch Embedded Metric Format lines on stdout; 'auto': emf unless"
        " stdout is a terminal (containers get EMF, a laptop's terminal the handler's prints)",
    )
    group.add_argument("--metrics-namespace", default=DEFAULT_NAMESPACE, help="EMF namespace")
    group.add_argument(
        "--metrics-interval",
        type=number(float, 0.1),
        default=ReportingOptions.interval_s,
        help="seconds between lag readings and metric publications (default 60)",
    )
    group.add_argument(
        "--poller-throughput",
        type=number(int, 1),
        default=PollerCapacity.bytes_per_s,
        metavar="BYTES_PER_S",
        help="record bytes one poller carries per second, for DesiredPollerCount"
        " (default 5 MiB/s, AWS's figure)",
    )
    group.add_argument(
        "--poller-concurrency",
        type=number(int, 1),
        default=PollerCapacity.concurrent_invocations,
        metavar="N",
        help="concurrent invocations one poller carries, for DesiredPollerCount"
        " (default 5, AWS's figure)",
    )
    group.add_argument(
        "--catch-up",
        type=number(float, 1),
        default=PollerCapacity.catch_up_s,
        metavar="SECONDS",
        help="how soon DesiredPollerCount should let the pollers work off the lag (default 300)",
    )
    group.add_argument(
        "--prometheus-port",
        type=number(int, 0, 65535),
        help="serve Prometheus metrics on this port (local use)",
    )
    group.add_argument(
        "--prometheus-addr", default="127.0.0.1", help="address of the Prometheus endpoint"
    )
    group.add_argument(
        "--status-dir",
        type=Path,
        help="where the status document for 'kafka-esm status' goes"
        " (default: <tmp>/kafka-esm/<mapping UUID>)",
    )


def emf_wanted(choice: str, stdout: TextIO) -> bool:
    """``--metrics``: EMF lines on stdout, where ``auto`` means only when stdout is not a
    terminal (on Fargate the log driver reads them; on a laptop they bury the prints)."""
    return choice == "emf" or (choice == "auto" and not stdout.isatty())


def _reporting(args: argparse.Namespace) -> ReportingOptions:
    return ReportingOptions(
        interval_s=args.metrics_interval,
        capacity=PollerCapacity(args.poller_throughput, args.poller_concurrency, args.catch_up),
        emf=emf_wanted(args.metrics, sys.stdout),
        emf_namespace=args.metrics_namespace,
        prometheus_port=args.prometheus_port,
        prometheus_addr=args.prometheus_addr,
        status_dir=args.status_dir,
    )


def check_deployable(mapping: EventSourceMapping, *, strict: bool) -> None:
    """Features AWS offers only with ProvisionedPollerConfig run here in every mode, but
    a deployment must know: warn once, naming each field; ``strict`` (``--aws-strict``)
    refuses them, and everything else CreateEventSourceMapping refuses (``file://``
    secrets, filters over the quota), with the rule texts the constructs use."""
    provisioned = aws_provisioned_mode_problems(mapping)
    if strict:
        problems = provisioned + aws_only_problems(mapping)
        if problems:
            raise MappingValidationError(problems, source=f"{mapping.function_name} (--aws-strict)")
        return
    if provisioned:
        fields = ", ".join(p.field for p in provisioned)
        log.warning(
            "%s: %s; --aws-strict refuses the mapping here as CreateEventSourceMapping would",
            fields,
            PROVISIONED_RULE,
        )


def run(args: argparse.Namespace, err: TextIO = sys.stderr) -> int:
    """Load, validate and run the mapping; return the exit code."""
    configure_logging(args.log_level)
    try:
        mapping = load_mapping(args.mapping)
        check_deployable(mapping, strict=args.aws_strict)
    except (MappingLoadError, MappingValidationError) as exc:
        print(f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    if mapping.is_queue and args.group_instance_id is not None:
        print(
            f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: --group-instance-id is not "
            "supported with ConsumptionMode Queue: share groups have no static membership",
            file=err,
        )
        return CONFIG_NOT_VALID_EXIT
    if args.processes > 1:
        base = None if mapping.is_queue else args.group_instance_id or default_instance_base()
        argv = getattr(args, "argv", None) or sys.argv[1:]
        return run_members(argv, args.processes, base, args.drain_timeout)
    try:
        system_log = args.system_log.open("a", encoding="utf-8") if args.system_log else None
    except OSError as exc:
        print(f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: --system-log: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    handler = install_system_logs(mapping, system_log or err, region=args.region)
    try:
        return _start_and_run(args, mapping, err)
    finally:
        if handler is not None:
            logging.getLogger("runtime").removeHandler(handler)
        if system_log is not None:
            system_log.close()


def _start_and_run(args: argparse.Namespace, mapping: EventSourceMapping, err: TextIO) -> int:
    try:
        emulator = _start_emulator(args, err)
    except ValueError as exc:
        print(f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    try:
        return _run(args, mapping, emulator, err)
    finally:
        if emulator is not None:
            emulator.stop()


def _run(args: argparse.Namespace, mapping: EventSourceMapping, emulator: Any, err: TextIO) -> int:
    try:
        if args.reload and args.handler is None:
            raise ValueError("--reload needs --handler: it re-imports a local Python handler")
        overrides = parse_settings(args.consumer_config)
        if args.group_instance_id is not None:
            overrides["group.instance.id"] = args.group_instance_id
        if args.group_protocol != "classic" and not mapping.is_queue:
            overrides["group.protocol"] = args.group_protocol
        options = LaunchOptions(
            InvokeTarget(
                args.handler,
                emulator.endpoint_url if emulator else args.endpoint_url,
                "rie" if emulator else args.endpoint_kind,
                args.qualifier,
                args.region,
                args.function_timeout,
                reload=args.reload,
            ),
            PollerOptions(
                max_concurrency=args.max_concurrency,
                drain_timeout_s=args.drain_timeout,
                reporting=_reporting(args),
            ),
        )
        poller = build_poller(mapping, options, overrides)  # checks the security first
        check_settings(overrides)
    except ValueError as exc:
        print(f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    try:
        with poll_loop_tuning():
            run_until_signalled(poller)
    except ReportingSetupError as exc:  # raised before the poller reads anything
        print(f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    except MappingStopped as stopped:
        print(f"{stopped.reason.value}: {stopped.result}", file=err)
        return MAPPING_STOPPED_EXIT
    return 0
