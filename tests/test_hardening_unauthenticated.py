"""No unauthenticated datagram deletes, moves or changes an SA — tried as an attacker on
the lab network would, with the exact packets, through the sans-I/O peers."""

from __future__ import annotations

import dataclasses

from engine_support import LEFT, RIGHT, established_pair, events_of, peer_config

from ipseclab.crypto.rng import SeededRng
from ipseclab.demo import DemoOptions
from ipseclab.peer import NON_ESP_MARKER, Peer
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import ErrorEvent, Info, PeerMoved, PortFloated, SaDeleted
from ipseclab.wire.v1.constants import ExchangeType, NotifyType, ProtocolId
from ipseclab.wire.v1.isakmp import DeletePayload, Message, NotifyPayload

MALLORY = "203.0.113.66"


def _informational(icookie: bytes, rcookie: bytes, *payloads: object, message_id: int = 0x1234) -> bytes:
    return Message(icookie, rcookie, ExchangeType.INFORMATIONAL, message_id=message_id, payloads=list(payloads)).encode()


def _half_open_sa_of_mallory(right: Peer) -> tuple[bytes, bytes]:
    """Mallory's MM1 (no authentication needed) gives it a pair of cookies at ``right``."""
    mallory = Peer(peer_config("mallory", MALLORY, RIGHT), rng=SeededRng(9, "mallory"))
    mallory.initiate("site", 1.0)
    (mm1,) = mallory.datagrams_to_send()
    right.receive_datagram(mm1.data, (MALLORY, 500), (RIGHT, 500), 1.0)
    (mm2,) = [d for d in right.datagrams_to_send() if d.dst[0] == MALLORY]
    msg = Message.decode(mm2.data)
    return msg.icookie, msg.rcookie


def test_a_cleartext_delete_under_a_half_open_sa_deletes_nothing() -> None:
    pair = established_pair()
    right = pair.right
    victim = right.child_sas[0]
    spi = victim.outbound.spi.to_bytes(4, "big")  # visible in every ESP packet right sends
    icookie, rcookie = _half_open_sa_of_mallory(right)
    for r in (rcookie, bytes(8)):
        right.receive_datagram(
            _informational(icookie, r, DeletePayload(ProtocolId.IPSEC_ESP, 4, [spi])), (MALLORY, 500), (RIGHT, 500), 2.0
        )
    while (e := right.next_event()) is not None:
        pair.network.events.append(e)
    assert right.child_sas == [victim] and victim.state == "ESTABLISHED"
    assert not events_of(pair.events, SaDeleted, "right")
    assert right.counters["informational_ignored"] == 1  # the one with mallory's own cookies
    assert right.counters["invalid_cookie"] == 1  # the all-zero responder cookie matches nothing
    assert any("unprotected Delete" in e.message for e in events_of(pair.events, Info, "right"))


def test_a_cleartext_delete_or_notify_with_the_real_cookies_is_shown_not_acted_on() -> None:
    pair = established_pair()
    right = pair.right
    sa = next(iter(right.ike_sas.values()))
    spi = right.child_sas[0].outbound.spi.to_bytes(4, "big")
    data = _informational(
        sa.icookie, sa.rcookie,
        DeletePayload(ProtocolId.IPSEC_ESP, 4, [spi]),
        DeletePayload(ProtocolId.ISAKMP, 16, [sa.icookie + sa.rcookie]),
        NotifyPayload(NotifyType.INVALID_SPI, ProtocolId.IPSEC_ESP, spi),
    )
    right.receive_datagram(data, (LEFT, 500), (RIGHT, 500), 2.0)  # spoofed from left's address
    assert len(right.ike_sas) == 1 and sa.established and len(right.child_sas) == 1
    assert right.counters["informational_ignored"] == 3


def test_a_protected_delete_only_touches_sas_with_that_peer() -> None:
    """An authenticated peer may delete its own SAs, not another peer's (named by SPI)."""
    left_cfg = peer_config("left", LEFT, RIGHT)
    mallory_cfg = peer_config("mallory", MALLORY, RIGHT)
    right_cfg = peer_config("right", RIGHT, LEFT, mirrored=True)
    right_cfg.connections.append(dataclasses.replace(right_cfg.connections[0], name="mallory", remote_address=MALLORY))
    peers = [Peer(c, rng=SeededRng(3, c.name)) for c in (left_cfg, right_cfg, mallory_cfg)]
    net = MemoryNetwork(peers)
    for name in ("left", "mallory"):
        net.initiate(name, "site")
        net.run()
    left, right, mallory = peers
    assert len(right.child_sas) == 2
    with_mallory = next(p for p in right.child_sas if p.outbound.dst == MALLORY)
    sa = next(iter(left.ike_sas.values()))
    # left names the SPI right sends to mallory on, in a valid, protected Delete
    left.engine(1).send_delete_child(sa, mallory.child_sas[0])
    net.collect()
    net.run()
    assert with_mallory in right.child_sas and len(right.child_sas) == 2
    assert right.counters["delete_unknown_spi"] == 1


def test_a_replayed_protected_informational_is_refused() -> None:
    pair = established_pair()
    sa = next(iter(pair.left.ike_sas.values()))
    pair.left.engine(1).send_notify(sa, NotifyType.R_U_THERE, protect=True, data=(7).to_bytes(4, "big"))
    (dpd,) = pair.left.datagrams_to_send()
    right = pair.right
    right.receive_datagram(dpd.data, dpd.src, dpd.dst, 3.0)
    right.datagrams_to_send()
    right.receive_datagram(dpd.data, dpd.src, dpd.dst, 4.0)
    assert right.datagrams_to_send() == [], "a replay gets no second R-U-THERE-ACK"
    assert right.counters["informational_ignored"] == 1


def test_spoofed_datagrams_to_4500_move_nothing() -> None:
    """RFC 3947 §7: only an authenticated message moves an SA's remote end."""
    s = LabSession(DemoOptions(seed=21, nat=True))
    s.run_to_end()
    right = s.right
    sa = next(iter(right.ike_sas.values()))
    remote = sa.remote
    attacker = (MALLORY, 40000)
    sent = [e for e in s.events if e.kind == "message" and e.direction == "sent" and e.peer == "left"]
    spi = right.child_sas[0].outbound.spi.to_bytes(4, "big")
    datagrams = [
        _informational(sa.icookie, sa.rcookie, NotifyPayload(NotifyType.R_U_THERE, ProtocolId.ISAKMP, sa.icookie + sa.rcookie)),
        _informational(sa.icookie, sa.rcookie, DeletePayload(ProtocolId.IPSEC_ESP, 4, [spi])),
        sent[-1].raw,  # the last Quick Mode message, replayed
        sent[-3].raw,  # an older one
    ]
    for data in datagrams:
        right.receive_datagram(NON_ESP_MARKER + data, attacker, (sa.local[0], 4500), s.network.now)
    events = []
    while (e := right.next_event()) is not None:
        events.append(e)
    assert sa.remote == remote
    assert not [e for e in events if isinstance(e, PeerMoved | PortFloated | SaDeleted)]
    assert all(d.dst != attacker for d in right.datagrams_to_send())


def test_a_responder_that_rejects_our_offer_is_heard() -> None:
    """The cleartext NO-PROPOSAL-CHOSEN that ends our own phase 1 still counts."""
    s = LabSession(DemoOptions(seed=22, mismatch=True))
    s.run_to_end()
    codes = [e.code for e in s.events if isinstance(e, ErrorEvent) and e.peer == "left"]
    assert codes == ["PEER_NO_PROPOSAL_CHOSEN"]
