"""DesiredPollerCount: ceil(total lag / threshold), at most the partitions, at least 1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.observability.scaling import DEFAULT_LAG_PER_POLLER, ScalingPolicy, desired_pollers


@pytest.mark.parametrize(
    ("lag", "threshold", "partitions", "expected"),
    [
        (0, 100, 8, 1),  # no lag: never below one poller
        (1, 100, 8, 1),
        (100, 100, 8, 1),
        (101, 100, 8, 2),  # a ceiling, not a rounding
        (250, 100, 8, 3),
        (10_000, 100, 8, 8),  # one poller per partition at most
        (5, 1, 3, 3),
        (7, 100, 0, 1),  # a topic with no partition still keeps one poller
    ],
)
def test_desired_pollers(lag: int, threshold: int, partitions: int, expected: int) -> None:
    assert desired_pollers(lag, threshold, partitions) == expected


def test_huge_lags_use_exact_integer_arithmetic() -> None:
    lag = 10**18 + 1
    assert desired_pollers(lag, 10**18, 10**6) == 2


@given(
    lag=st.integers(0, 10**12),
    threshold=st.integers(1, 10**7),
    partitions=st.integers(1, 10_000),
)
def test_desired_pollers_properties(lag: int, threshold: int, partitions: int) -> None:
    desired = desired_pollers(lag, threshold, partitions)
    assert 1 <= desired <= partitions
    # Enough pollers for the lag (unless capped by partitions), and no more than needed.
    assert desired == partitions or desired * threshold >= lag
    assert desired == 1 or (desired - 1) * threshold < lag


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 100))
def test_more_lag_never_asks_for_fewer_pollers(a: int, b: int, partitions: int) -> None:
    low, high = sorted((a, b))
    assert desired_pollers(low, 1000, partitions) <= desired_pollers(high, 1000, partitions)


def test_negative_lag_is_refused() -> None:
    with pytest.raises(ValueError, match="total_lag -1 must be at least 0"):
        desired_pollers(-1, 10, 2)


@pytest.mark.parametrize("threshold", [0, -5])
def test_policy_refuses_a_threshold_below_one(threshold: int) -> None:
    with pytest.raises(ValueError, match=f"lag_per_poller {threshold} must be at least 1"):
        ScalingPolicy(threshold)


@pytest.mark.parametrize("threshold", [1.5, True, "10"])
def test_policy_refuses_a_threshold_that_is_not_a_whole_number(threshold: object) -> None:
    with pytest.raises(ValueError, match=r"lag_per_poller .* must be a whole number"):
        ScalingPolicy(threshold)  # type: ignore[arg-type]


def test_policy_applies_its_threshold() -> None:
    assert ScalingPolicy().lag_per_poller == DEFAULT_LAG_PER_POLLER
    assert ScalingPolicy(50).desired(total_lag=120, partitions=4) == 3
