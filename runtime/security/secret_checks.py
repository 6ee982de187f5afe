"""Checks of the secrets a self-managed Kafka mapping reads, as AWS's poller sees them.

Pure functions (no I/O) so the CDK constructs can run them at synth time and the
poller at run time, and both report the same problems. Every problem names a field
(``username``, ``certificate[1]``, ``privateKey``...) and the rule it broke; none
ever quotes a password, a key or a certificate body, so problems are safe to log.

The rules come from the Lambda developer guide ("Configuring cluster authentication
methods"): the JSON shape per access type, a PEM chain ordered client, intermediates,
root, each certificate on a new line, a PKCS#8 private key, and for an encrypted key
a PBES1 scheme (PBES2 is refused with "Provided certificate or private key is
invalid").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from runtime.definition.vocabulary import (
    INVALID_CERTIFICATE_OR_KEY,
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    SASL_AUTHENTICATION_FAILED,
    SERVER_FAILED_TO_AUTHENTICATE,
)

__all__ = [
    "BASIC_AUTH",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "INVALID_CERTIFICATE_OR_KEY",
    "LAMBDA_FAILED_TO_AUTHENTICATE_SERVER",
    "MAX_SECRET_BYTES",
    "SASL_AUTHENTICATION_FAILED",
    "SASL_SCRAM_256_AUTH",
    "SASL_SCRAM_512_AUTH",
    "SECRET_ACCESS_TYPES",
    "SERVER_FAILED_TO_AUTHENTICATE",
    "SERVER_ROOT_CA_CERTIFICATE",
    "CheckResult",
    "KeyEncryption",
    "PrivateKeyPem",
    "SchemeFamily",
    "SecretProblem",
    "Severity",
    "check_chain_order",
    "check_secret",
    "check_size",
    "check_validity",
    "format_message",
    "open_private_key",
    "parse_certificates",
    "parse_private_key",
]

# --- access types and the keys of their secrets --------------------------------------

BASIC_AUTH = "BASIC_AUTH"
SASL_SCRAM_256_AUTH = "SASL_SCRAM_256_AUTH"
SASL_SCRAM_512_AUTH = "SASL_SCRAM_512_AUTH"
CLIENT_CERTIFICATE_TLS_AUTH = "CLIENT_CERTIFICATE_TLS_AUTH"
SERVER_ROOT_CA_CERTIFICATE = "SERVER_ROOT_CA_CERTIFICATE"

_REQUIRED_KEYS: Mapping[str, tuple[str, ...]] = {
    BASIC_AUTH: ("username", "password"),
    SASL_SCRAM_256_AUTH: ("username", "password"),
    SASL_SCRAM_512_AUTH: ("username", "password"),
    CLIENT_CERTIFICATE_TLS_AUTH: ("certificate", "privateKey"),
    SERVER_ROOT_CA_CERTIFICATE: ("certificate",),
}
_OPTIONAL_KEYS: Mapping[str, tuple[str, ...]] = {
    CLIENT_CERTIFICATE_TLS_AUTH: ("privateKeyPassword",),
}
SECRET_ACCESS_TYPES: frozenset[str] = frozenset(_REQUIRED_KEYS)
"""SourceAccessConfiguration types whose URI is a secret."""

MAX_SECRET_BYTES = 65_536
"""Secrets Manager's limit on a SecretString (UTF-8 bytes)."""

# --- the LastProcessingResult messages AWS uses for these failures -------------------


_FORMAT_MESSAGE: Mapping[str, str] = {
    BASIC_AUTH: SASL_AUTHENTICATION_FAILED,
    SASL_SCRAM_256_AUTH: SASL_AUTHENTICATION_FAILED,
    SASL_SCRAM_512_AUTH: SASL_AUTHENTICATION_FAILED,
    CLIENT_CERTIFICATE_TLS_AUTH: INVALID_CERTIFICATE_OR_KEY,
    SERVER_ROOT_CA_CERTIFICATE: INVALID_CERTIFICATE_OR_KEY,
}
# An expired certificate is well formed; the failure shows up in the TLS handshake.
_EXPIRY_MESSAGE: Mapping[str, str] = {
    CLIENT_CERTIFICATE_TLS_AUTH: SERVER_FAILED_TO_AUTHENTICATE,
    SERVER_ROOT_CA_CERTIFICATE: LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
}

