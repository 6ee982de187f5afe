"""Reading the secrets of a mapping's SourceAccessConfigurations at run time.

A URI is a Secrets Manager secret ARN (read with ``GetSecretValue`` in the ARN's own
region, as Lambda reads it) or, as this runtime's extension for local use, a
``file://`` path holding the same JSON. Values are checked with
:mod:`runtime.security.secret_checks`, so a secret that AWS's poller would refuse is refused
here with the same LastProcessingResult message.

Values are cached per URI; after an authentication failure the poller calls
:meth:`SecretReader.invalidate` so the next read picks up a rotated secret. Nothing
here ever puts a secret value into a ``repr``, a log line or an exception message.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization

from runtime.security.secret_checks import (
    BASIC_AUTH,
    CLIENT_CERTIFICATE_TLS_AUTH,
    SASL_SCRAM_256_AUTH,
    SASL_SCRAM_512_AUTH,
    SERVER_ROOT_CA_CERTIFICATE,
    CheckResult,
    SecretProblem,
    check_secret,
    format_message,
    open_private_key,
    parse_private_key,
)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "ClientCertificate",
    "ClientTlsMaterial",
    "RootCertificate",
    "SecretAccessDeniedError",
    "SecretError",
    "SecretInvalidError",
    "SecretNotFoundError",
    "SecretReadError",
    "SecretReader",
    "SecretUriError",
    "SecretValue",
    "UsernamePassword",
    "client_tls_material",
    "parse_secret",
    "parse_secret_arn",
]

_HIDDEN = "'***'"


# --- typed values -----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class UsernamePassword:
    """A BASIC_AUTH (SASL/PLAIN) or SASL_SCRAM_* secret."""

    username: str
    password: str
    warnings: tuple[SecretProblem, ...] = ()

    def __repr__(self) -> str:
        return f"UsernamePassword(username={self.username!r}, password={_HIDDEN})"


@dataclass(frozen=True, repr=False)
class ClientCertificate:
    """A CLIENT_CERTIFICATE_TLS_AUTH secret: PEM chain, PKCS#8 key, optional password."""

    certificate: str
    private_key: str
    private_key_password: str | None = None
    warnings: tuple[SecretProblem, ...] = ()

    def __repr__(self) -> str:
        password = None if self.private_key_password is None else _HIDDEN
        return (
            f"ClientCertificate(certificates={_count_certificates(self.certificate)}, "
            f"private_key={_HIDDEN}, private_key_password={password})"
        )


@dataclass(frozen=True, repr=False)
class RootCertificate:
    """A SERVER_ROOT_CA_CERTIFICATE secret: the broker's CA, in PEM."""

    certificate: str
    warnings: tuple[SecretProblem, ...] = ()

    def __repr__(self) -> str:
        return f"RootCertificate(certificates={_count_certificates(self.certificate)})"

    def librdkafka_config(self) -> dict[str, str]:
        """The trust store setting for confluent-kafka."""
        return {"ssl.ca.pem": self.certificate}


SecretValue = UsernamePassword | ClientCertificate | RootCertificate


def _count_certificates(pem: str) -> int:
    return pem.count("-----BEGIN CERTIFICATE-----")


@dataclass(frozen=True, repr=False)
class ClientTlsMaterial:
    """What librdkafka needs for mTLS: the chain, the key and its password (if any)."""

    certificate_pem: str
    key_pem: str
    key_password: str | None

    def __repr__(self) -> str:
        password = None if self.key_password is None else _HIDDEN
        return f"ClientTlsMaterial(key_pem={_HIDDEN}, key_password={password})"

    def __iter__(self) -> Iterator[str | None]:
        """Unpacks as ``cert_pem, key_pem, password``."""
        return iter((self.certificate_pem, self.key_pem, self.key_password))

    def librdkafka_config(self) -> dict[str, str]:
        """The inline PEM settings for confluent-kafka (no files on disk)."""
        config = {"ssl.certificate.pem": self.certificate_pem, "ssl.key.pem": self.key_pem}
        if self.key_password is not None:
            config["ssl.key.password"] = self.key_password
        return config


def client_tls_material(secret: ClientCertificate) -> ClientTlsMaterial:
    """The secret's chain and key in a form librdkafka can load.

    An encrypted key is decrypted here and handed over as unencrypted PKCS#8: the
    OpenSSL 3 inside confluent-kafka's wheels loads no PKCS#5 PBES1 scheme nor RC2 or
    RC4 (they sit in OpenSSL's legacy provider), while AWS accepts exactly those. Only
    a scheme the cryptography library cannot open is passed on encrypted, with its
    password, for librdkafka to try (it opens pbeWithSHAAnd2-KeyTripleDES-CBC).
    """
    key, _ = parse_private_key(secret.private_key)
    if key is None or not key.encrypted:
        return ClientTlsMaterial(secret.certificate, secret.private_key, None)
    opened, _ = open_private_key(key, secret.private_key_password)
    if opened is None:
        return ClientTlsMaterial(
            secret.certificate, secret.private_key, secret.private_key_password
        )
    plain = opened.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return ClientTlsMaterial(secret.certificate, plain, None)


