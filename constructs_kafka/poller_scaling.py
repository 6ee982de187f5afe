"""Scaling the Fargate poller's task count on the lag signal the runtime publishes.

The contract with the runtime (``runtime.observability.publishers``): every poller writes,
every ``--metrics-interval`` seconds, an Embedded Metric Format line with the metric
``DesiredPollerCount`` (namespace ``--metrics-namespace``, dimension
``EventSourceMappingUUID`` = the mapping's ``UUID``), the value the capacity model of
``runtime.observability.scaling`` gives, within MinimumPollers..MaximumPollers and the
partitions. Pollers read the same group lag from the broker but time their own
invocations, so they may differ: the policy takes the Maximum. The awslogs driver ships
the line to CloudWatch Logs, which turns it into the metric (no ``PutMetricData`` call).

The signal is already a task count, so the policy is a step scaling policy with
``ExactCapacity`` steps: value ``n`` sets the count to ``n``. Target tracking does not
fit: it scales a metric that falls as capacity grows (a utilisation), and this one
does not. Scale-outs apply at once (a higher count is a "larger scale-out", never
held back by the cooldown); a scale-in waits for the cooldown since the last one,
since each change of the count rebalances the consumer group. No data (no poller
running, broker unreachable) leaves the alarm INSUFFICIENT_DATA: the count stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk.interfaces import aws_applicationautoscaling as scaling_refs
from constructs import Construct

from runtime.observability.publishers import (
    DEFAULT_NAMESPACE,
    DESIRED_POLLER_COUNT,
    MAPPING_DIMENSION,
)

__all__ = [
    "DEFAULT_SCALE_IN_COOLDOWN",
    "MAX_STEP_ADJUSTMENTS",
    "CapacityStep",
    "DesiredPollerScaling",
    "capacity_steps",
    "desired_pollers_metric",
]

METRIC_PERIOD: Final = cdk.Duration.minutes(1)
"""CloudWatch's standard resolution; the pollers publish more often than this."""
DEFAULT_SCALE_IN_COOLDOWN: Final = cdk.Duration.minutes(5)
"""Application Auto Scaling's own default for ECS: at most one scale-in per 5 minutes."""
MAX_STEP_ADJUSTMENTS: Final = 20
"""Application Auto Scaling's default quota of step adjustments per step scaling policy."""


def desired_pollers_metric(
    mapping_uuid: str, namespace: str = DEFAULT_NAMESPACE
) -> cloudwatch.Metric:
    """The pollers' ``DesiredPollerCount``; Maximum, so one late poller cannot lower it."""
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=DESIRED_POLLER_COUNT,
        dimensions_map={MAPPING_DIMENSION: mapping_uuid},
        statistic=cloudwatch.Stats.MAXIMUM,
        period=METRIC_PERIOD,
    )


@dataclass(frozen=True, slots=True)
class CapacityStep:
    """Metric values ``lower <= v < upper`` (``upper`` None: no bound) set ``capacity``."""

    lower: int
    upper: int | None
    capacity: int


def capacity_steps(
    min_tasks: int, max_tasks: int, limit: int = MAX_STEP_ADJUSTMENTS
) -> list[CapacityStep]:
    """Steps from metric value 0 up, one per task count from ``min_tasks`` to ``max_tasks``.

    Beyond ``limit`` counts, the counts are spread evenly and a value between two of
    them rounds up: the service is never given fewer pollers than the lag asks for.
    """
    if not 1 <= min_tasks <= max_tasks:
        raise ValueError(f"min_tasks {min_tasks} must be from 1 to max_tasks {max_tasks}")
    if limit < 1:
        raise ValueError(f"limit {limit} must be at least 1")
    span = max_tasks - min_tasks
    if span < limit:
        counts = list(range(min_tasks, max_tasks + 1))
    else:
        counts = [min_tasks + math.ceil(k * span / (limit - 1)) for k in range(limit)]
    steps: list[CapacityStep] = []
    lower = 0
    for index, count in enumerate(counts):
        upper = None if index == len(counts) - 1 else count + 1
        steps.append(CapacityStep(lower, upper, count))
        lower = count + 1
    return steps


class DesiredPollerScaling(Construct):
    """The alarm and the ExactCapacity policy that set the task count to the signal.

    The alarm is a trigger, not an alert: it is in ALARM whenever pollers publish, and
    CloudWatch invokes a scaling action every minute its alarm stays in ALARM.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        scaling_target: scaling_refs.IScalableTargetRef,
        metric: cloudwatch.IMetric,
        min_tasks: int,
        max_tasks: int,
        scale_in_cooldown: cdk.Duration = DEFAULT_SCALE_IN_COOLDOWN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.steps = capacity_steps(min_tasks, max_tasks)
        self.action = appscaling.StepScalingAction(
            self,
            "Policy",
            scaling_target=scaling_target,
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=scale_in_cooldown,
        )
        for step in self.steps:
            self.action.add_adjustment(
                adjustment=step.capacity, lower_bound=step.lower, upper_bound=step.upper
            )
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
            alarm_description=(
                "Scaling trigger, not an alert: in ALARM while the Kafka pollers publish "
                "DesiredPollerCount; each minute the task count is set to it."
            ),
        )
        self.alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(self.action))
