"""What the engine puts on the wire, checked against scapy and against the KDF functions.

For several demos every message our engine *sent* must re-encode byte for byte,
agree with scapy's independent ISAKMP dissector (header, payload chain, transform
attributes), and for encrypted messages the decrypted payload chain must re-encode
to the plaintext the trace shows (and be dissected the same by scapy once put in a
clear message).  Then the engine's stored keys are recomputed from the SA's public
values with :mod:`ipseclab.crypto.kdf_v1` and the ciphertext of every message is
decrypted independently with the recomputed key and IV chain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pytest
from engine_support import terminate
from scapy_check import assert_scapy_agrees

from ipseclab.crypto import kdf_v1
from ipseclab.crypto.registry import esp_cipher, esp_integrity
from ipseclab.demo import DEMO_PSK, DemoOptions, run_demo
from ipseclab.ikev1.isakmp_sa import IsakmpSa
from ipseclab.peer import Peer
from ipseclab.sa import IpsecSaPair
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import KeyDerived, MessageEvent
from ipseclab.wire.v1.constants import ExchangeType, HeaderFlag, ProtocolId
from ipseclab.wire.v1.isakmp import (
    HashPayload,
    IDPayload,
    KEPayload,
    Message,
    NoncePayload,
    Payload,
    SAPayload,
    decode_payloads,
    encode_payloads,
)

DEMOS = {
    "main-psk": DemoOptions(seed=101),
    "aggressive-psk": DemoOptions(seed=102, mode="aggressive"),
    "main-rsa": DemoOptions(seed=103, auth="rsa"),
    "main-pfs14-2policies": DemoOptions(seed=104, pfs=14, policies=2),
    "mismatch": DemoOptions(seed=105, mismatch=True),
}
ESTABLISHED = ["main-psk", "aggressive-psk", "main-rsa", "main-pfs14-2policies"]


@functools.cache
def demo(key: str) -> LabSession:
    """The demo as it ended (keys and exchanges still in the peers)."""
    return run_demo(DEMOS[key])


@dataclass
class Terminated:
    run: LabSession
    sas: dict[str, IsakmpSa]  # each peer's ISAKMP SA as it was before the Deletes
    quick_mode_ids: set[int]


@functools.cache
def demo_terminated(key: str) -> Terminated:
    """The demo plus the initiator's Informational Deletes (a separate run)."""
    run = run_demo(DEMOS[key])
    sas: dict[str, IsakmpSa] = {}
    mids: set[int] = set()
    if run.established():
        sas = {p.name: _isakmp_sa(p) for p in (run.left, run.right)}
        mids = {pair.message_id for pair in run.left.child_sas}
        terminate(run.network, "left")
        assert not run.left.ike_sas and not run.right.ike_sas
        assert not run.left.child_sas and not run.right.child_sas
    return Terminated(run, sas, mids)


def messages(
    run: LabSession, peer: str | None = None, direction: str | None = None
) -> list[MessageEvent]:
    return [
        e
        for e in run.network.events
        if isinstance(e, MessageEvent)
        and (peer is None or e.peer == peer)
        and (direction is None or e.direction == direction)
    ]


def first(payloads: list[Payload], cls: type) -> Any:
    found = [p for p in payloads if isinstance(p, cls)]
    assert found, f"no {cls.__name__} in {[type(p).__name__ for p in payloads]}"
    return found[0]


def decoded_payloads(e: MessageEvent) -> list[Payload]:
    msg = Message.decode(e.raw)
    if msg.is_encrypted:
        assert e.plaintext is not None
        return decode_payloads(msg.first_payload, e.plaintext, allow_trailing=True)
    return msg.payloads


# -- the wire -------------------------------------------------------------------


