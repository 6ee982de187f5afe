"""``kafka-esm status``: a live table of the mapping's partitions, lag and state.

Offsets, lag and partition owners come from Kafka itself, so the table is right
whichever process or machine runs the pollers. State and LastProcessingResult live
only in a poller's memory: every poller writes them, with the partitions it owns and
which of them have a batch with the function, to a small JSON status document (one
per process, replaced atomically every few seconds). This module owns that document's
format; :mod:`runtime.metrics_publishers` writes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from runtime.cli_options import (
    add_consumer_config_argument,
    add_mapping_argument,
    parse_settings,
)
from runtime.lag import GroupView, LagReader, LagReadError, LagSnapshot, PartitionLag
from runtime.mapping import (
    EventSourceMapping,
    MappingLoadError,
    MappingValidationError,
    load_mapping,
)
from runtime.scaling import DEFAULT_LAG_PER_POLLER, ScalingPolicy
from runtime.secured_source import SecuritySession
from runtime.security import SecurityOptions
from runtime.state import MappingStopped, StateTransitionReason

CONFIG_NOT_VALID_EXIT = 2
BROKER_ERROR_EXIT = 1
DOCUMENT_VERSION = 1
INVOKING = "invoking"
"""A batch of the partition is with the function now."""
POLLING = "polling"
"""The partition is owned and fetched; nothing of it is with the function now."""
CAUGHT_UP = "caught-up"
"""Polling, with nothing left to read."""
ASSIGNED = "assigned"
"""Owned by a group member that wrote no status document here (another machine)."""
UNASSIGNED = "unassigned"
_CLEAR_SCREEN = "\x1b[H\x1b[2J"
_STALE_AFTER_INTERVALS = 3


class StatusDocumentError(ValueError):
    """A status document that does not follow the format; names the file and the field."""


@dataclass(frozen=True)
class StatusDocument:
    """What one poller process reports about itself."""

    uuid: str
    function_name: str
    topic: str
    group: str
    host: str
    pid: int
    updated_at: float
    """Epoch seconds of the last write."""
    state: str
    state_transition_reason: str
    last_processing_result: str
    status_interval_s: float
    partitions: Mapping[int, str] = field(default_factory=dict)
    """Owned partitions of the topic and what each is doing (INVOKING or POLLING)."""
    counters: Mapping[str, int] = field(default_factory=dict)
    desired_pollers: int | None = None

    @property
    def poller_id(self) -> str:
        """``pid@host``: how the table names this poller."""
        return f"{self.pid}@{self.host}"

    def is_stale(self, now: float) -> bool:
        """The poller stopped writing while it still claimed to run (killed, hung)."""
        silent_for = now - self.updated_at
        return self.state != "Disabled" and silent_for > _STALE_AFTER_INTERVALS * max(
            self.status_interval_s, 1.0
        )

    def to_json(self) -> dict[str, Any]:
        """The document as written to disk (AWS's field names where AWS has them)."""
        return {
            "version": DOCUMENT_VERSION,
            "UUID": self.uuid,
            "FunctionName": self.function_name,
            "Topic": self.topic,
            "ConsumerGroupId": self.group,
            "host": self.host,
            "pid": self.pid,
            "updatedAt": self.updated_at,
            "State": self.state,
            "StateTransitionReason": self.state_transition_reason,
            "LastProcessingResult": self.last_processing_result,
            "statusIntervalSeconds": self.status_interval_s,
            "partitions": {str(p): s for p, s in sorted(self.partitions.items())},
            "counters": dict(self.counters),
            "DesiredPollerCount": self.desired_pollers,
        }

    @classmethod
    def from_json(cls, doc: Any, source: str = "status document") -> StatusDocument:
        """Parse a written document; raises StatusDocumentError naming the bad field."""
        if not isinstance(doc, dict):
            raise StatusDocumentError(f"{source}: must be a JSON object")
        if doc.get("version") != DOCUMENT_VERSION:
            raise StatusDocumentError(
                f"{source}: version {doc.get('version')!r} is not {DOCUMENT_VERSION}"
            )
        try:
            return cls(
                uuid=_field(doc, "UUID", str, source),
                function_name=_field(doc, "FunctionName", str, source),
                topic=_field(doc, "Topic", str, source),
                group=_field(doc, "ConsumerGroupId", str, source),
                host=_field(doc, "host", str, source),
                pid=_field(doc, "pid", int, source),
                updated_at=float(_field(doc, "updatedAt", (int, float), source)),
                state=_field(doc, "State", str, source),
                state_transition_reason=_field(doc, "StateTransitionReason", str, source),
                last_processing_result=_field(doc, "LastProcessingResult", str, source),
                status_interval_s=float(_field(doc, "statusIntervalSeconds", (int, float), source)),
                partitions={
                    int(p): str(s) for p, s in _field(doc, "partitions", dict, source).items()
                },
                counters={str(k): int(v) for k, v in _field(doc, "counters", dict, source).items()},
                desired_pollers=doc.get("DesiredPollerCount"),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, StatusDocumentError):
                raise
            raise StatusDocumentError(f"{source}: {exc}") from None


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...], source: str) -> Any:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise StatusDocumentError(f"{source}: field {name!r} is {value!r}, not the right type")
    return value


