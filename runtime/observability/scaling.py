"""How many pollers the lag calls for: the number a Fargate service scales to.

AWS evaluates the offset lag of all partitions every minute and adds or removes
consumers, never more than one per partition. Here each poller computes the same
number from the group's lag (read from the broker, so every poller agrees) and
publishes it as ``DesiredPollerCount``; the service's scaling policy acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LAG_PER_POLLER = 10_000
"""Records of lag one poller is expected to work off; a guess to tune per workload."""


def desired_pollers(total_lag: int, lag_per_poller: int, partitions: int) -> int:
    """``ceil(total_lag / lag_per_poller)``, at most ``partitions``, never below 1."""
    if total_lag < 0:
        raise ValueError(f"total_lag {total_lag} must be at least 0")
    if lag_per_poller < 1:
        raise ValueError(f"lag_per_poller {lag_per_poller} must be at least 1")
    wanted = -(-total_lag // lag_per_poller)  # integer ceiling: no float rounding on big lags
    return max(1, min(wanted, partitions))


@dataclass(frozen=True)
class ScalingPolicy:
    """The threshold of the scaling rule; the reporter applies it every interval."""

    lag_per_poller: int = DEFAULT_LAG_PER_POLLER

    def __post_init__(self) -> None:
        if isinstance(self.lag_per_poller, bool) or not isinstance(self.lag_per_poller, int):
            raise ValueError(f"lag_per_poller {self.lag_per_poller!r} must be a whole number")
        if self.lag_per_poller < 1:
            raise ValueError(f"lag_per_poller {self.lag_per_poller} must be at least 1")

    def desired(self, total_lag: int, partitions: int) -> int:
        """The poller count for ``total_lag`` records behind over ``partitions``."""
        return desired_pollers(total_lag, self.lag_per_poller, partitions)
