"""ipseclab.crypto.rsa_sig: IKEv1 RSA signatures, PKCS#1 v1.5 with no DigestInfo."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from ipseclab.crypto.rsa_sig import emsa_pkcs1_v15_raw, sign_raw_pkcs1, verify_raw_pkcs1
from ipseclab.errors import CryptoError

# DER prefix of DigestInfo for SHA-256 (RFC 8017 §9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_sign_then_verify(key: rsa.RSAPrivateKey) -> None:
    hash_i = hashlib.sha1(b"HASH_I input").digest()  # a 20-byte prf output
    sig = sign_raw_pkcs1(key, hash_i)
    assert len(sig) == 256
    assert verify_raw_pkcs1(key.public_key(), sig, hash_i)


def test_tampering_is_detected(key: rsa.RSAPrivateKey) -> None:
    data = bytes(range(32))
    sig = sign_raw_pkcs1(key, data)
    pub = key.public_key()
    assert not verify_raw_pkcs1(pub, sig, data[:-1] + b"\x00")
    assert not verify_raw_pkcs1(pub, bytes([sig[0] ^ 1]) + sig[1:], data)
    assert not verify_raw_pkcs1(pub, sig[:-1], data)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert not verify_raw_pkcs1(other.public_key(), sig, data)


def test_matches_cryptography_when_data_is_a_digest_info(key: rsa.RSAPrivateKey) -> None:
    digest = hashlib.sha256(b"message").digest()
    ours = sign_raw_pkcs1(key, SHA256_DIGEST_INFO + digest)
    theirs = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    assert ours == theirs
    key.public_key().verify(ours, b"message", padding.PKCS1v15(), hashes.SHA256())


def test_encoding_and_length_limit(key: rsa.RSAPrivateKey) -> None:
    em = emsa_pkcs1_v15_raw(b"\xaa\xbb", 16)
    assert em == b"\x00\x01" + b"\xff" * 11 + b"\x00\xaa\xbb"
    assert len(sign_raw_pkcs1(key, bytes(256 - 11))) == 256
    with pytest.raises(CryptoError, match="too long"):
        sign_raw_pkcs1(key, bytes(256 - 10))
