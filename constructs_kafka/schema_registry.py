"""A schema registry the mapping validates records against (provisioned mode only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager

from runtime.definition.vocabulary import (
    EventRecordFormat,
    SchemaRegistryAuthType,
    SchemaValidationAttribute,
)

__all__ = ["KafkaSchemaRegistry", "RegistryAccess"]


@dataclass(frozen=True)
class RegistryAccess:
    """One secret Lambda uses with a Confluent registry."""

    type: SchemaRegistryAuthType
    secret: secretsmanager.ISecret


@dataclass(frozen=True)
class KafkaSchemaRegistry:
    """A Glue registry (reached with the execution role) or a Confluent registry URL
    (reached with up to one authentication secret and one root CA secret)."""

    uri: str
    event_record_format: EventRecordFormat = EventRecordFormat.JSON
    validated_attributes: tuple[SchemaValidationAttribute, ...] = (SchemaValidationAttribute.VALUE,)
    access: tuple[RegistryAccess, ...] = ()

    @classmethod
    def glue(
        cls,
        registry_arn: str,
        *,
        event_record_format: EventRecordFormat = EventRecordFormat.JSON,
        validated_attributes: Sequence[SchemaValidationAttribute] = (
            SchemaValidationAttribute.VALUE,
        ),
    ) -> KafkaSchemaRegistry:
        """A Glue schema registry; the role gets ``glue:GetRegistry`` and
        ``glue:GetSchemaVersion`` on it."""
        return cls(registry_arn, event_record_format, tuple(validated_attributes))

    @classmethod
    def confluent(
        cls,
        url: str,
        *,
        access: Sequence[RegistryAccess] = (),
        event_record_format: EventRecordFormat = EventRecordFormat.JSON,
        validated_attributes: Sequence[SchemaValidationAttribute] = (
            SchemaValidationAttribute.VALUE,
        ),
    ) -> KafkaSchemaRegistry:
        """A Confluent schema registry; the role may read the ``access`` secrets."""
        return cls(url, event_record_format, tuple(validated_attributes), tuple(access))
