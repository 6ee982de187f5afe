"""The local cluster's test PKI: a CA, the broker's certificate, client certificates.

Everything a secured listener and its negative tests need, written as PEM files:
a trusted CA and an unrelated one, a broker certificate for ``localhost`` and
``127.0.0.1``, client certificates whose CN becomes the Kafka principal, and the
same client key in three forms (plain PKCS#8, PBES1-encrypted, PBES2-encrypted).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.devtools.pbes1 import encrypt_pkcs8_pbes1

_VALIDITY = dt.timedelta(days=10 * 365)
"""Long: a local cluster's certificates must not make every doctor run warn of expiry
(the doctor warns below 30 days, which stays right for real certificates)."""
_KEY_BITS = 2048


@dataclass(frozen=True)
class Issued:
    """A certificate and its unencrypted PKCS#8 key, as PEM text."""

    cert_pem: str
    key_pem: str
    chain_pem: str
    """The certificate followed by its issuer chain, leaf first (AWS's order)."""


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA that can issue leaf certificates."""

    name: str
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @classmethod
    def create(cls, name: str) -> CertificateAuthority:
        """Make a fresh self-signed CA named ``name``."""
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(name, cert, key)

    @property
    def cert_pem(self) -> str:
        """The CA certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def issue(self, common_name: str, *, hosts: tuple[str, ...] = (), server: bool) -> Issued:
        """Issue a leaf for ``common_name``; ``hosts`` become DNS or IP SANs."""
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(subject, self.cert.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return Issued(cert_pem, _pkcs8_pem(key), cert_pem + self.cert_pem)


@dataclass(frozen=True)
class LocalPki:
    """Paths of the PEM files written by :func:`write_local_pki`."""

    root: Path

    @property
    def ca(self) -> Path:
        """The CA every listener trusts."""
        return self.root / "ca.pem"

    @property
    def other_ca(self) -> Path:
        """A second CA that nothing trusts, for negative tests."""
        return self.root / "other-ca.pem"

    @property
    def broker_keystore(self) -> Path:
        """Broker key and chain in one file: Kafka's PEM keystore format."""
        return self.root / "broker-keystore.pem"

    def client_cert(self, name: str) -> Path:
        """Client certificate chain (leaf first) for principal ``name``."""
        return self.root / f"{name}.pem"

    def client_key(self, name: str, form: str = "plain") -> Path:
        """Client key: ``plain`` PKCS#8, ``pbes1`` or ``pbes2`` encrypted."""
        suffix = "" if form == "plain" else f"-{form}"
        return self.root / f"{name}{suffix}.key"

    @property
    def key_password_file(self) -> Path:
        """The password of the encrypted client keys."""
        return self.root / "client-key-password.txt"


TRUSTED_CLIENTS = ("alice", "admin")
"""Client certificates issued by the trusted CA (the CN is the principal)."""

UNTRUSTED_CLIENT = "mallory"
"""A client certificate issued by the unrelated CA."""


def write_local_pki(root: Path, key_password: str) -> LocalPki:
    """Generate the whole PKI into ``root`` (mode 0700) and return its paths."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    pki = LocalPki(root)
    ca = CertificateAuthority.create("constructs-kafka local CA")
    other = CertificateAuthority.create("constructs-kafka unrelated CA")
    broker = ca.issue("localhost", hosts=("localhost", "127.0.0.1"), server=True)
    _write(pki.ca, ca.cert_pem)
    _write(pki.other_ca, other.cert_pem)
    _write(pki.broker_keystore, broker.key_pem + broker.chain_pem)
    for name in TRUSTED_CLIENTS:
        _write_client(pki, name, ca.issue(name, server=False), key_password)
    _write_client(pki, UNTRUSTED_CLIENT, other.issue(UNTRUSTED_CLIENT, server=False), key_password)
    _write(pki.key_password_file, key_password)
    return pki


def _write_client(pki: LocalPki, name: str, issued: Issued, password: str) -> None:
    _write(pki.client_cert(name), issued.chain_pem)
    _write(pki.client_key(name), issued.key_pem)
    key = serialization.load_pem_private_key(issued.key_pem.encode("ascii"), None)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(pki.client_key(name, "pbes1"), encrypt_pkcs8_pbes1(der, password))
    pbes2 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode("utf-8")),
    )
    _write(pki.client_key(name, "pbes2"), pbes2.decode("ascii"))


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


def _pkcs8_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
