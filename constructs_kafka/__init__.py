"""AWS CDK constructs for Lambda's self-managed Apache Kafka trigger."""

__all__: list[str] = []
