"""What happens after a failed invocation: wait, retry, and when to give up.

AWS's default for Kafka is to retry a failing batch until it succeeds. The backoff
is exponential with full jitter, so that many partitions failing together do not
retry in lockstep against a struggling function.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from runtime.invokers import ErrorKind, InvokeResult
from runtime.state import MappingStopped, StateTransitionReason, problem


@dataclass(frozen=True)
class RetryBackoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, first * 2**n))``."""

    first_s: float = 0.2
    cap_s: float = 30.0
    jitter: bool = True

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        ceiling = min(self.cap_s, self.first_s * (2 ** max(0, retry - 1)))
        return random.uniform(0, ceiling) if self.jitter else ceiling  # noqa: S311 - not crypto


def stop_for(result: InvokeResult) -> MappingStopped | None:
    """A result no retry can fix stops the mapping, as AWS does (FUNCTION_CONFIG_NOT_VALID)."""
    if result.error_kind is ErrorKind.CONFIG_ERROR:
        return MappingStopped(
            StateTransitionReason.FUNCTION_CONFIG_NOT_VALID, problem(result.message or "invalid")
        )
    return None


def describe_failure(result: InvokeResult) -> str:
    """A log-ready cause: kind, function error and message (no payload bodies)."""
    parts = [result.error_kind.value]
    if result.function_error:
        parts.append(result.function_error)
    if result.message:
        parts.append(result.message)
    return ": ".join(parts)
