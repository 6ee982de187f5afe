"""``kafka-esm local-kafka up | down | status``: the local cluster as a product feature."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from runtime.devtools.local_kafka import admin, jars, tools
from runtime.devtools.local_kafka.broker import DEFAULT_PORTS, LocalKafka
from runtime.devtools.local_kafka.registry import LocalSchemaRegistry
from runtime.devtools.local_kafka.settings import PLAINTEXT, SASL_SSL, SSL, SUPER_USER, ClusterInfo
from runtime.devtools.progress import Progress

NOT_RUNNING_EXIT = 3
"""``status`` exit code when no broker runs (as ``systemctl status`` does)."""


def default_home() -> Path:
    """Where ``up`` keeps the cluster: beside the jar cache, git-ignored."""
    return jars.default_cache_dir() / "local-cluster"


_ACTIONS = {
    "up": "fetch (once), format and start a local broker; print how to reach it",
    "down": "stop the local broker (SIGTERM, wait, then SIGKILL)",
    "status": "say whether the local broker runs and where",
    "topic": "create a topic (auto-creation is off) or list them",
    "acl": "grant a principal exactly the ACLs a mapping needs",
    "produce": "write sample records: values on the command line, or JSON lines",
}
_TOOL_FLAGS = {
    "topic": tools.add_topic_arguments,
    "acl": tools.add_acl_arguments,
    "produce": tools.add_produce_arguments,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``local-kafka`` sub-commands."""
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="{" + ",".join(_ACTIONS) + "}"
    )
    for name, summary in _ACTIONS.items():
        action = actions.add_parser(
            name, help=summary, description=summary, formatter_class=parser.formatter_class
        )
        action.add_argument(
            "--home",
            type=Path,
            default=None,
            help="cluster folder (default: <cache>/local-cluster, the cache being $KAFKA_ESM_CACHE"
            " or ~/.cache/kafka-esm)",
        )
        action.add_argument(
            "--json", action="store_true", help="print JSON (the listeners, without passwords)"
        )
        if name == "up":
            action.add_argument(
                "--schema-registry",
                action="store_true",
                help="also start a local schema registry (Apicurio Registry, Confluent API; "
                "needs Java 21+) and print its URL",
            )
        if name in _TOOL_FLAGS:
            _TOOL_FLAGS[name](action)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Carry out ``args.action``; return the process exit code."""
    broker = LocalKafka(args.home or default_home(), preferred_ports=DEFAULT_PORTS)
    # Beside the cluster's folder, not in it: starting the broker wipes its folder.
    registry = LocalSchemaRegistry(broker.home.with_name(broker.home.name + "-schema-registry"))
    if args.action == "up":
        code = _up(broker, args.json, out)
        if code == 0 and args.schema_registry:
            code = _up_registry(registry, args.json, out)
        return code
    if args.action == "down":
        stopped = broker.stop()
        registry_stopped = registry.stop()
        if args.json:
            answer: dict[str, object] = {"stopped": stopped, "home": str(broker.home)}
            if registry_stopped:
                answer["schema_registry_stopped"] = True
            print(json.dumps(answer), file=out)
        else:
            print("local Kafka stopped" if stopped else "no local Kafka was running", file=out)
            if registry_stopped:
                print("local schema registry stopped", file=out)
        return 0
    if args.action == "status":
        code = _status(broker, args.json, out)
        running = registry.info() if registry.is_running() else None
        if running is not None and not args.json:
            print(f"local schema registry (pid {running.pid}): {running.url}", file=out)
        return code
    info = broker.info() if broker.is_running() else None
    if info is None:
        print(
            f"kafka-esm local-kafka {args.action}: no local Kafka is running "
            f"in {broker.home}: start one with kafka-esm local-kafka up",
            file=sys.stderr,
        )
        return NOT_RUNNING_EXIT
    return tools.run(args.action, info, args, out)


def _up(broker: LocalKafka, as_json: bool, out: TextIO) -> int:
    info = broker.info() if broker.is_running() else None
    if info is None:
        progress = Progress(sys.stderr)
        info = broker.start(progress=progress)
        for notice in broker.port_notices:
            print(notice, file=sys.stderr)
        progress.phase("writing client settings and file:// secrets")
        write_client_properties(info, broker.home)
        admin.write_local_secrets(info, broker.home)
        headline = f"ready in {progress.elapsed():.1f} s"
    else:
        headline = "already running"
    _describe(info, broker.home, headline, as_json, out)
    return 0


def _up_registry(registry: LocalSchemaRegistry, as_json: bool, out: TextIO) -> int:
    """Start the schema registry beside the broker (or report the running one)."""
    from runtime.devtools.local_kafka.registry import RegistryStartError  # noqa: PLC0415

    info = registry.info() if registry.is_running() else None
    headline = "already running"
    if info is None:
        progress = Progress(sys.stderr)
        try:
            info = registry.start(progress=progress)
        except (RegistryStartError, jars.BrokerFetchError) as error:
            print(f"kafka-esm local-kafka up --schema-registry: {error}", file=sys.stderr)
            return 1
        headline = f"ready in {progress.elapsed():.1f} s"
    if as_json:
        print(json.dumps({"schema_registry": info.url, "pid": info.pid}), file=out)
    else:
        print(
            f"local schema registry (Apicurio Registry {info.version}, pid {info.pid}): "
            f"{headline}\n  SchemaRegistryURI {info.url}",
            file=out,
        )
    return 0


def _status(broker: LocalKafka, as_json: bool, out: TextIO) -> int:
    info = broker.info() if broker.is_running() else None
    if info is None:
        print("no local Kafka is running" if not as_json else '{"running": false}', file=out)
        return NOT_RUNNING_EXIT
    _describe(info, broker.home, "running", as_json, out)
    return 0


def share_groups_state(info: ClusterInfo) -> str:
    """``on``, ``off: <why>`` or ``unknown: <why>``, as the running broker reports it."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - keep import cost off the CLI

    from runtime.pipeline.share_source import share_group_support  # noqa: PLC0415

    try:
        support = share_group_support(AdminClient({**info.plaintext_config(), "log_level": 0}))
    except Exception as error:  # the broker is up but did not answer: say so, do not fail
        return f"unknown: {type(error).__name__}"
    problem = support.problem()
    return "on" if problem is None else f"off: {problem}"


