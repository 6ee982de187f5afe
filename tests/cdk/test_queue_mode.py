"""Queue mode in the constructs: the template, the runtime's refusals at synth, ACLs, and
the Fargate poller's task bounds past the partition count."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from constructs_kafka import (
    ConsumptionMode,
    KafkaTriggerValidationError,
    ProvisionedPollerConfig,
    StartingPosition,
)
from tests.cdk.conftest import SERVERS, cfn_lint, new_function, new_stack
from tests.cdk.fixtures import small_poller_service

pytestmark = pytest.mark.cdk


def queue_trigger(**props: Any) -> tuple[Any, dict[str, Any]]:
    from constructs_kafka import SelfManagedKafkaTrigger

    stack = new_stack()
    values: dict[str, Any] = {
        "function": new_function(stack),
        "bootstrap_servers": SERVERS,
        "topic": "orders",
        "consumption_mode": ConsumptionMode.QUEUE,
        "consumer_group_id": "orders-queue",
        **props,
    }
    trigger = SelfManagedKafkaTrigger(stack, "Trigger", **values)
    return trigger, Template.from_stack(stack).to_json()


def mapping_of(template: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    return dict(found)


def test_a_queue_trigger_synthesizes_without_a_starting_position_and_lints_clean() -> None:
    _trigger, template = queue_trigger(
        batch_size=10,
        report_batch_item_failures=True,
        provisioned_pollers=ProvisionedPollerConfig(minimum_pollers=1, maximum_pollers=4),
    )
    mapping = mapping_of(template)
    assert mapping["SelfManagedKafkaEventSourceConfig"] == {
        "ConsumerGroupId": "orders-queue",
        "ConsumptionMode": "Queue",
    }
    assert "StartingPosition" not in mapping
    assert "MaximumBatchingWindowInSeconds" not in mapping
    errors, _warnings = cfn_lint(template)
    assert errors == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {"starting_position": StartingPosition.TRIM_HORIZON},
            "starting_position (StartingPosition): 'TRIM_HORIZON' is not supported with "
            "ConsumptionMode Queue",
        ),
        (
            {"max_batching_window": cdk.Duration.seconds(1)},
            "max_batching_window (MaximumBatchingWindowInSeconds): 1 is not supported with "
            "ConsumptionMode Queue",
        ),
        (
            {
                "bisect_batch_on_error": True,
                "provisioned_pollers": ProvisionedPollerConfig(minimum_pollers=1),
            },
            "bisect_batch_on_error (BisectBatchOnFunctionError): True is not supported with "
            "ConsumptionMode Queue",
        ),
    ],
)
def test_synth_refuses_what_the_runtime_refuses_in_queue_mode(
    props: dict[str, Any], expected: str
) -> None:
    with pytest.raises(KafkaTriggerValidationError) as caught:
        queue_trigger(**props)
    found = [str(p) for p in caught.value.problems]
    assert any(p.startswith(expected) for p in found), found


def test_stream_mode_still_needs_a_starting_position() -> None:
    with pytest.raises(KafkaTriggerValidationError) as caught:
        queue_trigger(consumption_mode=None)
    assert [p.prop for p in caught.value.problems] == ["starting_position"]


def test_a_mode_that_is_not_stream_or_queue_is_named() -> None:
    with pytest.raises(KafkaTriggerValidationError) as caught:
        queue_trigger(consumption_mode="QUEUE")
    assert "consumption_mode" in [p.prop for p in caught.value.problems]


def test_the_acl_commands_name_the_share_group() -> None:
    trigger, _template = queue_trigger(acl_principal="User:orders")
    commands = "\n".join(trigger.acl_commands)
    assert "--operation Read --group 'orders-queue'" in commands
    assert "--operation DescribeConfigs --group 'orders-queue'" in commands


def test_the_fargate_poller_scales_past_the_partitions_in_queue_mode() -> None:
    stack = new_stack()
    small_poller_service(
        stack,
        consumption_mode=ConsumptionMode.QUEUE,
        starting_position=None,
        provisioned_pollers=ProvisionedPollerConfig(minimum_pollers=2, maximum_pollers=12),
    )
    template = Template.from_stack(stack).to_json()
    (target,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    ]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 12)  # 3 partitions


def test_stream_mode_keeps_the_poller_count_at_the_partitions() -> None:
    stack = new_stack()
    with pytest.raises(KafkaTriggerValidationError, match="more than partition_count"):
        small_poller_service(stack, max_tasks=12)
