"""Step 9, the schema registry: reachable, signed in, the topic's subjects, a sample decodes.

Only for a mapping with a SchemaRegistryConfig (no rows otherwise). A Confluent-compatible
registry is asked for its subjects with the mapping's AccessConfigs; the topic's subjects
are looked for under Confluent's default naming (``<topic>-key`` / ``<topic>-value``), a
missing one is a warning because producers may name subjects otherwise. A Glue registry
is asked for itself (``glue:GetRegistry``) with the environment's AWS credentials. When
the topic step could see the topic, its newest record is decoded as the poller would.
"""

from __future__ import annotations

from typing import Any

from runtime.definition.model import SchemaRegistryConfig
from runtime.doctor.model import CheckResult, DoctorInputs, Findings, Status
from runtime.security.secrets import SecretError, SecretReader

__all__ = ["check_registry"]

STEP = 9
_TITLE = "schema registry"


def check_registry(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """The registry answers the poller as configured; [] without a SchemaRegistryConfig."""
    assert found.mapping is not None
    config = found.mapping.schema_registry
    if config is None:
        return []
    try:
        if config.is_glue:
            rows, schemas = _glue(config)
        else:
            rows, schemas = _confluent(config, inputs.reader or SecretReader(), found.mapping.topic)
        if schemas is not None and found.topic_partitions:
            rows.append(_sample(inputs, found, config, schemas))
        return rows
    except ImportError as missing:
        fix = "pip install 'constructs-kafka[schema-registry]'"
        return [_fail(f"the schema-registry extra is not installed ({missing.name})", fix)]


def _confluent(
    config: SchemaRegistryConfig, reader: SecretReader, topic: str
) -> tuple[list[CheckResult], Any]:
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415
    from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: PLC0415

    from runtime.registry.clients import client_config  # noqa: PLC0415
    from runtime.registry.schemas import ConfluentSchemas  # noqa: PLC0415

    try:
        client = SchemaRegistryClient(client_config(config, reader))
    except SecretError as error:
        return [_fail(f"an AccessConfigs secret cannot be used: {error}", "fix the secret")], None
    try:
        subjects = set(client.get_subjects())
    except SchemaRegistryError as error:
        if error.http_status_code in {401, 403}:
            detail = f"{config.uri} refused the credentials: HTTP {error.http_status_code}"
            fix = "check the BASIC_AUTH or client certificate AccessConfigs"
            return [_fail(detail, fix)], None
        detail = f"{config.uri} answered HTTP {error.http_status_code}"
        return [_fail(detail, "check the URI")], None
    except Exception as error:  # httpx / socket errors: not reached
        detail = f"{config.uri} cannot be reached: {type(error).__name__}: {error}"
        return [_fail(detail, "check SchemaRegistryURI and the network path to it")], None
    rows = [
        CheckResult(STEP, _TITLE, Status.PASS, f"{config.uri} answers: {len(subjects)} subjects")
    ]
    for attribute in config.validated_attributes:
        subject = f"{topic}-{attribute.value.lower()}"
        if subject in subjects:
            rows.append(CheckResult(STEP, f"subject {subject}", Status.PASS, "registered"))
        else:
            rows.append(
                CheckResult(
                    STEP,
                    f"subject {subject}",
                    Status.WARN,
                    "not registered (Confluent's default subject name for the topic)",
                    None,
                    "register the schema, or ignore if producers use another subject name",
                )
            )
    return rows, ConfluentSchemas(client)


def _glue(config: SchemaRegistryConfig) -> tuple[list[CheckResult], Any]:
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    region = config.uri.split(":")[3]
    glue: Any = boto3.client("glue", region_name=region)
    try:
        glue.get_registry(RegistryId={"RegistryArn": config.uri})
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        fix = "check the ARN and glue:GetRegistry"
        return [_fail(f"Glue refused GetRegistry: {code}", fix)], None
    except BotoCoreError as error:
        detail = f"Glue cannot be reached: {type(error).__name__}"
        return [_fail(detail, "check AWS credentials")], None
    from runtime.registry.schemas import GlueSchemas  # noqa: PLC0415

    passed = CheckResult(STEP, _TITLE, Status.PASS, f"Glue registry {config.uri} exists")
    return [passed], GlueSchemas(glue)


def _sample(
    inputs: DoctorInputs, found: Findings, config: SchemaRegistryConfig, schemas: Any
) -> CheckResult:
    """Decode the newest record of the first partition that has one."""
    from confluent_kafka import TopicPartition  # noqa: PLC0415

    from runtime.doctor.cluster import ClusterView  # noqa: PLC0415
    from runtime.pipeline.source import to_record  # noqa: PLC0415
    from runtime.registry.clients import decoder_for  # noqa: PLC0415
    from runtime.registry.schemas import RegistryUnavailable  # noqa: PLC0415

    assert found.mapping is not None and found.topic_partitions is not None
    topic = found.mapping.topic
    consumer = ClusterView(inputs, found).consumer(**{"enable.auto.commit": False})
    try:
        for partition in range(found.topic_partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=inputs.timeout_s
            )
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, high - 1)])
            messages = consumer.consume(1, timeout=inputs.timeout_s)
            if messages and messages[0].error() is None:
                record = to_record(messages[0])
                break
        else:
            return CheckResult(STEP, "sample record", Status.SKIP, f"{topic} has no records")
    finally:
        consumer.close()
    where = f"{record.partition_key}@{record.offset}"
    try:
        decoded = decoder_for(config, schemas).decode(record)
    except RegistryUnavailable as error:
        return _fail(f"{where}: the registry could not be asked: {error}", "see the rows above")
    if decoded.undecodable is not None:
        detail = f"{where} cannot be decoded: {decoded.undecodable}"
        fix = "the poller sends such records to the on-failure destination (SchemaDecodingFailed)"
        return CheckResult(STEP, "sample record", Status.WARN, detail, None, fix)
    parts = [
        f"{name} {meta.data_format} schema {meta.schema_id}"
        for name, meta in (("key", decoded.key_schema), ("value", decoded.value_schema))
        if meta is not None
    ]
    return CheckResult(STEP, "sample record", Status.PASS, f"{where} decodes: {', '.join(parts)}")


def _fail(detail: str, fix: str) -> CheckResult:
    return CheckResult(STEP, _TITLE, Status.FAIL, detail, None, fix)
