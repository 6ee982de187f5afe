"""ESM system logs (``LoggingConfig.SystemLogLevel``): AWS's JSON records, at AWS's levels.

AWS Lambda writes event-source-mapping logs of its own, separate from the function's:
one JSON object per event with ``eventType``, ``timestamp`` (epoch ms), ``resourceArn``
(the mapping), ``eventSourceArn``, ``eventProcessorId``, ``logLevel`` and, for problems,
``error {errorMessage, errorCode}``; DEBUG includes INFO and WARN, INFO includes WARN.
Here they are a view of the poller's own log events: a logging handler picks the events
AWS would report, shapes them so, and writes them to their own stream (``--system-log``,
stderr by default, which on Fargate is the task's log group). Without LoggingConfig
nothing changes.

Documented by AWS: the fields above and ``ESM_PROCESSING_EVENT`` for processing
problems (WARN). This project's choice: ``ESM_STATE_EVENT`` (INFO) for state changes,
``ESM_POLLING_EVENT`` (INFO) for partitions given and taken, and ``ESM_PROCESSING_EVENT``
at DEBUG for each invoked batch. ``errorCode`` names Kafka's Java exception where AWS
would (authorization), else librdkafka's error name.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, TextIO

from runtime.definition.model import EventSourceMapping
from runtime.definition.vocabulary import LOCAL_ACCOUNT, LOCAL_REGION, SystemLogLevel

__all__ = ["SystemLogHandler", "install_system_logs"]

PROCESSING = "ESM_PROCESSING_EVENT"
POLLING = "ESM_POLLING_EVENT"
STATE = "ESM_STATE_EVENT"

_INCLUDED = {
    SystemLogLevel.WARN: {"WARN"},
    SystemLogLevel.INFO: {"WARN", "INFO"},
    SystemLogLevel.DEBUG: {"WARN", "INFO", "DEBUG"},
}
_JAVA_ERRORS = {
    "TOPIC_AUTHORIZATION_FAILED": "org.apache.kafka.common.errors.TopicAuthorizationException",
    "GROUP_AUTHORIZATION_FAILED": "org.apache.kafka.common.errors.GroupAuthorizationException",
    "CLUSTER_AUTHORIZATION_FAILED": (
        "org.apache.kafka.common.errors.ClusterAuthorizationException"
    ),
}
# What each runtime logger's events are, by (logger, Python level): (eventType, AWS level).
_EVENTS: Mapping[tuple[str, int], tuple[str, str]] = {
    ("runtime.pipeline.source", logging.WARNING): (PROCESSING, "WARN"),
    ("runtime.pipeline.source", logging.INFO): (POLLING, "INFO"),
    ("runtime.pipeline.processor", logging.WARNING): (PROCESSING, "WARN"),
    ("runtime.pipeline.processor", logging.INFO): (PROCESSING, "DEBUG"),
    ("runtime.pipeline.poller", logging.ERROR): (PROCESSING, "WARN"),
    ("runtime.pipeline.poller", logging.WARNING): (PROCESSING, "WARN"),
    ("runtime.observability.state", logging.INFO): (STATE, "INFO"),
}
_FIELDS = ("partitions", "offsets", "records", "batch", "state", "stateTransitionReason")


class SystemLogHandler(logging.Handler):
    """Writes the events AWS would log for ``mapping``, at its SystemLogLevel, to ``stream``."""

    def __init__(self, mapping: EventSourceMapping, stream: TextIO, region: str | None) -> None:
        super().__init__(logging.DEBUG)
        level = mapping.system_log_level or SystemLogLevel.WARN
        self._included = _INCLUDED[level]
        self._stream = stream
        self._write_lock = threading.Lock()
        self._resource_arn = _mapping_arn(mapping, region)
        self._source = mapping.uuid  # a self-managed cluster has no ARN
        self._processor = f"{mapping.uuid}/0"

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` as a system log line when AWS would log such an event."""
        event = _EVENTS.get((record.name, record.levelno))
        if event is None or event[1] not in self._included:
            return
        try:
            line = json.dumps(self._document(record, *event), default=str, separators=(",", ":"))
            with self._write_lock:
                self._stream.write(line + "\n")
                self._stream.flush()
        except Exception:  # a broken log stream must never stop the poller
            self.handleError(record)

    def _document(self, record: logging.LogRecord, event_type: str, level: str) -> dict[str, Any]:
        document: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": int(record.created * 1000),
            "resourceArn": self._resource_arn,
            "eventSourceArn": self._source,
            "eventProcessorId": self._processor,
            "logLevel": level,
        }
        details = {k: getattr(record, k) for k in _FIELDS if hasattr(record, k)}
        if level == "WARN":
            code = str(getattr(record, "code", "") or record.name.rsplit(".", 1)[-1])
            document["error"] = {
                "errorMessage": record.getMessage(),
                "errorCode": _JAVA_ERRORS.get(code, code),
            }
        else:
            document["message"] = record.getMessage()
        return {**document, **details}


def install_system_logs(
    mapping: EventSourceMapping, stream: TextIO, region: str | None = None
) -> SystemLogHandler | None:
    """Attach the system log handler when the mapping has LoggingConfig; None otherwise.

    The ``runtime`` logger passes INFO on for it even when ``--log-level`` is WARNING: the
    poller's own handlers keep their level, so its usual output does not change."""
    if mapping.system_log_level is None:
        return None
    handler = SystemLogHandler(mapping, stream, region)
    root = logging.getLogger("runtime")
    for existing in root.handlers:
        if existing.level == logging.NOTSET:
            existing.setLevel(root.level)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    root.addHandler(handler)
    return handler


def _mapping_arn(mapping: EventSourceMapping, region: str | None) -> str:
    """``arn:aws:lambda:<region>:<account>:event-source-mapping:<UUID>``, the function
    ARN's region and account when FunctionName is one, else the local placeholders."""
    parts = mapping.function_name.split(":")
    if mapping.function_name.startswith("arn:") and len(parts) > 4:
        partition, arn_region, account = parts[1], parts[3], parts[4]
    else:
        partition, arn_region, account = "aws", None, LOCAL_ACCOUNT
    where = region or arn_region or LOCAL_REGION
    return f"arn:{partition}:lambda:{where}:{account}:event-source-mapping:{mapping.uuid}"
