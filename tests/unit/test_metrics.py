"""Counters and their MetricsConfig groups."""

from __future__ import annotations

import threading

from runtime.definition.vocabulary import EsmMetric
from runtime.observability.counters import Counters, Metric


def test_metric_names_are_aws_names() -> None:
    assert [m.value for m in Metric] == [
        "PolledEventCount",
        "FilteredOutEventCount",
        "InvokedEventCount",
        "FailedInvokeEventCount",
        "DroppedEventCount",
        "OnFailureDestinationDeliveredEventCount",
        "CommittedEventCount",
        "PollingErrorCount",
        "InvokeErrorCount",
        "CommitErrorCount",
        "AcknowledgedEventCount",
        "ReleasedEventCount",
        "RejectedEventCount",
        "RedeliveredEventCount",
    ]


def test_share_group_counts_are_queue_only() -> None:
    queue = {m for m in Metric if m.queue_only}
    assert queue == {Metric.ACKNOWLEDGED, Metric.RELEASED, Metric.REJECTED, Metric.REDELIVERED}


def test_error_counts_belong_to_the_error_group_and_the_rest_to_event_count() -> None:
    errors = {m for m in Metric if m.group is EsmMetric.ERROR_COUNT}
    assert errors == {Metric.POLLING_ERROR, Metric.INVOKE_ERROR, Metric.COMMIT_ERROR}
    assert {m.group for m in Metric} - {EsmMetric.ERROR_COUNT} == {EsmMetric.EVENT_COUNT}


def test_counters_add_from_many_threads_without_losing_a_count() -> None:
    counters = Counters()

    def bump() -> None:
        for _ in range(10_000):
            counters.add(Metric.POLLED)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.get(Metric.POLLED) == 40_000
    assert counters.snapshot()[Metric.INVOKED] == 0
