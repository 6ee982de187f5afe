"""aws-cdk-lib's on-failure classes (``SqsDlq``, ``SnsDlq``, ``S3OnFailureDestination``) as
``on_failure``: the same mapping and permissions as this library's ``OnFailureDestination``,
and the same refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from constructs_kafka import OnFailureDestination
from constructs_kafka.validation import KafkaTriggerValidationError
from tests.cdk.conftest import new_stack, new_trigger
from tests.cdk.fixtures import small_poller_service

pytestmark = pytest.mark.cdk

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:failures"

Resource = Callable[[cdk.Stack], Any]


def _encrypted_queue(stack: cdk.Stack) -> sqs.Queue:
    key = kms.Key(stack, "QueueKey", enable_key_rotation=True)
    return sqs.Queue(stack, "Failures", encryption_master_key=key)


def _encrypted_topic(stack: cdk.Stack) -> sns.Topic:
    return sns.Topic(stack, "Failures", master_key=kms.Key(stack, "TopicKey"))


def _bucket(stack: cdk.Stack) -> s3.Bucket:
    return s3.Bucket(stack, "Failures", encryption_key=kms.Key(stack, "BucketKey"))


CASES: dict[str, tuple[Resource, Callable[[Any], Any], Callable[[Any], Any]]] = {
    "sqs": (_encrypted_queue, event_sources.SqsDlq, OnFailureDestination.sqs),
    "sns": (_encrypted_topic, event_sources.SnsDlq, OnFailureDestination.sns),
    "s3": (_bucket, event_sources.S3OnFailureDestination, OnFailureDestination.s3),
}


def _template(case: str, ours: bool) -> dict[str, Any]:
    stack = new_stack()
    make, theirs, mine = CASES[case]
    resource = make(stack)
    new_trigger(stack, on_failure=mine(resource) if ours else theirs(resource))
    return Template.from_stack(stack).to_json()


@pytest.mark.parametrize("case", sorted(CASES))
def test_aws_cdk_class_synthesizes_what_ours_does(case: str) -> None:
    """Same destination, same execution policy, same KMS grants, no extra IAM policy."""
    theirs, ours = _template(case, ours=False), _template(case, ours=True)
    assert theirs == ours
    (mapping,) = [
        r for r in ours["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    destination = mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert "Failures" in str(destination)


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_probe_is_left_in_the_tree(case: str) -> None:
    stack = new_stack()
    make, theirs, _ = CASES[case]
    trigger = new_trigger(stack, on_failure=theirs(make(stack)))
    paths = [c.node.path for c in stack.node.find_all()]
    assert not [p for p in paths if "Probe" in p]
    assert isinstance(trigger.props.on_failure, OnFailureDestination)


def test_created_fifo_queue_is_refused() -> None:
    stack = new_stack()
    queue = sqs.Queue(stack, "Q", fifo=True)
    with pytest.raises(KafkaTriggerValidationError) as raised:
        new_trigger(stack, on_failure=event_sources.SqsDlq(queue))
    expected = "on_failure (DestinationConfig.OnFailure.Destination): '<destination>' is a FIFO"
    assert expected in str(raised.value)


def test_created_fifo_topic_is_refused() -> None:
    stack = new_stack()
    topic = sns.Topic(stack, "T", fifo=True)
    with pytest.raises(KafkaTriggerValidationError, match="is a FIFO queue or topic"):
        new_trigger(stack, on_failure=event_sources.SnsDlq(topic))


def test_imported_fifo_queue_is_refused_by_its_arn() -> None:
    stack = new_stack()
    queue = sqs.Queue.from_queue_arn(stack, "Q", f"{QUEUE_ARN}.fifo")
    with pytest.raises(KafkaTriggerValidationError, match=rf"{QUEUE_ARN}\.fifo' is a FIFO"):
        new_trigger(stack, on_failure=event_sources.SqsDlq(queue))


def test_imported_standard_queue_keeps_its_arn() -> None:
    stack = new_stack()
    queue = sqs.Queue.from_queue_arn(stack, "Q", QUEUE_ARN)
    trigger = new_trigger(stack, on_failure=event_sources.SqsDlq(queue))
    assert trigger.props.on_failure == OnFailureDestination.sqs(queue)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"DestinationConfig": {"OnFailure": {"Destination": QUEUE_ARN}}},
    )


def test_something_else_is_named_with_the_accepted_types() -> None:
    stack = new_stack()
    with pytest.raises(TypeError, match="on_failure must be an OnFailureDestination, SqsDlq"):
        new_trigger(stack, on_failure="arn:aws:sqs:eu-west-1:123456789012:q")


def test_poller_service_accepts_aws_cdk_class() -> None:
    stack = new_stack()
    queue = sqs.Queue(stack, "Failures")
    service = small_poller_service(stack, on_failure=event_sources.SqsDlq(queue))
    assert service.props.on_failure == OnFailureDestination.sqs(queue)