# --- errors -----------------------------------------------------------------------------


class SecretError(Exception):
    """A secret could not be used; names the URI and the reason, never the value."""

    def __init__(self, uri: str, reason: str, aws_message: str | None = None) -> None:
        super().__init__(f"secret {uri}: {reason}")
        self.uri = uri
        self.reason = reason
        self.aws_message = aws_message
        """LastProcessingResult text AWS would show, when this failure has one."""


class SecretUriError(SecretError, ValueError):
    """The URI is neither a Secrets Manager secret ARN nor a file:// path."""


class SecretNotFoundError(SecretError):
    """Secrets Manager's ResourceNotFoundException, or a missing file."""


class SecretAccessDeniedError(SecretError):
    """AccessDeniedException (or a KMS DecryptionFailure), or an unreadable file."""


class SecretReadError(SecretError):
    """Any other failure to fetch the secret (network, throttling, credentials)."""


class SecretInvalidError(SecretError):
    """The secret was read but breaks the rules of its access type."""

    def __init__(self, uri: str, access_type: str, result: CheckResult) -> None:
        problems = "; ".join(str(p) for p in result.errors)
        super().__init__(
            uri,
            f"is not a valid {access_type} secret: {problems}",
            result.aws_message or format_message(access_type),
        )
        self.access_type = access_type
        self.result = result


# --- URIs -------------------------------------------------------------------------------

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):secretsmanager:(?P<region>[a-z]{2}(-[a-z]+)+-\d+)"
    r":(?P<account>\d{12}):secret:(?P<name>[A-Za-z0-9/_+=.@-]+)$"
)
_FILE_SCHEME = "file://"


@dataclass(frozen=True, slots=True)
class SecretArn:
    """The parts of a Secrets Manager secret ARN the reader needs."""

    arn: str
    partition: str
    region: str
    account: str
    name: str


def parse_secret_arn(uri: str) -> SecretArn:
    """Split a secret ARN; raise SecretUriError naming the URI when it is not one."""
    match = _ARN.match(uri)
    if match is None:
        raise SecretUriError(
            uri,
            "must be a Secrets Manager secret ARN "
            "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>) "
            "or a file:// path",
        )
    return SecretArn(uri, match["partition"], match["region"], match["account"], match["name"])


# --- parsing a SecretString into a typed value ----------------------------------------


def parse_secret(
    access_type: str,
    secret_string: str,
    *,
    uri: str,
    now: datetime | None = None,
    allow_pbes2: bool = False,
    expiry_warning_days: int = 30,
) -> SecretValue:
    """Check ``secret_string`` and build its typed value; SecretInvalidError on errors."""
    result = check_secret(
        access_type,
        secret_string,
        now=now,
        allow_pbes2=allow_pbes2,
        expiry_warning_days=expiry_warning_days,
    )
    if not result.ok:
        raise SecretInvalidError(uri, access_type, result)
    document = json.loads(secret_string)
    if access_type == CLIENT_CERTIFICATE_TLS_AUTH:
        return ClientCertificate(
            document["certificate"],
            document["privateKey"],
            document.get("privateKeyPassword"),
            result.warnings,
        )
    if access_type == SERVER_ROOT_CA_CERTIFICATE:
        return RootCertificate(document["certificate"], result.warnings)
    return UsernamePassword(document["username"], document["password"], result.warnings)


# --- the reader -------------------------------------------------------------------------

ClientFactory = Callable[[str, str | None], "SecretsManagerClient"]
"""Builds a Secrets Manager client for (region, endpoint_url)."""

_T = TypeVar("_T", UsernamePassword, ClientCertificate, RootCertificate)
_NOT_FOUND = ("ResourceNotFoundException",)
_DENIED = ("AccessDeniedException", "DecryptionFailure", "UnrecognizedClientException")


def _boto3_client(region: str, endpoint_url: str | None) -> SecretsManagerClient:
    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)


