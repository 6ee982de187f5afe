"""On-failure destinations: where a batch goes once its retries or record age run out.

Each destination knows its ARN (or ``kafka://`` URI), the service the mapping calls
(for VPC endpoints) and its customer-managed KMS key, so permissions and endpoint
policies are derived from it rather than written by hand at each use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from runtime.definition.vocabulary import KAFKA_DESTINATION_PREFIX, DestinationKind

__all__ = ["AwsCdkOnFailure", "OnFailureDestination", "on_failure_destination"]

AwsCdkOnFailure = event_sources.SqsDlq | event_sources.SnsDlq | event_sources.S3OnFailureDestination
"""aws-cdk-lib's own on-failure classes for event sources, accepted wherever ``on_failure`` is."""


@dataclass(frozen=True)
class OnFailureDestination:
    """An on-failure destination; build it with ``sqs``, ``sns``, ``s3`` or ``kafka``."""

    kind: DestinationKind
    destination: str
    """The queue, topic or bucket ARN, or ``kafka://<topic>``."""
    encryption_key: kms.IKey | None = None
    bucket: s3.IBucket | None = None
    fifo: bool = False
    """A FIFO queue or topic, which Lambda refuses as a Kafka destination."""

    @classmethod
    def sqs(cls, queue: sqs.IQueue) -> OnFailureDestination:
        """An SQS queue; the role gets ``sqs:SendMessage`` (and its KMS key's actions)."""
        return cls(
            DestinationKind.SQS, queue.queue_arn, queue.encryption_master_key, fifo=queue.fifo
        )

    @classmethod
    def sns(
        cls, topic: sns.ITopic, *, encryption_key: kms.IKey | None = None
    ) -> OnFailureDestination:
        """An SNS topic; ``encryption_key`` is its customer-managed key, if any (an
        ``ITopic`` does not expose it)."""
        key = encryption_key or getattr(topic, "master_key", None)
        return cls(DestinationKind.SNS, topic.topic_arn, key, fifo=bool(topic.fifo))

    @classmethod
    def s3(cls, bucket: s3.IBucket) -> OnFailureDestination:
        """An S3 bucket; the failure record includes the whole batch. The role gets
        ``s3:PutObject`` and ``s3:ListBucket`` (both, per the Lambda guide)."""
        return cls(DestinationKind.S3, bucket.bucket_arn, bucket.encryption_key, bucket)

    @classmethod
    def kafka(cls, topic: str) -> OnFailureDestination:
        """A topic on the same cluster (not the source topic); provisioned mode only. The
        principal needs Describe and Write on it (see ``required_acls``)."""
        return cls(DestinationKind.KAFKA, f"{KAFKA_DESTINATION_PREFIX}{topic}")


def on_failure_destination(
    scope: Construct,
    destination: OnFailureDestination | AwsCdkOnFailure | None,
    function: lambda_.IFunction,
) -> OnFailureDestination | None:
    """``destination`` as this library's type; aws-cdk-lib's ``SqsDlq``, ``SnsDlq`` and
    ``S3OnFailureDestination`` are accepted so that code written for aws-cdk-lib's
    ``SelfManagedKafkaEventSource`` keeps its ``on_failure`` unchanged."""
    if destination is None or isinstance(destination, OnFailureDestination):
        return destination
    kind = _AWS_CDK_KINDS.get(type(destination))
    if kind is None:
        raise TypeError(
            "on_failure must be an OnFailureDestination, SqsDlq, SnsDlq or "
            f"S3OnFailureDestination, not {type(destination).__name__}"
        )
    arn = _bound_arn(scope, destination, function)
    found = _resource_behind(scope, arn)
    if kind is DestinationKind.SQS and isinstance(found, sqs.QueueBase):
        return OnFailureDestination.sqs(found)
    if kind is DestinationKind.SNS and isinstance(found, sns.TopicBase):
        return OnFailureDestination.sns(found)
    if kind is DestinationKind.S3 and isinstance(found, s3.BucketBase):
        return OnFailureDestination.s3(found)
    # Imported by ARN or from another stack: the ARN is all there is to know.
    known = not cdk.Token.is_unresolved(arn)
    return OnFailureDestination(kind, arn, fifo=known and arn.endswith(".fifo"))


_AWS_CDK_KINDS: dict[type, DestinationKind] = {
    event_sources.SqsDlq: DestinationKind.SQS,
    event_sources.SnsDlq: DestinationKind.SNS,
    event_sources.S3OnFailureDestination: DestinationKind.S3,
}


def _bound_arn(scope: Construct, destination: AwsCdkOnFailure, function: lambda_.IFunction) -> str:
    """The ARN aws-cdk-lib's class binds to, without its grants.

    Its ``bind`` grants on the function it is given. Here that is a stand-in function
    whose role is a probe role of the stack's own account, so every grant lands in the
    probe's policy (a same-account grant never touches the resource's policy), and the
    probe is removed again: this library writes narrower statements itself.
    """
    probe = Construct(scope, "OnFailureProbe")
    stack = cdk.Stack.of(scope)
    role_arn = stack.format_arn(
        service="iam", region="", resource="role", resource_name="on-failure-probe"
    )
    seen = lambda_.Function.from_function_attributes(
        probe,
        "Function",
        function_arn=function.function_arn,
        role=iam.Role.from_role_arn(probe, "Role", role_arn),
        same_environment=True,
        skip_permissions=True,
    )
    arn = destination.bind(_probe_mapping(probe), seen).destination
    scope.node.try_remove_child("OnFailureProbe")
    return arn


def _probe_mapping(scope: Construct) -> lambda_.IEventSourceMapping:
    """``bind`` wants the mapping; aws-cdk-lib's classes do not use it."""
    return lambda_.EventSourceMapping.from_event_source_mapping_id(scope, "ProbeMapping", "probe")


def _resource_behind(scope: Construct, arn: str) -> IConstruct | None:
    """The L2 construct in ``scope``'s stack whose ``Ref``/``GetAtt`` the ARN token is."""
    if not cdk.Token.is_unresolved(arn):
        return None
    stack = cdk.Stack.of(scope)
    reference: Any = stack.resolve(arn)
    if not isinstance(reference, dict) or len(reference) != 1:
        return None
    ((function, argument),) = reference.items()
    logical_id = argument[0] if function == "Fn::GetAtt" else argument
    if function not in ("Fn::GetAtt", "Ref") or not isinstance(logical_id, str):
        return None
    for element in stack.node.find_all():
        if isinstance(element, cdk.CfnElement) and stack.resolve(element.logical_id) == logical_id:
            return element.node.scope
    return None
