"""EspSa: protect/unprotect per transform, packet layout, ESN, known vectors, limits."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from esp_support import LEFT, RIGHT, TRANSFORMS, icmp_packet, keys_for, sa_pair

from ipseclab.crypto.registry import esp_cipher, esp_integrity
from ipseclab.esp import (
    EspConfigError,
    EspDrop,
    EspLifetime,
    EspLifetimeExpired,
    EspSa,
    EspSeqOverflow,
)

SIZES = [0, 1, 2, 3, 13, 14, 15, 16, 17, 84, 1400]


@pytest.mark.parametrize("esn", [False, True], ids=["esn-off", "esn-on"])
@pytest.mark.parametrize("name,esp_id,bits,auth,_s,_a", TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
def test_round_trip_every_size_and_next_header(name, esp_id, bits, auth, _s, _a, esn) -> None:
    tx, rx = sa_pair(esp_id, bits, auth, esn=esn)
    data = os.urandom(1400)
    n = 0
    for nh in (4, 41, 6, 17):  # tunnel (IPv4, IPv6) and transport (TCP, UDP) next headers
        for size in SIZES:
            payload = data[:size]
            packet = tx.protect(payload, nh)
            n += 1
            assert packet[:4] == (0x1234).to_bytes(4, "big")
            assert int.from_bytes(packet[4:8], "big") == n  # sequence numbers count from 1
            body = len(packet) - 8 - tx.iv_size - tx.icv_size
            assert body >= size + 2
            assert body % tx.cipher.padding_alignment == 0  # RFC 4303 §2.4
            assert body - size - 2 < tx.cipher.padding_alignment  # minimal padding
            assert rx.unprotect(packet) == (payload, nh)
    assert tx.counters.packets == rx.counters.packets == n
    assert tx.counters.bytes == rx.counters.bytes == 4 * sum(SIZES)
    assert rx.counters.drops == 0


@pytest.mark.parametrize("esp_id,bits", [(18, 128), (19, 256), (3, None)], ids=["gcm8", "gcm12", "3des-sha1"])
def test_other_transforms_round_trip(esp_id, bits) -> None:
    auth = 2 if esp_id == 3 else None
    for esn in (False, True):
        tx, rx = sa_pair(esp_id, bits, auth, esn=esn)
        for size in (0, 7, 100):
            payload = os.urandom(size)
            assert rx.unprotect(tx.protect(payload, 4)) == (payload, 4)


def test_null_encryption_shows_the_trailer_in_clear() -> None:
    tx, rx = sa_pair(11, None, 2)
    packet = tx.protect(b"abcde", 17)
    # header | payload | padding 1,2,3 ... | pad length | next header | 12-byte ICV (RFC 2410)
    assert packet[8:-12] == b"abcde" + b"\x01" + b"\x01\x11"
    assert packet[-12:] == hmac.new(tx.integ_key, packet[:-12], hashlib.sha1).digest()[:12]


def test_cbc_hmac_layout_is_encrypt_then_mac_with_random_ivs() -> None:
    tx, rx = sa_pair(12, 128, 2)
    a, b = tx.protect(b"same payload", 4), tx.protect(b"same payload", 4)
    assert a[8:24] != b[8:24]  # a fresh IV per packet
    assert a[24:-12] != b[24:-12]
    for packet in (a, b):
        # ICV = HMAC-SHA1-96 over SPI .. ciphertext (RFC 4303 §2.8, RFC 2404)
        assert packet[-12:] == hmac.new(tx.integ_key, packet[:-12], hashlib.sha1).digest()[:12]
        # plain RFC 3602 CBC with the IV from the packet: a fresh decryptor gets the trailer
        dec = Cipher(algorithms.AES(tx.enc_key), modes.CBC(packet[8:24])).decryptor()
        plain = dec.update(packet[24:-12]) + dec.finalize()
        assert plain[:12] == b"same payload" and plain[-1] == 4


def test_cbc_hmac_esn_high_bits_are_in_the_icv_only() -> None:
    seq = (7 << 32) | 0xFFFFFFF0
    tx, rx = sa_pair(12, 128, 5, esn=True, seq=seq - 1)
    packet = tx.protect(b"x" * 40, 4)
    assert packet[4:8] == (0xFFFFFFF0).to_bytes(4, "big")  # low 32 bits on the wire
    expected = hmac.new(tx.integ_key, packet[:-16] + (7).to_bytes(4, "big"), hashlib.sha256).digest()[:16]
    assert packet[-16:] == expected  # high 32 bits appended for the ICV (RFC 4303 §2.2.1)


def test_gcm_packet_matches_an_independent_rfc4106_construction() -> None:
    """Nonce = salt || 8-byte IV, AAD = SPI || seq (RFC 4106 §4, §5), built with the GCM mode API."""
    key, salt = bytes(range(16)), b"\xca\xfe\xba\xbe"
    cases = [(False, 5, b"inner packet bytes"), (True, (3 << 32) | 9, b"17 bytes payload!"), (False, 6, b"")]
    for esn, seq, payload in cases:
        tx, _ = sa_pair(20, 128, None, keys=(key + salt, b""), esn=esn, seq=seq - 1)
        packet = tx.protect(payload, 4)
        iv = seq.to_bytes(8, "big")  # our explicit IV is the 64-bit sequence number
        aad = (0x1234).to_bytes(4, "big") + (iv if esn else iv[4:])
        enc = Cipher(algorithms.AES(key), modes.GCM(salt + iv)).encryptor()
        enc.authenticate_additional_data(aad)
        pad = -(len(payload) + 2) % 4  # RFC 4303 §2.4: 1, 2, 3 ... up to a 4-byte boundary
        trailer = bytes(range(1, pad + 1)) + bytes((pad, 4))
        body = enc.update(payload + trailer) + enc.finalize()
        assert packet == aad[:4] + iv[4:] + iv + body + enc.tag


def test_gcm_nonces_never_repeat() -> None:
    tx, _ = sa_pair(20, 256, None)
    ivs = {tx.protect(b"", 59)[8:16] for _ in range(2000)}
    assert len(ivs) == 2000


# draft-mcgrew-gcm-test-01 ("Test Cases for the use of GCM in IPsec ESP") vectors with a
# 64-bit (ESN-style, 12-byte AAD) sequence number: key, salt, SPI, seq, IV, ciphertext||tag,
# plaintext (the ESP payload with padding, pad length and next header).
GCM_VECTORS = [
    (
        "4c80cdefbb5d10da906ac73c3613a634", "2e443b68", 0x4321, 0x8765432100000000, "4956ed7e3b244cfe",
        "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d"
        "15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732459018148f6cbe722fd04796562dfdb4",
        "45000048699a000080114db7c0a80102c0a801010a9bf15638d301000001000000000000045f736970045f7564700373"
        "69700963796265726369747902646b000021000101020201",
    ),
    (
        "3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42F67E3F, 0x1010101010101010, "4e280000a2fca1a3",
        "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c35791765acbd8701ad79845bf9fe3fba487bc9"
        "1755e6662b4c8d0d1f5e22739530320ae0d731cc978ecafaeae88f00e80d6e48",
        "4500003c99c300008001cb7c40679318010101010800085c020043006162636465666768696a6b6c6d6e6f7071727374"
        "75767761626364656667686901020201",
    ),
    (
        "abbccddef00112233445566778899aab", "decaf888", 0x100, 1, "cafedebaceface74",
        "18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f9190feebaf2cb01984e65863965d7472"
        "b79da345e0e780191f0d2f0e0f496c226f2127b27db35724e7845d68651f57e65f354f75ff17015769623436",
        "4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d500004e20001e8c18d75b81dc91baa047"
        "6b91b924b280389d92c963bac046ec959b6266c04722b14923010101",
    ),
    (
        "abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74", 0x17405E67,
        0x156F3126DD0DB99B, "616e640169766563",
        "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57ff4d3a31ce673119e451626c2415771e3"
        "b7eebca614c89b35",
        "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb71260250101f646d540001",
    ),
    (
        "6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961", "7475726e", 0x796B6963,
        0xFFFFFFFFFFFFFFFF, "333021696765746d",
        "f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a864cd3d78ca4ae68a32b42458fb57dbe82"
        "1dcc63b9d0937ba2945f669368661a329fb4c053",
        "45000030da3a00008001df3bc0a80005c0a800010800c6cd020007006162636465666768696a6b6c6d6e6f7071727374"
        "01020201",
    ),
]


@pytest.mark.parametrize("key,salt,spi,seq,iv,ctag,plain", GCM_VECTORS, ids=[f"{v[2]:08x}" for v in GCM_VECTORS])
def test_gcm_known_answer_vectors(key, salt, spi, seq, iv, ctag, plain) -> None:
    k = bytes.fromhex(key)
    sa = EspSa(spi, LEFT, RIGHT, esp_cipher(20, len(k) * 8), None, k + bytes.fromhex(salt), b"", esn=True)
    sa.replay.update(seq - 1)  # the receiver has seen the packet before: ESN inference finds the high bits
    packet = spi.to_bytes(4, "big") + (seq & 0xFFFFFFFF).to_bytes(4, "big") + bytes.fromhex(iv) + bytes.fromhex(ctag)
    p = bytes.fromhex(plain)
    pad = p[-2]
    assert sa.unprotect(packet) == (p[: -2 - pad], p[-1])
    assert sa.replay.top == seq


def test_esn_wraps_the_low_32_bits() -> None:
    tx, rx = sa_pair(20, 128, None, esn=True, seq=(1 << 32) - 3)
    rx.replay.update((1 << 32) - 3)
    wire = []
    for i in range(6):
        packet = tx.protect(bytes([i]), 4)
        wire.append(int.from_bytes(packet[4:8], "big"))
        assert rx.unprotect(packet) == (bytes([i]), 4)
    assert wire == [0xFFFFFFFE, 0xFFFFFFFF, 0, 1, 2, 3]
    assert rx.replay.top == (1 << 32) + 3 and tx.seq == (1 << 32) + 3


def test_without_esn_the_sender_stops_before_the_counter_cycles() -> None:
    tx, rx = sa_pair(12, 128, 2, seq=(1 << 32) - 2)
    rx.replay.update((1 << 32) - 2)
    assert rx.unprotect(tx.protect(b"last", 4)) == (b"last", 4)  # 2^32 - 1 is the last number
    with pytest.raises(EspSeqOverflow) as exc:
        tx.protect(b"one too many", 4)
    assert exc.value.reason == "sequence overflow"
    assert tx.counters.seq_overflows == 1 and tx.seq == (1 << 32) - 1
    with pytest.raises(EspSeqOverflow):
        tx.protect(b"still refused", 4)


def test_with_esn_the_sender_stops_at_2_64() -> None:
    tx, _ = sa_pair(20, 128, None, esn=True, seq=(1 << 64) - 2)
    tx.protect(b"", 4)
    with pytest.raises(EspSeqOverflow):
        tx.protect(b"", 4)


def test_hard_packet_lifetime_refuses_and_expiry_reports_soft_then_hard() -> None:
    life = EspLifetime(soft_packets=2, hard_packets=3, soft_bytes=None, hard_seconds=100.0, soft_seconds=50.0)
    tx, _ = sa_pair(20, 128, None, lifetime=life, created=10.0)
    assert tx.expiry(10.0) is None
    tx.protect(b"a", 4)
    tx.protect(b"b", 4)
    assert tx.expiry(10.0) == "soft"
    tx.protect(b"c", 4)
    assert tx.expiry(10.0) == "hard"
    with pytest.raises(EspLifetimeExpired) as exc:
        tx.protect(b"d", 4)
    assert exc.value.reason == "hard lifetime" and tx.counters.expired == 1
    fresh, _ = sa_pair(20, 128, None, lifetime=life, created=10.0)
    assert fresh.expiry(59.9) is None and fresh.expiry(60.0) == "soft" and fresh.expiry(110.0) == "hard"
    by_bytes, _ = sa_pair(20, 128, None, lifetime=EspLifetime(soft_bytes=100, hard_bytes=200))
    by_bytes.protect(b"x" * 150, 4)
    assert by_bytes.expiry(0.0) == "soft"
    by_bytes.protect(b"x" * 50, 4)
    assert by_bytes.expiry(0.0) == "hard"


def test_keys_never_appear_in_repr_or_summary() -> None:
    import json

    for _, esp_id, bits, auth, _s, _a in TRANSFORMS:
        tx, _ = sa_pair(esp_id, bits, auth)
        text = repr(tx) + json.dumps(tx.summary())
        if tx.enc_key:
            assert tx.enc_key.hex() not in text and repr(tx.enc_key) not in text
        if tx.integ_key:
            assert tx.integ_key.hex() not in text and repr(tx.integ_key) not in text


@pytest.mark.parametrize(
    "change,match",
    [
        ({"integ": esp_integrity(2)}, "combined-mode"),
        ({"cipher": esp_cipher(11), "integ": None, "enc_key": b""}, "NULL encryption without integrity"),
        ({"enc_key": b"short"}, "KEYMAT"),
        ({"replay_window": 48}, "multiple of 32"),
        ({"replay_window": 8192}, "multiple of 32"),
        ({"spi": 255}, "SPI"),
        ({"mode": "beet"}, "mode"),
    ],
)
def test_bad_configurations_are_refused(change, match) -> None:
    enc, _ = keys_for(20, 128, None)
    kw = {"spi": 0x1234, "src": LEFT, "dst": RIGHT, "cipher": esp_cipher(20, 128), "integ": None,
          "enc_key": enc, "integ_key": b""}
    kw.update(change)
    with pytest.raises(EspConfigError, match=match):
        EspSa(**kw)


def test_from_ipsec_uses_the_quick_mode_records() -> None:
    from ipseclab.demo import DemoOptions, run_demo

    run = run_demo(DemoOptions(seed=3))
    (left,), (right,) = run.left.child_sas, run.right.child_sas
    out = EspSa.from_ipsec(left.outbound, left, "outbound")
    inn = EspSa.from_ipsec(right.inbound, right)  # direction taken from the pair
    assert inn.direction == "inbound" and out.spi == inn.spi == left.outbound.spi
    assert (out.src, out.dst, out.mode, out.udp_encap) == (left.outbound.src, left.outbound.dst, "tunnel", None)
    assert out.lifetime.hard_seconds == left.lifetime and out.name == left.child
    inner = icmp_packet()
    assert inn.unprotect(out.protect(inner, 4)) == (inner, 4)
    # a UDP-encapsulated pair: ports in wire order per direction (RFC 3948)
    left.mode, left.udp_encapsulated = "UDP tunnel", True
    o = EspSa.from_ipsec(left.outbound, left, "outbound", udp_ports=(4500, 31000))
    i = EspSa.from_ipsec(left.inbound, left, "inbound", udp_ports=(4500, 31000))
    assert o.udp_encap == (4500, 31000) and i.udp_encap == (31000, 4500) and o.mode == "tunnel"


def test_drop_is_typed_and_carries_reason_spi_and_seq() -> None:
    tx, rx = sa_pair(20, 128, None)
    packet = tx.protect(b"x", 4)
    rx.unprotect(packet)
    with pytest.raises(EspDrop) as exc:
        rx.unprotect(packet)
    assert (exc.value.reason, exc.value.spi, exc.value.seq) == ("replayed", 0x1234, 1)
    assert "replayed" in str(exc.value)
