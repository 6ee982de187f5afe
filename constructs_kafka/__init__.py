"""AWS CDK constructs for Lambda's self-managed Apache Kafka trigger.

``SelfManagedKafkaTrigger`` takes the ``KafkaTriggerProps`` fields as keywords and
creates the event source mapping with its permissions, network and ACL guidance;
``SelfManagedKafkaEventSource`` is the same as an ``IEventSource`` for
``fn.add_event_source``; ``KafkaPollerService`` runs
the same props with this library's poller on ECS Fargate; the secret constructs
create correctly shaped secrets. The enums and ``ProvisionedPollerConfig`` are the
runtime's own, so one definition serves the constructs and the poller.
"""

try:
    import aws_cdk  # noqa: F401  # checked first: the bare ModuleNotFoundError names no extra
    import constructs  # noqa: F401
except ModuleNotFoundError as missing:
    if missing.name not in ("aws_cdk", "constructs"):
        raise
    raise ModuleNotFoundError(
        f"constructs_kafka needs {missing.name} from the 'cdk' extra:"
        " pip install 'constructs-kafka[cdk]'",
        name=missing.name,
    ) from None

from constructs_kafka.acls import PRINCIPAL_PLACEHOLDER, kafka_acls_commands
from constructs_kafka.auth import KafkaAuthentication
from constructs_kafka.destinations import OnFailureDestination
from constructs_kafka.event_source import SelfManagedKafkaEventSource
from constructs_kafka.mapping import SelfManagedKafkaTrigger
from constructs_kafka.network import KafkaVpcEndpoints, broker_ports
from constructs_kafka.poller_service import KafkaPollerService, PollerServiceProps
from constructs_kafka.props import KafkaTriggerProps, NetworkAccess
from constructs_kafka.schema_registry import KafkaSchemaRegistry, RegistryAccess
from constructs_kafka.secrets import (
    ClientCertificateSecret,
    KafkaSecretError,
    RootCaSecret,
    SaslPlainSecret,
    SaslScramSecret,
    import_secret,
)
from constructs_kafka.validation import (
    MAX_FUNCTION_TIMEOUT,
    KafkaTriggerValidationError,
    PropProblem,
)
from runtime.definition.model import AclRequirement, ProvisionedPollerConfig
from runtime.definition.vocabulary import (
    ConsumptionMode,
    EsmMetric,
    EventRecordFormat,
    SchemaRegistryAuthType,
    SchemaValidationAttribute,
    SourceAccessType,
    StartingPosition,
    SystemLogLevel,
)

__all__ = [
    "MAX_FUNCTION_TIMEOUT",
    "PRINCIPAL_PLACEHOLDER",
    "AclRequirement",
    "ClientCertificateSecret",
    "ConsumptionMode",
    "EsmMetric",
    "EventRecordFormat",
    "KafkaAuthentication",
    "KafkaPollerService",
    "KafkaSchemaRegistry",
    "KafkaSecretError",
    "KafkaTriggerProps",
    "KafkaTriggerValidationError",
    "KafkaVpcEndpoints",
    "NetworkAccess",
    "OnFailureDestination",
    "PollerServiceProps",
    "PropProblem",
    "ProvisionedPollerConfig",
    "RegistryAccess",
    "RootCaSecret",
    "SaslPlainSecret",
    "SaslScramSecret",
    "SchemaRegistryAuthType",
    "SchemaValidationAttribute",
    "SelfManagedKafkaEventSource",
    "SelfManagedKafkaTrigger",
    "SourceAccessType",
    "StartingPosition",
    "SystemLogLevel",
    "broker_ports",
    "import_secret",
    "kafka_acls_commands",
]
