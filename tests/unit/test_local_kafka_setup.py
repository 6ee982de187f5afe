"""The local cluster's jar cache, PKI and broker configuration, without starting a broker."""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from runtime.devtools import processes
from runtime.devtools.local_kafka import commands, jars
from runtime.devtools.local_kafka.broker import (
    DEFAULT_PORTS,
    PORTS_FILE,
    LocalKafka,
    _server_properties,
)
from runtime.devtools.local_kafka.commands import default_home
from runtime.devtools.local_kafka.settings import PLAINTEXT
from runtime.devtools.pbes1 import PBE_SHA1_3DES_OID
from runtime.devtools.pki import write_local_pki

PBES2_OID = "1.2.840.113549.1.5.13"


def _encryption_oid(pem: str) -> str:
    """The OID of an EncryptedPrivateKeyInfo's algorithm (read with a tiny DER walk)."""
    der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    # SEQUENCE { SEQUENCE { OID ... } ... }: skip two headers, then read the OID TLV.
    index = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    index += 2 + (der[index + 1] & 0x7F if der[index + 1] & 0x80 else 0)
    assert der[index] == 0x06
    body = der[index + 2 : index + 2 + der[index + 1]]
    parts, value = [body[0] // 40, body[0] % 40], 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def test_cached_jars_are_used_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = jars.libs_dir(tmp_path)
    libs.mkdir(parents=True)
    (libs / ".complete").write_text(jars.KAFKA_VERSION)
    monkeypatch.setattr(jars.shutil, "which", lambda _name: None)
    assert jars.ensure_broker_jars(tmp_path) == libs


def test_a_partial_download_is_not_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jars.libs_dir(tmp_path).mkdir(parents=True)  # jars present, marker missing
    monkeypatch.setattr(jars.shutil, "which", lambda _name: None)
    with pytest.raises(jars.BrokerFetchError, match="Maven"):
        jars.ensure_broker_jars(tmp_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    return write_local_pki(tmp_path_factory.mktemp("pki"), "key-pass")


def test_broker_certificate_names_localhost_and_loopback(pki) -> None:
    chain = x509.load_pem_x509_certificates(pki.broker_keystore.read_bytes())
    sans = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert b"BEGIN PRIVATE KEY" in pki.broker_keystore.read_bytes()  # PKCS#8, as Kafka needs


def test_client_chain_is_leaf_first_and_issued_by_the_ca(pki) -> None:
    leaf, issuer = x509.load_pem_x509_certificates(pki.client_cert("alice").read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    assert leaf.subject.rfc4514_string() == "CN=alice"
    assert issuer == ca
    leaf.verify_directly_issued_by(ca)


def test_unrelated_ca_issued_mallory(pki) -> None:
    leaf = x509.load_pem_x509_certificates(pki.client_cert("mallory").read_bytes())[0]
    trusted = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    other = x509.load_pem_x509_certificate(pki.other_ca.read_bytes())
    leaf.verify_directly_issued_by(other)
    with pytest.raises((ValueError, Exception)):
        leaf.verify_directly_issued_by(trusted)


@pytest.mark.parametrize(("form", "oid"), [("pbes1", PBE_SHA1_3DES_OID), ("pbes2", PBES2_OID)])
def test_encrypted_client_keys_use_the_named_scheme(pki, form: str, oid: str) -> None:
    pem = pki.client_key("alice", form).read_text()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert _encryption_oid(pem) == oid
    opened = serialization.load_pem_private_key(pem.encode(), b"key-pass")
    plain = serialization.load_pem_private_key(pki.client_key("alice").read_bytes(), None)
    assert opened.private_numbers() == plain.private_numbers()  # type: ignore[union-attr]


def test_pki_files_are_private(pki) -> None:
    assert pki.root.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in pki.root.iterdir())


def test_broker_config_enforces_acls_and_client_certificates(tmp_path: Path) -> None:
    ports = {"PLAINTEXT": 1, "SASL_SSL": 2, "SSL": 3, "CONTROLLER": 4}
    text = _server_properties(
        tmp_path, ports, {"admin": "a", "alice": "b"}, tmp_path / "ca.pem", tmp_path / "ks.pem"
    )
    settings = dict(line.split("=", 1) for line in text.splitlines())
    assert settings["listener.name.ssl.ssl.client.auth"] == "required"
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert settings["authorizer.class.name"].endswith("StandardAuthorizer")
    assert all(
        address.startswith("PLAINTEXT://127.0.0.1") or "://127.0.0.1:" in address
        for address in settings["listeners"].split(",")
    )
    assert settings["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"


def test_local_certificates_outlive_the_doctors_expiry_warning(pki) -> None:
    # The doctor warns below EXPIRY_WARNING_DAYS; a local cluster must never trip it.
    horizon = datetime.now(UTC) + timedelta(days=5 * 365)
    paths = [pki.ca, pki.broker_keystore, pki.client_cert("alice")]
    for path in paths:
        for certificate in x509.load_pem_x509_certificates(path.read_bytes()):
            assert certificate.not_valid_after_utc > horizon, path


def test_the_cache_is_per_user_whatever_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_ESM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    first = jars.default_cache_dir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert jars.default_cache_dir() == first == (tmp_path / "xdg" / "kafka-esm")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert jars.default_cache_dir() == tmp_path / "home" / ".cache" / "kafka-esm"
    monkeypatch.setenv("KAFKA_ESM_CACHE", str(tmp_path / "mine"))
    assert jars.default_cache_dir() == tmp_path / "mine"
    assert default_home() == tmp_path / "mine" / "local-cluster"


def test_down_json_says_whether_a_broker_was_stopped(tmp_path: Path) -> None:
    out = io.StringIO()
    args = argparse.Namespace(action="down", home=tmp_path / "cluster", json=True)
    assert commands.run(args, out) == 0
    assert json.loads(out.getvalue()) == {"stopped": False, "home": str(tmp_path / "cluster")}


def _taken_port() -> tuple[socket.socket, int]:
    """A loopback port held by a listening socket for the test's duration."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_free_preferred_ports_are_used(tmp_path: Path) -> None:
    wanted = dict(zip(DEFAULT_PORTS, processes.free_ports(len(DEFAULT_PORTS)), strict=True))
    broker = LocalKafka(tmp_path, preferred_ports=wanted)
    assert broker._choose_ports({}) == wanted
    assert broker.port_notices == []


def test_a_taken_preferred_port_falls_back_with_a_notice(tmp_path: Path) -> None:
    holder, taken = _taken_port()
    with holder:
        broker = LocalKafka(tmp_path, preferred_ports={PLAINTEXT: taken})
        chosen = broker._choose_ports({})
    assert chosen[PLAINTEXT] != taken
    assert len(set(chosen.values())) == len(DEFAULT_PORTS)
    assert broker.port_notices == [
        f"{PLAINTEXT} port {taken} is taken: using {chosen[PLAINTEXT]} instead"
    ]


def test_the_last_starts_ports_are_kept_over_the_preferred_ones(tmp_path: Path) -> None:
    last = dict(zip(DEFAULT_PORTS, processes.free_ports(len(DEFAULT_PORTS)), strict=True))
    (tmp_path / PORTS_FILE).write_text(json.dumps(last), encoding="utf-8")
    broker = LocalKafka(tmp_path, preferred_ports=DEFAULT_PORTS)
    assert broker._choose_ports(broker._saved_ports()) == last


@pytest.mark.parametrize("saved", ["not json", '{"PLAINTEXT": "9092"}', "[9092]"])
def test_an_unreadable_ports_file_is_ignored(tmp_path: Path, saved: str) -> None:
    (tmp_path / PORTS_FILE).write_text(saved, encoding="utf-8")
    assert LocalKafka(tmp_path, preferred_ports=DEFAULT_PORTS)._saved_ports() == {}


def test_without_preferred_ports_every_start_takes_free_ones(tmp_path: Path) -> None:
    # Test brokers must never collide with a developer's `local-kafka up` on 9092.
    (tmp_path / PORTS_FILE).write_text(json.dumps(dict(DEFAULT_PORTS)), encoding="utf-8")
    broker = LocalKafka(tmp_path)
    assert broker._saved_ports() == {}
