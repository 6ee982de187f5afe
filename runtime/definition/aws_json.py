"""The JSON users already have from AWS, read as the request it describes.

``aws lambda get-event-source-mapping`` (or boto3's ``get_event_source_mapping``) answers
with the mapping's configuration plus fields only AWS writes; ``list-event-source-mappings``
wraps such answers in ``EventSourceMappings``; the AWS CLI writes and accepts
``StartingPositionTimestamp`` as ISO 8601. :func:`as_request` turns each of these into the
CreateEventSourceMapping request that ``parse_mapping`` checks, and says what it dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

OUTPUT_ONLY: Final = frozenset(
    {
        "EventSourceMappingArn",
        "FilterCriteriaError",
        "FunctionArn",
        "LastModified",
        "LastProcessingResult",
        "State",
        "StateTransitionReason",
        "ResponseMetadata",  # boto3's, around every answer
    }
)
"""Fields of a get-event-source-mapping answer that no request takes (botocore's
``EventSourceMappingConfiguration`` minus ``CreateEventSourceMappingRequest``, less ``UUID``,
which a definition may give to keep the mapping's identity; a unit test checks the set)."""

LIST_KEY: Final = "EventSourceMappings"
_STOPPED_STATES: Final = frozenset({"Disabled", "Disabling"})


class AwsJsonError(ValueError):
    """AWS JSON that cannot stand for one mapping; the message says what to give instead."""


def as_request(doc: Any) -> tuple[Any, tuple[str, ...]]:
    """The request ``doc`` stands for, and one notice per change made to it.

    Anything that is not AWS's answer form comes back unchanged, for the validator to
    judge; a list answer must hold exactly one mapping (one process runs one mapping)."""
    notices: list[str] = []
    if isinstance(doc, Mapping) and LIST_KEY in doc:
        doc = _only_mapping(doc[LIST_KEY])
        notices.append(f"a list-event-source-mappings answer: its one mapping ({LIST_KEY}[0]) runs")
    if not isinstance(doc, Mapping):
        return doc, tuple(notices)
    request = dict(doc)
    dropped = sorted(name for name in request if name in OUTPUT_ONLY)
    if "FunctionArn" in request and "FunctionName" not in request:
        request["FunctionName"] = request["FunctionArn"]
    if request.get("State") in _STOPPED_STATES and "Enabled" not in request:
        request["Enabled"] = False
        notices.append(f"State {request['State']}: the mapping is read as Enabled: false")
    for name in dropped:
        del request[name]
    if dropped:
        notices.append(f"fields only AWS writes are ignored: {', '.join(dropped)}")
    stamp = request.get("StartingPositionTimestamp")
    if isinstance(stamp, str):
        epoch = _epoch_seconds(stamp)
        if epoch is not None:
            request["StartingPositionTimestamp"] = epoch
    return request, tuple(notices)


def _only_mapping(mappings: Any) -> Any:
    if not isinstance(mappings, list) or len(mappings) != 1:
        count = len(mappings) if isinstance(mappings, list) else "no list of"
        raise AwsJsonError(
            f"{LIST_KEY} holds {count} mappings: `kafka-esm run` runs one mapping per process;"
            f" give one ({LIST_KEY}[i]) or start one process per mapping"
        )
    return mappings[0]


def _epoch_seconds(text: str) -> float | None:
    """ISO 8601 as the AWS CLI writes it (``2026-01-01T00:00:00Z``, ``+00:00``, or a
    date-time without zone, which the CLI reads as UTC); None when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
