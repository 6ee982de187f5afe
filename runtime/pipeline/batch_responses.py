"""Read a function's ReportBatchItemFailures reply for a Kafka batch.

With ``FunctionResponseTypes: [ReportBatchItemFailures]`` the function may answer
``{"batchItemFailures": [{"itemIdentifier": {"partition": "<topic>-<partition>",
"offset": <int>}}]}``. AWS reads it this way: null, an empty reply, an object without
the list, a null list or an empty list mean the whole batch succeeded; processing of a
partition resumes from its lowest failed offset. Anything malformed, or an identifier
that was not in the invoked event, fails the whole batch. The function's reply is not
trusted: every problem is reported with where it is and what rule it broke.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

_FIELD = "batchItemFailures"
_MAX_SHOWN = 80


class BatchResponseError(ValueError):
    """The reply is not a valid partial batch response: the whole batch counts as failed."""


def lowest_failed_offsets(
    payload: bytes | None, sent: Mapping[str, Collection[int]]
) -> dict[str, int]:
    """The lowest failed offset per ``<topic>-<partition>``; empty when all succeeded.

    ``sent`` holds the offsets the invoked event carried, per partition key. Raises
    BatchResponseError for a malformed reply or an identifier not in ``sent``.
    """
    lowest: dict[str, int] = {}
    for partition, offset in failed_items(payload, sent):
        lowest[partition] = min(offset, lowest.get(partition, offset))
    return lowest


def failed_items(
    payload: bytes | None, sent: Mapping[str, Collection[int]], *, queue: bool = False
) -> list[tuple[str, int]]:
    """Every failed ``(<topic>-<partition>, offset)`` the reply names, in its order.

    With ``queue`` (ConsumptionMode Queue, where records are released one by one) an
    identifier may also be the string ``"<topic>-<partition>-<offset>"``, the form AWS's
    Queue-mode sample returns.
    """
    body = _decode(payload)
    if body is None:
        return []
    if not isinstance(body, dict):
        raise BatchResponseError(
            f"reply={_show(body)} is not valid: must be a JSON object with {_FIELD}, or null"
        )
    failures = body.get(_FIELD)
    if failures is None:
        return []
    if not isinstance(failures, list):
        raise BatchResponseError(f"{_FIELD}={_show(failures)} is not valid: must be a list")
    return [
        _identifier(f"{_FIELD}[{index}]", item, sent, queue=queue)
        for index, item in enumerate(failures)
    ]


def _decode(payload: bytes | None) -> Any:
    if payload is None or not payload.strip():
        return None
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise BatchResponseError(f"reply is not valid: not JSON ({exc})") from None
    except RecursionError:  # json's C decoder recurses once per nested array or object
        raise BatchResponseError("reply is not valid: its JSON nests too deeply") from None


def _identifier(
    path: str, item: Any, sent: Mapping[str, Collection[int]], *, queue: bool
) -> tuple[str, int]:
    if not isinstance(item, dict):
        raise BatchResponseError(f"{path}={_show(item)} is not valid: must be an object")
    identifier = item.get("itemIdentifier")
    path += ".itemIdentifier"
    partition: Any
    offset: Any
    if queue and isinstance(identifier, str):
        partition, offset = _split_record_name(path, identifier)
    elif not isinstance(identifier, dict):
        also = ' or a "<topic>-<partition>-<offset>" string' if queue else ""
        raise BatchResponseError(
            f"{path}={_show(identifier)} is not valid: must be an object "
            f'{{"partition": "<topic>-<partition>", "offset": <int>}}{also}'
        )
    else:
        partition = identifier.get("partition")
        offset = identifier.get("offset")
    if not isinstance(partition, str):
        raise BatchResponseError(
            f'{path}.partition={_show(partition)} is not valid: must be a "<topic>-<partition>" '
            "string"
        )
    if type(offset) is not int:
        raise BatchResponseError(f"{path}.offset={_show(offset)} is not valid: must be an integer")
    if partition not in sent:
        raise BatchResponseError(
            f"{path}.partition={_show(partition)} is not in the batch: it holds "
            f"{', '.join(sorted(sent)) or 'no records'}"
        )
    if offset not in sent[partition]:
        offsets = sent[partition]
        raise BatchResponseError(
            f"{path}.offset={offset} is not in the batch: partition {partition} was sent "
            f"{len(offsets)} record(s) at offsets {min(offsets)}-{max(offsets)}"
        )
    return partition, offset


def _split_record_name(path: str, name: str) -> tuple[str, Any]:
    """``"<topic>-<partition>-<offset>"`` → (``"<topic>-<partition>"``, offset)."""
    head, _, offset = name.rpartition("-")
    if not head or not offset.isdigit() or not head.rpartition("-")[2].isdigit():
        raise BatchResponseError(
            f'{path}={_show(name)} is not valid: must be "<topic>-<partition>-<offset>"'
        )
    return head, int(offset)


def _show(value: Any) -> str:
    """A decoded JSON value as JSON, shortened: replies can be large."""
    text = json.dumps(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
