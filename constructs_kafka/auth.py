"""How Lambda signs in to the cluster: one authentication method and an optional root CA.

An authentication is a SourceAccessConfiguration type plus the secret its URI names.
It also carries the Kafka principal when it is known at synth time (the SCRAM/PLAIN
user name, or the client certificate's subject), so the ACL commands can name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager

from runtime.definition.vocabulary import SourceAccessType

__all__ = ["KafkaAuthentication"]


@dataclass(frozen=True)
class KafkaAuthentication:
    """One authentication method of a self-managed Kafka mapping; build it with the
    class methods (``sasl_scram_512``...) or from a secret construct's ``authentication``."""

    type: SourceAccessType
    secret: secretsmanager.ISecret
    principal: str | None = None
    """The Kafka principal (``User:<name>``) when known; used only for the ACL commands."""

    @classmethod
    def sasl_scram_512(
        cls, secret: secretsmanager.ISecret, *, username: str | None = None
    ) -> KafkaAuthentication:
        """SASL/SCRAM-SHA-512 over TLS; the secret is ``{"username", "password"}``."""
        return cls(SourceAccessType.SASL_SCRAM_512_AUTH, secret, _user(username))

    @classmethod
    def sasl_scram_256(
        cls, secret: secretsmanager.ISecret, *, username: str | None = None
    ) -> KafkaAuthentication:
        """SASL/SCRAM-SHA-256 over TLS; the secret is ``{"username", "password"}``."""
        return cls(SourceAccessType.SASL_SCRAM_256_AUTH, secret, _user(username))

    @classmethod
    def sasl_plain(
        cls, secret: secretsmanager.ISecret, *, username: str | None = None
    ) -> KafkaAuthentication:
        """SASL/PLAIN over TLS (AWS calls it BASIC_AUTH)."""
        return cls(SourceAccessType.BASIC_AUTH, secret, _user(username))

    @classmethod
    def client_certificate(
        cls, secret: secretsmanager.ISecret, *, principal: str | None = None
    ) -> KafkaAuthentication:
        """mTLS: the secret holds the PEM chain and a PKCS#8 key. ``principal`` is the
        Kafka principal of the certificate, e.g. ``User:CN=lambda,O=example``."""
        return cls(SourceAccessType.CLIENT_CERTIFICATE_TLS_AUTH, secret, principal)


def _user(username: str | None) -> str | None:
    return f"User:{username}" if username else None
