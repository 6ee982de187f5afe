"""Secret constructs: their shape, synth-time PEM checks, and no secret in templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from constructs_kafka import (
    ClientCertificateSecret,
    KafkaSecretError,
    RootCaSecret,
    SaslPlainSecret,
    SaslScramSecret,
    SourceAccessType,
    import_secret,
)
from tests.cdk.conftest import new_stack
from tests.unit.pki_factory import NOW, make_pki, pem, pkcs8, pkcs8_pbes1, pkcs8_pbes2, traditional

pytestmark = pytest.mark.cdk

PKI = make_pki()
CHAIN = PKI.chain()
KEY = pkcs8(PKI.leaf.key)


def secret_props(stack: cdk.Stack) -> dict:
    (secret,) = Template.from_stack(stack).find_resources("AWS::SecretsManager::Secret").values()
    return secret["Properties"]


def test_scram_secret_generates_the_password() -> None:
    stack = new_stack()
    secret = SaslScramSecret(stack, "User", username="orders")
    props = secret_props(stack)
    generator = props["GenerateSecretString"]
    assert json.loads(generator["SecretStringTemplate"]) == {"username": "orders"}
    assert generator["GenerateStringKey"] == "password"
    assert '"' in generator["ExcludeCharacters"] and "SecretString" not in props
    assert secret.authentication.type is SourceAccessType.SASL_SCRAM_512_AUTH
    assert secret.authentication.principal == "User:orders"


def test_scram_256_and_plain() -> None:
    stack = new_stack()
    scram = SaslScramSecret(
        stack, "A", username="u", mechanism=SourceAccessType.SASL_SCRAM_256_AUTH
    )
    plain = SaslPlainSecret(stack, "B", username="v")
    assert scram.authentication.type is SourceAccessType.SASL_SCRAM_256_AUTH
    assert plain.authentication.type is SourceAccessType.BASIC_AUTH
    with pytest.raises(ValueError, match=r"mechanism .* must be one of SASL_SCRAM_512_AUTH"):
        SaslScramSecret(stack, "C", username="u", mechanism=SourceAccessType.BASIC_AUTH)
    with pytest.raises(ValueError, match="username '' must not be empty"):
        SaslPlainSecret(stack, "D", username="")


def test_root_ca_secret_is_checked_and_inlined() -> None:
    stack = new_stack()
    RootCaSecret(stack, "Ca", certificate=pem(PKI.root), now=NOW)
    assert json.loads(secret_props(stack)["SecretString"]) == {"certificate": pem(PKI.root)}
    with pytest.raises(KafkaSecretError, match="certificate: holds no PEM certificate"):
        RootCaSecret(new_stack(), "Bad", certificate="not a pem", now=NOW)


def test_root_ca_expired() -> None:
    with pytest.raises(KafkaSecretError, match="certificate"):
        RootCaSecret(
            new_stack(), "Ca", certificate=pem(PKI.root), now=datetime(2040, 1, 1, tzinfo=UTC)
        )


def test_client_certificate_placeholder_keeps_the_key_out() -> None:
    stack = new_stack()
    secret = ClientCertificateSecret(stack, "Client", certificate_chain=CHAIN, now=NOW)
    props = secret_props(stack)
    assert json.loads(props["GenerateSecretString"]["SecretStringTemplate"]) == {
        "certificate": CHAIN
    }
    assert props["GenerateSecretString"]["GenerateStringKey"] == "privateKey"
    assert secret.has_placeholder_key
    assert (
        secret.authentication.principal == f"User:{PKI.leaf.certificate.subject.rfc4514_string()}"
    )


def test_client_certificate_chain_order_is_checked() -> None:
    wrong = pem(PKI.root, PKI.intermediate, PKI.leaf)
    with pytest.raises(KafkaSecretError, match=r"certificate\[0\]"):
        ClientCertificateSecret(new_stack(), "Client", certificate_chain=wrong, now=NOW)


def test_client_certificate_inline_key_is_an_explicit_opt_in_and_checked() -> None:
    stack = new_stack()
    ClientCertificateSecret(
        stack,
        "Client",
        certificate_chain=CHAIN,
        private_key=cdk.SecretValue.unsafe_plain_text(KEY),
        now=NOW,
    )
    assert "privateKey" in json.dumps(secret_props(stack))


@pytest.mark.parametrize(
    ("key", "password", "field"),
    [
        (traditional(PKI.leaf.key), None, "privateKey"),  # not PKCS#8
        (pkcs8_pbes2(PKI.leaf.key, "pw"), "pw", "privateKey"),  # PBES2 refused
        (pkcs8_pbes1(PKI.leaf.key, "pw"), None, "privateKeyPassword"),  # password missing
        (pkcs8(PKI.root.key), None, "privateKey"),  # does not match the leaf
    ],
)
def test_client_certificate_key_rules(key: str, password: str | None, field: str) -> None:
    with pytest.raises(KafkaSecretError) as caught:
        ClientCertificateSecret(
            new_stack(),
            "Client",
            certificate_chain=CHAIN,
            private_key=cdk.SecretValue.unsafe_plain_text(key),
            private_key_password=cdk.SecretValue.unsafe_plain_text(password) if password else None,
            now=NOW,
        )
    assert any(p.field == field for p in caught.value.problems)
    body = key.splitlines()[1]  # a line of the key's base64: never in a message
    assert body not in str(caught.value)


def test_pbes2_message_is_aws_message() -> None:
    with pytest.raises(KafkaSecretError) as caught:
        ClientCertificateSecret(
            new_stack(),
            "Client",
            certificate_chain=CHAIN,
            private_key=cdk.SecretValue.unsafe_plain_text(pkcs8_pbes2(PKI.leaf.key, "pw")),
            private_key_password=cdk.SecretValue.unsafe_plain_text("pw"),
            now=NOW,
        )
    assert {p.aws_message for p in caught.value.problems} == {
        "Provided certificate or private key is invalid"
    }


def test_oversized_secret_is_refused() -> None:
    with pytest.raises(KafkaSecretError, match="a secret holds at most 65536 bytes"):
        ClientCertificateSecret(new_stack(), "Client", certificate_chain=CHAIN * 50, now=NOW)


def test_key_files_need_the_opt_in(tmp_path) -> None:
    chain_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain_file.write_text(CHAIN)
    key_file.write_text(KEY)
    with pytest.raises(ValueError, match="unsafe_inline_private_key=True"):
        ClientCertificateSecret.from_files(
            new_stack(), "C", certificate_chain_file=chain_file, private_key_file=key_file
        )
    ClientCertificateSecret.from_files(
        new_stack(),
        "C",
        certificate_chain_file=chain_file,
        private_key_file=key_file,
        unsafe_inline_private_key=True,
        now=NOW,
    )


def test_ssm_secure_reference_keeps_the_key_out() -> None:
    stack = new_stack()
    ClientCertificateSecret(
        stack,
        "Client",
        certificate_chain=CHAIN,
        private_key=cdk.SecretValue.ssm_secure("/kafka/client-key"),
        now=NOW,
    )
    text = json.dumps(secret_props(stack))
    assert "{{resolve:ssm-secure:/kafka/client-key}}" in text
    assert "PRIVATE KEY" not in text


def test_import_secret_keeps_arn_and_key() -> None:
    stack = new_stack()
    key = cdk.aws_kms.Key.from_key_arn(stack, "K", "arn:aws:kms:eu-west-1:123456789012:key/abc")
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-AbCdEf"
    secret = import_secret(stack, "S", arn, encryption_key=key)
    assert secret.secret_arn == arn
    assert secret.encryption_key is not None
    assert secret.encryption_key.key_arn == key.key_arn
