"""Encrypt a PKCS#8 key with PBES1 (pbeWithSHAAnd3-KeyTripleDES-CBC).

AWS's Kafka poller accepts encrypted client keys only under a PBES1 scheme, and
``cryptography`` writes encrypted PKCS#8 only as PBES2. The local PKI needs such a
key for the tests that prove both sides of that rule, so this module builds one
from RFC 7292's key derivation (appendix B.2) and a minimal DER writer.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import textwrap

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes

PBE_SHA1_3DES_OID = "1.2.840.113549.1.12.1.3"
_SHA1_BLOCK = 64
_SHA1_DIGEST = 20


def pkcs12_kdf(password: str, salt: bytes, iterations: int, purpose: int, length: int) -> bytes:
    """RFC 7292 B.2 key derivation with SHA-1; ``purpose`` is 1 (key) or 2 (IV)."""
    v = _SHA1_BLOCK
    diversifier = bytes([purpose]) * v
    secret = password.encode("utf-16-be") + b"\x00\x00"
    stretched_salt = _fill(salt, v)
    stretched_secret = _fill(secret, v)
    block = bytearray(stretched_salt + stretched_secret)
    out = b""
    for _ in range(math.ceil(length / _SHA1_DIGEST)):
        digest = diversifier + bytes(block)
        for _ in range(iterations):
            digest = hashlib.sha1(digest).digest()  # noqa: S324 - the scheme mandates SHA-1
        out += digest
        addend = int.from_bytes(_fill(digest, v)[:v], "big") + 1
        for start in range(0, len(block), v):
            total = int.from_bytes(block[start : start + v], "big") + addend
            block[start : start + v] = (total % (1 << (8 * v))).to_bytes(v, "big")
    return out[:length]


def encrypt_pkcs8_pbes1(pkcs8_der: bytes, password: str, iterations: int = 2048) -> str:
    """Return ``BEGIN ENCRYPTED PRIVATE KEY`` PEM text for an unencrypted PKCS#8 DER key."""
    salt = os.urandom(8)
    key = pkcs12_kdf(password, salt, iterations, 1, 24)
    iv = pkcs12_kdf(password, salt, iterations, 2, 8)
    padder = padding.PKCS7(64).padder()
    plain = padder.update(pkcs8_der) + padder.finalize()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(plain) + encryptor.finalize()
    params = _sequence(_octet_string(salt) + _integer(iterations))
    algorithm = _sequence(_oid(PBE_SHA1_3DES_OID) + params)
    der = _sequence(algorithm + _octet_string(encrypted))
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"


def _fill(data: bytes, block: int) -> bytes:
    if not data:
        return b""
    size = block * math.ceil(len(data) / block)
    return (data * math.ceil(size / len(data)))[:size]


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _sequence(content: bytes) -> bytes:
    return _tlv(0x30, content)


def _octet_string(content: bytes) -> bytes:
    return _tlv(0x04, content)


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk, rest = [part & 0x7F], part >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, body)
