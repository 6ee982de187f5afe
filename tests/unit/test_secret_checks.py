"""The secret checks: shapes, PEM, chain order, PKCS#8, PBES1/PBES2, expiry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.security import secret_checks as sc
from runtime.security.secret_checks import (
    BASIC_AUTH,
    CLIENT_CERTIFICATE_TLS_AUTH,
    INVALID_CERTIFICATE_OR_KEY,
    LAMBDA_FAILED_TO_AUTHENTICATE_SERVER,
    MAX_SECRET_BYTES,
    SASL_AUTHENTICATION_FAILED,
    SASL_SCRAM_256_AUTH,
    SASL_SCRAM_512_AUTH,
    SERVER_FAILED_TO_AUTHENTICATE,
    SERVER_ROOT_CA_CERTIFICATE,
    CheckResult,
    KeyEncryption,
    SchemeFamily,
    SecretProblem,
    Severity,
    check_secret,
)

from . import pki_factory as pki
from .pki_factory import NOW

SASL_TYPES = [BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH]


def check(
    access_type: str, secret: str, *, allow_pbes2: bool = False, expiry_warning_days: int = 30
) -> CheckResult:
    return check_secret(
        access_type,
        secret,
        now=NOW,
        allow_pbes2=allow_pbes2,
        expiry_warning_days=expiry_warning_days,
    )


def fields(problems: tuple[SecretProblem, ...]) -> list[str]:
    return [p.field for p in problems]


def only_error(result: CheckResult) -> SecretProblem:
    assert len(result.errors) == 1, result.describe()
    return result.errors[0]


@pytest.fixture(scope="module")
def chain() -> pki.Pki:
    return pki.make_pki()


# --- shape ------------------------------------------------------------------------------


@pytest.mark.parametrize("access_type", SASL_TYPES)
def test_username_password_secret_is_valid(access_type: str) -> None:
    result = check(access_type, json.dumps({"username": "alice", "password": "pw"}))
    assert result.ok and result.errors == () and result.warnings == ()
    assert result.aws_message is None


@pytest.mark.parametrize("access_type", SASL_TYPES)
def test_missing_password_names_the_key_and_the_sasl_message(access_type: str) -> None:
    problem = only_error(check(access_type, json.dumps({"username": "alice"})))
    assert problem.field == "password"
    assert "missing" in problem.rule and "username, password" in problem.rule
    assert problem.aws_message == SASL_AUTHENTICATION_FAILED


def test_non_string_and_empty_values_are_errors() -> None:
    result = check(BASIC_AUTH, json.dumps({"username": 42, "password": ""}))
    assert fields(result.errors) == ["username", "password"]
    assert "must be a string, got a JSON number" in result.errors[0].rule
    assert "must not be empty" in result.errors[1].rule


def test_unknown_key_is_a_warning_that_names_it() -> None:
    result = check(BASIC_AUTH, json.dumps({"username": "a", "password": "b", "userName": "c"}))
    assert result.ok
    assert fields(result.warnings) == ["'userName'"]
    assert "expected username, password" in result.warnings[0].rule
    assert result.warnings[0].severity is Severity.WARNING


def test_misspelt_optional_key_shows_as_missing_password(chain: pki.Pki) -> None:
    key = pki.pkcs8_pbes1(chain.leaf.key, "pw")
    secret = pki.client_secret(chain.chain(), key, privatekeypassword="pw")
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert fields(result.errors) == ["privateKeyPassword"]
    assert fields(result.warnings) == ["'privatekeypassword'"]


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("not json", "is not JSON (Expecting value at line 1 column 1)"),
        ('{"username": "a",\n "password": }', "line 2 column 14"),
        ('["username", "password"]', "must be a JSON object, got a JSON array"),
        ("null", "got a JSON null"),
    ],
)
def test_not_a_json_object(secret: str, expected: str) -> None:
    problem = only_error(check(SASL_SCRAM_512_AUTH, secret))
    assert problem.field == "SecretString"
    assert expected in problem.rule
    assert problem.aws_message == SASL_AUTHENTICATION_FAILED


def test_size_limit_is_65536_utf8_bytes() -> None:
    def secret_of(size: int) -> str:
        skeleton = json.dumps({"username": "a", "password": ""})
        return json.dumps({"username": "a", "password": "x" * (size - len(skeleton))})

    assert len(secret_of(MAX_SECRET_BYTES).encode()) == MAX_SECRET_BYTES
    assert check(BASIC_AUTH, secret_of(MAX_SECRET_BYTES)).ok
    problem = only_error(check(BASIC_AUTH, secret_of(MAX_SECRET_BYTES + 1)))
    assert problem.field == "SecretString"
    assert problem.rule == "is 65537 bytes; a secret holds at most 65536 bytes"


def test_size_counts_bytes_not_characters() -> None:
    secret = json.dumps({"username": "a", "password": "é" * 40_000}, ensure_ascii=False)
    assert len(secret) < MAX_SECRET_BYTES < len(secret.encode())
    assert fields(check(BASIC_AUTH, secret).errors) == ["SecretString"]


@pytest.mark.parametrize("access_type", ["VPC_SUBNET", "basic_auth", ""])
def test_access_type_without_secret_is_a_programming_error(access_type: str) -> None:
    with pytest.raises(ValueError, match=r"access_type .* has no secret to check: expected one"):
        check_secret(access_type, "{}")


def test_naive_now_and_negative_warning_days_are_refused() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        check_secret(BASIC_AUTH, "{}", now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="expiry_warning_days must be 0 or more, got -1"):
        check_secret(BASIC_AUTH, "{}", expiry_warning_days=-1)
    with pytest.raises(TypeError, match="secret_string must be a str, got bytes"):
        check_secret(BASIC_AUTH, b"{}")  # type: ignore[arg-type]


# --- server root CA ---------------------------------------------------------------------


def test_root_ca_secret_is_valid(chain: pki.Pki) -> None:
    result = check(SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(pki.pem(chain.root)))
    assert result.ok and not result.warnings, result.describe()


@pytest.mark.parametrize(
    ("certificate", "field", "rule"),
    [
        ("MIIB", "certificate", "holds no PEM certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
            "certificate[0]",
            "'BEGIN CERTIFICATE' has no matching '-----END CERTIFICATE-----' line",
        ),
        (
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "certificate[0]",
            "body is not valid base64",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "certificate[0]",
            "is not a valid X.509 certificate",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "certificate[0]",
            "is a 'PRIVATE KEY' PEM block; expected 'CERTIFICATE'",
        ),
        (
            "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----",
            "certificate",
            "holds the two characters '\\n' instead of line breaks",
        ),
    ],
)
def test_broken_root_ca_pem(certificate: str, field: str, rule: str) -> None:
    problem = only_error(check(SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(certificate)))
    assert (problem.field, problem.aws_message) == (field, INVALID_CERTIFICATE_OR_KEY)
    assert rule in problem.rule


def test_expired_root_ca_is_lambda_failing_to_authenticate_server() -> None:
    old = pki.issue("Old CA", ca=True, not_after=datetime(2025, 1, 1, tzinfo=UTC))
    problem = only_error(check(SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(pki.pem(old))))
    assert problem.field == "certificate[0]"
    assert problem.rule == "expired on 2025-01-01T00:00:00Z"
    assert problem.aws_message == LAMBDA_FAILED_TO_AUTHENTICATE_SERVER


def test_not_yet_valid_certificate_is_an_error() -> None:
    future = pki.issue("New CA", ca=True, not_before=datetime(2026, 3, 4, tzinfo=UTC))
    problem = only_error(check(SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(pki.pem(future))))
    assert problem.rule == "is not valid before 2026-03-04T00:00:00Z"


def test_certificate_expiring_soon_is_a_warning() -> None:
    soon = pki.issue("CA", ca=True, not_after=NOW + pki.days(10))
    secret = pki.root_ca_secret(pki.pem(soon))
    result = check(SERVER_ROOT_CA_CERTIFICATE, secret)
    assert result.ok
    assert [str(w) for w in result.warnings] == [
        "certificate[0]: expires on 2025-06-11T00:00:00Z, in 10 days"
    ]
    assert not check(SERVER_ROOT_CA_CERTIFICATE, secret, expiry_warning_days=9).warnings


def test_default_now_is_the_current_time() -> None:
    old = pki.issue("Old CA", ca=True, not_after=datetime(2025, 1, 1, tzinfo=UTC))
    result = check_secret(SERVER_ROOT_CA_CERTIFICATE, pki.root_ca_secret(pki.pem(old)))
    assert fields(result.errors) == ["certificate[0]"]


# --- client certificate: chain ----------------------------------------------------------


def test_client_secret_unencrypted_key_is_valid(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8(chain.leaf.key))
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert result.ok and not result.warnings, result.describe()


def test_client_secret_pbes1_key_with_password_is_valid(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes1(chain.leaf.key, "pw"), "pw")
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert result.ok and not result.warnings, result.describe()


def test_chain_in_reverse_order_names_each_link(chain: pki.Pki) -> None:
    reverse = pki.pem(chain.root, chain.intermediate, chain.leaf)
    secret = pki.client_secret(reverse, pki.pkcs8(chain.leaf.key))
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert fields(result.errors) == ["certificate[0]", "certificate[1]", "privateKey"]
    assert result.errors[0].rule.startswith(
        "is not issued by certificate[1]: its issuer is 'CN=Test Root CA', "
        "certificate[1]'s subject is 'CN=Test Intermediate CA'"
    )
    assert "does not match the public key of certificate[0]" in result.errors[2].rule
    assert result.aws_message == INVALID_CERTIFICATE_OR_KEY
    assert fields(result.warnings) == ["certificate[2]"]  # last one is not a root


def test_matching_names_but_wrong_signer_is_caught(chain: pki.Pki) -> None:
    impostor = pki.issue("Test Intermediate CA", issuer=chain.root, ca=True)
    secret = pki.client_secret(pki.pem(chain.leaf, impostor, chain.root), pki.pkcs8(chain.leaf.key))
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "certificate[0]"
    assert problem.rule == "has a signature that certificate[1]'s public key does not verify"


def test_leaf_only_chain_is_a_warning(chain: pki.Pki) -> None:
    secret = pki.client_secret(pki.pem(chain.leaf), pki.pkcs8(chain.leaf.key))
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert result.ok
    assert fields(result.warnings) == ["certificate[0]"]
    assert "is not a self-signed root" in result.warnings[0].rule


def test_issuer_without_ca_flag_is_a_warning() -> None:
    root = pki.issue("Root", ca=True)
    not_ca = pki.issue("Not a CA", issuer=root, ca=False)
    leaf = pki.issue("alice", issuer=not_ca)
    secret = pki.client_secret(pki.pem(leaf, not_ca, root), pki.pkcs8(leaf.key))
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert result.ok
    assert [w.field for w in result.warnings] == ["certificate[1]"]
    assert "is not a CA certificate" in result.warnings[0].rule


def test_each_certificate_must_start_on_a_new_line(chain: pki.Pki) -> None:
    glued = pki.pem(chain.leaf).rstrip("\n") + pki.pem(chain.intermediate, chain.root)
    secret = pki.client_secret(glued, pki.pkcs8(chain.leaf.key))
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert (problem.field, problem.rule) == ("certificate[1]", "must start on a new line")


def test_text_between_blocks_is_a_warning(chain: pki.Pki) -> None:
    noisy = "Bag Attributes\n" + chain.chain()
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, pki.client_secret(noisy, pki.pkcs8(chain.leaf.key)))
    assert result.ok
    assert [str(w) for w in result.warnings] == [
        "certificate: holds text outside its PEM blocks; it is ignored"
    ]


def test_broken_middle_certificate_still_checks_the_rest(chain: pki.Pki) -> None:
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    certificate = pki.pem(chain.leaf) + broken + pki.pem(chain.root)
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, pki.client_secret(certificate, "nope"))
    assert fields(result.errors) == ["certificate[1]", "privateKey"]


def test_expired_client_certificate_is_server_failing_to_authenticate_lambda() -> None:
    expired = pki.make_pki(leaf_not_after=datetime(2025, 5, 1, tzinfo=UTC))
    secret = pki.client_secret(expired.chain(), pki.pkcs8(expired.leaf.key))
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "certificate[0]"
    assert problem.aws_message == SERVER_FAILED_TO_AUTHENTICATE


def test_format_error_wins_over_handshake_error_for_the_aws_message() -> None:
    expired = pki.make_pki(leaf_not_after=datetime(2025, 5, 1, tzinfo=UTC))
    secret = pki.client_secret(expired.chain(), pki.pkcs8(expired.leaf.key), "pw")
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret)
    assert [e.aws_message for e in result.errors] == [
        SERVER_FAILED_TO_AUTHENTICATE,
        INVALID_CERTIFICATE_OR_KEY,
    ]
    assert result.aws_message == INVALID_CERTIFICATE_OR_KEY


# --- client certificate: private key ----------------------------------------------------


@pytest.mark.parametrize(
    ("make_key", "label", "kind"),
    [
        (pki.rsa_key, "RSA PRIVATE KEY", "PKCS#1"),
        (pki.ec_key, "EC PRIVATE KEY", "SEC1"),
    ],
)
def test_traditional_keys_are_refused(make_key: object, label: str, kind: str) -> None:
    key = make_key()  # type: ignore[operator]
    leaf = pki.issue("alice", key=key)
    secret = pki.client_secret(pki.pem(leaf), pki.traditional(key))
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "privateKey"
    assert problem.rule.startswith(f"is {kind} ('BEGIN {label}'); Lambda needs PKCS#8")
    assert problem.aws_message == INVALID_CERTIFICATE_OR_KEY


def test_pbes2_key_is_refused_like_aws(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes2(chain.leaf.key, "pw"), "pw")
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "privateKey"
    assert "is encrypted with PBES2; AWS's poller accepts PBES1 only" in problem.rule
    assert problem.aws_message == INVALID_CERTIFICATE_OR_KEY


def test_pbes2_key_is_a_warning_when_allowed(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes2(chain.leaf.key, "pw"), "pw")
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret, allow_pbes2=True)
    assert result.ok
    warning = result.warnings[0]
    assert "accepted here, AWS's poller refuses it" in warning.rule
    assert warning.aws_message == INVALID_CERTIFICATE_OR_KEY


def test_pbes2_with_wrong_password_still_reports_the_password(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes2(chain.leaf.key, "pw"), "nope")
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, secret, allow_pbes2=True)
    assert fields(result.errors) == ["privateKeyPassword"]


def test_encrypted_key_without_password(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes1(chain.leaf.key, "pw"))
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "privateKeyPassword"
    assert problem.rule.startswith("is missing: privateKey is encrypted")


def test_password_with_unencrypted_key(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8(chain.leaf.key), "pw")
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "privateKeyPassword"
    assert "privateKey is not encrypted" in problem.rule


def test_wrong_password(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes1(chain.leaf.key, "pw"), "wrong")
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "privateKeyPassword"
    assert problem.rule == "does not open privateKey (wrong password, or a damaged key)"


def test_key_of_another_certificate(chain: pki.Pki) -> None:
    secret = pki.client_secret(chain.chain(), pki.pkcs8_pbes1(pki.ec_key(), "pw"), "pw")
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.field == "privateKey"
    assert problem.rule.startswith("does not match the public key of certificate[0]")


def test_unknown_encryption_scheme_is_an_error(chain: pki.Pki) -> None:
    key = pki.encrypted_key_pem("1.3.6.1.4.1.99999.1", b"\x00" * 32)
    secret = pki.client_secret(chain.chain(), key, "pw")
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, secret))
    assert problem.rule.startswith("is encrypted with an unknown scheme (OID 1.3.6.1.4.1.99999.1)")


def test_pbes1_scheme_cryptography_cannot_open_is_a_warning(chain: pki.Pki) -> None:
    # pbeWithSHAAnd2-KeyTripleDES-CBC: PBES1 for AWS, not readable by `cryptography`.
    params = pki.der_sequence(pki.der_octets(b"salt1234"), pki.der_integer(2048))
    key = pki.encrypted_key_pem("1.2.840.113549.1.12.1.4", b"\x00" * 64, params)
    result = check(CLIENT_CERTIFICATE_TLS_AUTH, pki.client_secret(chain.chain(), key, "pw"))
    assert result.ok
    assert fields(result.warnings) == ["privateKey"]
    assert "pbeWithSHAAnd2-KeyTripleDES-CBC is not supported" in result.warnings[0].rule


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("no pem here", "holds no PEM private key"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" * 2,
            "must hold exactly one PEM private key, found 2 PEM blocks",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "is a 'CERTIFICATE' PEM block; expected 'PRIVATE KEY' or 'ENCRYPTED PRIVATE KEY'",
        ),
        ("-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----\n", "not valid base64"),
        (
            pki.pem_block("PRIVATE KEY", b"0\x03\x02\x01\x00"),
            "is not a readable PKCS#8 key",
        ),
        (
            pki.pem_block("ENCRYPTED PRIVATE KEY", b"0\x03\x02\x01\x00"),
            "is not a valid PKCS#8 EncryptedPrivateKeyInfo",
        ),
    ],
)
def test_broken_private_key(chain: pki.Pki, key: str, rule: str) -> None:
    problem = only_error(check(CLIENT_CERTIFICATE_TLS_AUTH, pki.client_secret(chain.chain(), key)))
    assert problem.field == "privateKey"
    assert rule in problem.rule


# --- the DER walk -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("oid", "name", "family"),
    [
        ("1.2.840.113549.1.12.1.3", "pbeWithSHAAnd3-KeyTripleDES-CBC", SchemeFamily.PBES1),
        ("1.2.840.113549.1.5.3", "pbeWithMD5AndDES-CBC", SchemeFamily.PBES1),
        ("1.2.840.113549.1.5.10", "pbeWithSHA1AndDES-CBC", SchemeFamily.PBES1),
        ("1.2.840.113549.1.5.13", "PBES2", SchemeFamily.PBES2),
        ("2.999.1234567", "OID 2.999.1234567", SchemeFamily.UNKNOWN),
    ],
)
def test_scheme_is_read_from_the_algorithm_identifier(
    oid: str, name: str, family: SchemeFamily
) -> None:
    key, problems = sc.parse_private_key(pki.encrypted_key_pem(oid, b"\x01" * 300))
    assert problems == []
    assert key is not None and key.encryption == KeyEncryption(oid, name, family)


def test_real_pbes2_and_pbes1_keys_are_classified(chain: pki.Pki) -> None:
    pbes2, _ = sc.parse_private_key(pki.pkcs8_pbes2(chain.leaf.key, "pw"))
    pbes1, _ = sc.parse_private_key(pki.pkcs8_pbes1(chain.leaf.key, "pw"))
    plain, _ = sc.parse_private_key(pki.pkcs8(chain.leaf.key))
    assert pbes2 is not None and pbes2.encryption is not None
    assert pbes2.encryption.family is SchemeFamily.PBES2
    assert pbes1 is not None and pbes1.encryption is not None
    assert pbes1.encryption.oid == pki.PBES1_3DES_OID
    assert plain is not None and not plain.encrypted


def test_private_key_pem_repr_hides_the_key(chain: pki.Pki) -> None:
    key, _ = sc.parse_private_key(pki.pkcs8(chain.leaf.key))
    assert key is not None
    assert repr(key) == "PrivateKeyPem(encryption=None)"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_der_walk_never_raises_on_garbage(der: bytes) -> None:
    key, problems = sc.parse_private_key(pki.pem_block("ENCRYPTED PRIVATE KEY", der))
    assert (key is None) == bool(problems)


# --- robustness -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(sc.SECRET_ACCESS_TYPES)),
    st.one_of(
        st.text(max_size=200),
        st.dictionaries(
            st.sampled_from(["username", "password", "certificate", "privateKey", "x"]),
            st.one_of(st.text(max_size=50), st.integers(), st.none()),
        ).map(json.dumps),
    ),
)
def test_check_secret_never_raises(access_type: str, secret: str) -> None:
    result = check(access_type, secret)
    assert all(p.severity is Severity.ERROR for p in result.errors)
    assert all(p.severity is Severity.WARNING for p in result.warnings)


def test_describe_lists_errors_then_warnings(chain: pki.Pki) -> None:
    secret = pki.client_secret(pki.pem(chain.leaf), pki.pkcs8(chain.leaf.key), "pw")
    text = check(CLIENT_CERTIFICATE_TLS_AUTH, secret).describe()
    assert text.splitlines()[0].startswith("error: privateKeyPassword: is set but")
    assert text.splitlines()[1].startswith("warning: certificate[0]: is not a self-signed root")


def test_format_message_per_access_type() -> None:
    assert sc.format_message(BASIC_AUTH) == SASL_AUTHENTICATION_FAILED
    assert sc.format_message(CLIENT_CERTIFICATE_TLS_AUTH) == INVALID_CERTIFICATE_OR_KEY
    assert sc.format_message(SERVER_ROOT_CA_CERTIFICATE) == INVALID_CERTIFICATE_OR_KEY
