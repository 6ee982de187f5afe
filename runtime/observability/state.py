"""The mapping's lifecycle as AWS reports it: State, StateTransitionReason, LastProcessingResult.

AWS shows these on GetEventSourceMapping; the poller keeps the same three fields so
that a user reads one vocabulary whether the mapping runs in AWS or here.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("runtime.observability.state")


class State(StrEnum):
    """AWS's mapping states."""

    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"


class StateTransitionReason(StrEnum):
    """Why the state last changed; the error reasons stop the consumer."""

    USER_ACTION = "User action"
    USER_INITIATED = "USER_INITIATED"
    ESM_CONFIG_NOT_VALID = "ESM_CONFIG_NOT_VALID"
    EVENT_SOURCE_AUTHN_ERROR = "EVENT_SOURCE_AUTHN_ERROR"
    EVENT_SOURCE_AUTHZ_ERROR = "EVENT_SOURCE_AUTHZ_ERROR"
    FUNCTION_CONFIG_NOT_VALID = "FUNCTION_CONFIG_NOT_VALID"


CONFIG_NOT_VALID_EXIT = 2
"""A poller process's exit code when its mapping is refused (ESM_CONFIG_NOT_VALID)."""
MAPPING_STOPPED_EXIT = 3
"""A poller process's exit code when its mapping stopped as AWS would stop it."""

NO_RECORDS_PROCESSED = "No records processed"
OK = "OK"


def problem(message: str) -> str:
    """LastProcessingResult for a failure: ``PROBLEM: <message>``."""
    return f"PROBLEM: {message}"


class MappingStopped(RuntimeError):
    """The consumer stopped as AWS's would, with the reason and the result it reports."""

    def __init__(self, reason: StateTransitionReason, result: str) -> None:
        super().__init__(f"{reason.value}: {result}")
        self.reason = reason
        self.result = result


@dataclass(frozen=True)
class StatusSnapshot:
    """One consistent reading of the mapping's status."""

    state: State
    state_transition_reason: StateTransitionReason
    last_processing_result: str


class MappingStatus:
    """Thread-safe holder of the three status fields; every change is logged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = State.CREATING
        self._reason = StateTransitionReason.USER_ACTION
        self._result = NO_RECORDS_PROCESSED

    def transition(
        self, state: State, reason: StateTransitionReason = StateTransitionReason.USER_ACTION
    ) -> None:
        """Move to ``state`` for ``reason``."""
        with self._lock:
            if (state, reason) == (self._state, self._reason):
                return
            previous, self._state, self._reason = self._state, state, reason
        log.info(
            "state %s -> %s",
            previous.value,
            state.value,
            extra={"state": state.value, "stateTransitionReason": reason.value},
        )

    def record_result(self, result: str) -> None:
        """Set LastProcessingResult (``OK`` or ``PROBLEM: …``)."""
        with self._lock:
            self._result = result

    def swap_result(self, result: str) -> str:
        """Set LastProcessingResult to ``result``; returns the one it replaced."""
        with self._lock:
            previous, self._result = self._result, result
            return previous

    def replace_result(self, expected: str, result: str) -> bool:
        """Set ``result`` only while LastProcessingResult is still ``expected``."""
        with self._lock:
            if self._result != expected:
                return False
            self._result = result
            return True

    def stop(self, stopped: MappingStopped) -> None:
        """Disable the mapping for an error reason, as AWS does."""
        self.record_result(stopped.result)
        self.transition(State.DISABLED, stopped.reason)

    def snapshot(self) -> StatusSnapshot:
        """The three fields, read together."""
        with self._lock:
            return StatusSnapshot(self._state, self._reason, self._result)
