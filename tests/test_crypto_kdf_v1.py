"""ipseclab.crypto.kdf_v1: IKEv1 key derivation (RFC 2409 §5, §5.5, Appendix B).

Published vectors: tests/data/ikev1_kdf_vectors.json holds the NIST CAVP
SP 800-135 IKEv1 KDF samples (SKEYID for signature and pre-shared-key
authentication, SKEYID_d/_a/_e) as carried in Mozilla NSS's gtests, and NSS's own
vectors for the Appendix B key expansion and the Quick Mode KEYMAT chaining.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from ipseclab.crypto.kdf_v1 import (
    derive_phase1_keys,
    encryption_key,
    phase1_iv,
    phase2_iv,
    quick_mode_keymat,
    skeyid_a,
    skeyid_d,
    skeyid_e,
    skeyid_psk,
    skeyid_sig,
)
from ipseclab.crypto.registry import HashSpec, ike_cipher, ike_hash
from ipseclab.errors import CryptoError

u = bytes.fromhex
VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "ikev1_kdf_vectors.json").read_text()
)
HASHES = {"SHA1": ike_hash(2), "SHA2-256": ike_hash(4), "SHA2-384": ike_hash(5)}
SHA1 = ike_hash(2)


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["nss_ids"] for r in records]


def test_vector_file_names_its_source() -> None:
    assert "NIST CAVP" in VECTORS["source"] and "NSS" in VECTORS["source"]


@pytest.mark.parametrize("vec", VECTORS["sig"], ids=_ids(VECTORS["sig"]))
def test_cavp_signature_auth(vec: dict[str, Any]) -> None:
    prf = HASHES[vec["hash"]]
    gxy = u(vec["gxy"])
    skeyid = skeyid_sig(prf, u(vec["ni"]), u(vec["nr"]), gxy)
    assert skeyid == u(vec["skeyid"])
    if "cky_i" not in vec:
        return
    cky_i, cky_r = u(vec["cky_i"]), u(vec["cky_r"])
    d = skeyid_d(prf, skeyid, gxy, cky_i, cky_r)
    a = skeyid_a(prf, skeyid, d, gxy, cky_i, cky_r)
    e = skeyid_e(prf, skeyid, a, gxy, cky_i, cky_r)
    assert (d, a, e) == (u(vec["skeyid_d"]), u(vec["skeyid_a"]), u(vec["skeyid_e"]))
    keys = derive_phase1_keys(prf, skeyid, gxy, cky_i, cky_r, 16)
    assert (keys.skeyid_d, keys.skeyid_a, keys.skeyid_e) == (d, a, e)
    assert keys.enc_key == e[:16]


@pytest.mark.parametrize("vec", VECTORS["psk"], ids=_ids(VECTORS["psk"]))
def test_cavp_psk_auth(vec: dict[str, Any]) -> None:
    prf = HASHES[vec["hash"]]
    assert skeyid_psk(prf, u(vec["psk"]), u(vec["ni"]), u(vec["nr"])) == u(vec["skeyid"])


@pytest.mark.parametrize("vec", VECTORS["app_b"], ids=_ids(VECTORS["app_b"]))
def test_appendix_b_key_expansion(vec: dict[str, Any]) -> None:
    prf = HASHES[vec["hash"]]
    assert encryption_key(prf, u(vec["skeyid_e"]), vec["length"]) == u(vec["key"])


@pytest.mark.parametrize("vec", VECTORS["quick"], ids=_ids(VECTORS["quick"]))
def test_keymat_chaining(vec: dict[str, Any]) -> None:
    # NSS feeds a one-byte seed 0x00: the same as protocol 0 with empty SPI and nonces.
    prf = HASHES[vec["hash"]]
    assert vec["seed"] == "00"
    got = quick_mode_keymat(prf, u(vec["skeyid_d"]), 0, b"", b"", b"", vec["length"])
    assert got == u(vec["keymat"])


# -- structural tests, recomputed with the standard library's hmac/hashlib ----


def _hmac(key: bytes, data: bytes, name: str = "sha1") -> bytes:
    return hmac.new(key, data, name).digest()


def test_formulas_against_stdlib_hmac() -> None:
    psk, ni, nr = b"s3cret", bytes(range(16)), bytes(range(16, 48))
    gxy, ci, cr = bytes(range(100, 228)), b"\x11" * 8, b"\x22" * 8
    skeyid = skeyid_psk(SHA1, psk, ni, nr)
    assert skeyid == _hmac(psk, ni + nr)
    assert skeyid_sig(SHA1, ni, nr, gxy) == _hmac(ni + nr, gxy)
    d = skeyid_d(SHA1, skeyid, gxy, ci, cr)
    assert d == _hmac(skeyid, gxy + ci + cr + b"\x00")
    a = skeyid_a(SHA1, skeyid, d, gxy, ci, cr)
    assert a == _hmac(skeyid, d + gxy + ci + cr + b"\x01")
    e = skeyid_e(SHA1, skeyid, a, gxy, ci, cr)
    assert e == _hmac(skeyid, a + gxy + ci + cr + b"\x02")


def test_aes256_with_sha1_expands_skeyid_e() -> None:
    skeyid_e_value = bytes(range(20))
    key = encryption_key(SHA1, skeyid_e_value, ike_cipher(7, 256).key_bytes)
    k1 = _hmac(skeyid_e_value, b"\x00")
    k2 = _hmac(skeyid_e_value, k1)
    assert key == (k1 + k2)[:32]
    assert len(key) == 32 and key[:20] != skeyid_e_value


def test_short_keys_truncate_skeyid_e() -> None:
    sha256 = ike_hash(4)
    skeyid_e_value = bytes(range(32))
    assert encryption_key(sha256, skeyid_e_value, 16) == skeyid_e_value[:16]
    assert encryption_key(sha256, skeyid_e_value, 32) == skeyid_e_value
    assert encryption_key(SHA1, bytes(20), 24) != bytes(24)  # 3DES with SHA1 expands
    with pytest.raises(CryptoError):
        encryption_key(SHA1, bytes(20), -1)


def test_phase1_iv_truncation() -> None:
    gxi, gxr = b"\x01" * 128, b"\x02" * 128
    assert phase1_iv(SHA1, gxi, gxr, 16) == hashlib.sha1(gxi + gxr).digest()[:16]
    assert phase1_iv(SHA1, gxi, gxr, 8) == hashlib.sha1(gxi + gxr).digest()[:8]
    assert phase1_iv(ike_hash(1), gxi, gxr, 16) == hashlib.md5(gxi + gxr).digest()
    with pytest.raises(CryptoError):
        phase1_iv(ike_hash(1), gxi, gxr, 32)


def test_phase2_iv_uses_big_endian_message_id() -> None:
    last = bytes(range(16))
    expected = hashlib.sha256(last + b"\xde\xad\xbe\xef").digest()[:16]
    assert phase2_iv(ike_hash(4), last, 0xDEADBEEF, 16) == expected
    assert phase2_iv(SHA1, last, 1, 8) == hashlib.sha1(last + b"\x00\x00\x00\x01").digest()[:8]
    with pytest.raises(CryptoError):
        phase2_iv(SHA1, last, 2**32, 16)


def test_quick_mode_keymat_layout() -> None:
    d, spi, ni, nr = b"\x5d" * 20, b"\xc0\x01\x02\x03", b"\xaa" * 16, b"\xbb" * 16
    seed = b"\x03" + spi + ni + nr
    k1 = _hmac(d, seed)
    k2 = _hmac(d, k1 + seed)
    k3 = _hmac(d, k2 + seed)
    # ESP AES-256 + HMAC-SHA2-256: 32 + 32 bytes of KEYMAT.
    assert (
        quick_mode_keymat(SHA1, d, 3, spi, ni, nr, 64) == (k1 + k2 + k3 + _hmac(d, k3 + seed))[:64]
    )
    assert quick_mode_keymat(SHA1, d, 3, spi, ni, nr, 20) == k1
    assert quick_mode_keymat(SHA1, d, 3, spi, ni, nr, 0) == b""


def test_quick_mode_keymat_with_pfs() -> None:
    d, spi, ni, nr, gqm = (
        b"\x5d" * 32,
        b"\x00\x00\x10\x01",
        b"\xaa" * 16,
        b"\xbb" * 16,
        b"\x77" * 256,
    )
    seed = gqm + b"\x03" + spi + ni + nr
    k1 = hmac.new(d, seed, "sha256").digest()
    k2 = hmac.new(d, k1 + seed, "sha256").digest()
    got = quick_mode_keymat(ike_hash(4), d, 3, spi, ni, nr, 36, gxy_qm=gqm)
    assert got == (k1 + k2)[:36]
    assert got != quick_mode_keymat(ike_hash(4), d, 3, spi, ni, nr, 36)


def test_bad_inputs() -> None:
    with pytest.raises(CryptoError, match="cookies"):
        skeyid_d(SHA1, b"k", b"g", b"short", bytes(8))
    with pytest.raises(CryptoError):
        quick_mode_keymat(SHA1, b"d", 256, b"", b"", b"", 4)
    with pytest.raises(CryptoError):
        quick_mode_keymat(SHA1, b"d", 3, b"", b"", b"", -1)


def test_phase1_keys_repr_hides_secrets() -> None:
    keys = derive_phase1_keys(SHA1, b"\xab" * 20, b"\xcd" * 32, bytes(8), bytes(8), 32)
    text = repr(keys)
    assert "abab" not in text and keys.skeyid_e.hex() not in text and keys.enc_key.hex() not in text
    assert isinstance(SHA1, HashSpec)