@pytest.mark.parametrize("key", list(DEMOS))
def test_sent_messages_round_trip_and_agree_with_scapy(key: str) -> None:
    run = demo_terminated(key).run
    sent = messages(run, direction="sent")
    assert len(sent) >= 2
    encrypted = 0
    for e in sent:
        msg = Message.decode(e.raw)
        assert msg.encode() == e.raw
        assert (msg.icookie.hex(), msg.rcookie.hex()) == (e.icookie, e.rcookie)
        assert (msg.exchange_type, msg.message_id) == (e.exchange_type, e.message_id)
        assert msg.is_encrypted == e.encrypted
        assert msg.version == 0x10
        assert_scapy_agrees(e.raw)
        if not e.encrypted:
            assert e.plaintext is None
            continue
        encrypted += 1
        assert e.plaintext is not None
        payloads = decode_payloads(msg.first_payload, e.plaintext, allow_trailing=True)
        first_type, chain = encode_payloads(payloads)
        assert first_type == msg.first_payload
        assert chain == e.plaintext[: len(chain)]
        padding = e.plaintext[len(chain) :]
        # our engine pads with zeros to the AES block size (RFC 2409 App. B)
        assert len(e.plaintext) % 16 == 0 and len(padding) < 16
        assert padding == bytes(len(padding))
        assert len(msg.encrypted_body or b"") == len(e.plaintext)
        # scapy on the decrypted chain, in a clear message with the same header
        clear = Message(
            msg.icookie,
            msg.rcookie,
            msg.exchange_type,
            msg.flags & ~HeaderFlag.ENCRYPTION,
            msg.message_id,
            payloads=payloads,
        ).encode()
        assert clear[28:] == chain
        assert_scapy_agrees(clear)
    if key in ESTABLISHED:
        # MM5/MM6 or none in Aggressive Mode, 3 per Quick Mode, the Deletes
        assert encrypted >= 3 * DEMOS[key].policies + 2


@pytest.mark.parametrize("key", list(DEMOS))
def test_every_received_message_is_a_sent_one(key: str) -> None:
    run = demo_terminated(key).run
    sent = {(e.peer, e.raw) for e in messages(run, direction="sent")}
    received = messages(run, direction="received")
    assert received
    for e in received:
        other = "right" if e.peer == "left" else "left"
        assert (other, e.raw) in sent


# -- the engine's internals against the KDF ------------------------------------------


def _isakmp_sa(peer: Peer) -> IsakmpSa:
    (sa,) = peer.ike_sas.values()
    assert sa.established
    return sa


def _key_events(run: LabSession, peer: str, sa: IsakmpSa) -> dict[str, bytes]:
    return {
        e.name: e.value
        for e in run.network.events
        if isinstance(e, KeyDerived) and e.peer == peer and e.sa == sa.ref
    }


@pytest.mark.parametrize("key", ESTABLISHED)
def test_phase1_keys_recomputed_from_public_values(key: str) -> None:
    run = demo(key)
    left, right = _isakmp_sa(run.left), _isakmp_sa(run.right)
    assert (left.icookie, left.rcookie) == (right.icookie, right.rcookie)
    assert left.initiator and not right.initiator
    for name, sa in (("left", left), ("right", right)):
        assert sa.hash is not None and sa.cipher is not None and sa.dh is not None
        # g^xy from our private value and the peer's public one
        peer_public = sa.gxr if sa.initiator else sa.gxi
        assert sa.dh.shared_secret(peer_public) == sa.gxy
        assert sa.dh.public_bytes == (sa.gxi if sa.initiator else sa.gxr)
        if DEMOS[key].auth == "rsa":
            skeyid = kdf_v1.skeyid_sig(sa.hash, sa.ni, sa.nr, sa.gxy)
        else:
            skeyid = kdf_v1.skeyid_psk(sa.hash, DEMO_PSK, sa.ni, sa.nr)
        keys = kdf_v1.derive_phase1_keys(
            sa.hash, skeyid, sa.gxy, sa.icookie, sa.rcookie, sa.cipher.key_bytes
        )
        assert sa.skeyid == keys.skeyid
        assert sa.skeyid_d == keys.skeyid_d
        assert sa.skeyid_a == keys.skeyid_a
        assert sa.skeyid_e == keys.skeyid_e
        assert sa.enc_key == keys.enc_key and len(sa.enc_key) == 16
        iv = kdf_v1.phase1_iv(sa.hash, sa.gxi, sa.gxr, sa.cipher.block_size)
        # what the trace says was derived is what the engine stored
        derived = _key_events(run, name, sa)
        assert derived["g^xy"] == sa.gxy
        assert derived["SKEYID"] == skeyid
        assert derived["SKEYID_d"] == keys.skeyid_d
        assert derived["SKEYID_a"] == keys.skeyid_a
        assert derived["SKEYID_e"] == keys.skeyid_e
        assert derived["Ka (encryption key)"] == keys.enc_key
        assert derived["IV (phase 1)"] == iv
    # both ends derived the same
    assert (left.gxy, left.skeyid, left.skeyid_d, left.skeyid_a, left.enc_key) == (
        right.gxy,
        right.skeyid,
        right.skeyid_d,
        right.skeyid_a,
        right.enc_key,
    )
    assert (left.ni, left.nr, left.gxi, left.gxr) == (right.ni, right.nr, right.gxi, right.gxr)


