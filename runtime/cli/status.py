"""``kafka-esm status``: a live table of the mapping's partitions, lag and state.

Offsets, lag and partition owners come from Kafka itself, so the table is right
whichever process or machine runs the pollers. State and LastProcessingResult come
from the pollers' status documents (:mod:`runtime.observability.status`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from runtime.cli import status_serve
from runtime.cli.options import (
    add_consumer_config_argument,
    add_mapping_argument,
    parse_settings,
)
from runtime.cli.terminal import Colour, Painter, painter_for
from runtime.definition.model import (
    EventSourceMapping,
    MappingLoadError,
    MappingValidationError,
    load_mapping,
)
from runtime.observability.lag import GroupView, LagReader, LagReadError, LagSnapshot, PartitionLag
from runtime.observability.state import (
    CONFIG_NOT_VALID_EXIT,
    MappingStopped,
    StateTransitionReason,
)
from runtime.observability.status import (
    ASSIGNED,
    CAUGHT_UP,
    INVOKING,
    POLLING,
    UNASSIGNED,
    StatusDocument,
    default_status_dir,
    read_status_documents,
)
from runtime.security.plan import SecurityOptions
from runtime.security.session import SecuritySession

BROKER_ERROR_EXIT = 1
_CLEAR_SCREEN = "\x1b[H\x1b[2J"


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
    now: float,
    paint: Painter | None = None,
) -> str:
    """The whole screen as text; ``paint`` colours states (off for pipes, NO_COLOR)."""
    paint = paint or Painter(enabled=False)
    lines = [
        f"Mapping {mapping.uuid}  function {mapping.function_name}",
        f"Topic {mapping.topic}  group {mapping.consumer_group_id}"
        + (f" ({group.state}, {len(group.members)} members)" if group else ""),
    ]
    lines.extend(_poller_lines(documents, now, paint))
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
    state_column = header.index("STATE")
    for index, row in enumerate(table):
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        if 0 < index < len(table) - 1:  # not the header, not TOTAL
            cells[state_column] = paint(cells[state_column], _STATE_COLOURS.get(row[5], Colour.DIM))
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append(
        f"OffsetLag {lag.total}  MaxOffsetLag {lag.maximum}"
        f"  DesiredPollerCount {desired_pollers(documents)}"
    )
    return "\n".join(lines) + "\n"


def desired_pollers(documents: Sequence[StatusDocument]) -> str:
    """The largest count the pollers published (the service scales on the maximum),
    or ``-`` before any did: it needs their workload, which only they measure."""
    counts = [d.desired_pollers for d in documents if d.desired_pollers is not None]
    return str(max(counts)) if counts else "-"


_STATE_COLOURS = {
    INVOKING: Colour.GREEN,
    POLLING: Colour.GREEN,
    CAUGHT_UP: Colour.GREEN,
    ASSIGNED: Colour.YELLOW,
    UNASSIGNED: Colour.RED,
}


def _poller_lines(documents: Sequence[StatusDocument], now: float, paint: Painter) -> list[str]:
    if not documents:
        return ["State unknown: no poller status document (is a poller running on this machine?)"]
    lines = []
    for document in documents:
        age = max(now - document.updated_at, 0.0)
        stale = "  " + paint("STALE", Colour.RED) if document.is_stale(now) else ""
        colour = Colour.GREEN if document.state == "Enabled" else Colour.YELLOW
        lines.append(
            f"Poller {document.poller_id}  State {paint(document.state, colour)}"
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
        "--endpoint",
        metavar="URL",
        help="a running 'kafka-esm serve' (http://127.0.0.1:9001): one line per mapping"
        " (UUID, function, topic, State, lag) instead of one mapping's partitions",
    )
    add_consumer_config_argument(parser)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Show the table until interrupted (or once); return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.endpoint is not None:
        return status_serve.run(args, out, err)
    try:
        mapping = load_mapping(args.mapping)
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
    paint = painter_for(out)
    previous: LagSnapshot | None = None
    try:
        while True:
            try:
                screen, previous = _screen(mapping, reader, directory, previous, paint=paint)
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
    previous: LagSnapshot | None,
    *,
    paint: Painter,
) -> tuple[str, LagSnapshot]:
    lag = reader.read()
    try:
        group: GroupView | None = reader.group()
    except LagReadError:
        group = None  # owners are a nicety: the offsets are what matter
    documents, problems = read_status_documents(directory)
    now = time.time()
    rows = partition_rows(lag, group, documents, previous, now)
    screen = render(mapping, lag, rows, group=group, documents=documents, now=now, paint=paint)
    for problem in problems:
        screen += f"ignored: {problem}\n"
    return screen, lag