def default_status_dir(mapping: EventSourceMapping) -> Path:
    """Where pollers of ``mapping`` on this machine write, and ``status`` reads, by default."""
    return Path(tempfile.gettempdir()) / "kafka-esm" / mapping.uuid


def status_path(directory: Path, host: str, pid: int) -> Path:
    """One file per poller process."""
    return directory / f"{host}-{pid}.json"


def write_status_document(path: Path, document: StatusDocument) -> None:
    """Replace ``path`` atomically, so that a reader never sees half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document.to_json(), handle, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_status_documents(directory: Path) -> tuple[list[StatusDocument], list[str]]:
    """Every readable document in ``directory`` (newest first) and a note per bad file."""
    documents: list[StatusDocument] = []
    problems: list[str] = []
    if not directory.is_dir():
        return documents, problems
    for path in sorted(directory.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
            continue
        try:
            documents.append(StatusDocument.from_json(body, str(path)))
        except StatusDocumentError as exc:
            problems.append(str(exc))
    documents.sort(key=lambda d: d.updated_at, reverse=True)
    return documents, problems


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class PartitionRow:
    """One line of the table."""

    partition: int
    committed: int | None
    end: int
    lag: int
    rate: float | None
    """Records committed per second since the previous reading; None on the first."""
    state: str
    owner: str


def partition_rows(
    lag: LagSnapshot,
    group: GroupView | None,
    documents: Sequence[StatusDocument],
    previous: LagSnapshot | None,
    now: float,
) -> list[PartitionRow]:
    """Join Kafka's view (offsets, owners) with the pollers' (what each partition does)."""
    claimed: dict[int, tuple[str, str]] = {}
    for document in documents:  # newest first: a newer claim wins after a rebalance
        if document.is_stale(now) or document.state == "Disabled":
            continue
        for partition, activity in document.partitions.items():
            claimed.setdefault(partition, (activity, document.poller_id))
    before = {p.partition: p for p in previous.partitions} if previous else {}
    elapsed = lag.read_at - previous.read_at if previous else 0.0
    rows = []
    for p in lag.partitions:
        state, owner = _state_and_owner(p.partition, p.lag, claimed, group)
        rate = _rate(before.get(p.partition), p, elapsed)
        rows.append(PartitionRow(p.partition, p.committed, p.end, p.lag, rate, state, owner))
    return rows


def _state_and_owner(
    partition: int, lag: int, claimed: Mapping[int, tuple[str, str]], group: GroupView | None
) -> tuple[str, str]:
    if partition in claimed:
        activity, poller = claimed[partition]
        if activity == POLLING and lag == 0:
            return CAUGHT_UP, poller
        return activity, poller
    member = group.owner(partition) if group is not None else None
    if member is not None:
        return ASSIGNED, f"{member.client_id}@{member.host}"
    return UNASSIGNED, "-"


def _rate(old: PartitionLag | None, new: PartitionLag, elapsed_s: float) -> float | None:
    """Committed records per second between two readings (None when unknown)."""
    if old is None or old.committed is None or new.committed is None or elapsed_s <= 0:
        return None
    return max(new.committed - old.committed, 0) / elapsed_s


def render(
    mapping: EventSourceMapping,
    lag: LagSnapshot,
    rows: Sequence[PartitionRow],
    *,
    group: GroupView | None,
    documents: Sequence[StatusDocument],
    policy: ScalingPolicy,
    now: float,
) -> str:
    """The whole screen as text."""
    lines = [
        f"Mapping {mapping.uuid}  function {mapping.function_name}",
        f"Topic {mapping.topic}  group {mapping.consumer_group_id}"
        + (f" ({group.state}, {len(group.members)} members)" if group else ""),
    ]
    lines.extend(_poller_lines(documents, now))
    header = ("PARTITION", "COMMITTED", "END", "LAG", "RECORDS/S", "STATE", "OWNER")
    table = [header] + [
        (
            str(r.partition),
            "-" if r.committed is None else str(r.committed),
            str(r.end),
            str(r.lag),
            "-" if r.rate is None else f"{r.rate:.1f}",
            r.state,
            r.owner,
        )
        for r in rows
    ]
    rates = [r.rate for r in rows if r.rate is not None]
    table.append(("TOTAL", "", "", str(lag.total), f"{sum(rates):.1f}" if rates else "-", "", ""))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.append("")
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    )
    lines.append("")
    desired = policy.desired(lag.total, lag.partition_count)
    lines.append(
        f"OffsetLag {lag.total}  MaxOffsetLag {lag.maximum}  DesiredPollerCount {desired}"
        f" (lag per poller {policy.lag_per_poller})"
    )
    return "\n".join(lines) + "\n"


def _poller_lines(documents: Sequence[StatusDocument], now: float) -> list[str]:
    if not documents:
        return ["State unknown: no poller status document (is a poller running on this machine?)"]
    lines = []
    for document in documents:
        age = max(now - document.updated_at, 0.0)
        stale = "  STALE" if document.is_stale(now) else ""
        lines.append(
            f"Poller {document.poller_id}  State {document.state}"
            f" ({document.state_transition_reason})"
            f"  LastProcessingResult {document.last_processing_result}"
            f"  updated {age:.0f}s ago{stale}"
        )
    return lines


# --------------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``kafka-esm status``."""
    add_mapping_argument(parser)
    parser.add_argument(
        "--status-dir",
        type=Path,
        default=None,
        help="where the pollers write their status documents "
        "(default: <tmp>/kafka-esm/<mapping UUID>, the same default as 'run')",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes (default 2)"
    )
    parser.add_argument("--once", action="store_true", help="print the table once and exit")
    parser.add_argument(
        "--lag-per-poller",
        type=int,
        default=DEFAULT_LAG_PER_POLLER,
        help="scaling threshold used for DesiredPollerCount (as given to 'run')",
    )
    add_consumer_config_argument(parser)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Show the table until interrupted (or once); return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        mapping = load_mapping(args.mapping)
        policy = ScalingPolicy(args.lag_per_poller)
        if args.interval <= 0:
            raise ValueError(f"--interval {args.interval} must be more than 0 seconds")
        overrides = parse_settings(args.consumer_config)
    except (MappingLoadError, MappingValidationError, ValueError) as exc:
        print(f"{StateTransitionReason.ESM_CONFIG_NOT_VALID.value}: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    try:
        # The mapping's own security (secrets from its SourceAccessConfigurations), as run uses.
        settings = SecuritySession(mapping, overrides, SecurityOptions.from_env()).client_settings()
    except (MappingStopped, ValueError) as exc:
        print(f"kafka-esm status: cannot reach the cluster securely: {exc}", file=err)
        return CONFIG_NOT_VALID_EXIT
    reader = LagReader(mapping, settings)
    directory = args.status_dir or default_status_dir(mapping)
    live = not args.once and out.isatty()
    previous: LagSnapshot | None = None
    try:
        while True:
            try:
                screen, previous = _screen(mapping, reader, directory, policy, previous)
            except LagReadError as exc:
                if args.once:
                    print(f"kafka-esm status: {exc}", file=err)
                    return BROKER_ERROR_EXIT
                screen = f"kafka-esm status: {exc} (retrying)\n"
            out.write((_CLEAR_SCREEN if live else "") + screen)
            out.flush()
            if args.once:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def _screen(
    mapping: EventSourceMapping,
    reader: LagReader,
    directory: Path,
    policy: ScalingPolicy,
    previous: LagSnapshot | None,
) -> tuple[str, LagSnapshot]:
    lag = reader.read()
    try:
        group: GroupView | None = reader.group()
    except LagReadError:
        group = None  # owners are a nicety: the offsets are what matter
    documents, problems = read_status_documents(directory)
    now = time.time()
    rows = partition_rows(lag, group, documents, previous, now)
    screen = render(mapping, lag, rows, group=group, documents=documents, policy=policy, now=now)
    for problem in problems:
        screen += f"ignored: {problem}\n"
    return screen, lag
