"""IKEv2 key derivation (ipseclab.crypto.kdf_v2) against NIST CAVP's IKEv2 KDF vectors
(tests/data/ikev2_kdf_vectors.json: SKEYSEED, the DKM of prf+, the child SA's KEYMAT
with and without PFS, the rekeyed SKEYSEED)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipseclab.crypto import kdf_v2
from ipseclab.crypto.registry_v2 import ikev2_prf
from ipseclab.errors import CryptoError

VECTORS = json.loads((Path(__file__).parent / "data" / "ikev2_kdf_vectors.json").read_text())["vectors"]
SHA1 = ikev2_prf(2)
b = bytes.fromhex


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["description"][:40])
def test_skeyseed_and_dkm(v: dict) -> None:
    seed = kdf_v2.skeyseed(SHA1, b(v["ni"]), b(v["nr"]), b(v["gir"]))
    assert seed.hex() == v["skeyseed"]
    dkm = kdf_v2.prf_plus(SHA1, seed, b(v["ni"]) + b(v["nr"]) + b(v["spi_i"]) + b(v["spi_r"]), len(b(v["dkm"])))
    assert dkm.hex() == v["dkm"]
    # SK_d is the DKM's first prf-size bytes; the rekeyed SKEYSEED folds the new g^ir into it
    sk_d = dkm[: SHA1.size]
    assert kdf_v2.skeyseed_rekey(SHA1, sk_d, b(v["gir_new"]), b(v["ni"]), b(v["nr"])).hex() == v["skeyseed_rekey"]


def test_ike_keys_cut_the_dkm_in_rfc_order() -> None:
    v = VECTORS[0]
    seed = b(v["skeyseed"])
    keys = kdf_v2.ike_keys(SHA1, seed, b(v["ni"]), b(v["nr"]), b(v["spi_i"]), b(v["spi_r"]), integ_bytes=20, encr_bytes=16)
    dkm = b(v["dkm"])
    sizes = [20, 20, 20, 16, 16, 20, 20]  # SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr = 132 bytes
    assert sum(sizes) == len(dkm)
    pos = 0
    for (name, key), size in zip(keys.items(), sizes, strict=True):
        assert key == dkm[pos : pos + size], name
        pos += size
    assert dkm[:20].hex() not in repr(keys)  # secrets never in a repr


@pytest.mark.parametrize("v", [x for x in VECTORS if "dkm_child" in x], ids=lambda v: v["description"][:40])
def test_child_keymat_with_and_without_pfs(v: dict) -> None:
    sk_d = b(v["dkm"])[: SHA1.size]
    n = len(b(v["dkm_child"]))
    assert kdf_v2.child_keymat(SHA1, sk_d, b(v["ni"]), b(v["nr"]), n).hex() == v["dkm_child"]
    assert kdf_v2.child_keymat(SHA1, sk_d, b(v["ni"]), b(v["nr"]), n, gir_new=b(v["gir_new"])).hex() == v["dkm_child_dh"]


def test_prf_plus_is_a_prefix_stream_and_bounded() -> None:
    long = kdf_v2.prf_plus(SHA1, b"k", b"seed", 255 * 20)
    assert kdf_v2.prf_plus(SHA1, b"k", b"seed", 33) == long[:33]
    with pytest.raises(CryptoError, match="at most 5100 bytes"):
        kdf_v2.prf_plus(SHA1, b"k", b"seed", 255 * 20 + 1)


def test_psk_auth_is_the_rfc_formula() -> None:
    prf = ikev2_prf(5)
    inner = prf(b"secret", b"Key Pad for IKEv2")
    assert kdf_v2.psk_auth(prf, b"secret", b"octets") == prf(inner, b"octets")
    assert kdf_v2.signed_octets(b"M", b"N", b"I") == b"MNI"


def test_spis_must_be_eight_bytes() -> None:
    with pytest.raises(CryptoError, match="8 bytes"):
        kdf_v2.ike_keys(SHA1, b"s", b"n", b"n", b"1234", bytes(8), integ_bytes=20, encr_bytes=16)
