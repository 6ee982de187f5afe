"""DesiredPollerCount: AWS's poller capacity applied to the rate a mapping must sustain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.definition.model import parse_mapping
from runtime.observability.lag import LagSnapshot, PartitionLag
from runtime.observability.scaling import (
    AWS_POLLER_BYTES_PER_S,
    AWS_POLLER_CONCURRENCY,
    PollerBounds,
    PollerCapacity,
    ScalingModel,
    Workload,
    WorkloadMeter,
)
from runtime.records import Record

MIB = 1024 * 1024


def _lag(at: float, *partitions: tuple[int, int]) -> LagSnapshot:
    """Each partition as (committed, end)."""
    rows = tuple(PartitionLag(p, c, 0, e, e - c) for p, (c, e) in enumerate(partitions))
    return LagSnapshot("orders", "g1", rows, at)


def _model(
    minimum: int = 1, maximum: int = 200, catch_up_s: float = 100.0, **capacity: int
) -> ScalingModel:
    return ScalingModel(
        PollerCapacity(catch_up_s=catch_up_s, **capacity), PollerBounds(minimum, maximum)
    )


def test_aws_figures_are_the_defaults() -> None:
    capacity = PollerCapacity()
    assert (capacity.bytes_per_s, capacity.concurrent_invocations) == (5 * MIB, 5)
    assert (AWS_POLLER_BYTES_PER_S, AWS_POLLER_CONCURRENCY) == (5 * MIB, 5)


def test_the_count_stays_at_the_lower_bound_until_a_record_cost_is_known() -> None:
    model = _model(minimum=2)
    demand = model.update(_lag(0, (0, 10**9), (0, 0), (0, 0)), Workload())
    assert demand.desired == 2  # a huge lag, but no record was polled nor invoked yet


def test_concurrency_decides_for_slow_functions() -> None:
    model = _model()
    # 10,000 records behind over 100 s: 100 records/s; each took 0.2 s of function time
    workload = Workload(records_polled=100, bytes_polled=100, records_sent=100, invoke_s=20.0)
    demand = model.update(_lag(0, *[(0, 1000)] * 10), workload)
    assert demand.needed_per_s == pytest.approx(100.0)
    assert demand.by_concurrency == pytest.approx(100 * 0.2 / 5)  # 4 pollers
    assert demand.by_throughput < 0.01
    assert demand.desired == 4


def test_throughput_decides_for_big_records() -> None:
    model = _model()
    # 100 records/s of 1 MiB each is 20 pollers of 5 MiB/s; the function is quick
    workload = Workload(records_polled=10, bytes_polled=10 * MIB, records_sent=10, invoke_s=0.01)
    demand = model.update(_lag(0, *[(0, 500)] * 20), workload)
    assert demand.by_throughput == pytest.approx(20.0)
    assert demand.desired == 20


def test_ingress_between_two_readings_counts_as_rate_to_sustain() -> None:
    model = _model(catch_up_s=1e9, concurrent_invocations=1)  # the lag itself barely counts
    costs = Workload(records_polled=1, bytes_polled=1, records_sent=1, invoke_s=0.01)
    model.update(_lag(0, (0, 0), (0, 0)), costs)
    # 300 records written in 1 s over two partitions, all consumed: 300/s x 0.01 s = 3
    demand = model.update(_lag(1.0, (100, 100), (200, 200)), costs)
    assert demand.ingress_per_s == pytest.approx(300.0)
    assert demand.desired == 2  # 3 wanted, at most one poller per partition


def test_the_count_is_bounded_by_minimum_maximum_and_the_partitions() -> None:
    workload = Workload(records_polled=1, bytes_polled=1, records_sent=1, invoke_s=10.0)
    lag = _lag(0, *[(0, 1000)] * 8)
    assert _model(maximum=3).update(lag, workload).desired == 3
    assert _model(minimum=6).update(_lag(0, *[(0, 0)] * 8), workload).desired == 6
    # MinimumPollers above the partition count: one poller per partition, no more
    assert _model(minimum=20).update(_lag(0, *[(0, 0)] * 8), workload).desired == 8


def test_a_throttled_interval_lowers_the_count_by_one_and_never_below_the_minimum() -> None:
    model = _model(minimum=2)
    busy = Workload(records_polled=1, bytes_polled=1, records_sent=1, invoke_s=10.0)
    lag = _lag(0, *[(0, 1000)] * 8)
    assert model.update(lag, busy).desired == 8
    throttled = Workload(1, 1, 1, 10.0, throttles=3)
    demand = model.update(_lag(1, *[(0, 1000)] * 8), throttled)
    assert (demand.throttled, demand.desired) == (True, 7)
    counts = [
        model.update(_lag(2 + i, *[(0, 1000)] * 8), Workload(1, 1, 1, 10.0, 4 + i)).desired
        for i in range(10)
    ]
    assert counts[:5] == [6, 5, 4, 3, 2] and set(counts[5:]) == {2}
    # throttling over: the demand decides again
    assert model.update(_lag(20, *[(0, 1000)] * 8), Workload(1, 1, 1, 10.0, 13)).desired == 8


def test_an_idle_interval_keeps_the_last_known_cost() -> None:
    model = _model()
    first = Workload(records_polled=10, bytes_polled=10, records_sent=10, invoke_s=2.0)
    model.update(_lag(0, *[(0, 1000)] * 10), first)
    demand = model.update(_lag(1, *[(0, 1000)] * 10), first)  # nothing polled since
    assert demand.desired == 4  # 100 records/s x 0.2 s / 5


@given(
    st.integers(0, 10**7),
    st.integers(1, 64),
    st.floats(0.0001, 10.0),
    st.integers(1, 10),
    st.integers(1, 200),
)
def test_the_count_grows_with_the_lag_and_stays_in_bounds(
    lag: int, partitions: int, seconds: float, minimum: int, maximum: int
) -> None:
    maximum = max(minimum, maximum)
    workload = Workload(records_polled=1, bytes_polled=100, records_sent=1, invoke_s=seconds)

    def desired(total: int) -> int:
        rows = [(0, total // partitions)] * partitions
        return _model(minimum, maximum).update(_lag(0, *rows), workload).desired

    low, high = desired(lag), desired(lag * 2)
    assert low <= high
    assert min(minimum, partitions) <= low <= min(maximum, partitions)


def test_the_meter_counts_polled_bytes_and_sent_invocations_only() -> None:
    meter = WorkloadMeter()
    meter.polled([Record("t", 0, 0, 0, key=b"ab", value=b"cde"), Record("t", 0, 1, 0)])
    meter.invoked(2, 0.5, ran=True, throttled=False)
    meter.invoked(2, 3.0, ran=False, throttled=True)  # refused before reaching the function
    assert meter.snapshot() == Workload(2, 5, 2, 0.5, 1)
    assert meter.snapshot().since(Workload(1, 1, 1, 0.25, 0)) == Workload(1, 4, 1, 0.25, 1)


def test_bounds_come_from_provisioned_poller_config() -> None:
    base = {
        "FunctionName": "fn",
        "Topics": ["orders"],
        "StartingPosition": "LATEST",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b:9092"]}},
    }
    assert PollerBounds.of(parse_mapping(base)) == PollerBounds(1, 200)
    provisioned = {**base, "ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 9}}
    assert PollerBounds.of(parse_mapping(provisioned)) == PollerBounds(2, 9)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bytes_per_s": 0}, "bytes_per_s 0 must be a whole number of at least 1"),
        ({"concurrent_invocations": 1.5}, "concurrent_invocations 1.5 must be a whole number"),
        ({"concurrent_invocations": True}, "concurrent_invocations True must be a whole number"),
        ({"catch_up_s": 0}, "catch_up_s 0 must be more than 0 seconds"),
    ],
)
def test_bad_capacity_is_refused_naming_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PollerCapacity(**fields)  # type: ignore[arg-type]


def test_queue_mode_may_want_more_pollers_than_partitions() -> None:
    workload = Workload(records_polled=1, bytes_polled=1, records_sent=1, invoke_s=10.0)
    lag = _lag(0, (0, 1000))  # one partition, a backlog of 1000 slow records
    queue = ScalingModel(PollerCapacity(catch_up_s=100.0), PollerBounds(1, 10, per_partition=False))
    assert queue.update(lag, workload).desired == 10
    assert _model(maximum=10).update(lag, workload).desired == 1


def test_queue_bounds_are_not_per_partition() -> None:
    queue = {
        "FunctionName": "fn",
        "Topics": ["orders"],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b:9092"]}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumptionMode": "Queue"},
    }
    assert PollerBounds.of(parse_mapping(queue)) == PollerBounds(1, 200, per_partition=False)


def test_the_delivered_front_is_the_offset_after_the_highest_delivered() -> None:
    meter = WorkloadMeter()
    assert meter.front() == {}
    meter.delivered([Record("t", 0, 5, 0), Record("t", 0, 3, 0), Record("t", 1, 0, 0)])
    meter.delivered([Record("t", 0, 4, 0)])  # a redelivery behind the front moves nothing
    assert meter.front() == {0: 6, 1: 1}
