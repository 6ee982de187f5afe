"""The words and name formats of an event source mapping request (self-managed Kafka).

Enums spell values exactly as AWS does; patterns come from the Lambda API model
(botocore ``lambda/2015-03-31``) and the CloudFormation schema of
``AWS::Lambda::EventSourceMapping``. Where the two differ the stricter one is used,
since a mapping must also deploy through CloudFormation. Patterns are for
``fullmatch``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class StartingPosition(StrEnum):
    """Where a new consumer group starts reading."""

    LATEST = "LATEST"
    TRIM_HORIZON = "TRIM_HORIZON"
    AT_TIMESTAMP = "AT_TIMESTAMP"


class SourceAccessType(StrEnum):
    """SourceAccessConfigurations types AWS accepts for self-managed Kafka."""

    BASIC_AUTH = "BASIC_AUTH"
    SASL_SCRAM_256_AUTH = "SASL_SCRAM_256_AUTH"
    SASL_SCRAM_512_AUTH = "SASL_SCRAM_512_AUTH"
    CLIENT_CERTIFICATE_TLS_AUTH = "CLIENT_CERTIFICATE_TLS_AUTH"
    OAUTHBEARER_AUTH = "OAUTHBEARER_AUTH"
    IAM_AUTH = "IAM_AUTH"
    IAM_OAUTHBEARER_AUTH = "IAM_OAUTHBEARER_AUTH"
    SERVER_ROOT_CA_CERTIFICATE = "SERVER_ROOT_CA_CERTIFICATE"
    OAUTHBEARER_SCOPE = "OAUTHBEARER_SCOPE"
    OAUTHBEARER_AUDIENCE = "OAUTHBEARER_AUDIENCE"
    OAUTHBEARER_LOGICAL_CLUSTER = "OAUTHBEARER_LOGICAL_CLUSTER"
    OAUTHBEARER_IDENTITY_POOL = "OAUTHBEARER_IDENTITY_POOL"
    VPC_SUBNET = "VPC_SUBNET"
    VPC_SECURITY_GROUP = "VPC_SECURITY_GROUP"


AUTHENTICATION_TYPES: Final = frozenset(
    {
        SourceAccessType.BASIC_AUTH,
        SourceAccessType.SASL_SCRAM_256_AUTH,
        SourceAccessType.SASL_SCRAM_512_AUTH,
        SourceAccessType.CLIENT_CERTIFICATE_TLS_AUTH,
        SourceAccessType.OAUTHBEARER_AUTH,
        SourceAccessType.IAM_AUTH,
        SourceAccessType.IAM_OAUTHBEARER_AUTH,
    }
)
"""The ways to authenticate: a mapping uses at most one."""

NO_URI_TYPES: Final = frozenset({SourceAccessType.IAM_AUTH, SourceAccessType.IAM_OAUTHBEARER_AUTH})
"""The execution role signs these in, so AWS wants no URI."""

SECRET_TYPES: Final = (AUTHENTICATION_TYPES - NO_URI_TYPES) | {
    SourceAccessType.SERVER_ROOT_CA_CERTIFICATE
}
"""Types whose URI names a secret (a Secrets Manager ARN, or ``file://`` locally)."""

OAUTH_OPTIONS: Final = {
    SourceAccessType.OAUTHBEARER_SCOPE: (SourceAccessType.OAUTHBEARER_AUTH,),
    SourceAccessType.OAUTHBEARER_AUDIENCE: (
        SourceAccessType.OAUTHBEARER_AUTH,
        SourceAccessType.IAM_OAUTHBEARER_AUTH,
    ),
    SourceAccessType.OAUTHBEARER_LOGICAL_CLUSTER: (SourceAccessType.OAUTHBEARER_AUTH,),
    SourceAccessType.OAUTHBEARER_IDENTITY_POOL: (SourceAccessType.OAUTHBEARER_AUTH,),
}
"""OAuth options (their URI is a plain value) and the methods each works with."""


class FunctionResponseType(StrEnum):
    """What the function may answer besides success or an error."""

    REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


class EsmMetric(StrEnum):
    """Metric groups a mapping can publish (MetricsConfig.Metrics)."""

    EVENT_COUNT = "EventCount"
    ERROR_COUNT = "ErrorCount"
    KAFKA_METRICS = "KafkaMetrics"


class SystemLogLevel(StrEnum):
    """LoggingConfig.SystemLogLevel: how much the poller logs about itself."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"


class EventRecordFormat(StrEnum):
    """How records validated by a schema registry reach the function."""

    JSON = "JSON"
    SOURCE = "SOURCE"


class SchemaRegistryAuthType(StrEnum):
    """SchemaRegistryConfig.AccessConfigs types (Confluent registries only)."""

    BASIC_AUTH = "BASIC_AUTH"
    CLIENT_CERTIFICATE_TLS_AUTH = "CLIENT_CERTIFICATE_TLS_AUTH"
    SERVER_ROOT_CA_CERTIFICATE = "SERVER_ROOT_CA_CERTIFICATE"
    OAUTHBEARER_AUTH = "OAUTHBEARER_AUTH"


class SchemaValidationAttribute(StrEnum):
    """The record parts a schema registry validates."""

    KEY = "KEY"
    VALUE = "VALUE"


class ConsumptionMode(StrEnum):
    """SelfManagedKafkaEventSourceConfig.ConsumptionMode (Queue means share groups)."""

    STREAM = "Stream"
    QUEUE = "Queue"


class DestinationKind(StrEnum):
    """Where an on-failure destination sends what failed."""

    SQS = "SQS"
    SNS = "SNS"
    S3 = "S3"
    KAFKA = "KAFKA"


class UriKind(StrEnum):
    """Where a secret URI points: AWS Secrets Manager, or a local file (our extension)."""

    SECRETS_MANAGER_ARN = "SECRETS_MANAGER_ARN"
    FILE = "FILE"


_PARTITION: Final = r"aws[a-zA-Z-]*"
_REGION: Final = r"(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d"
_ACCOUNT: Final = r"\d{12}"
_LABEL: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"

FUNCTION_NAME: Final = re.compile(
    rf"(?:arn:(?:{_PARTITION})?:lambda:)?(?:{_REGION}:)?(?:{_ACCOUNT}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)(?::(?:\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?"
)
TOPIC: Final = re.compile(r"[a-zA-Z0-9_-][a-zA-Z0-9._-]+")
DESTINATION_TOPIC: Final = re.compile(r"[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,248}")
ENDPOINT: Final = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}:\d{{1,5}}")
CONSUMER_GROUP_ID: Final = re.compile(r"[a-zA-Z0-9\-/*:_+=.@]+")
POLLER_GROUP: Final = re.compile(r"[a-zA-Z0-9_-]+")
UUID: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
SECRET_ARN: Final = re.compile(
    rf"arn:{_PARTITION}:secretsmanager:{_REGION}:{_ACCOUNT}:secret:[a-zA-Z0-9/_+=.@-]+"
)
SUBNET_URI: Final = re.compile(r"subnet:subnet-[0-9a-f]{8,17}")
SECURITY_GROUP_URI: Final = re.compile(r"security_group:sg-[0-9a-f]{8,17}")
ACCESS_VALUE: Final = re.compile(r"[ a-zA-Z0-9\-/*:_+=.@]+")
KMS_KEY_ARN: Final = re.compile(rf"arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/[a-zA-Z0-9-]+")
GLUE_REGISTRY_ARN: Final = re.compile(
    rf"arn:{_PARTITION}:glue:{_REGION}:{_ACCOUNT}:registry/[a-zA-Z0-9_.-]+"
)
REGISTRY_URI: Final = re.compile(
    rf"{GLUE_REGISTRY_ARN.pattern}|https?://[a-zA-Z0-9.-]+(?::\d{{1,5}})?(?:/[a-zA-Z0-9\-/*:_+=.@]*)?"
)

_DESTINATIONS: Final = {
    DestinationKind.SQS: re.compile(
        rf"arn:{_PARTITION}:sqs:{_REGION}:{_ACCOUNT}:[a-zA-Z0-9_-]{{1,80}}(?:\.fifo)?"
    ),
    DestinationKind.SNS: re.compile(
        rf"arn:{_PARTITION}:sns:{_REGION}:{_ACCOUNT}:[a-zA-Z0-9_-]{{1,256}}(?:\.fifo)?"
    ),
    DestinationKind.S3: re.compile(rf"arn:{_PARTITION}:s3:::[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]"),
    DestinationKind.KAFKA: re.compile(rf"kafka://{DESTINATION_TOPIC.pattern}"),
}

KAFKA_DESTINATION_PREFIX: Final = "kafka://"
FILE_URI_PREFIX: Final = "file://"


def destination_kind(destination: str) -> DestinationKind | None:
    """The kind of an on-failure destination, or ``None`` when AWS accepts no such value."""
    for kind, pattern in _DESTINATIONS.items():
        if pattern.fullmatch(destination):
            return kind
    return None


def secret_uri_kind(uri: str) -> UriKind | None:
    """Whether a secret URI is a Secrets Manager ARN or a ``file://`` path (else ``None``)."""
    if SECRET_ARN.fullmatch(uri):
        return UriKind.SECRETS_MANAGER_ARN
    if uri.startswith(FILE_URI_PREFIX) and len(uri) > len(FILE_URI_PREFIX):
        return UriKind.FILE
    return None


# AWS's LastProcessingResult messages for authentication and authorization, word for word.
# Defined once here: the poller's state, the secret checks and the constructs all use them.
CLUSTER_FAILED_TO_AUTHORIZE: Final = "Cluster failed to authorize Lambda"
SASL_AUTHENTICATION_FAILED: Final = "SASL authentication failed"
SERVER_FAILED_TO_AUTHENTICATE: Final = "Server failed to authenticate Lambda"
LAMBDA_FAILED_TO_AUTHENTICATE_SERVER: Final = "Lambda failed to authenticate server"
INVALID_CERTIFICATE_OR_KEY: Final = "Provided certificate or private key is invalid"

LOCAL_ACCOUNT: Final = "000000000000"
"""The account in ARNs made up where the real one is not known (a bare FunctionName with
a local handler or a ``kafka://`` destination): the local handler's context and every
failure record's ``functionArn`` use it, so an ARN is always an ARN."""
LOCAL_REGION: Final = "us-east-1"
"""The region of such ARNs when neither ``--region``/``AWS_REGION`` nor an ARN gives one."""

CONNECTION_ERROR: Final = (
    "Connection error. Please check your event source connection configuration."
)
"""LastProcessingResult (after ``PROBLEM: ``) while no broker of the cluster answers: the
start of the message AWS Lambda shows for a mapping that cannot reach its cluster."""