# Field names used in problems (names, not credentials).
_SECRET = "SecretString"  # noqa: S105
_CERTIFICATE = "certificate"
_PRIVATE_KEY = "privateKey"
_PASSWORD = "privateKeyPassword"  # noqa: S105
_REENCRYPT_HINT = "re-encrypt it with `openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES`"


# --- problems and results -------------------------------------------------------------


class Severity(StrEnum):
    """An error stops the mapping (AWS would fail too); a warning is only reported."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class SecretProblem:
    """One broken rule: the field it is about, the rule in words, and AWS's message.

    ``aws_message`` is the LastProcessingResult text AWS shows for this failure
    (without the ``PROBLEM: `` prefix), or None when AWS would not fail on it.
    """

    field: str
    rule: str
    aws_message: str | None
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """All problems of one secret, split by severity."""

    errors: tuple[SecretProblem, ...] = ()
    warnings: tuple[SecretProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing would stop the mapping."""
        return not self.errors

    @property
    def aws_message(self) -> str | None:
        """The LastProcessingResult message AWS would report for these errors.

        A malformed certificate or key stops AWS's poller before it connects, so that
        message wins over one a TLS handshake would produce (an expired certificate).
        """
        messages = [p.aws_message for p in self.errors if p.aws_message]
        if INVALID_CERTIFICATE_OR_KEY in messages:
            return INVALID_CERTIFICATE_OR_KEY
        return messages[0] if messages else None

    def describe(self) -> str:
        """All problems on one line each, errors first; safe to log."""
        lines = [f"error: {p}" for p in self.errors]
        lines += [f"warning: {p}" for p in self.warnings]
        return "\n".join(lines)


def _result(problems: Sequence[SecretProblem]) -> CheckResult:
    return CheckResult(
        errors=tuple(p for p in problems if p.severity is Severity.ERROR),
        warnings=tuple(p for p in problems if p.severity is Severity.WARNING),
    )


def _warning(field_name: str, rule: str, aws_message: str | None = None) -> SecretProblem:
    return SecretProblem(field_name, rule, aws_message, Severity.WARNING)


def format_message(access_type: str) -> str:
    """The AWS message for a malformed secret of ``access_type``."""
    _require_access_type(access_type)
    return _FORMAT_MESSAGE[access_type]


def _require_access_type(access_type: str) -> None:
    if access_type not in SECRET_ACCESS_TYPES:
        allowed = ", ".join(sorted(SECRET_ACCESS_TYPES))
        raise ValueError(
            f"access_type {access_type!r} has no secret to check: expected one of {allowed}"
        )


def _quote(text: str, limit: int = 60) -> str:
    """Quote a non-secret text (a key name, a DN), cut short so problems stay readable."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


# --- size, JSON and shape ---------------------------------------------------------------


def check_size(secret_string: str, aws_message: str | None = None) -> list[SecretProblem]:
    """Secrets Manager refuses a SecretString above 65,536 bytes; so does a file:// secret."""
    size = len(secret_string.encode("utf-8"))
    if size <= MAX_SECRET_BYTES:
        return []
    rule = f"is {size} bytes; a secret holds at most {MAX_SECRET_BYTES} bytes"
    return [SecretProblem(_SECRET, rule, aws_message)]


def parse_secret_json(
    access_type: str, secret_string: str
) -> tuple[dict[str, object] | None, list[SecretProblem]]:
    """Parse the SecretString as the JSON object every Kafka secret is."""
    message = format_message(access_type)
    try:
        document = json.loads(secret_string)
    except json.JSONDecodeError as exc:
        # Only the position: the parser's ``doc`` attribute holds the secret itself.
        rule = f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        return None, [SecretProblem(_SECRET, rule, message)]
    if not isinstance(document, dict):
        rule = f"must be a JSON object, got a JSON {_json_type(document)}"
        return None, [SecretProblem(_SECRET, rule, message)]
    return document, []


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def check_shape(access_type: str, document: Mapping[str, object]) -> list[SecretProblem]:
    """Required keys present, holding non-empty strings; unknown keys reported.

    An unknown key is a warning, not an error: AWS documents the shape but not what
    its poller does with extra keys, and the usual cause (a misspelt key) also shows
    up as a missing required key.
    """
    message = format_message(access_type)
    required = _REQUIRED_KEYS[access_type]
    known = required + _OPTIONAL_KEYS.get(access_type, ())
    problems: list[SecretProblem] = []
    for key in required:
        if key not in document:
            rule = f"is missing: a {access_type} secret needs the keys {', '.join(required)}"
            problems.append(SecretProblem(key, rule, message))
    for key in known:
        if key in document:
            problems += _check_string(key, document[key], message)
    for key in document:
        if key not in known:
            rule = f"is not a key of a {access_type} secret (expected {', '.join(known)})"
            problems.append(_warning(_quote(key, 40), rule))
    return problems


def _check_string(key: str, value: object, message: str) -> list[SecretProblem]:
    if not isinstance(value, str):
        return [SecretProblem(key, f"must be a string, got a JSON {_json_type(value)}", message)]
    if not value:
        return [SecretProblem(key, "must not be empty", message)]
    return []


# --- PEM blocks -------------------------------------------------------------------------

_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")


@dataclass(frozen=True, slots=True)
class _PemBlock:
    label: str
    body: str = field(repr=False)
    field_name: str


def _split_pem(
    field_name: str, text: str, aws_message: str
) -> tuple[list[_PemBlock], list[SecretProblem]]:
    """Cut ``text`` into PEM blocks named ``field_name[i]``; report what is not PEM."""
    if "\\n" in text:
        rule = (
            "holds the two characters '\\n' instead of line breaks: the PEM was "
            "escaped twice when it was written into the JSON"
        )
        return [], [SecretProblem(field_name, rule, aws_message)]
    blocks: list[_PemBlock] = []
    problems: list[SecretProblem] = []
    stray = False
    position = 0
    while match := _BEGIN.search(text, position):
        name = f"{field_name}[{len(blocks)}]"
        between = text[position : match.start()]
        stray = stray or bool(between.strip())
        if blocks and "\n" not in between:
            problems.append(SecretProblem(name, "must start on a new line", aws_message))
        label = match.group(1)
        end_line = f"-----END {label}-----"
        end = text.find(end_line, match.end())
        if end < 0:
            rule = f"'BEGIN {label}' has no matching '{end_line}' line"
            return blocks, [*problems, SecretProblem(name, rule, aws_message)]
        blocks.append(_PemBlock(label, text[match.end() : end], name))
        position = end + len(end_line)
    if blocks and (stray or text[position:].strip()):
        problems.append(_warning(field_name, "holds text outside its PEM blocks; it is ignored"))
    return blocks, problems


def _pem_der(block: _PemBlock, aws_message: str) -> tuple[bytes | None, list[SecretProblem]]:
    try:
        return base64.b64decode("".join(block.body.split()), validate=True), []
    except (binascii.Error, ValueError):
        return None, [SecretProblem(block.field_name, "body is not valid base64", aws_message)]


# --- certificates -----------------------------------------------------------------------


def parse_certificates(
    field_name: str, pem_text: str, aws_message: str = INVALID_CERTIFICATE_OR_KEY
) -> tuple[list[x509.Certificate | None], list[SecretProblem]]:
    """Parse each ``BEGIN CERTIFICATE`` block; entry i is None when block i is broken."""
    blocks, problems = _split_pem(field_name, pem_text, aws_message)
    if not blocks and not problems:
        rule = "holds no PEM certificate ('-----BEGIN CERTIFICATE-----')"
        return [], [SecretProblem(field_name, rule, aws_message)]
    certificates: list[x509.Certificate | None] = []
    for block in blocks:
        certificate, block_problems = _parse_certificate(block, aws_message)
        certificates.append(certificate)
        problems += block_problems
    return certificates, problems


def _parse_certificate(
    block: _PemBlock, aws_message: str
) -> tuple[x509.Certificate | None, list[SecretProblem]]:
    if block.label != "CERTIFICATE":
        rule = f"is a '{block.label}' PEM block; expected 'CERTIFICATE'"
        return None, [SecretProblem(block.field_name, rule, aws_message)]
    der, problems = _pem_der(block, aws_message)
    if der is None:
        return None, problems
    try:
        certificate = x509.load_der_x509_certificate(der)
        # cryptography parses these fields only when read: read them now, so that a
        # broken one is reported here instead of raising in a later check.
        _ = (certificate.issuer, certificate.subject, certificate.extensions)
        _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    except (ValueError, x509.InvalidVersion, x509.DuplicateExtension):
        rule = "is not a valid X.509 certificate"
        return None, [SecretProblem(block.field_name, rule, aws_message)]
    return certificate, []


def check_chain_order(
    certificates: Sequence[x509.Certificate | None],
    field_name: str = _CERTIFICATE,
    aws_message: str = INVALID_CERTIFICATE_OR_KEY,
) -> list[SecretProblem]:
    """Client first, then intermediates, then root: each issued by the next one."""
    problems: list[SecretProblem] = []
    for index in range(len(certificates) - 1):
        child, parent = certificates[index], certificates[index + 1]
        if child is not None and parent is not None:
            problems += _check_issued_by(child, parent, field_name, index, aws_message)
    last = certificates[-1] if certificates else None
    if last is not None and not _is_self_signed(last):
        rule = (
            "is not a self-signed root: AWS documents the chain as the client "
            "certificate, any intermediates, then the root"
        )
        problems.append(_warning(f"{field_name}[{len(certificates) - 1}]", rule))
    return problems


def _check_issued_by(
    child: x509.Certificate,
    parent: x509.Certificate,
    field_name: str,
    index: int,
    aws_message: str,
) -> list[SecretProblem]:
    name, parent_name = f"{field_name}[{index}]", f"{field_name}[{index + 1}]"
    if child.issuer != parent.subject:
        rule = (
            f"is not issued by {parent_name}: its issuer is "
            f"{_quote(child.issuer.rfc4514_string())}, {parent_name}'s subject is "
            f"{_quote(parent.subject.rfc4514_string())} (order: client, intermediates, root)"
        )
        return [SecretProblem(name, rule, aws_message)]
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        rule = f"has a signature that {parent_name}'s public key does not verify"
        return [SecretProblem(name, rule, aws_message)]
    if not _is_ca(parent):
        rule = f"issues {name} but is not a CA certificate (basicConstraints CA:TRUE)"
        return [_warning(parent_name, rule)]
    return []


def _is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def check_validity(
    certificates: Sequence[x509.Certificate | None],
    *,
    now: datetime,
    warning_days: int,
    aws_message: str,
    field_name: str = _CERTIFICATE,
) -> list[SecretProblem]:
    """Expired or not yet valid: an error; expiring within ``warning_days``: a warning."""
    problems: list[SecretProblem] = []
    for index, certificate in enumerate(certificates):
        if certificate is None:
            continue
        name = f"{field_name}[{index}]"
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if not_after < now:
            problems.append(SecretProblem(name, f"expired on {_iso(not_after)}", aws_message))
        elif not_before > now:
            rule = f"is not valid before {_iso(not_before)}"
            problems.append(SecretProblem(name, rule, aws_message))
        elif not_after - now <= timedelta(days=warning_days):
            days = (not_after - now).days
            problems.append(_warning(name, f"expires on {_iso(not_after)}, in {days} days"))
    return problems


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the encrypted-key scheme, read from the DER --------------------------------------


class SchemeFamily(StrEnum):
    """PBES1 here means what `openssl pkcs8 -v1` writes: PKCS#5 v1.5 and PKCS#12 PBE."""

    PBES1 = "PBES1"
    PBES2 = "PBES2"
    UNKNOWN = "unknown"


_PKCS5 = "1.2.840.113549.1.5"
_PKCS12_PBE = "1.2.840.113549.1.12.1"
_SCHEMES: Mapping[str, tuple[str, SchemeFamily]] = {
    f"{_PKCS5}.1": ("pbeWithMD2AndDES-CBC", SchemeFamily.PBES1),
    f"{_PKCS5}.3": ("pbeWithMD5AndDES-CBC", SchemeFamily.PBES1),
    f"{_PKCS5}.4": ("pbeWithMD2AndRC2-CBC", SchemeFamily.PBES1),
    f"{_PKCS5}.6": ("pbeWithMD5AndRC2-CBC", SchemeFamily.PBES1),
    f"{_PKCS5}.10": ("pbeWithSHA1AndDES-CBC", SchemeFamily.PBES1),
    f"{_PKCS5}.11": ("pbeWithSHA1AndRC2-CBC", SchemeFamily.PBES1),
    f"{_PKCS12_PBE}.1": ("pbeWithSHAAnd128BitRC4", SchemeFamily.PBES1),
    f"{_PKCS12_PBE}.2": ("pbeWithSHAAnd40BitRC4", SchemeFamily.PBES1),
    f"{_PKCS12_PBE}.3": ("pbeWithSHAAnd3-KeyTripleDES-CBC", SchemeFamily.PBES1),
    f"{_PKCS12_PBE}.4": ("pbeWithSHAAnd2-KeyTripleDES-CBC", SchemeFamily.PBES1),
    f"{_PKCS12_PBE}.5": ("pbeWithSHAAnd128BitRC2-CBC", SchemeFamily.PBES1),
    f"{_PKCS12_PBE}.6": ("pbeWithSHAAnd40BitRC2-CBC", SchemeFamily.PBES1),
    f"{_PKCS5}.13": ("PBES2", SchemeFamily.PBES2),
}


@dataclass(frozen=True, slots=True)
class KeyEncryption:
    """The AlgorithmIdentifier of an EncryptedPrivateKeyInfo."""

    oid: str
    name: str
    family: SchemeFamily

    @classmethod
    def from_oid(cls, oid: str) -> KeyEncryption:
        """Name and classify ``oid``; an OID we do not know is UNKNOWN."""
        name, family = _SCHEMES.get(oid, (f"OID {oid}", SchemeFamily.UNKNOWN))
        return cls(oid, name, family)


class _DerError(ValueError):
    """The bytes are not the DER structure expected."""


_SEQUENCE, _OCTET_STRING, _OID = 0x30, 0x04, 0x06


def _der_element(data: bytes, position: int) -> tuple[int, int, int]:
    """(tag, start, end) of the DER element at ``position``; only what PKCS#8 uses."""
    if position + 2 > len(data):
        raise _DerError("truncated")
    tag, length = data[position], data[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or start + count > len(data):
            raise _DerError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise _DerError("truncated")
    return tag, start, start + length


def _decode_oid(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise _DerError("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def _encryption_oid(der: bytes) -> str:
    """OID of ``EncryptedPrivateKeyInfo ::= SEQUENCE {AlgorithmIdentifier, OCTET STRING}``."""
    tag, start, end = _der_element(der, 0)
    if tag != _SEQUENCE or end != len(der):
        raise _DerError("not a SEQUENCE")
    tag, algorithm_start, algorithm_end = _der_element(der, start)
    if tag != _SEQUENCE:
        raise _DerError("no AlgorithmIdentifier")
    tag, oid_start, oid_end = _der_element(der, algorithm_start)
    if tag != _OID:
        raise _DerError("no algorithm OID")
    tag, _, data_end = _der_element(der, algorithm_end)
    if tag != _OCTET_STRING or data_end != end:
        raise _DerError("no encrypted data")
    return _decode_oid(der[oid_start:oid_end])


# --- the private key --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrivateKeyPem:
    """A PKCS#8 key block, decoded: its DER and, when encrypted, how."""

    der: bytes = field(repr=False)
    encryption: KeyEncryption | None

    @property
    def encrypted(self) -> bool:
        """True for 'BEGIN ENCRYPTED PRIVATE KEY'."""
        return self.encryption is not None


_NOT_PKCS8: Mapping[str, str] = {
    "RSA PRIVATE KEY": "PKCS#1",
    "EC PRIVATE KEY": "SEC1",
    "DSA PRIVATE KEY": "a traditional OpenSSL DSA key",
    "OPENSSH PRIVATE KEY": "an OpenSSH key",
}


def parse_private_key(
    pem_text: str, aws_message: str = INVALID_CERTIFICATE_OR_KEY
) -> tuple[PrivateKeyPem | None, list[SecretProblem]]:
    """One PKCS#8 block ('BEGIN PRIVATE KEY' or 'BEGIN ENCRYPTED PRIVATE KEY'), decoded."""
    blocks, problems = _split_pem(_PRIVATE_KEY, pem_text, aws_message)
    if not blocks:
        rule = "holds no PEM private key ('-----BEGIN PRIVATE KEY-----')"
        return None, problems or [SecretProblem(_PRIVATE_KEY, rule, aws_message)]
    if len(blocks) > 1:
        rule = f"must hold exactly one PEM private key, found {len(blocks)} PEM blocks"
        return None, [*problems, SecretProblem(_PRIVATE_KEY, rule, aws_message)]
    block = blocks[0]
    label_problems = _check_key_label(block.label, aws_message)
    if label_problems:
        return None, [*problems, *label_problems]
    der, der_problems = _pem_der(block, aws_message)
    if der is None:
        return None, [*problems, *_rename(der_problems, _PRIVATE_KEY)]
    if block.label == "PRIVATE KEY":
        return PrivateKeyPem(der, None), problems
    try:
        encryption = KeyEncryption.from_oid(_encryption_oid(der))
    except _DerError:
        rule = "is not a valid PKCS#8 EncryptedPrivateKeyInfo"
        return None, [*problems, SecretProblem(_PRIVATE_KEY, rule, aws_message)]
    return PrivateKeyPem(der, encryption), problems


def _check_key_label(label: str, aws_message: str) -> list[SecretProblem]:
    if label in ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        return []
    if label in _NOT_PKCS8:
        rule = (
            f"is {_NOT_PKCS8[label]} ('BEGIN {label}'); Lambda needs PKCS#8 "
            "('BEGIN PRIVATE KEY' or 'BEGIN ENCRYPTED PRIVATE KEY'): convert it with "
            "`openssl pkcs8 -topk8 -nocrypt` or `openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES`"
        )
    else:
        rule = f"is a '{label}' PEM block; expected 'PRIVATE KEY' or 'ENCRYPTED PRIVATE KEY'"
    return [SecretProblem(_PRIVATE_KEY, rule, aws_message)]


def _rename(problems: Sequence[SecretProblem], field_name: str) -> list[SecretProblem]:
    return [SecretProblem(field_name, p.rule, p.aws_message, p.severity) for p in problems]


def check_encryption_scheme(
    encryption: KeyEncryption | None,
    *,
    allow_pbes2: bool = False,
    aws_message: str = INVALID_CERTIFICATE_OR_KEY,
) -> list[SecretProblem]:
    """AWS's poller opens PBES1 keys only; ``allow_pbes2`` lets this runtime open PBES2."""
    if encryption is None or encryption.family is SchemeFamily.PBES1:
        return []
    if encryption.family is SchemeFamily.UNKNOWN:
        rule = f"is encrypted with an unknown scheme ({encryption.name}); {_REENCRYPT_HINT}"
        return [SecretProblem(_PRIVATE_KEY, rule, aws_message)]
    rule = f"is encrypted with PBES2; AWS's poller accepts PBES1 only: {_REENCRYPT_HINT}"
    if allow_pbes2:
        rule = f"is encrypted with PBES2: accepted here, AWS's poller refuses it; {_REENCRYPT_HINT}"
        return [_warning(_PRIVATE_KEY, rule, aws_message)]
    return [SecretProblem(_PRIVATE_KEY, rule, aws_message)]


def check_password_presence(
    encrypted: bool, password: str | None, aws_message: str = INVALID_CERTIFICATE_OR_KEY
) -> list[SecretProblem]:
    """A privateKeyPassword goes with an encrypted key, and only with one."""
    if encrypted and password is None:
        rule = "is missing: privateKey is encrypted ('BEGIN ENCRYPTED PRIVATE KEY')"
        return [SecretProblem(_PASSWORD, rule, aws_message)]
    if not encrypted and password is not None:
        rule = "is set but privateKey is not encrypted: remove privateKeyPassword"
        return [SecretProblem(_PASSWORD, rule, aws_message)]
    return []


def open_private_key(
    key: PrivateKeyPem, password: str | None, aws_message: str = INVALID_CERTIFICATE_OR_KEY
) -> tuple[PrivateKeyTypes | None, list[SecretProblem]]:
    """Load (and decrypt) the key; a scheme `cryptography` cannot read is a warning only."""
    secret = password.encode("utf-8") if key.encrypted and password is not None else None
    try:
        return serialization.load_der_private_key(key.der, secret), []
    except UnsupportedAlgorithm:
        return None, [_cannot_open(key)]
    except (ValueError, TypeError) as exc:
        if key.encrypted and "encryption algorithm" in str(exc).lower():
            return None, [_cannot_open(key)]
        if key.encrypted:
            rule = "does not open privateKey (wrong password, or a damaged key)"
            return None, [SecretProblem(_PASSWORD, rule, aws_message)]
        rule = "is not a readable PKCS#8 key of a supported type (RSA, EC, Ed25519)"
        return None, [SecretProblem(_PRIVATE_KEY, rule, aws_message)]


def _cannot_open(key: PrivateKeyPem) -> SecretProblem:
    scheme = key.encryption.name if key.encryption else "its key type"
    rule = (
        f"could not be opened here ({scheme} is not supported by the cryptography "
        "library), so its password and its match with the certificate were not "
        f"checked; {_REENCRYPT_HINT}"
    )
    return _warning(_PRIVATE_KEY, rule)


def check_key_matches_certificate(
    key: PrivateKeyTypes,
    leaf: x509.Certificate,
    aws_message: str = INVALID_CERTIFICATE_OR_KEY,
) -> list[SecretProblem]:
    """The private key must belong to the first (client) certificate of the chain."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    try:
        matches = key.public_key().public_bytes(der, spki) == leaf.public_key().public_bytes(
            der, spki
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        matches = False
    if matches:
        return []
    rule = f"does not match the public key of {_CERTIFICATE}[0] (the client certificate)"
    return [SecretProblem(_PRIVATE_KEY, rule, aws_message)]


# --- the entry point --------------------------------------------------------------------


def check_secret(
    access_type: str,
    secret_string: str,
    *,
    now: datetime | None = None,
    allow_pbes2: bool = False,
    expiry_warning_days: int = 30,
) -> CheckResult:
    """Every check that applies to a secret of ``access_type``, as AWS's poller would see it.

    ``now`` (timezone-aware; default: the current time) dates the expiry checks;
    ``allow_pbes2`` turns the PBES2 error into a warning for this runtime, which can
    open PBES2 keys; a certificate expiring within ``expiry_warning_days`` is a warning.
    """
    _require_access_type(access_type)
    moment = _check_arguments(secret_string, now, expiry_warning_days)
    message = _FORMAT_MESSAGE[access_type]
    problems = check_size(secret_string, message)
    document, json_problems = parse_secret_json(access_type, secret_string)
    problems += json_problems
    if document is None:
        return _result(problems)
    shape = check_shape(access_type, document)
    problems += shape
    if any(p.severity is Severity.ERROR for p in shape):
        return _result(problems)
    if access_type == SERVER_ROOT_CA_CERTIFICATE:
        problems += _check_root_ca(document, moment, expiry_warning_days)
    elif access_type == CLIENT_CERTIFICATE_TLS_AUTH:
        problems += _check_client_certificate(document, moment, expiry_warning_days, allow_pbes2)
    return _result(problems)


def _check_arguments(secret_string: object, now: datetime | None, warning_days: int) -> datetime:
    if not isinstance(secret_string, str):
        raise TypeError(f"secret_string must be a str, got {type(secret_string).__name__}")
    if warning_days < 0:
        raise ValueError(f"expiry_warning_days must be 0 or more, got {warning_days}")
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got the naive datetime {now.isoformat()}")
    return now


def _check_root_ca(
    document: Mapping[str, object], now: datetime, warning_days: int
) -> list[SecretProblem]:
    certificates, problems = parse_certificates(_CERTIFICATE, str(document[_CERTIFICATE]))
    problems += check_validity(
        certificates,
        now=now,
        warning_days=warning_days,
        aws_message=_EXPIRY_MESSAGE[SERVER_ROOT_CA_CERTIFICATE],
    )
    return problems


def _check_client_certificate(
    document: Mapping[str, object], now: datetime, warning_days: int, allow_pbes2: bool
) -> list[SecretProblem]:
    certificates, problems = parse_certificates(_CERTIFICATE, str(document[_CERTIFICATE]))
    problems += check_chain_order(certificates)
    problems += check_validity(
        certificates,
        now=now,
        warning_days=warning_days,
        aws_message=_EXPIRY_MESSAGE[CLIENT_CERTIFICATE_TLS_AUTH],
    )
    key, key_problems = parse_private_key(str(document[_PRIVATE_KEY]))
    problems += key_problems
    if key is None:
        return problems
    raw_password = document.get(_PASSWORD)
    password = raw_password if isinstance(raw_password, str) else None
    problems += check_encryption_scheme(key.encryption, allow_pbes2=allow_pbes2)
    problems += check_password_presence(key.encrypted, password)
    if key.encrypted and password is None:
        return problems
    opened, open_problems = open_private_key(key, password)
    problems += open_problems
    leaf = certificates[0] if certificates else None
    if opened is not None and leaf is not None:
        problems += check_key_matches_certificate(opened, leaf)
    return problems
