"""The poller: Lambda's self-managed Kafka event source mapping, run anywhere.

Nothing in this package imports aws-cdk-lib, so the container image stays small
and the CDK constructs can reuse the mapping model and its validators.
"""

__all__: list[str] = []
