"""An unreachable cluster shows in LastProcessingResult, and librdkafka's repeats are said once."""

from __future__ import annotations

import json
import logging

import pytest
from confluent_kafka import KafkaError

from runtime.observability.client_errors import RepeatFilter, RepeatLimiter
from runtime.observability.reachability import CONNECTION_PROBLEM, Reachability
from runtime.observability.state import NO_RECORDS_PROCESSED, OK, MappingStatus

REFUSED = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"


def _stats(*states: tuple[int, str]) -> str:
    brokers = {f"b{n}/{n}": {"nodeid": n, "state": s} for n, s in states}
    return json.dumps({"brokers": brokers})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_of_one_error_are_counted_and_said_with_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = RepeatLimiter(logging.getLogger("t.limiter"), interval_s=30, clock=clock)
    with caplog.at_level(logging.WARNING, "t.limiter"):
        said = [limiter.warning("_TRANSPORT", f"{REFUSED} (after {n}ms in state CONNECT)")
                for n in range(12)]  # fmt: skip
        limiter.warning("_RESOLVE", "b-1.example.com:9092: Failed to resolve")  # another error
        clock.now = 31
        limiter.warning("_TRANSPORT", f"{REFUSED} (after 3ms in state CONNECT)")
    assert said == [True] + [False] * 11
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        REFUSED,
        "b-1.example.com:9092: Failed to resolve",
        f"{REFUSED} (repeated 11 more time(s) in 30 s)",
    ]
    assert caplog.records[0].code == "_TRANSPORT"  # type: ignore[attr-defined]


def test_a_logger_librdkafka_writes_to_drops_repeats_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("t.filtered")
    logger.addFilter(RepeatFilter(interval_s=30, clock=clock))
    with caplog.at_level(logging.WARNING, "t.filtered"):
        for n in range(5):  # as librdkafka logs: a format and its arguments
            logger.warning(
                "%s [%s] %s",
                "FAIL",
                "rdkafka#producer-1",
                f"{REFUSED} (after {n}ms in state CONNECT)",
            )
        logger.error("%s [%s] %s", "FAIL", "rdkafka#producer-1", REFUSED)  # another level
        clock.now = 30
        logger.warning("%s [%s] %s", "FAIL", "rdkafka#producer-1", REFUSED)
    assert [r.getMessage() for r in caplog.records] == [
        f"FAIL [rdkafka#producer-1] {REFUSED}",
        f"FAIL [rdkafka#producer-1] {REFUSED}",
        f"FAIL [rdkafka#producer-1] {REFUSED} (repeated 4 more time(s) in 30 s)",
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.ERROR, logging.WARNING]


def test_a_transport_error_shows_the_connection_problem_until_a_broker_is_up() -> None:
    status = MappingStatus()
    status.record_result(OK)
    reach = Reachability(status)
    reach.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    reach.on_error(KafkaError(KafkaError._TRANSPORT))
    assert status.snapshot().last_processing_result == CONNECTION_PROBLEM
    assert CONNECTION_PROBLEM.startswith("PROBLEM: Connection error.")
    reach.on_stats(_stats((-1, "UP"), (1, "DOWN")))  # only the bootstrap entry: not yet
    assert reach.unreachable
    reach.on_stats(_stats((1, "UP")))
    assert status.snapshot().last_processing_result == OK  # what it was before the outage
    assert not reach.unreachable


def test_other_errors_and_later_results_are_left_alone() -> None:
    status = MappingStatus()
    reach = Reachability(status)
    reach.on_error(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert status.snapshot().last_processing_result == NO_RECORDS_PROCESSED
    reach.on_error(KafkaError(KafkaError._RESOLVE))
    status.record_result(OK)  # a batch went through meanwhile: its result stands
    reach.on_stats(_stats((1, "UP")))
    assert status.snapshot().last_processing_result == OK
    reach.on_stats("not json")  # a bad statistics document changes nothing