@pytest.mark.parametrize("key", ESTABLISHED)
def test_public_values_are_the_ones_on_the_wire(key: str) -> None:
    run = demo(key)
    sa = _isakmp_sa(run.left)
    p1 = [e for e in messages(run, "left") if e.message_id == 0 and not e.retransmission]
    kes = [p.data for e in p1 for p in decoded_payloads(e) if isinstance(p, KEPayload)]
    nonces = [p.data for e in p1 for p in decoded_payloads(e) if isinstance(p, NoncePayload)]
    assert kes == [sa.gxi, sa.gxr]
    assert nonces == [sa.ni, sa.nr]
    # SAi_b is the body of the initiator's SA payload as sent
    assert sa.sai_b == first(decoded_payloads(p1[0]), SAPayload).wire_body()


@pytest.mark.parametrize("key", ["main-psk", "aggressive-psk", "main-pfs14-2policies"])
def test_hash_i_and_hash_r_on_the_wire(key: str) -> None:
    run = demo(key)
    sa = _isakmp_sa(run.left)
    assert sa.hash is not None
    p1 = [e for e in messages(run, "left") if e.message_id == 0 and not e.retransmission]
    by_role = {}
    for e in p1:
        payloads = decoded_payloads(e)
        if any(isinstance(p, HashPayload) for p in payloads):
            by_role[e.sender_role] = payloads
    init_payloads, resp_payloads = by_role["initiator"], by_role["responder"]
    if DEMOS[key].mode == "aggressive":
        idii = first(decoded_payloads(p1[0]), IDPayload)  # AM1 carries IDii in clear
    else:
        idii = first(init_payloads, IDPayload)
    idir = first(resp_payloads, IDPayload)
    base = sa.icookie, sa.rcookie
    hash_i = sa.hash.prf(
        sa.skeyid, sa.gxi + sa.gxr + base[0] + base[1] + sa.sai_b + idii.wire_body()
    )
    hash_r = sa.hash.prf(
        sa.skeyid, sa.gxr + sa.gxi + base[1] + base[0] + sa.sai_b + idir.wire_body()
    )
    assert first(init_payloads, HashPayload).data == hash_i
    assert first(resp_payloads, HashPayload).data == hash_r


