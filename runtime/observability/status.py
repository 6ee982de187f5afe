"""The status document: what one poller process says about itself, for ``kafka-esm status``.

State and LastProcessingResult live only in a poller's memory: every poller writes them,
with the partitions it owns and which of them have a batch with the function, to a small
JSON document (one per process, replaced atomically every few seconds). This module owns
the format; :mod:`runtime.observability.publishers` writes it, :mod:`runtime.cli.status`
reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.definition.model import EventSourceMapping

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
