"""Reading secrets: Secrets Manager (moto), file://, caching, rotation, typed values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from confluent_kafka import Producer
from cryptography.hazmat.primitives import serialization
from moto import mock_aws

from runtime.security.secret_checks import (
    BASIC_AUTH,
    CLIENT_CERTIFICATE_TLS_AUTH,
    INVALID_CERTIFICATE_OR_KEY,
    SASL_AUTHENTICATION_FAILED,
    SASL_SCRAM_256_AUTH,
    SASL_SCRAM_512_AUTH,
    SERVER_ROOT_CA_CERTIFICATE,
    check_secret,
)
from runtime.security.secrets import (
    ClientCertificate,
    ClientTlsMaterial,
    RootCertificate,
    SecretAccessDeniedError,
    SecretError,
    SecretInvalidError,
    SecretNotFoundError,
    SecretReader,
    SecretReadError,
    SecretUriError,
    UsernamePassword,
    client_tls_material,
    parse_secret,
    parse_secret_arn,
)

from . import pki_factory as pki
from .pki_factory import NOW

REGION = "eu-west-1"
PASSWORD = "pw-Zq8-MARKER-sasl"
KEY_PASSWORD = "pw-Kx3-MARKER-key"


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto Secrets Manager in eu-west-1 while the default region is elsewhere."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def create(sm: Any, name: str, value: str | bytes) -> str:
    kwargs = {"SecretString": value} if isinstance(value, str) else {"SecretBinary": value}
    return str(sm.create_secret(Name=name, **kwargs)["ARN"])


def credentials(username: str = "alice", password: str = PASSWORD) -> str:
    return json.dumps({"username": username, "password": password})


class CountingFactory:
    """A client factory that records (region, endpoint) and counts GetSecretValue calls."""

    def __init__(self) -> None:
        self.built: list[tuple[str, str | None]] = []
        self.calls = 0

    def __call__(self, region: str, endpoint_url: str | None) -> Any:
        self.built.append((region, endpoint_url))
        client = boto3.client("secretsmanager", region_name=region)
        client.meta.events.register("before-call.secrets-manager.GetSecretValue", self._count)
        return client

    def _count(self, **_: object) -> None:
        self.calls += 1


class FailingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_secret_value(self, **_: object) -> dict[str, str]:
        raise self.error


def failing(error: Exception) -> Callable[[str, str | None], Any]:
    return lambda region, endpoint: FailingClient(error)


@pytest.fixture(scope="module")
def chain() -> pki.Pki:
    return pki.make_pki()


# --- Secrets Manager --------------------------------------------------------------------


@pytest.mark.parametrize("access_type", [BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH])
def test_reads_username_password_in_the_arns_region(sm: Any, access_type: str) -> None:
    arn = create(sm, "kafka/alice", credentials())
    factory = CountingFactory()
    value = SecretReader(client_factory=factory).username_password(access_type, arn)
    assert (value.username, value.password, value.warnings) == ("alice", PASSWORD, ())
    assert factory.built == [(REGION, None)]


def test_endpoint_url_goes_to_the_client_factory(sm: Any) -> None:
    arn = create(sm, "kafka/alice", credentials())
    factory = CountingFactory()
    SecretReader(endpoint_url="http://localhost:4566", client_factory=factory).read(BASIC_AUTH, arn)
    assert factory.built == [(REGION, "http://localhost:4566")]


def test_default_client_reads_with_boto3(sm: Any) -> None:
    arn = create(sm, "kafka/alice", credentials())
    assert SecretReader().read(BASIC_AUTH, arn) == UsernamePassword("alice", PASSWORD)


def test_values_are_cached_until_invalidated(sm: Any) -> None:
    arn = create(sm, "kafka/alice", credentials(password="first"))
    factory = CountingFactory()
    reader = SecretReader(client_factory=factory)
    assert reader.username_password(BASIC_AUTH, arn).password == "first"
    sm.put_secret_value(SecretId=arn, SecretString=credentials(password="rotated"))
    assert reader.username_password(BASIC_AUTH, arn).password == "first"
    assert factory.calls == 1
    reader.invalidate(arn)
    assert reader.username_password(BASIC_AUTH, arn).password == "rotated"
    assert factory.calls == 2


def test_refresh_forgets_every_secret(sm: Any) -> None:
    first = create(sm, "kafka/a", credentials(password="a1"))
    second = create(sm, "kafka/b", credentials(password="b1"))
    reader = SecretReader()
    reader.read(BASIC_AUTH, first)
    reader.read(BASIC_AUTH, second)
    sm.put_secret_value(SecretId=first, SecretString=credentials(password="a2"))
    sm.put_secret_value(SecretId=second, SecretString=credentials(password="b2"))
    reader.invalidate("arn:aws:secretsmanager:eu-west-1:123456789012:secret:unrelated")
    assert reader.username_password(BASIC_AUTH, first).password == "a1"
    reader.refresh()
    assert reader.username_password(BASIC_AUTH, first).password == "a2"
    assert reader.username_password(BASIC_AUTH, second).password == "b2"


def test_missing_secret_names_the_arn(sm: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:kafka/nobody-AbCdEf"
    with pytest.raises(SecretNotFoundError) as caught:
        SecretReader().read(BASIC_AUTH, arn)
    assert str(caught.value).startswith(f"secret {arn}: ResourceNotFoundException")
    assert caught.value.uri == arn


def test_wrong_shape_is_invalid_with_the_problems(sm: Any) -> None:
    arn = create(sm, "kafka/alice", json.dumps({"user": "alice", "password": PASSWORD}))
    with pytest.raises(SecretInvalidError) as caught:
        SecretReader().read(SASL_SCRAM_512_AUTH, arn)
    error = caught.value
    assert str(error) == (
        f"secret {arn}: is not a valid SASL_SCRAM_512_AUTH secret: username: is missing: "
        "a SASL_SCRAM_512_AUTH secret needs the keys username, password"
    )
    assert error.aws_message == SASL_AUTHENTICATION_FAILED
    assert [w.field for w in error.result.warnings] == ["'user'"]


def test_not_json_is_invalid(sm: Any) -> None:
    arn = create(sm, "kafka/alice", f"alice:{PASSWORD}")
    with pytest.raises(SecretInvalidError, match=r"SecretString: is not JSON \(Expecting value"):
        SecretReader().read(BASIC_AUTH, arn)


def test_binary_secret_is_invalid(sm: Any) -> None:
    arn = create(sm, "kafka/binary", credentials().encode())
    with pytest.raises(SecretInvalidError) as caught:
        SecretReader().read(BASIC_AUTH, arn)
    assert "holds a SecretBinary; Lambda reads a SecretString" in str(caught.value)
    assert caught.value.aws_message == SASL_AUTHENTICATION_FAILED


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("AccessDeniedException", SecretAccessDeniedError),
        ("DecryptionFailure", SecretAccessDeniedError),
        ("ResourceNotFoundException", SecretNotFoundError),
        ("ThrottlingException", SecretReadError),
    ],
)
def test_service_errors_map_to_error_types(code: str, error_type: type[SecretError]) -> None:
    arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:kafka-AbCdEf"
    error = ClientError({"Error": {"Code": code, "Message": "told you so"}}, "GetSecretValue")
    with pytest.raises(error_type) as caught:
        SecretReader(client_factory=failing(error)).read(BASIC_AUTH, arn)
    assert str(caught.value) == f"secret {arn}: {code}: told you so"
    assert type(caught.value) is error_type


def test_unreachable_service_is_a_read_error() -> None:
    arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:kafka-AbCdEf"
    error = EndpointConnectionError(endpoint_url="https://secretsmanager.invalid")
    with pytest.raises(SecretReadError, match="could not call Secrets Manager: Could not connect"):
        SecretReader(client_factory=failing(error)).read(BASIC_AUTH, arn)


@pytest.mark.parametrize(
    "uri",
    [
        "kafka/alice",
        "arn:aws:s3:::bucket",
        "arn:aws:secretsmanager:us-east-1:1234:secret:short-account",
        "arn:aws:secretsmanager:us-east-1:123456789012:kafka",
        "https://example.com/secret",
    ],
)
def test_uri_that_is_not_a_secret_arn_or_file(uri: str) -> None:
    with pytest.raises(SecretUriError, match=re.escape(f"secret {uri}: must be a Secrets")):
        SecretReader(client_factory=failing(AssertionError("no call"))).read(BASIC_AUTH, uri)


def test_secret_arn_parts() -> None:
    arn = parse_secret_arn("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a/b-Xy12")
    assert (arn.partition, arn.region, arn.account, arn.name) == (
        "aws-cn",
        "cn-north-1",
        "123456789012",
        "a/b-Xy12",
    )


def test_username_password_refuses_other_access_types() -> None:
    with pytest.raises(ValueError, match="access_type 'CLIENT_CERTIFICATE_TLS_AUTH' is not a"):
        SecretReader().username_password(CLIENT_CERTIFICATE_TLS_AUTH, "file:///nope")


# --- file:// ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "secret.json") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return f"file://{path}"


def test_file_secret_is_read_cached_and_invalidated(tmp_path: Path) -> None:
    uri = write(tmp_path, credentials(password="first"))
    reader = SecretReader()
    assert reader.username_password(BASIC_AUTH, uri).password == "first"
    write(tmp_path, credentials(password="rotated"))
    assert reader.username_password(BASIC_AUTH, uri).password == "first"
    reader.invalidate(uri)
    assert reader.username_password(BASIC_AUTH, uri).password == "rotated"


def test_relative_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "creds.json").write_text(credentials(), encoding="utf-8")
    assert SecretReader().read(BASIC_AUTH, "file://creds.json") == UsernamePassword(
        "alice", PASSWORD
    )


def test_file_errors(tmp_path: Path) -> None:
    reader = SecretReader()
    missing = f"file://{tmp_path / 'absent.json'}"
    with pytest.raises(SecretNotFoundError, match=re.escape(f"secret {missing}: no such file")):
        reader.read(BASIC_AUTH, missing)
    with pytest.raises(SecretReadError, match="cannot read"):
        reader.read(BASIC_AUTH, f"file://{tmp_path}")
    with pytest.raises(SecretInvalidError, match="SecretString: is not UTF-8 text"):
        reader.read(BASIC_AUTH, write(tmp_path, b"\xff\xfe{}"))
    with pytest.raises(SecretUriError, match="a file:// URI needs a path"):
        reader.read(BASIC_AUTH, "file://")


def test_unreadable_file_is_access_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = write(tmp_path, credentials())

    def deny(*_: object, **__: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(SecretAccessDeniedError, match="permission denied reading"):
        SecretReader().read(BASIC_AUTH, uri)


# --- certificates -----------------------------------------------------------------------


def test_client_certificate_from_a_file(tmp_path: Path, chain: pki.Pki) -> None:
    key = pki.pkcs8_pbes1(chain.leaf.key, KEY_PASSWORD)
    uri = write(tmp_path, pki.client_secret(chain.chain(), key, KEY_PASSWORD))
    value = SecretReader(clock=lambda: NOW).client_certificate(uri)
    assert value == ClientCertificate(chain.chain(), key, KEY_PASSWORD)


def test_root_certificate_from_a_file(tmp_path: Path, chain: pki.Pki) -> None:
    uri = write(tmp_path, pki.root_ca_secret(pki.pem(chain.root)))
    value = SecretReader(clock=lambda: NOW).root_certificate(uri)
    assert value == RootCertificate(pki.pem(chain.root))
    assert value.librdkafka_config() == {"ssl.ca.pem": pki.pem(chain.root)}


def test_pbes2_is_refused_unless_allowed(tmp_path: Path, chain: pki.Pki) -> None:
    key = pki.pkcs8_pbes2(chain.leaf.key, KEY_PASSWORD)
    uri = write(tmp_path, pki.client_secret(chain.chain(), key, KEY_PASSWORD))
    with pytest.raises(SecretInvalidError) as caught:
        SecretReader(clock=lambda: NOW).client_certificate(uri)
    assert caught.value.aws_message == INVALID_CERTIFICATE_OR_KEY
    allowed = SecretReader(clock=lambda: NOW, allow_pbes2=True).client_certificate(uri)
    assert [w.field for w in allowed.warnings] == ["privateKey"]


def test_expiry_is_checked_at_every_read_not_only_when_fetched(
    tmp_path: Path, chain: pki.Pki
) -> None:
    moments = [NOW, datetime(2040, 1, 1, tzinfo=UTC)]
    uri = write(tmp_path, pki.root_ca_secret(pki.pem(chain.root)))
    reader = SecretReader(clock=lambda: moments[0])
    reader.root_certificate(uri)
    moments[0] = moments[1]
    with pytest.raises(SecretInvalidError, match=r"certificate\[0\]: expired on 2034-01-01"):
        reader.root_certificate(uri)


def test_check_reports_without_raising(tmp_path: Path, chain: pki.Pki) -> None:
    uri = write(tmp_path, pki.client_secret(chain.chain(), pki.traditional(pki.rsa_key())))
    result = SecretReader(clock=lambda: NOW).check(CLIENT_CERTIFICATE_TLS_AUTH, uri)
    assert [e.field for e in result.errors] == ["privateKey"]
    assert result.aws_message == INVALID_CERTIFICATE_OR_KEY


# --- material for librdkafka ------------------------------------------------------------


def load_in_librdkafka(material: ClientTlsMaterial, ca: str) -> None:
    """librdkafka loads the PEM settings when the client is created (no brokers: no I/O)."""
    config = {"security.protocol": "SSL", "ssl.ca.pem": ca, **material.librdkafka_config()}
    Producer(config).flush(0)


def test_pbes1_key_is_handed_over_decrypted(chain: pki.Pki) -> None:
    key = pki.pkcs8_pbes1(chain.leaf.key, KEY_PASSWORD)
    material = client_tls_material(ClientCertificate(chain.chain(), key, KEY_PASSWORD))
    cert_pem, _, password = material
    assert (cert_pem, password) == (chain.chain(), None)
    assert material.key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    opened = serialization.load_pem_private_key(material.key_pem.encode(), None)
    assert opened.public_key() == chain.leaf.key.public_key()
    assert "ssl.key.password" not in material.librdkafka_config()
    load_in_librdkafka(material, pki.pem(chain.root))


def test_unencrypted_key_is_handed_over_as_is(chain: pki.Pki) -> None:
    key = pki.pkcs8(chain.leaf.key)
    material = client_tls_material(ClientCertificate(chain.chain(), key))
    assert tuple(material) == (chain.chain(), key, None)
    load_in_librdkafka(material, pki.pem(chain.root))


def test_key_cryptography_cannot_open_is_passed_on_with_its_password(chain: pki.Pki) -> None:
    params = pki.der_sequence(pki.der_octets(b"salt1234"), pki.der_integer(2048))
    key = pki.encrypted_key_pem("1.2.840.113549.1.12.1.4", b"\x00" * 64, params)
    material = client_tls_material(ClientCertificate(chain.chain(), key, KEY_PASSWORD))
    assert material.librdkafka_config() == {
        "ssl.certificate.pem": chain.chain(),
        "ssl.key.pem": key,
        "ssl.key.password": KEY_PASSWORD,
    }


# --- nothing secret in reprs, problems or errors -------------------------------------


def test_reprs_hide_secret_values(chain: pki.Pki) -> None:
    key = pki.pkcs8_pbes1(chain.leaf.key, KEY_PASSWORD)
    values: list[object] = [
        UsernamePassword("alice", PASSWORD),
        ClientCertificate(chain.chain(), key, KEY_PASSWORD),
        RootCertificate(pki.pem(chain.root)),
        client_tls_material(ClientCertificate(chain.chain(), key, KEY_PASSWORD)),
        ClientTlsMaterial(chain.chain(), key, KEY_PASSWORD),
    ]
    assert [repr(v) for v in values] == [
        "UsernamePassword(username='alice', password='***')",
        "ClientCertificate(certificates=3, private_key='***', private_key_password='***')",
        "RootCertificate(certificates=1)",
        "ClientTlsMaterial(key_pem='***', key_password=None)",
        "ClientTlsMaterial(key_pem='***', key_password='***')",
    ]
    assert all(str(v) == repr(v) for v in values)


def secret_tokens(*texts: str) -> set[str]:
    """Passwords, plus every 24-character slice of every PEM body in ``texts``."""
    tokens = {PASSWORD, KEY_PASSWORD}
    for text in texts:
        for body in re.findall(r"-----BEGIN [A-Z ]+-----(.*?)-----END", text, re.S):
            flat = "".join(body.split())
            tokens.update(flat[i : i + 24] for i in range(0, max(len(flat) - 24, 1), 12))
    return tokens


def failing_secrets(chain: pki.Pki) -> list[tuple[str, str]]:
    """(access type, secret) pairs that fail, each carrying passwords and PEM bodies."""
    pbes1 = pki.pkcs8_pbes1(chain.leaf.key, KEY_PASSWORD)
    pbes2 = pki.pkcs8_pbes2(chain.leaf.key, KEY_PASSWORD)
    plain = pki.pkcs8(chain.leaf.key)
    reverse = pki.pem(chain.root, chain.intermediate, chain.leaf)
    escaped = chain.chain().replace("\n", "\\n")
    client = CLIENT_CERTIFICATE_TLS_AUTH
    return [
        (BASIC_AUTH, json.dumps({"user": "alice", "password": PASSWORD, "pass": PASSWORD})),
        (BASIC_AUTH, json.dumps({"username": "", "password": PASSWORD})),
        (BASIC_AUTH, f'{{"username": "alice", "password": "{PASSWORD}"'),
        (BASIC_AUTH, json.dumps([PASSWORD])),
        (BASIC_AUTH, json.dumps({"username": "a", "password": PASSWORD + "x" * 70_000})),
        (client, pki.client_secret(chain.chain(), pbes1, "wrong-" + KEY_PASSWORD)),
        (client, pki.client_secret(chain.chain(), pbes1)),
        (client, pki.client_secret(chain.chain(), pbes2, KEY_PASSWORD)),
        (client, pki.client_secret(chain.chain(), plain, KEY_PASSWORD)),
        (client, pki.client_secret(reverse, plain)),
        (client, pki.client_secret(chain.chain(), pki.pkcs8_pbes1(pki.ec_key(), KEY_PASSWORD))),
        (client, pki.client_secret(chain.chain(), pki.traditional(chain.leaf.key))),
        (client, pki.client_secret(escaped, plain.replace("\n", "\\n"))),
        (client, pki.client_secret(chain.chain()[:-30], plain[:-40], KEY_PASSWORD)),
        (client, pki.client_secret(plain, chain.chain())),
        (client, json.dumps({"certificate": chain.chain(), "privateKey": 7, "x": plain})),
        (SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(plain)),
        (
            SERVER_ROOT_CA_CERTIFICATE,
            pki.root_ca_secret(plain.replace("PRIVATE KEY", "CERTIFICATE")),
        ),
        (SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(chain.chain().replace("M", "*", 3))),
    ]


def exception_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error)]
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            texts += [str(linked), repr(linked)]
    if isinstance(error, SecretInvalidError):
        problems = error.result.errors + error.result.warnings
        texts += [str(p) for p in problems] + [repr(p) for p in problems]
    return texts


def test_no_secret_material_in_any_problem_or_error(tmp_path: Path, chain: pki.Pki) -> None:
    cases = failing_secrets(chain)
    tokens = secret_tokens(*(secret for _, secret in cases))
    assert len(tokens) > 100  # the PEM bodies were found
    for index, (access_type, secret) in enumerate(cases):
        result = check_secret(access_type, secret, now=NOW)
        assert not result.ok, f"case {index} should fail"
        texts = [result.describe()] + [repr(p) for p in result.errors + result.warnings]
        uri = write(tmp_path, secret, f"case-{index}.json")
        with pytest.raises(SecretInvalidError) as caught:
            SecretReader(clock=lambda: NOW).read(access_type, uri)
        texts += exception_texts(caught.value)
        with pytest.raises(SecretInvalidError) as parsed:
            parse_secret(access_type, secret, uri="inline", now=NOW)
        texts += exception_texts(parsed.value)
        leaked = [t for t in tokens if any(t in text for text in texts)]
        assert leaked == [], f"case {index} leaks secret material"
