"""The doctor's checks that need no Kafka client: the configuration, the network, the function."""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from runtime.definition.limits import MAX_FUNCTION_TIMEOUT_S
from runtime.definition.model import (
    MappingLoadError,
    MappingValidationError,
    SourceAccessConfiguration,
    aws_only_problems,
    aws_provisioned_mode_problems,
    load_mapping,
)
from runtime.doctor.model import CheckResult, DoctorInputs, Findings, Status, aws_error
from runtime.invokers import MAX_TIMEOUT_S
from runtime.invokers.local_handler import HandlerSpecError, load_handler
from runtime.observability.state import MappingStopped, StateTransitionReason, problem
from runtime.security.plan import (
    SecurityConfigError,
    plan_security,
    resolve_security,
    secret_failure,
)
from runtime.security.secrets import SecretError, SecretReader

__all__ = ["check_configuration", "check_function", "check_network"]

_CONFIG = "configuration"
_API_REFUSES = "InvalidParameterValueException (CreateEventSourceMapping refuses it)"
_KEEPS_RETRYING = "none: Lambda keeps retrying and processes nothing"
_FUNCTION_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):")


# --- 1. configuration -----------------------------------------------------------------


def check_configuration(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """The mapping parses and validates, its security can work, and its secrets pass AWS's
    checks. Fills ``found.mapping``, ``found.plan`` and ``found.settings``."""
    env = os.environ if inputs.env is None else inputs.env
    try:
        mapping = load_mapping(inputs.mapping_path, env=env)
    except MappingLoadError as error:
        return [_fail(1, _CONFIG, str(error), None, "give a CreateEventSourceMapping JSON file")]
    except MappingValidationError as error:
        return [_fail(1, _CONFIG, str(error), _API_REFUSES, "correct the fields listed")]
    found.mapping = mapping
    rows = [
        CheckResult(
            1,
            _CONFIG,
            Status.PASS,
            f"valid: {mapping.function_name} reads {mapping.topic} as group "
            f"{mapping.consumer_group_id}",
        )
    ]
    rows += _aws_only_rows(found)
    try:
        found.plan = plan_security(mapping, inputs.overrides, inputs.security)
    except SecurityConfigError as error:
        return [*rows, _fail(1, "security", str(error), None, "change the setting named above")]
    rows.append(CheckResult(1, "security", Status.PASS, found.plan.describe()))
    reader = inputs.reader or SecretReader(
        endpoint_url=inputs.security.secrets_endpoint_url, allow_pbes2=inputs.security.allow_pbes2
    )
    secret_rows = [
        _check_secret(reader, entry)
        for entry in (found.plan.authentication, found.plan.root_ca)
        if entry is not None and entry.uri
    ]
    rows += secret_rows
    if any(r.status is Status.FAIL for r in secret_rows):
        return rows
    try:
        found.settings = {**resolve_security(found.plan, reader).settings, **inputs.overrides}
    except SecretError as error:  # read moments ago; only a race gets here
        stopped = secret_failure(error)
        rows.append(_fail(1, "secrets", str(error), aws_error(stopped), "fix the secret"))
    return rows


def _aws_only_rows(found: Findings) -> list[CheckResult]:
    mapping = found.mapping
    if mapping is None:
        return []
    problems = aws_only_problems(mapping) + aws_provisioned_mode_problems(mapping)
    if not problems:
        return []
    by_rule: dict[str, list[str]] = {}
    for p in problems:
        by_rule.setdefault(p.rule, []).append(p.field)
    detail = "; ".join(f"{', '.join(fields)} {rule}" for rule, fields in by_rule.items())
    fix = "before deploying to AWS: Secrets Manager ARNs, ProvisionedPollerConfig where needed"
    return [CheckResult(1, "AWS compatibility", Status.WARN, detail, _API_REFUSES, fix)]


def _check_secret(reader: SecretReader, entry: SourceAccessConfiguration) -> CheckResult:
    name = "root CA secret" if entry.type.value == "SERVER_ROOT_CA_CERTIFICATE" else "auth secret"
    uri = entry.uri or ""
    try:
        result = reader.check(entry.type.value, uri)
    except SecretError as error:
        stopped = secret_failure(error)
        return _fail(1, name, str(error), aws_error(stopped), _secret_read_fix(stopped))
    if result.errors:
        detail = f"{entry.type.value} {uri}: " + "; ".join(str(p) for p in result.errors)
        message = result.aws_message or result.errors[0].aws_message or ""
        return _fail(1, name, detail, _authn(message), "store a secret that passes these rules")
    if result.warnings:
        # A warning's message is what AWS shows when the warning comes true (a PBES2 key
        # at once, a certificate when it expires): the detail says which.
        messages = [p.aws_message for p in result.warnings if p.aws_message]
        when_true = _authn(messages[0]) if messages else None
        detail = f"{entry.type.value} {uri}: " + "; ".join(str(p) for p in result.warnings)
        expiring = all("expires" in p.rule for p in result.warnings)
        fix = "renew the certificate before it expires" if expiring else "see the detail"
        return CheckResult(1, name, Status.WARN, detail, when_true, fix)
    return CheckResult(1, name, Status.PASS, f"{uri}: passes AWS's checks")


def _authn(message: str) -> str:
    return aws_error(
        MappingStopped(StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR, problem(message))
    )


def _secret_read_fix(stopped: MappingStopped) -> str:
    if stopped.reason is StateTransitionReason.FUNCTION_CONFIG_NOT_VALID:
        return "allow secretsmanager:GetSecretValue (and kms:Decrypt) on the secret"
    return "check the secret's ARN or file path"


# --- 2. network -----------------------------------------------------------------------


def check_network(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """DNS and TCP reach of every bootstrap server; fails only when none answers."""
    assert found.mapping is not None
    rows = [_reach(server, inputs.timeout_s, found) for server in found.mapping.bootstrap_servers]
    if not found.reachable:
        return [
            CheckResult(2, r.check, Status.FAIL, r.detail, r.aws_error, r.fix)
            if r.status is Status.WARN
            else r
            for r in rows
        ]
    return rows


def _reach(server: str, timeout_s: float, found: Findings) -> CheckResult:
    name = f"reach {server}"
    host, _, port_text = server.rpartition(":")
    host = host.strip("[]")
    try:
        addresses = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        detail = f"DNS cannot resolve {host!r}: {error}"
        return CheckResult(
            2, name, Status.WARN, detail, _KEEPS_RETRYING, "fix the host name or the DNS"
        )
    address = str(addresses[0][4][0])
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s):
            pass
    except OSError as error:
        detail = f"TCP connect to {address}:{port_text} failed: {error.strerror or error}"
        fix = (
            "check the port and the broker's listeners; in a VPC allow the broker port "
            "from the mapping's security groups"
        )
        return CheckResult(2, name, Status.WARN, detail, _KEEPS_RETRYING, fix)
    found.reachable.append(server)
    return CheckResult(2, name, Status.PASS, f"resolves to {address}, TCP port open")


# --- 8. function ----------------------------------------------------------------------


def check_function(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """The function answers: a local handler imports, or Lambda accepts a DryRun Invoke."""
    assert found.mapping is not None
    target = inputs.target
    if target.handler is not None:
        try:
            load_handler(target.handler)
        except HandlerSpecError as error:
            return [_fail(8, "function", str(error), None, "give --handler as module:function")]
        return [CheckResult(8, "function", Status.PASS, f"local handler {target.handler} loads")]
    if target.endpoint_kind == "invoke-http":
        return [_check_http_endpoint(target.endpoint_url or "", inputs.timeout_s)]
    return [_dry_run(found.mapping.function_name, inputs)]


def _check_http_endpoint(url: str, timeout_s: float) -> CheckResult:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            pass
    except OSError as error:
        return _fail(
            8,
            "function",
            f"Invoke endpoint {url} not reachable: {error}",
            None,
            "start the emulator or fix --endpoint-url",
        )
    return CheckResult(8, "function", Status.PASS, f"Invoke endpoint {url} accepts connections")


def _dry_run(function_name: str, inputs: DoctorInputs) -> CheckResult:
    target = inputs.target
    match = _FUNCTION_ARN_REGION.match(function_name)
    region = target.region or (match.group(1) if match else None)
    qualified = {"Qualifier": target.qualifier} if target.qualifier else {}
    try:
        client = boto3.client("lambda", region_name=region, endpoint_url=target.endpoint_url)
        client.invoke(FunctionName=function_name, InvocationType="DryRun", **qualified)  # type: ignore[arg-type]
        configuration = client.get_function_configuration(
            FunctionName=function_name,
            **qualified,
        )
        timeout = configuration.get("Timeout", 3)
    except NoRegionError:
        return _fail(8, "function", "no AWS region", None, "pass --region or set AWS_REGION")
    except NoCredentialsError:
        return _fail(8, "function", "no AWS credentials", None, "configure AWS credentials")
    except ClientError as error:
        return _client_error(function_name, error)
    except BotoCoreError as error:
        return _fail(
            8, "function", f"Lambda API not reachable: {error}", None, "check --endpoint-url"
        )
    if timeout > MAX_TIMEOUT_S:
        return _fail(
            8,
            "function",
            f"{function_name}: timeout {timeout} s; Kafka mappings need at most "
            f"{MAX_FUNCTION_TIMEOUT_S} s",
            StateTransitionReason.FUNCTION_CONFIG_NOT_VALID.value,
            f"lower the function's timeout to {MAX_FUNCTION_TIMEOUT_S} s or less",
        )
    return CheckResult(
        8, "function", Status.PASS, f"{function_name}: DryRun Invoke allowed, timeout {timeout} s"
    )


def _client_error(function_name: str, error: ClientError) -> CheckResult:
    code = error.response.get("Error", {}).get("Code", "Unknown")
    message = error.response.get("Error", {}).get("Message", "")
    detail = f"{function_name}: {code}: {message}"
    if code == "ResourceNotFoundException":
        return _fail(
            8,
            "function",
            detail,
            "ResourceNotFoundException (CreateEventSourceMapping refuses it)",
            "deploy the function or fix FunctionName (and --region)",
        )
    if code in ("AccessDeniedException", "AccessDenied"):
        return _fail(8, "function", detail, None, "allow lambda:InvokeFunction to your credentials")
    return _fail(8, "function", detail, None, "see the Lambda error above")


def _fail(step: int, check: str, detail: str, error: str | None, fix: str) -> CheckResult:
    return CheckResult(step, check, Status.FAIL, detail, error, fix)
