"""ipseclab.crypto.registry: IKEv1 ciphers/hashes and ESP transform descriptions."""

from __future__ import annotations

import pytest

from ipseclab.crypto.registry import esp_cipher, esp_integrity, ike_cipher, ike_hash
from ipseclab.errors import CryptoError

u = bytes.fromhex

# RFC 3602 §4, cases 1-4 (AES-128-CBC).
RFC3602_CASES = [
    (
        "06a9214036b8a15b512e03d534120006",
        "3dafba429d9eb430b422da802c9fac41",
        b"Single block msg".hex(),
        "e353779c1079aeb82708942dbe77181a",
    ),
    (
        "c286696d887c9aa0611bbb3e2025a45a",
        "562e17996d093d28ddb3ba695a2e6f58",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
    ),
    (
        "6c3ea0477630ce21a2ce334aa746c2cd",
        "c782dc4c098c66cbd9cd27d825682c81",
        b"This is a 48-byte message (exactly 3 AES blocks)".hex(),
        "d0a02b3836451753d493665d33f0e886"
        "2dea54cdb293abc7506939276772f8d5"
        "021c19216bad525c8579695d83ba2684",
    ),
    (
        "56e47a38c5598974bc46903dba290349",
        "8ce82eefbea0da3c44699ed7db51b7d9",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
        "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e"
        "35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55",
    ),
]


@pytest.mark.parametrize(("key", "iv", "plain", "cipher"), RFC3602_CASES)
def test_aes_cbc_rfc3602(key: str, iv: str, plain: str, cipher: str) -> None:
    spec = ike_cipher(7, 128)
    assert spec.encrypt(u(key), u(iv), u(plain)) == u(cipher)
    assert spec.decrypt(u(key), u(iv), u(cipher)) == u(plain)


def test_3des_cbc_known_answer() -> None:
    # NIST TDES MMT sample (the one strongSwan's test_vectors plugin uses as des3_cbc2).
    spec = ike_cipher(5)
    key = u("37ae5ebf46dff2dc0754b94f31cbb3855e7fd36dc870bfae")
    iv = u("3d1de3cc132e3b65")
    plain = u("84401f78fe6c10876d8ea23094ea5309")
    cipher = u("7b1f7c7e3b1c948ebd04a75ffba7d2f5")
    assert spec.encrypt(key, iv, plain) == cipher
    assert spec.decrypt(key, iv, cipher) == plain


