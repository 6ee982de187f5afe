"""Step 9, the schema registry: reachable, signed in, and the topic's subjects there.

Only for a mapping with a SchemaRegistryConfig (no rows otherwise). A Confluent-compatible
registry is asked for its subjects with the mapping's AccessConfigs; the topic's subjects
are looked for under Confluent's default naming (``<topic>-key`` / ``<topic>-value``), a
missing one is a warning because producers may name subjects otherwise. A Glue registry
is asked for itself (``glue:GetRegistry``) with the environment's AWS credentials.
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
            return [_glue(config)]
        return _confluent(config, inputs.reader or SecretReader(), (found.mapping.topic,))
    except ImportError as missing:
        fix = "pip install 'constructs-kafka[schema-registry]'"
        return [_fail(f"the schema-registry extra is not installed ({missing.name})", fix)]


def _confluent(
    config: SchemaRegistryConfig, reader: SecretReader, topics: tuple[str, ...]
) -> list[CheckResult]:
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415
    from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: PLC0415

    from runtime.registry.clients import client_config  # noqa: PLC0415

    try:
        client = SchemaRegistryClient(client_config(config, reader))
    except SecretError as error:
        return [_fail(f"an AccessConfigs secret cannot be used: {error}", "fix the secret")]
    try:
        subjects = set(client.get_subjects())
    except SchemaRegistryError as error:
        if error.http_status_code in {401, 403}:
            detail = f"{config.uri} refused the credentials: HTTP {error.http_status_code}"
            return [_fail(detail, "check the BASIC_AUTH or client certificate AccessConfigs")]
        return [_fail(f"{config.uri} answered HTTP {error.http_status_code}", "check the URI")]
    except Exception as error:  # httpx / socket errors: not reached
        detail = f"{config.uri} cannot be reached: {type(error).__name__}: {error}"
        return [_fail(detail, "check SchemaRegistryURI and the network path to it")]
    rows = [
        CheckResult(STEP, _TITLE, Status.PASS, f"{config.uri} answers: {len(subjects)} subjects")
    ]
    for topic in topics:
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
    return rows


def _glue(config: SchemaRegistryConfig) -> CheckResult:
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    region = config.uri.split(":")[3]
    glue: Any = boto3.client("glue", region_name=region)
    try:
        glue.get_registry(RegistryId={"RegistryArn": config.uri})
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return _fail(f"Glue refused GetRegistry: {code}", "check the ARN and glue:GetRegistry")
    except BotoCoreError as error:
        return _fail(f"Glue cannot be reached: {type(error).__name__}", "check AWS credentials")
    return CheckResult(STEP, _TITLE, Status.PASS, f"Glue registry {config.uri} exists")


def _fail(detail: str, fix: str) -> CheckResult:
    return CheckResult(STEP, _TITLE, Status.FAIL, detail, None, fix)
