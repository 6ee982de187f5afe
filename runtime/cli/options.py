"""Flags that several ``kafka-esm`` commands share, defined once so they read the same."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException

from runtime.definition.model import ENV_VAR


def add_mapping_argument(parser: argparse.ArgumentParser) -> None:
    """``--mapping FILE``, else the mapping JSON from the environment."""
    parser.add_argument(
        "--mapping",
        type=mapping_path,
        action=_Once,
        default=None,
        help="CreateEventSourceMapping JSON file (or a get-event-source-mapping answer);"
        f" the AWS CLI's file://m.json works too (default: ${ENV_VAR})",
    )


def mapping_path(value: str) -> Path:
    """``--mapping``'s file, given plainly or as the AWS CLI's ``file://path``."""
    return Path(value.removeprefix("file://"))


class _Once(argparse.Action):
    """Stores a flag's value, refusing a second one instead of silently keeping the last."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} is given twice: one mapping per process")
        setattr(namespace, self.dest, values)


def add_invoke_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Where batches go: a local handler or an endpoint, plus qualifier and region."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--handler", help="a local Python handler 'module:function'")
    target.add_argument("--endpoint-url", help="Lambda API endpoint (emulator, LocalStack)")
    parser.add_argument(
        "--endpoint-kind",
        choices=["lambda", "invoke-http", "rie"],
        default="lambda",
        help="'invoke-http': a bare Invoke API (sam local start-lambda); 'rie': a stock Lambda"
        " Runtime Interface Emulator (one function, at /functions/function/invocations)",
    )
    parser.add_argument("--qualifier", help="function version or alias to invoke")
    parser.add_argument(
        "--region",
        help="AWS region of the function (default: from the ARN or the AWS configuration)",
    )


def add_consumer_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--consumer-config KEY=VALUE``, repeatable: extra librdkafka settings."""
    parser.add_argument(
        "--consumer-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka setting (repeatable); the mapping's security is added",
    )


def parse_settings(items: Iterable[str]) -> dict[str, str]:
    """The ``--consumer-config`` values as a dict; ValueError names a malformed one."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--consumer-config {item!r} must be KEY=VALUE")
        settings[key.strip()] = value
    return settings


def check_settings(settings: dict[str, str]) -> None:
    """ValueError naming ``--consumer-config`` when librdkafka refuses a key or a value.

    A client is built (and closed at once, never connected: no bootstrap server) so that
    a bad setting is refused before the poller starts anything. ``security.protocol`` and
    ``sasl.*`` are left out: they need the mapping's credentials to form a valid client,
    and the security plan has already checked them against the mapping."""
    checked = {k: v for k, v in settings.items() if not _needs_credentials(k)}
    if not checked:
        return
    try:
        Consumer({"group.id": "kafka-esm-settings-check", **checked}).close()
    except KafkaException as exc:
        raise ValueError(f"--consumer-config: {exc.args[0].str()}") from None


def _needs_credentials(key: str) -> bool:
    return key == "security.protocol" or key.startswith("sasl.")


def number(
    kind: Callable[[str], float], low: float, high: float | None = None
) -> Callable[[str], float]:
    """An argparse ``type=`` that parses with ``kind`` and states the range it breaks."""
    text = f"at least {low:g}" if high is None else f"from {low:g} to {high:g}"

    def parse(value: str) -> float:
        try:
            parsed = kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}") from None
        if parsed < low or (high is not None and parsed > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: must be {text}")
        return parsed

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse
