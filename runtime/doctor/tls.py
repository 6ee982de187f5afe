"""The doctor's TLS check: the handshake with each broker and its certificate.

It uses Python's ``ssl`` (the same OpenSSL rules as librdkafka: chain to the given root
CA, then the broker's name or IP address in the certificate's SubjectAlternativeName),
so that it can say *which* rule failed where librdkafka only says "certificate verify
failed", and it reads the certificate to name its subject, issuer, SAN and expiry.
"""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime

from cryptography import x509

from runtime.definition.vocabulary import (
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    SERVER_FAILED_TO_AUTHENTICATE,
)
from runtime.doctor.model import CheckResult, DoctorInputs, Findings, Status, aws_error
from runtime.observability.state import MappingStopped, StateTransitionReason, problem

__all__ = ["check_tls"]

EXPIRY_WARNING_DAYS = 30
_NAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED
_SERVER_ALERTS = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE")


def _authn(message: str) -> str:
    return aws_error(
        MappingStopped(StateTransitionReason.EVENT_SOURCE_AUTHN_ERROR, problem(message))
    )


_SERVER_NOT_TRUSTED = _authn(LAMBDA_FAILED_TO_AUTHENTICATE_SERVER)


def check_tls(inputs: DoctorInputs, found: Findings) -> list[CheckResult]:
    """Handshake with every reachable bootstrap server (skipped for PLAINTEXT)."""
    plan = found.plan
    assert plan is not None
    if not plan.uses_tls:
        detail = f"{plan.protocol}: the mapping uses no TLS (no authentication, no root CA)"
        return [CheckResult(3, "TLS", Status.SKIP, detail)]
    ca_pem = found.settings.get("ssl.ca.pem")
    return [_check_server(server, ca_pem, found, inputs.timeout_s) for server in found.reachable]


def _context(settings: dict[str, object], ca_pem: str | None) -> ssl.SSLContext:
    """Trust what librdkafka will trust: the secret's CA, an ``ssl.ca.location`` override,
    or the system's CAs; check the broker's name unless an override turned that off."""
    location = settings.get("ssl.ca.location")
    if ca_pem:
        context = ssl.create_default_context(cadata=ca_pem)
    elif isinstance(location, str) and location != "probe":
        context = ssl.create_default_context(cafile=location)
    else:
        context = ssl.create_default_context()
    if str(settings.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
        context.check_hostname = False
    return context


def _check_server(
    server: str, ca_pem: str | None, found: Findings, timeout_s: float
) -> CheckResult:
    name = f"TLS {server}"
    host, _, port = server.rpartition(":")
    host = host.strip("[]")
    try:
        context = _context(found.settings, ca_pem)
    except (OSError, ssl.SSLError) as error:
        detail = f"the trusted CAs cannot be loaded: {error}"
        return CheckResult(3, name, Status.FAIL, detail, None, "fix ssl.ca.location")
    try:
        der, version = _handshake(context, host, int(port), timeout_s)
    except ssl.SSLCertVerificationError as error:
        return _verify_failure(
            name, error, host=host, port=int(port), ca_pem=ca_pem, timeout_s=timeout_s
        )
    except ssl.SSLError as error:
        return _handshake_failure(name, error, found)
    except OSError as error:
        detail = f"connection closed during the TLS handshake: {error}"
        return CheckResult(3, name, Status.FAIL, detail, _SERVER_NOT_TRUSTED, _PORT_FIX)
    certificate = x509.load_der_x509_certificate(der)
    days = (certificate.not_valid_after_utc - datetime.now(UTC)).days
    detail = f"{version}; {_describe(certificate)}"
    if days < EXPIRY_WARNING_DAYS:
        return CheckResult(
            3,
            name,
            Status.WARN,
            f"{detail}; expires in {days} days",
            f"when it expires: {_SERVER_NOT_TRUSTED}",
            "renew the broker certificate before it expires",
        )
    return CheckResult(3, name, Status.PASS, detail)


_PORT_FIX = (
    "use the broker's TLS listener port (SSL or SASL_SSL); a PLAINTEXT listener needs a "
    "mapping without authentication or root CA"
)


def _handshake(
    context: ssl.SSLContext, host: str, port: int, timeout_s: float
) -> tuple[bytes, str]:
    with (
        socket.create_connection((host, port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert(binary_form=True) or b"", tls.version() or "TLS"


def _leaf(host: str, port: int, timeout_s: float) -> x509.Certificate | None:
    """The broker's certificate without verifying it, to describe what failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        der, _ = _handshake(context, host, port, timeout_s)
    except OSError:
        return None
    return x509.load_der_x509_certificate(der) if der else None


def _verify_failure(
    name: str,
    error: ssl.SSLCertVerificationError,
    *,
    host: str,
    port: int,
    ca_pem: str | None,
    timeout_s: float,
) -> CheckResult:
    leaf = _leaf(host, port, timeout_s)
    described = _describe(leaf) if leaf else "its certificate"
    if error.verify_code in _NAME_MISMATCH:
        names = ", ".join(_san(leaf)) if leaf else "other names"
        detail = f"{host!r} is not in the broker certificate's SAN ({names})"
        fix = (
            f"connect through a name the certificate holds, or reissue the broker "
            f"certificate with {host!r} in its SubjectAlternativeName"
        )
        return CheckResult(3, name, Status.FAIL, detail, _SERVER_NOT_TRUSTED, fix)
    if error.verify_code == _EXPIRED:
        detail = f"the broker certificate has expired: {described}"
        fix = "renew the broker certificate"
        return CheckResult(3, name, Status.FAIL, detail, _SERVER_NOT_TRUSTED, fix)
    trusted = f"the root CA of SERVER_ROOT_CA_CERTIFICATE ({_ca_subject(ca_pem)})"
    if ca_pem is None:
        trusted = "the system's CAs (no SERVER_ROOT_CA_CERTIFICATE given)"
    issuer = leaf.issuer.rfc4514_string() if leaf else "the broker's CA"
    detail = f"{described}: not trusted by {trusted} ({error.verify_message})"
    fix = (
        f"store the CA that issued the broker certificate ({issuer}) as SERVER_ROOT_CA_CERTIFICATE"
    )
    return CheckResult(3, name, Status.FAIL, detail, _SERVER_NOT_TRUSTED, fix)


def _handshake_failure(name: str, error: ssl.SSLError, found: Findings) -> CheckResult:
    reason = str(error.reason or error)
    if any(alert in reason.upper() for alert in _SERVER_ALERTS):
        if found.plan is not None and found.plan.authentication is not None:
            detail = "the broker asks for a client certificate during the handshake (step 4)"
            return CheckResult(3, name, Status.PASS, detail)
        detail = f"the broker refused the handshake ({reason}): it wants a client certificate"
        fix = "add CLIENT_CERTIFICATE_TLS_AUTH, or use a listener without mTLS"
        return CheckResult(3, name, Status.FAIL, detail, _authn(SERVER_FAILED_TO_AUTHENTICATE), fix)
    detail = f"TLS handshake failed ({reason}): the port may not speak TLS"
    return CheckResult(3, name, Status.FAIL, detail, _SERVER_NOT_TRUSTED, _PORT_FIX)


def _describe(certificate: x509.Certificate) -> str:
    until = certificate.not_valid_after_utc.strftime("%Y-%m-%d")
    return (
        f"{certificate.subject.rfc4514_string()} by {certificate.issuer.rfc4514_string()}, "
        f"SAN {', '.join(_san(certificate)) or 'none'}, until {until}"
    )


def _san(certificate: x509.Certificate | None) -> list[str]:
    if certificate is None:
        return []
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in names.get_values_for_type(x509.DNSName)] + [
        str(v) for v in names.get_values_for_type(x509.IPAddress)
    ]


def _ca_subject(ca_pem: str | None) -> str:
    if not ca_pem:
        return "none"
    try:
        return x509.load_pem_x509_certificates(ca_pem.encode("ascii"))[0].subject.rfc4514_string()
    except ValueError:
        return "unreadable"
