"""Bad secret contents: check_secret never raises, reports problems, never leaks a secret.

Hypothesis takes real PEM material (a client, intermediate and root chain; PKCS#8,
PKCS#1/SEC1, PBES1- and PBES2-encrypted keys) and breaks it: truncated, reordered or
missing certificates, flipped base64, garbage between PEM markers, wrong labels, wrong
or missing passwords, CRLF line ends. Whatever comes in, the result lists problems by
field, and no message repeats the password or the key material.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.security import secret_checks as sc
from runtime.security.secret_checks import (
    CLIENT_CERTIFICATE_TLS_AUTH,
    SERVER_ROOT_CA_CERTIFICATE,
    check_secret,
)

from . import pki_factory as pki

PASSWORD = "Zq7-correct-horse-91"
WRONG_PASSWORD = "Zq7-wrong-horse-19"


@lru_cache(maxsize=1)
def _material() -> dict[str, Any]:
    chain = pki.make_pki()
    ec_key = chain.leaf.key
    rsa_key = pki.rsa_key()
    return {
        "chain": [pki.pem(chain.leaf), pki.pem(chain.intermediate), pki.pem(chain.root)],
        "keys": {
            "pkcs8": pki.pkcs8(ec_key),
            "pkcs1-rsa": pki.traditional(rsa_key),
            "sec1-ec": pki.traditional(ec_key),
            "pbes2": pki.pkcs8_pbes2(ec_key, PASSWORD),
            "pbes1": pki.pkcs8_pbes1(ec_key, PASSWORD, iterations=16),
            "other-key": pki.pkcs8(pki.ec_key()),
        },
    }


@st.composite
def broken_pem(draw: st.DrawFn, text: str) -> str:
    """``text`` (PEM) as a hurried person might paste it."""
    damage = draw(
        st.sampled_from(
            ["none", "truncate", "flip", "garbage", "label", "crlf", "spaces", "double"]
        )
    )
    if damage == "truncate":
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    if damage == "flip":
        lines = text.splitlines(keepends=True)
        inside = [i for i, line in enumerate(lines) if not line.startswith("-----")]
        if inside:
            i = draw(st.sampled_from(inside))
            line = lines[i]
            j = draw(st.integers(0, max(len(line) - 2, 0)))
            lines[i] = line[:j] + draw(st.sampled_from("A/+=!é\x00")) + line[j + 1 :]
        return "".join(lines)
    if damage == "garbage":
        label = draw(st.sampled_from(["CERTIFICATE", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]))
        body = draw(st.binary(max_size=200))
        return (
            pki.pem_block(label, body) if draw(st.booleans()) else text + draw(st.text(max_size=40))
        )
    if damage == "label":
        new = draw(
            st.sampled_from(["CERTIFICATE", "PRIVATE KEY", "X509 CRL", "", "RSA PRIVATE KEY"])
        )
        return text.replace("CERTIFICATE", new, 1).replace("PRIVATE KEY", new, 1)
    if damage == "crlf":
        return text.replace("\n", "\r\n")
    if damage == "spaces":
        return "  " + text.replace("\n", " \n")
    if damage == "double":
        return text + text
    return text


@st.composite
def client_secrets(draw: st.DrawFn) -> str:
    material = _material()
    chain = list(material["chain"])
    order = draw(
        st.sampled_from(["documented", "reversed", "leaf-only", "no-leaf", "shuffled", "none"])
    )
    if order == "reversed":
        chain.reverse()
    elif order == "leaf-only":
        chain = chain[:1]
    elif order == "no-leaf":
        chain = chain[1:]
    elif order == "shuffled":
        chain = draw(st.permutations(chain))
    elif order == "none":
        chain = []
    certificate = draw(broken_pem("".join(chain)))
    key = draw(broken_pem(material["keys"][draw(st.sampled_from(sorted(material["keys"])))]))
    document: dict[str, Any] = {"certificate": certificate, "privateKey": key}
    password = draw(st.sampled_from([PASSWORD, WRONG_PASSWORD, "", None, "absent", 42, ["x"]]))
    if password != "absent":
        document["privateKeyPassword"] = password
    if draw(st.booleans()):
        document[draw(st.sampled_from(["certificate", "privateKey", "extra"]))] = draw(
            st.none() | st.integers() | st.lists(st.text(max_size=5), max_size=2)
        )
    return json.dumps(document)


SECRETS = (
    client_secrets()
    | st.text(max_size=200)
    | st.binary(max_size=100).map(lambda b: b.decode("latin-1"))
    | st.dictionaries(
        st.sampled_from(
            ["username", "password", "certificate", "privateKey", "privateKeyPassword"]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=30)
        | st.lists(st.integers(), max_size=2),
        max_size=5,
    ).map(json.dumps)
    | st.sampled_from(
        ['"x"', "[]", "null", "1e999", "{" * 3_000, '{"certificate": "' + "A" * 70_000 + '"}']
    )
)


def _assert_clean(result: sc.CheckResult, secret: str) -> None:
    assert isinstance(result, sc.CheckResult)
    for problem in (*result.errors, *result.warnings):
        assert problem.field and problem.rule, f"a problem without field or rule: {problem!r}"
    text = result.describe() + repr(result)
    for value in (PASSWORD, WRONG_PASSWORD):
        if value in secret:
            assert value not in text, "a password appears in a problem"
    for pem in _material()["keys"].values():
        body = max(pem.splitlines(), key=len)  # one full line of base64 key material
        assert body not in text, "key material appears in a problem"


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.sampled_from(sorted(sc.SECRET_ACCESS_TYPES)), SECRETS)
def test_any_secret_is_checked_without_raising_or_leaking(access_type: str, secret: str) -> None:
    _assert_clean(check_secret(access_type, secret, now=pki.NOW), secret)


@FUZZ
@given(client_secrets())
def test_broken_client_certificates_are_reported_as_aws_would(secret: str) -> None:
    result = check_secret(CLIENT_CERTIFICATE_TLS_AUTH, secret, now=pki.NOW)
    _assert_clean(result, secret)
    if not result.ok:
        assert result.aws_message is not None, result.describe()


@FUZZ
@given(st.data())
def test_broken_root_certificates_are_reported_as_aws_would(data: st.DataObject) -> None:
    chain = _material()["chain"]
    certificate = data.draw(broken_pem(data.draw(st.sampled_from([chain[2], "".join(chain), ""]))))
    secret = json.dumps({"certificate": certificate})
    result = check_secret(SERVER_ROOT_CA_CERTIFICATE, secret, now=pki.NOW)
    _assert_clean(result, secret)
    if not result.ok:
        assert result.aws_message is not None, result.describe()


def test_the_undamaged_material_passes() -> None:
    """The fuzzing starts from material that is valid: the checks above are not vacuous."""
    material = _material()
    good = json.dumps(
        {"certificate": "".join(material["chain"]), "privateKey": material["keys"]["pkcs8"]}
    )
    assert check_secret(CLIENT_CERTIFICATE_TLS_AUTH, good, now=pki.NOW).ok
    pbes1 = json.dumps(
        {
            "certificate": "".join(material["chain"]),
            "privateKey": material["keys"]["pbes1"],
            "privateKeyPassword": PASSWORD,
        }
    )
    assert check_secret(CLIENT_CERTIFICATE_TLS_AUTH, pbes1, now=pki.NOW).ok
    wrong = json.loads(pbes1) | {"privateKeyPassword": WRONG_PASSWORD}
    assert not check_secret(CLIENT_CERTIFICATE_TLS_AUTH, json.dumps(wrong), now=pki.NOW).ok


def _leaf_der() -> bytes:
    leaf = pki.make_pki().leaf.certificate
    return leaf.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    "damage",
    [
        # version v3 (2) becomes 63: cryptography raises InvalidVersion, not ValueError
        lambda der: der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x3f", 1),
        # the issuer's name string becomes an ASN.1 NULL: it fails only when read
        lambda der: der.replace(
            b"\x0c\x14Test Intermediate CA", b"\x05\x14Test Intermediate CA", 1
        ),
    ],
    ids=["invalid-version", "broken-issuer"],
)
def test_a_certificate_broken_inside_is_a_problem_not_an_exception(
    damage: Callable[[bytes], bytes],
) -> None:
    der = _leaf_der()
    broken = damage(der)
    assert broken != der
    material = _material()
    secret = json.dumps(
        {
            "certificate": pki.pem_block("CERTIFICATE", broken) + "".join(material["chain"][1:]),
            "privateKey": material["keys"]["pkcs8"],
        }
    )
    result = check_secret(CLIENT_CERTIFICATE_TLS_AUTH, secret, now=pki.NOW)
    assert [str(p) for p in result.errors] == ["certificate[0]: is not a valid X.509 certificate"]
    assert result.aws_message == sc.INVALID_CERTIFICATE_OR_KEY
