"""The post-quantum hybrid (RFC 9242 IKE_INTERMEDIATE + RFC 9370 ML-KEM) between two ipseclab
peers — recomputed here from the wire bytes with the RFC formulas, not with the engine's code
path: the keys after the ML-KEM round, IntAuth over both IKE_INTERMEDIATE messages, and the
initiator's AUTH that covers it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, hmac

from ipseclab.demo import DEMO_PSK, DemoOptions
from ipseclab.export import write_keys, write_pcap
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import ErrorEvent, KeyDerived, MessageEvent, PublicValue
from ipseclab.wire.v2.message import (
    AuthPayload,
    IDiPayload,
    Message,
    decode_payloads,
)


def prf(key: bytes, data: bytes) -> bytes:  # HMAC-SHA1, the demo's PRF (an independent HMAC)
    h = hmac.HMAC(key, hashes.SHA1())
    h.update(data)
    return h.finalize()


def prf_plus(key: bytes, seed: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = prf(key, t + seed + bytes([i]))
        out, i = out + t, i + 1
    return out[:n]


def session(**kw: object) -> LabSession:
    s = LabSession(DemoOptions(version=2, pq=36, seed=7, **kw))
    s.run_to_end()
    return s


def keys_of(s: LabSession, peer: str, name: str) -> list[bytes]:
    return [e.value for e in s.events if isinstance(e, KeyDerived) and e.peer == peer and e.name == name]


def test_six_messages_and_ml_kem_sizes() -> None:
    s = session()
    assert s.established()
    # the ML-KEM-768 encapsulation key makes IKE_INTERMEDIATE's request larger than 1280 bytes: two fragments
    assert [(m.exchange, m.index) for m in s.messages()] == [
        ("IKE_SA_INIT", 1), ("IKE_SA_INIT", 2), ("IKE_INTERMEDIATE", 1), ("IKE_INTERMEDIATE", 1), ("IKE_INTERMEDIATE", 2),
        ("IKE_AUTH", 1), ("IKE_AUTH", 2)]
    assert s.messages()[2].summary == "HDR, SKF {fragment 1/2} of SK {KEi}"
    public = {e.name: len(e.value) for e in s.events if isinstance(e, PublicValue) and e.peer == "left"}
    assert (public["KEi(1)"], public["KEr(1)"]) == (1184, 1088)  # FIPS 203 ML-KEM-768
    assert "ML-KEM-768" in next(i for i in s.sa_tables()["left"]["isakmp"])["suite"]


def test_keys_and_auth_recomputed_from_the_wire() -> None:
    s = session()
    msgs = s.messages()
    init_req, init_resp, auth_req = msgs[0], msgs[1], msgs[5]
    # the IKE_INTERMEDIATE messages as their receivers put them together (the request came in two fragments)
    received = [e for e in s.events if isinstance(e, MessageEvent) and e.direction == "received"
                and e.exchange == "IKE_INTERMEDIATE" and e.plaintext is not None]
    int_req = next(e for e in received if e.peer == "right")
    int_resp = next(e for e in received if e.peer == "left")
    # round 0 keys (as logged) and the ML-KEM secret; SKEYSEED(1) and the new keys by RFC 9370 §2.2.2
    sk_d0, sk_pi0, sk_pr0 = (keys_of(s, "left", n)[0] for n in ("SK_d", "SK_pi", "SK_pr"))
    (shared,) = keys_of(s, "left", "SK(1)")
    assert shared == keys_of(s, "right", "SK(1)")[0] and len(shared) == 32
    ni = Message.decode(init_req.raw).payloads[2].data
    nr = Message.decode(init_resp.raw).payloads[2].data
    spis = bytes.fromhex(init_resp.icookie) + bytes.fromhex(init_resp.rcookie)
    seed1 = prf(sk_d0, shared + ni + nr)
    assert keys_of(s, "left", "SKEYSEED(1)") == [seed1]
    stream = prf_plus(seed1, ni + nr + spis, 20 * 3 + 20 * 2 + 16 * 2)
    sk_pi1 = stream[20 + 40 + 32 : 20 + 40 + 32 + 20]
    assert keys_of(s, "left", "SK_pi")[-1] == sk_pi1

    def a_and_p(m: MessageEvent) -> bytes:
        """IntAuth's A | P: the header and an SK header with lengths as if one SK payload held the
        plaintext only — also for a message that came as SKF fragments (RFC 9242 §3.3.2)."""
        p = m.plaintext
        head = bytearray(m.raw[:28])
        head[16] = 46  # SK
        head[24:28] = (28 + 4 + len(p)).to_bytes(4, "big")
        return bytes(head) + bytes([34, 0]) + (4 + len(p)).to_bytes(2, "big") + p  # the inner chain starts with KE (34)

    int_auth = prf(sk_pi0, a_and_p(int_req)) + prf(sk_pr0, a_and_p(int_resp)) + auth_req.message_id.to_bytes(4, "big")
    inner = decode_payloads(Message.decode(auth_req.raw).payloads[-1].first_payload, auth_req.plaintext)
    idi = next(p for p in inner if isinstance(p, IDiPayload))
    auth = next(p for p in inner if isinstance(p, AuthPayload))
    octets = init_req.raw + nr + prf(sk_pi1, idi.encode_body()) + int_auth
    assert auth.data == prf(prf(DEMO_PSK, b"Key Pad for IKEv2"), octets)
    # without IntAuth the AUTH would be different: the IKE_INTERMEDIATE messages are bound in
    assert auth.data != prf(prf(DEMO_PSK, b"Key Pad for IKEv2"), init_req.raw + nr + prf(sk_pi1, idi.encode_body()))


def test_a_peer_without_ml_kem_refuses_in_words() -> None:
    s = LabSession(DemoOptions(version=2, pq=36, seed=7), start=False)
    policy = s.network.peer("right").config.isakmp_policies[0]
    import dataclasses

    s.network.peer("right").config.isakmp_policies[0] = dataclasses.replace(policy, addke=None)
    s.network.initiate("left", "site")
    s.run_to_end()
    assert not s.established()
    words = " ".join(e.message for e in s.events if isinstance(e, ErrorEvent) and e.peer == "right")
    assert "additional key exchange 1 offered (ML-KEM-768) does not include none" in words, words


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_and_decode_open_every_message(tmp_path: Path) -> None:
    from ipseclab.runtime.netlab.tshark import dissect
    from ipseclab.teaching.decode import decode_pcap, read_ikev2_table

    s = session()
    write_pcap(s.events, tmp_path / "pq.pcap")
    write_keys(s.events, tmp_path / "keys")
    assert len((tmp_path / "keys" / "ikev2_decryption_table").read_text().splitlines()) == 2  # a row per key set
    frames = dissect(tmp_path / "pq.pcap", tmp_path / "keys")
    # tshark 4.0 shows the SKF fragments as such (the last one, with the ML-KEM key OpenSSL drew,
    # sometimes with the KE it completes); the whole response and IKE_AUTH it opens
    first, last, response = [f.payloads for f in frames if f.exchange_type == 43]
    assert first == [53] and last in ([53], [53, 34]) and response == [46, 34]
    assert all(39 in f.payloads for f in frames if f.exchange_type == 35)
    ours = decode_pcap(tmp_path / "pq.pcap", ikev2_keys=read_ikev2_table(tmp_path / "keys"))
    assert [p.summary for p in ours][2:5] == [
        "HDR, SKF {fragment 1/2}", "HDR, SKF {fragment 2/2}, reassembled: SK {KEi}", "HDR, SK {KEr}"]
    assert all(p.decrypted for p in ours if p.encrypted)