def test_ike_cipher_lookup() -> None:
    for bits in (128, 192, 256):
        spec = ike_cipher(7, bits)
        assert (spec.key_bits, spec.key_bytes, spec.block_size) == (bits, bits // 8, 16)
    des3 = ike_cipher(5, 192)
    assert (des3.name, des3.key_bytes, des3.block_size) == ("3DES-CBC", 24, 8)
    with pytest.raises(CryptoError, match="AES-CBC needs a Key Length attribute"):
        ike_cipher(7)
    with pytest.raises(CryptoError, match="128, 192 or 256"):
        ike_cipher(7, 512)
    with pytest.raises(CryptoError, match="DES-CBC .* not supported"):
        ike_cipher(1)
    with pytest.raises(CryptoError, match="not supported"):
        ike_cipher(3)


def test_cipher_rejects_bad_sizes() -> None:
    spec = ike_cipher(7, 256)
    key, iv = bytes(32), bytes(16)
    with pytest.raises(CryptoError, match="multiple of 16"):
        spec.encrypt(key, iv, b"abc")
    with pytest.raises(CryptoError, match="multiple of 16"):
        spec.decrypt(key, iv, bytes(17))
    with pytest.raises(CryptoError, match="32-byte key"):
        spec.encrypt(bytes(16), iv, bytes(16))
    with pytest.raises(CryptoError, match="16-byte IV"):
        spec.encrypt(key, bytes(8), bytes(16))
    assert spec.encrypt(key, iv, b"") == b""


# RFC 2202 (MD5, SHA1) and RFC 4231 (SHA-2) test cases 1 and 2.
HMAC_CASES = [
    (1, "0b" * 16, b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
    (1, b"Jefe".hex(), b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"),
    (1, "aa" * 16, b"\xdd" * 50, "56be34521d144c88dbb8c733f0e8b3f6"),
    (2, "0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (2, b"Jefe".hex(), b"what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    (
        4,
        "0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        4,
        b"Jefe".hex(),
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        5,
        "0b" * 20,
        b"Hi There",
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6",
    ),
    (
        5,
        b"Jefe".hex(),
        b"what do ya want for nothing?",
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        "8e2240ca5e69e2c78b3239ecfab21649",
    ),
    (
        6,
        "0b" * 20,
        b"Hi There",
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ),
    (
        6,
        b"Jefe".hex(),
        b"what do ya want for nothing?",
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    ),
]


@pytest.mark.parametrize(("hash_id", "key", "data", "mac"), HMAC_CASES)
def test_prf_is_hmac(hash_id: int, key: str, data: bytes, mac: str) -> None:
    assert ike_hash(hash_id).prf(u(key), data) == u(mac)


def test_hash_specs() -> None:
    sizes = {
        1: ("MD5", 16),
        2: ("SHA1", 20),
        4: ("SHA2-256", 32),
        5: ("SHA2-384", 48),
        6: ("SHA2-512", 64),
    }
    for hid, (name, size) in sizes.items():
        spec = ike_hash(hid)
        assert (spec.name, spec.ike_id, spec.digest_size) == (name, hid, size)
        assert len(spec.hash(b"abc")) == size
    assert ike_hash(2).hash(b"abc") == u("a9993e364706816aba3e25717850c26c9cd0d89d")
    with pytest.raises(CryptoError, match="not supported"):
        ike_hash(3)


def test_esp_ciphers() -> None:
    null = esp_cipher(11)
    assert (null.key_bits, null.iv_size, null.padding_alignment, null.wireshark_name) == (
        0,
        0,
        4,
        "NULL",
    )
    cbc = esp_cipher(12, 256)
    assert (cbc.key_bytes, cbc.keymat_bytes, cbc.block_size, cbc.iv_size, cbc.aead) == (
        32,
        32,
        16,
        16,
        False,
    )
    assert cbc.wireshark_name == "AES-CBC [RFC3602]"
    des3 = esp_cipher(3)
    assert (des3.keymat_bytes, des3.block_size, des3.iv_size) == (24, 8, 8)
    assert des3.wireshark_name == "TripleDES-CBC [RFC2451]"
    for esp_id, icv in ((18, 8), (19, 12), (20, 16)):
        for bits in (128, 192, 256):
            gcm = esp_cipher(esp_id, bits)
            assert gcm.aead and gcm.icv_size == icv and gcm.salt_bytes == 4 and gcm.iv_size == 8
            assert gcm.keymat_bytes == bits // 8 + 4
            assert gcm.padding_alignment == 4
            assert gcm.wireshark_name == f"AES-GCM with {icv} octet ICV [RFC4106]"
    with pytest.raises(CryptoError, match="Key Length"):
        esp_cipher(12)
    with pytest.raises(CryptoError, match="Key Length"):
        esp_cipher(20)
    with pytest.raises(CryptoError):
        esp_cipher(12, 100)
    with pytest.raises(CryptoError, match="not supported"):
        esp_cipher(2)


def test_esp_integrity() -> None:
    expected = {
        1: (16, 12, "HMAC-MD5-96 [RFC2403]"),
        2: (20, 12, "HMAC-SHA-1-96 [RFC2404]"),
        5: (32, 16, "HMAC-SHA-256-128 [RFC4868]"),
        6: (48, 24, "HMAC-SHA-384-192 [RFC4868]"),
        7: (64, 32, "HMAC-SHA-512-256 [RFC4868]"),
    }
    for alg, (key_bytes, icv, ws) in expected.items():
        spec = esp_integrity(alg)
        assert (spec.key_bytes, spec.icv_size, spec.wireshark_name) == (key_bytes, icv, ws)
    with pytest.raises(CryptoError, match="not supported"):
        esp_integrity(3)


def test_esp_icv_is_truncated_hmac() -> None:
    # RFC 2404 §3 truncates RFC 2202 case 2-style HMACs to 96 bits; use a full-size key.
    spec = esp_integrity(2)
    full = ike_hash(2).prf(bytes(range(20)), b"payload")
    assert spec.compute_icv(bytes(range(20)), b"payload") == full[:12]
    # RFC 4868 §2.7.2.1 test case 1 (HMAC-SHA-256-128 with a 32-byte key of 0x0b).
    sha256 = esp_integrity(5)
    assert sha256.compute_icv(b"\x0b" * 32, b"Hi There") == u("198a607eb44bfbc69903a0f1cf2bbdc5")
    with pytest.raises(CryptoError, match="20-byte key"):
        spec.compute_icv(bytes(16), b"x")
