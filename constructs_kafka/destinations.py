"""On-failure destinations: where a batch goes once its retries or record age run out.

Each destination knows its ARN (or ``kafka://`` URI), the service the mapping calls
(for VPC endpoints) and its customer-managed KMS key, so permissions and endpoint
policies are derived from it rather than written by hand at each use.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from runtime.definition.vocabulary import KAFKA_DESTINATION_PREFIX, DestinationKind

__all__ = ["OnFailureDestination"]


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
