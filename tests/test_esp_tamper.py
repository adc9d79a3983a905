"""Tampered and malformed ESP packets are dropped, counted, and the SA keeps working."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from esp_support import TRANSFORMS, sa_pair

from ipseclab.esp import EspDrop, EspSa


def _flip(packet: bytes, index: int, bit: int = 0) -> bytes:
    b = bytearray(packet)
    b[index] ^= 1 << bit
    return bytes(b)


def _reason(sa: EspSa, packet: bytes) -> str:
    with pytest.raises(EspDrop) as exc:
        sa.unprotect(packet)
    return exc.value.reason


@pytest.mark.parametrize("name,esp_id,bits,auth,_s,_a", TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
def test_one_flipped_bit_in_iv_ciphertext_or_icv_fails_the_icv(name, esp_id, bits, auth, _s, _a) -> None:
    tx, rx = sa_pair(esp_id, bits, auth)
    payload = bytes(range(100))
    iv, icv = tx.iv_size, tx.icv_size
    failures = 0
    for n in range(12):
        packet = tx.protect(payload, 4)
        body_end = len(packet) - icv
        where = [
            8 + iv + n,  # ciphertext (or the clear payload with NULL encryption)
            body_end - 1,  # last ciphertext byte: the encrypted next header
            body_end + n % icv,  # the ICV itself
        ] + ([8 + n % iv] if iv else [])  # the IV
        tampered = _flip(packet, where[n % len(where)], n % 8)
        assert _reason(rx, tampered) == "icv failure"
        failures += 1
        assert rx.unprotect(packet) == (payload, 4)  # the genuine packet still passes
    assert rx.counters.icv_failures == failures
    assert rx.counters.packets == 12 and rx.replay.top == 12


def _gcm_packet(sa: EspSa, seq: int, plain: bytes) -> bytes:
    key, salt = sa.enc_key[:-4], sa.enc_key[-4:]
    header = sa.spi.to_bytes(4, "big") + seq.to_bytes(4, "big")
    iv = seq.to_bytes(8, "big")
    return header + iv + AESGCM(key).encrypt(salt + iv, plain, header)


def _cbc_packet(sa: EspSa, seq: int, plain: bytes) -> bytes:
    iv = bytes(16)
    enc = Cipher(algorithms.AES(sa.enc_key), modes.CBC(iv)).encryptor()
    msg = sa.spi.to_bytes(4, "big") + seq.to_bytes(4, "big") + iv + enc.update(plain) + enc.finalize()
    return msg + hmac.new(sa.integ_key, msg, hashlib.sha1).digest()[:12]


def _null_packet(sa: EspSa, seq: int, plain: bytes) -> bytes:
    msg = sa.spi.to_bytes(4, "big") + seq.to_bytes(4, "big") + plain
    return msg + hmac.new(sa.integ_key, msg, hashlib.sha1).digest()[:12]


BUILDERS = {"gcm": ((20, 128, None), _gcm_packet), "cbc": ((12, 128, 2), _cbc_packet), "null": ((11, None, 2), _null_packet)}


@pytest.mark.parametrize("kind", BUILDERS)
def test_bad_padding_with_a_valid_icv_is_counted(kind) -> None:
    (esp_id, bits, auth), build = BUILDERS[kind]
    _, rx = sa_pair(esp_id, bits, auth)
    pad = bytes(range(1, 15))  # 16 payload + 14 padding + 2 = 32 bytes, a whole number of blocks
    good = b"payload!" * 2 + pad + b"\x0e\x04"
    bad_bytes = b"payload!" * 2 + pad[:5] + b"\x00" + pad[6:] + b"\x0e\x04"  # padding not 1, 2, 3 ...
    too_long = b"payload!" * 2 + pad + b"\xf0\x04"  # pad length beyond the payload
    assert rx.unprotect(build(rx, 1, good)) == (b"payload!" * 2, 4)
    assert _reason(rx, build(rx, 2, bad_bytes)) == "bad padding"
    assert _reason(rx, build(rx, 3, too_long)) == "bad padding"
    assert rx.counters.padding_errors == 2
    assert rx.unprotect(build(rx, 4, good)) == (b"payload!" * 2, 4)
    # authentic but badly padded packets did use their sequence numbers (window updated after the ICV)
    assert _reason(rx, build(rx, 2, good)) == "replayed"


def test_truncated_wrong_spi_and_misaligned_ciphertext() -> None:
    tx, rx = sa_pair(12, 128, 2)
    packet = tx.protect(b"hello", 4)
    for cut in (0, 3, 8, 20, len(packet) - 25):
        assert _reason(rx, packet[:cut]) == "truncated"
    other = (0x9999).to_bytes(4, "big") + packet[4:]
    assert _reason(rx, other) == "wrong spi"
    # valid ICV over a ciphertext that is not a whole number of AES blocks
    body = packet[:-12] + b"\x00" * 5
    misaligned = body + hmac.new(rx.integ_key, body, hashlib.sha1).digest()[:12]
    assert _reason(rx, misaligned) == "bad length"
    assert rx.counters.malformed == 6 and rx.counters.wrong_spi == 1
    assert rx.unprotect(packet) == (b"hello", 4)