class SecretReader:
    """Reads, checks and caches the secrets a mapping's SourceAccessConfigurations name.

    ``endpoint_url`` points Secrets Manager at an emulator; ``allow_pbes2`` lets this
    runtime use PBES2-encrypted keys (a warning instead of AWS's error); ``clock``
    dates the expiry checks. Only raw SecretStrings are cached, so each read re-checks
    expiry against ``clock``.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        allow_pbes2: bool = False,
        expiry_warning_days: int = 30,
        clock: Callable[[], datetime] | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._allow_pbes2 = allow_pbes2
        self._expiry_warning_days = expiry_warning_days
        self._clock = clock
        self._client_factory = client_factory or _boto3_client
        self._clients: dict[str, SecretsManagerClient] = {}
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self, access_type: str, uri: str) -> SecretValue:
        """The typed value of the secret at ``uri``, checked as ``access_type``."""
        return parse_secret(
            access_type,
            self._secret_string(access_type, uri),
            uri=uri,
            now=self._clock() if self._clock else None,
            allow_pbes2=self._allow_pbes2,
            expiry_warning_days=self._expiry_warning_days,
        )

    def check(self, access_type: str, uri: str) -> CheckResult:
        """All problems of the secret at ``uri`` without raising for them (for doctor)."""
        return check_secret(
            access_type,
            self._secret_string(access_type, uri),
            now=self._clock() if self._clock else None,
            allow_pbes2=self._allow_pbes2,
            expiry_warning_days=self._expiry_warning_days,
        )

    def username_password(self, access_type: str, uri: str) -> UsernamePassword:
        """A BASIC_AUTH, SASL_SCRAM_256_AUTH or SASL_SCRAM_512_AUTH secret."""
        if access_type not in (BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH):
            raise ValueError(
                f"access_type {access_type!r} is not a username/password type: expected "
                f"{BASIC_AUTH}, {SASL_SCRAM_256_AUTH} or {SASL_SCRAM_512_AUTH}"
            )
        return self._typed(access_type, uri, UsernamePassword)

    def client_certificate(self, uri: str) -> ClientCertificate:
        """A CLIENT_CERTIFICATE_TLS_AUTH secret."""
        return self._typed(CLIENT_CERTIFICATE_TLS_AUTH, uri, ClientCertificate)

    def root_certificate(self, uri: str) -> RootCertificate:
        """A SERVER_ROOT_CA_CERTIFICATE secret."""
        return self._typed(SERVER_ROOT_CA_CERTIFICATE, uri, RootCertificate)

    def invalidate(self, uri: str) -> None:
        """Forget ``uri``'s cached value: the next read fetches it again (rotation)."""
        with self._lock:
            self._cache.pop(uri, None)

    def refresh(self) -> None:
        """Forget every cached value."""
        with self._lock:
            self._cache.clear()

    def _typed(self, access_type: str, uri: str, kind: type[_T]) -> _T:
        value = self.read(access_type, uri)
        if not isinstance(value, kind):  # pragma: no cover - parse_secret maps types 1:1
            raise TypeError(f"{access_type} secret parsed as {type(value).__name__}")
        return value

    def _secret_string(self, access_type: str, uri: str) -> str:
        with self._lock:
            cached = self._cache.get(uri)
        if cached is not None:
            return cached
        if uri.startswith(_FILE_SCHEME):
            value = _read_file(uri, access_type)
        else:
            value = self._read_secrets_manager(parse_secret_arn(uri), access_type)
        with self._lock:
            self._cache[uri] = value
        return value

    def _client(self, region: str) -> SecretsManagerClient:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._client_factory(region, self._endpoint_url)
            return self._clients[region]

    def _read_secrets_manager(self, arn: SecretArn, access_type: str) -> str:
        try:
            response = self._client(arn.region).get_secret_value(SecretId=arn.arn)
        except ClientError as exc:
            raise _client_error(arn.arn, exc) from exc
        except BotoCoreError as exc:
            raise SecretReadError(arn.arn, f"could not call Secrets Manager: {exc}") from exc
        if "SecretString" not in response:
            reason = "holds a SecretBinary; Lambda reads a SecretString holding JSON"
            raise SecretInvalidError(arn.arn, access_type, _single_problem(access_type, reason))
        return response["SecretString"]


def _client_error(uri: str, exc: ClientError) -> SecretError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    reason = f"{code}: {message}" if message else code
    if code in _NOT_FOUND:
        return SecretNotFoundError(uri, reason)
    if code in _DENIED:
        return SecretAccessDeniedError(uri, reason)
    return SecretReadError(uri, reason)


def _single_problem(access_type: str, reason: str) -> CheckResult:
    return CheckResult(errors=(SecretProblem("SecretString", reason, format_message(access_type)),))


def _read_file(uri: str, access_type: str) -> str:
    path = Path(uri.removeprefix(_FILE_SCHEME))
    if not str(path) or str(path) == ".":
        raise SecretUriError(uri, "a file:// URI needs a path, e.g. file:///etc/kafka/secret.json")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretNotFoundError(uri, f"no such file: {path}") from None
    except PermissionError:
        raise SecretAccessDeniedError(uri, f"permission denied reading {path}") from None
    except UnicodeDecodeError:
        result = _single_problem(access_type, "is not UTF-8 text")
        raise SecretInvalidError(uri, access_type, result) from None
    except OSError as exc:
        raise SecretReadError(uri, f"cannot read {path}: {exc.strerror}") from None