def _describe(info: ClusterInfo, home: Path, headline: str, as_json: bool, out: TextIO) -> None:
    share = share_groups_state(info)
    if as_json:
        public = {
            "running": True,
            "pid": info.pid,
            "version": info.version,
            "share_groups": share == "on",
            "listeners": info.listeners,
            "pki": info.pki_root,
            "client_properties": {
                n: str(home / f"client-{n.lower()}.properties") for n in info.listeners
            },
            "secrets": local_secrets(home),
        }
        print(json.dumps(public, indent=2), file=out)
        return
    print(f"local Apache Kafka {info.version} (pid {info.pid}): {headline}", file=out)
    print(f"  share groups (Queue mode): {share}", file=out)
    print(
        f"  {PLAINTEXT:<10} {info.address(PLAINTEXT):<16} no authentication (super user)", file=out
    )
    print(
        f"  {SASL_SSL:<10} {info.address(SASL_SSL):<16} PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "
        f"users {', '.join(info.passwords)} ({SUPER_USER} is a super user)",
        file=out,
    )
    print(
        f"  {SSL:<10} {info.address(SSL):<16} mutual TLS; client certificates CN=alice, "
        "CN=admin (trusted), CN=mallory (unrelated CA)",
        file=out,
    )
    print("client settings (confluent-kafka / librdkafka), passwords in the files:", file=out)
    for name in info.listeners:
        settings = " ".join(f"{k}={_mask(k, v)}" for k, v in _client_settings(info, name).items())
        print(f"  {home / f'client-{name.lower()}.properties'}\n    {settings}", file=out)
    print("file:// secrets for SourceAccessConfigurations (URI):", file=out)
    for name, uri in local_secrets(home).items():
        print(f"  {name:<18} {uri}", file=out)
    print(
        "ACLs are enforced on SASL_SSL and SSL: kafka-esm local-kafka acl grant "
        "--mapping m.json --principal User:alice. Stop with: kafka-esm local-kafka down",
        file=out,
    )


def local_secrets(home: Path) -> dict[str, str]:
    """The ready-made secrets ``up`` wrote, by name (``alice``, ``root-ca``, ...)."""
    folder = home / admin.SECRETS_DIR
    return {p.stem: p.as_uri() for p in sorted(folder.glob("*.json"))}


def write_client_properties(info: ClusterInfo, home: Path) -> None:
    """One ready-to-use properties file per listener (mode 0600: they hold passwords)."""
    for name in info.listeners:
        path = home / f"client-{name.lower()}.properties"
        body = "".join(f"{k}={v}\n" for k, v in _client_settings(info, name).items())
        path.write_text(body, encoding="utf-8")
        path.chmod(0o600)


def _client_settings(info: ClusterInfo, listener: str) -> dict[str, str]:
    if listener == SASL_SSL:
        return info.sasl_config("alice")
    if listener == SSL:
        return info.mtls_config("alice")
    return info.plaintext_config()


def _mask(key: str, value: str) -> str:
    return "***" if "password" in key else value
