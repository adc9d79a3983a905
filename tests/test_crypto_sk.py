"""SK payload protection (ipseclab.crypto.sk_cipher): every ENCR/INTEG pair seals and
opens, a changed byte anywhere is an ICV failure, and no input makes ``open`` raise
anything but SkOpenError (Hypothesis)."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipseclab.crypto.registry_v2 import ikev2_cipher, ikev2_integrity
from ipseclab.crypto.sk_cipher import SkCipher, SkOpenError
from ipseclab.errors import CryptoError

SUITES = {
    "aes128-sha256": (12, 128, 12),
    "aes256-sha1": (12, 256, 2),
    "3des-sha512": (3, None, 14),
    "aes128gcm16": (20, 128, None),
    "aes256gcm12": (19, 256, None),
    "aes128gcm8": (18, 128, None),
    "chacha20poly1305": (28, None, None),
}


def make(name: str) -> SkCipher:
    encr, bits, integ = SUITES[name]
    return SkCipher(ikev2_cipher(encr, bits), ikev2_integrity(integ) if integ else None)


def keys(sk: SkCipher) -> tuple[bytes, bytes]:
    return bytes(range(1, sk.encr_key_bytes + 1)), bytes(range(100, 100 + sk.integ_key_bytes))


AAD = bytes(28) + b"\x21\x00\x00\x00"


@pytest.mark.parametrize("name", SUITES)
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100])
def test_seal_open_round_trip_and_length(name: str, size: int) -> None:
    sk = make(name)
    ek, ak = keys(sk)
    plain = bytes(range(size))
    body = sk.seal(ek, ak, bytes(range(sk.iv_size)), AAD, plain)
    assert len(body) == sk.sealed_length(size)
    assert body[: sk.iv_size] == bytes(range(sk.iv_size))
    assert sk.open(ek, ak, AAD, body) == plain
    if not sk.cipher.aead:
        assert (len(body) - sk.iv_size - sk.icv_size) % sk.block_size == 0


@pytest.mark.parametrize("name", SUITES)
def test_any_changed_byte_fails_the_icv(name: str) -> None:
    sk = make(name)
    ek, ak = keys(sk)
    body = sk.seal(ek, ak, bytes(sk.iv_size), AAD, b"inner payloads")
    for pos in range(len(body)):
        bad = bytearray(body)
        bad[pos] ^= 0x01
        with pytest.raises(SkOpenError) as err:
            sk.open(ek, ak, AAD, bytes(bad))
        assert err.value.reason == "icv failure"
    with pytest.raises(SkOpenError, match="does not verify"):
        sk.open(ek, ak, AAD[:-1] + b"\x01", body)  # the header is authenticated too


def test_gcm16_is_rfc5282_layout() -> None:
    """Nonce = salt (last 4 bytes of SK_e) | 8-byte IV; AAD = everything before the IV."""
    sk = make("aes128gcm16")
    ek, _ = keys(sk)
    iv = b"\x11" * 8
    body = sk.seal(ek, b"", iv, AAD, b"abc")
    assert body == iv + AESGCM(ek[:16]).encrypt(ek[16:] + iv, b"abc\x00", AAD)


def test_padding_and_short_bodies_are_explained() -> None:
    sk = make("aes128-sha256")
    ek, ak = keys(sk)
    with pytest.raises(SkOpenError, match="needs at least 48") as err:
        sk.open(ek, ak, AAD, bytes(40))
    assert err.value.reason == "too short"


def test_aead_with_integrity_is_refused() -> None:
    with pytest.raises(CryptoError, match="authenticates itself"):
        SkCipher(ikev2_cipher(20, 128), ikev2_integrity(12))
    with pytest.raises(CryptoError, match="needs an integrity"):
        SkCipher(ikev2_cipher(12, 128), None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(SUITES)), st.binary(max_size=120))
def test_open_of_any_bytes_is_skopenerror_or_plaintext(name: str, body: bytes) -> None:
    sk = make(name)
    ek, ak = keys(sk)
    with contextlib.suppress(SkOpenError):
        sk.open(ek, ak, AAD, body)
