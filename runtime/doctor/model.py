"""What ``kafka-esm doctor`` works with and reports: inputs, findings, results, the table.

Every text here comes from mapping fields, broker answers and secret *checks*; none
ever holds a secret value, so the report is safe to print, log and paste.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from runtime.cli.launcher import InvokeTarget
from runtime.cli.terminal import Colour, Painter
from runtime.definition.model import EventSourceMapping
from runtime.observability.state import MappingStopped
from runtime.security.plan import SecurityOptions, SecurityPlan
from runtime.security.secrets import SecretReader

__all__ = [
    "CheckResult",
    "DoctorInputs",
    "DoctorReport",
    "Findings",
    "Status",
    "aws_error",
]

NO_AWS_ERROR = "-"


class Status(StrEnum):
    """A check's outcome; only FAIL makes the doctor exit non-zero."""

    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


def aws_error(stopped: MappingStopped) -> str:
    """``<StateTransitionReason>: PROBLEM: <message>``, as GetEventSourceMapping shows them."""
    return f"{stopped.reason.value}: {stopped.result}"


@dataclass(frozen=True)
class CheckResult:
    """One row of the report."""

    step: int
    check: str
    status: Status
    detail: str
    aws_error: str | None = None
    """What AWS would report for this problem (None: nothing, or not a problem)."""
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (camelCase, like AWS's API)."""
        return {
            "step": self.step,
            "check": self.check,
            "status": self.status.value,
            "detail": self.detail,
            "awsError": self.aws_error,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DoctorInputs:
    """What the user gave: the mapping, how to reach the function, local options."""

    mapping_path: Path | None
    target: InvokeTarget = field(default_factory=InvokeTarget)
    overrides: Mapping[str, str] = field(default_factory=dict)
    security: SecurityOptions = field(default_factory=SecurityOptions)
    timeout_s: float = 10.0
    """Upper bound of each network probe."""
    reader: SecretReader | None = None
    env: Mapping[str, str] | None = None
    """Where ``KAFKA_ESM_MAPPING`` is read when ``mapping_path`` is None (default: os.environ)."""


@dataclass
class Findings:
    """What earlier checks learnt and later ones use."""

    mapping: EventSourceMapping | None = None
    plan: SecurityPlan | None = None
    settings: dict[str, Any] = field(default_factory=dict, repr=False)
    """librdkafka security settings and the user's overrides (holds secrets: never print)."""
    principal: str | None = None
    reachable: list[str] = field(default_factory=list)
    broker_id: int | None = None
    topic_partitions: int | None = None
    topic_missing: bool = False
    group_state: str | None = None
    group_members: int = 0


@dataclass(frozen=True)
class DoctorReport:
    """All rows, in check order."""

    source: str
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings and skips alone do not fail)."""
        return not any(r.status is Status.FAIL for r in self.results)

    def count(self, status: Status) -> int:
        """How many rows have ``status``."""
        return sum(r.status is status for r in self.results)

    def to_json(self) -> str:
        """The report as one JSON document."""
        document = {
            "mapping": self.source,
            "ok": self.ok,
            "checks": [r.to_json() for r in self.results],
        }
        return json.dumps(document, indent=2)

    def render(self, width: int = 132, paint: Painter | None = None) -> str:
        """The report as text ``width`` columns wide: a table (step, check, result, AWS
        error, fix) from 120 columns, else one block per check. ``paint`` colours the
        status words (the CLI passes one that is off for pipes and NO_COLOR)."""
        paint = paint or Painter(enabled=False)
        lines = [f"kafka-esm doctor: {self.source}", ""]
        if width >= TABLE_MIN_WIDTH:
            lines += _table(self.results, _widths(width), paint)
        else:
            lines += _blocks(self.results, max(width, 40), paint)
        lines += ["", self._summary(paint)]
        return "\n".join(lines)

    def _summary(self, paint: Painter) -> str:
        failed, warned = self.count(Status.FAIL), self.count(Status.WARN)
        verdict = paint("FAILED", Colour.RED) if failed else paint("OK", Colour.GREEN)
        return f"{verdict}: {failed} failed, {warned} warnings, {self.count(Status.PASS)} passed"


TABLE_MIN_WIDTH = 120
"""Below this many columns the report is one block per check instead of a table."""

_COLOURS = {
    Status.PASS: Colour.GREEN,
    Status.WARN: Colour.YELLOW,
    Status.FAIL: Colour.RED,
    Status.SKIP: Colour.DIM,
}
_HEADER = ("#", "CHECK", "RESULT", "AWS ERROR", "FIX")
_STATUS_WIDTH = 4


def _widths(total: int) -> tuple[int, ...]:
    fixed = 1 + 20 + 4 * 2  # step, check, gaps
    free = total - fixed
    result, aws = free * 3 // 8, max(free * 2 // 7, 24)  # AWS error names fit a line
    return (1, 20, result, aws, free - result - aws)


def _table(results: Sequence[CheckResult], widths: Sequence[int], paint: Painter) -> list[str]:
    lines = [_line(_HEADER, widths), _line(["-" * w for w in widths], widths)]
    for r in results:
        row = (
            str(r.step),
            r.check,
            f"{r.status.value.upper()}  {r.detail}",
            r.aws_error or NO_AWS_ERROR,
            r.fix or NO_AWS_ERROR,
        )
        cells = [_wrap(text, w) for text, w in zip(row, widths, strict=True)]
        for index in range(max(len(c) for c in cells)):
            line = _line([c[index] if index < len(c) else "" for c in cells], widths)
            lines.append(_paint_status(line, r.status, paint) if index == 0 else line)
    return lines


def _blocks(results: Sequence[CheckResult], width: int, paint: Painter) -> list[str]:
    lines: list[str] = []
    indent = "    "
    for r in results:
        status = paint(r.status.value.upper().ljust(_STATUS_WIDTH), _COLOURS[r.status])
        lines.append(f"{r.step}. {status}  {r.check}")
        parts = [r.detail]
        parts += [f"AWS error: {r.aws_error}"] if r.aws_error else []
        parts += [f"fix: {r.fix}"] if r.fix else []
        for part in parts:
            lines += [indent + text for text in _wrap(part, width - len(indent))]
    return lines


def _paint_status(line: str, status: Status, paint: Painter) -> str:
    """Colour the status word in a table row's first line (after step and check)."""
    word = status.value.upper()
    at = 1 + 2 + 20 + 2
    if not paint.enabled or line[at : at + len(word)] != word:
        return line
    return line[:at] + paint(word, _COLOURS[status]) + line[at + len(word) :]


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width``, broken at spaces (a word longer than a line, such as
    an ARN, is cut where it must be: nothing is lost or reordered)."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()