@pytest.mark.parametrize("key", ESTABLISHED)
@pytest.mark.parametrize("peer_name", ["left", "right"])
def test_ciphertext_decrypts_with_recomputed_iv_chain(key: str, peer_name: str) -> None:
    """Every encrypted message this peer sent or received, decrypted with the recomputed
    Ka and IVs (phase-1 IV chaining, phase2_iv per M-ID), is the plaintext in the trace."""
    done = demo_terminated(key)
    events = [e for e in messages(done.run, peer_name) if not e.retransmission]
    sa = done.sas[peer_name]
    assert sa.hash is not None and sa.cipher is not None
    bs = sa.cipher.block_size
    if DEMOS[key].auth == "rsa":
        skeyid = kdf_v1.skeyid_sig(sa.hash, sa.ni, sa.nr, sa.gxy)
    else:
        skeyid = kdf_v1.skeyid_psk(sa.hash, DEMO_PSK, sa.ni, sa.nr)
    ka = kdf_v1.derive_phase1_keys(
        sa.hash, skeyid, sa.gxy, sa.icookie, sa.rcookie, sa.cipher.key_bytes
    ).enc_key
    ivs = {0: kdf_v1.phase1_iv(sa.hash, sa.gxi, sa.gxr, bs)}
    last_p1 = ivs[0]  # until an encrypted phase-1 message (MM5, or AM3) carries the chain on
    seen_mids = set()
    for e in events:
        if not e.encrypted:
            continue
        mid = e.message_id
        if mid not in ivs:
            assert mid != 0
            ivs[mid] = kdf_v1.phase2_iv(sa.hash, last_p1, mid, bs)
        body = Message.decode(e.raw).encrypted_body or b""
        assert sa.cipher.decrypt(ka, ivs[mid], body) == e.plaintext, (e.exchange, e.index)
        ivs[mid] = body[-bs:]
        if mid == 0:
            last_p1 = body[-bs:]
        seen_mids.add(mid)
    assert sa.last_phase1_block == last_p1
    assert done.quick_mode_ids and done.quick_mode_ids <= seen_mids
    # the Delete Informationals (one per IPsec SA pair and one for the ISAKMP SA) too
    assert len(seen_mids - {0} - done.quick_mode_ids) == DEMOS[key].policies + 1
    assert 0 in seen_mids, "MM5/MM6, or the encrypted third Aggressive Mode message"


def _qm_messages(run: LabSession, pair: IpsecSaPair, peer: str) -> tuple[list[Payload], list[Payload]]:
    qms = [
        e
        for e in messages(run, peer)
        if e.exchange_type == ExchangeType.QUICK
        and e.message_id == pair.message_id
        and not e.retransmission
    ]
    by_index = {e.index: decoded_payloads(e) for e in qms}
    return by_index[1], by_index[2]


@pytest.mark.parametrize("key", ESTABLISHED)
def test_keymat_recomputed(key: str) -> None:
    run = demo(key)
    pfs = DEMOS[key].pfs
    for peer in (run.left, run.right):
        sa = _isakmp_sa(peer)
        assert sa.hash is not None
        assert len(peer.child_sas) == DEMOS[key].policies
        for pair in peer.child_sas:
            qm1, qm2 = _qm_messages(run, pair, peer.name)
            ni, nr = first(qm1, NoncePayload).data, first(qm2, NoncePayload).data
            spi_i = first(qm1, SAPayload).proposals[0].spi
            spi_r = first(qm2, SAPayload).proposals[0].spi
            mine, theirs = (spi_i, spi_r) if sa.initiator else (spi_r, spi_i)
            assert pair.inbound.spi.to_bytes(4, "big") == mine
            assert pair.outbound.spi.to_bytes(4, "big") == theirs
            gxy_qm = None
            kes = [p.data for p in (*qm1, *qm2) if isinstance(p, KEPayload)]
            if pfs:
                ex = peer.engine(1).exchanges[(sa.icookie, pair.message_id)]
                assert ex.dh is not None
                own, other = (kes[0], kes[1]) if sa.initiator else (kes[1], kes[0])
                assert ex.dh.public_bytes == own
                gxy_qm = ex.dh.shared_secret(other)
                assert pair.pfs_group == pfs
            else:
                assert kes == []
            for esp_sa, spi in ((pair.inbound, mine), (pair.outbound, theirs)):
                enc = esp_cipher(esp_sa.esp_id, esp_sa.key_bits)
                assert esp_sa.auth_alg is not None
                integ = esp_integrity(esp_sa.auth_alg)
                keymat = kdf_v1.quick_mode_keymat(
                    sa.hash,
                    sa.skeyid_d,
                    ProtocolId.IPSEC_ESP,
                    spi,
                    ni,
                    nr,
                    enc.keymat_bytes + integ.key_bytes,
                    gxy_qm,
                )
                assert esp_sa.enc_key == keymat[: enc.keymat_bytes]
                assert esp_sa.integ_key == keymat[enc.keymat_bytes :]
                assert (len(esp_sa.enc_key), len(esp_sa.integ_key)) == (16, 20)
