"""Certificates, keys and Kafka secrets for the secret tests, built in memory.

`cryptography` writes encrypted PKCS#8 only as PBES2, and AWS accepts PBES1 only, so
this module encrypts with pbeWithSHAAnd3-KeyTripleDES-CBC itself (RFC 7292 appendix
B key derivation + 3DES-CBC): the scheme `openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES` writes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from runtime.devtools.pbes1 import encrypt_pkcs8_pbes1

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2034, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)
"""The moment the tests check at: inside every default validity period."""

PBES1_3DES_OID = "1.2.840.113549.1.12.1.3"
PBES2_OID = "1.2.840.113549.1.5.13"


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


@dataclass(frozen=True)
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued

    def chain(self) -> str:
        """The documented order: client, intermediate, root."""
        return pem(self.leaf, self.intermediate, self.root)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@lru_cache(maxsize=1)
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    ca: bool = False,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
    issuer_name: str | None = None,
) -> Issued:
    """A certificate for ``common_name``; self-signed when ``issuer`` is None."""
    own_key = key or ec_key()
    subject = _name(common_name)
    if issuer is None:
        signer_key, signer_name = own_key, subject
    else:
        signer_key, signer_name = issuer.key, issuer.certificate.subject
    if issuer_name is not None:
        signer_name = _name(issuer_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(own_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return Issued(builder.sign(signer_key, hashes.SHA256()), own_key)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(*, leaf_not_after: datetime = NOT_AFTER) -> Pki:
    root = issue("Test Root CA", ca=True)
    intermediate = issue("Test Intermediate CA", issuer=root, ca=True)
    leaf = issue("alice", issuer=intermediate, not_after=leaf_not_after)
    return Pki(root, intermediate, leaf)


def pem(*issued: Issued | x509.Certificate) -> str:
    certificates = [i.certificate if isinstance(i, Issued) else i for i in issued]
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def pkcs8(key: CertificateIssuerPrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def traditional(key: CertificateIssuerPrivateKeyTypes) -> str:
    """PKCS#1 for RSA ('BEGIN RSA PRIVATE KEY'), SEC1 for EC ('BEGIN EC PRIVATE KEY')."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def pkcs8_pbes2(key: CertificateIssuerPrivateKeyTypes, password: str) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    ).decode()


def pkcs8_pbes1(
    key: CertificateIssuerPrivateKeyTypes, password: str, iterations: int = 2048
) -> str:
    """PKCS#8 encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC (a PBES1 scheme)."""
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return encrypt_pkcs8_pbes1(plain, password, iterations)


# --- DER, enough to write an EncryptedPrivateKeyInfo ----------------------------------


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def der_sequence(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def der_octets(data: bytes) -> bytes:
    return _der(0x04, data)


def der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, bytes(body))


def encrypted_key_pem(oid: str, encrypted: bytes, params: bytes = b"\x05\x00") -> str:
    """An EncryptedPrivateKeyInfo with any algorithm OID, as PEM."""
    der = der_sequence(der_sequence(der_oid(oid), params), der_octets(encrypted))
    return pem_block("ENCRYPTED PRIVATE KEY", der)


def pem_block(label: str, der: bytes) -> str:
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


# --- secrets ----------------------------------------------------------------------------


def client_secret(
    certificate: str, private_key: str, password: str | None = None, **extra: object
) -> str:
    document: dict[str, object] = {"certificate": certificate, "privateKey": private_key}
    if password is not None:
        document["privateKeyPassword"] = password
    document.update(extra)
    return json.dumps(document)


def root_ca_secret(certificate: str) -> str:
    return json.dumps({"certificate": certificate})


def days(n: int) -> timedelta:
    return timedelta(days=n)
