"""Loss, duplicates, lifetimes, bad input and a bad peer beside a good one."""

from __future__ import annotations

import dataclasses

from ipseclab.config import Connection, PeerConfig
from ipseclab.crypto.rng import SeededRng
from ipseclab.demo import DEMO_PSK, DemoOptions, demo_configs, make_demo
from ipseclab.ikev1.policy import IsakmpPolicy
from ipseclab.peer import Peer
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.trace import (
    ErrorEvent,
    MessageEvent,
    PolicyDecision,
    Retransmitted,
    SaDeleted,
    SaEstablished,
)
from ipseclab.wire.v1.constants import ExchangeType


def started(opts: DemoOptions):  # noqa: ANN201
    run = make_demo(opts)
    run.network.initiate("left", "site")
    return run


def test_lost_reply_is_retransmitted_with_backoff() -> None:
    run = make_demo(DemoOptions(seed=11))
    lost: list[int] = []

    def drop(d) -> bool:  # noqa: ANN001
        # lose the first MM2 and the first QM2 (responder -> initiator)
        if d.src[0] == run.right.config.address and len(lost) < 2:
            ex = d.data[18]
            if ex in (ExchangeType.MAIN, ExchangeType.QUICK) and ex not in lost:
                lost.append(ex)
                return True
        return False

    run.network.drop = drop
    run.network.initiate("left", "site")
    run.network.run()
    assert not run.established()
    run.network.advance(30)
    assert run.established()
    assert run.network.dropped == 2
    retrans = [e for e in run.network.events if isinstance(e, Retransmitted)]
    assert {(e.peer, e.exchange) for e in retrans} >= {("left", "Main Mode")}
    again = [e for e in run.network.events if isinstance(e, MessageEvent) and e.retransmission]
    assert again, "a retransmission must be visible as a message on the wire"


def test_duplicate_of_last_message_makes_peer_resend_reply() -> None:
    run = started(DemoOptions(seed=12))
    net = run.network
    mm5 = None
    while net.in_flight:
        d = net.in_flight[0]
        if d.src[0] == run.left.config.address and d.data[18] == ExchangeType.MAIN and d.data[19] & 1:
            mm5 = d
        net.step()
    assert run.established() and mm5 is not None
    before = len([e for e in net.events if isinstance(e, MessageEvent) and e.peer == "right" and e.direction == "sent"])
    net.now += 5  # a retransmission of MM5 comes in later (one at once would have crossed our MM6)
    net.in_flight.append(mm5)
    net.run()
    sent = [e for e in net.events if isinstance(e, MessageEvent) and e.peer == "right" and e.direction == "sent"]
    assert len(sent) == before + 1
    assert sent[-1].retransmission and sent[-1].summary == "HDR*, IDir, HASH_R"
    assert run.established()


def test_a_lost_qm2_is_sent_again_once() -> None:
    """QM2 lost: the initiator repeats QM1 when the responder's own timer repeats QM2, at the same
    moment; the repeated QM1 crossed that QM2, so it gets no third copy — one QM2, one QM3."""
    run = make_demo(DemoOptions(seed=11))
    lost: list[bytes] = []

    def drop(d) -> bool:  # noqa: ANN001
        if d.src[0] == run.right.config.address and d.data[18] == ExchangeType.QUICK and not lost:
            lost.append(d.data)
            return True
        return False

    run.network.drop = drop
    run.network.initiate("left", "site")
    run.network.run()
    run.network.advance(30)
    assert run.established()
    quick = [(e.peer, e.index) for e in run.network.events if isinstance(e, MessageEvent) and e.direction == "sent"
             and e.exchange == "Quick Mode"]
    assert quick == [("left", 1), ("right", 2), ("left", 1), ("right", 2), ("left", 3)]
    assert run.right.counters.get("duplicates_ignored") == 1


def test_gives_up_after_configured_tries() -> None:
    run = make_demo(DemoOptions(seed=13))
    run.network.drop = lambda d: True
    run.network.initiate("left", "site")
    run.network.advance(600)
    err = [e for e in run.network.events if isinstance(e, ErrorEvent) and e.code == "TIMEOUT"]
    assert len(err) == 1 and "no answer" in err[0].message
    sent = [e for e in run.network.events if isinstance(e, MessageEvent) and e.direction == "sent"]
    assert len(sent) == run.left.config.retransmit_tries
    assert run.network.next_timer() is None


def test_shorter_responder_lifetimes_are_used_and_renegotiated() -> None:
    run = started(DemoOptions(seed=14, left_lifetime=86400, right_lifetime=3600, esp_lifetime_left=3600, esp_lifetime_right=600))
    run.network.run()
    assert run.established()
    decisions = [e for e in run.network.events if isinstance(e, PolicyDecision) and e.peer == "right" and e.phase == 1]
    assert any("longer than policy 10's 3600 s" in line for line in decisions[0].explanation)
    right_sa = next(iter(run.right.ike_sas.values()))
    assert right_sa.choice.lifetime == 3600
    # RESPONDER-LIFETIME tells the initiator about the shorter phase 2 lifetime
    assert {p.lifetime for p in run.left.child_sas} == {600}
    assert any("RESPONDER-LIFETIME" in line for e in run.network.events if isinstance(e, PolicyDecision) and e.peer == "left" for line in e.explanation)
    old_spis = {p.inbound.spi for p in run.left.child_sas}
    run.network.advance(601)
    assert run.established()
    assert {p.inbound.spi for p in run.left.child_sas}.isdisjoint(old_spis)
    old_cookie = next(iter(run.left.ike_sas))
    run.network.advance(3420 - run.network.now - 1)
    assert old_cookie in run.left.ike_sas
    kept = {p.inbound.spi for p in run.left.child_sas}
    run.network.advance(1)  # 95 % of right's 3600 s: right, the responder, re-authenticates
    deleted = [e for e in run.network.events if isinstance(e, SaDeleted) and e.sa.kind == "ike"]
    assert any(e.peer == "right" and e.reason.startswith("re-authenticated: replaced by") for e in deleted)
    assert any(e.peer == "left" and "deleted by the peer: re-authenticated as" in e.reason for e in deleted)
    assert old_cookie not in run.left.ike_sas and len(run.left.ike_sas) == len(run.right.ike_sas) == 1
    assert run.established(), "a new ISAKMP SA, made before the old one broke"
    assert {p.inbound.spi for p in run.left.child_sas} == kept, "the IPsec SAs carry on under it"
    (new_left,) = run.left.ike_sas.values()
    assert not new_left.initiator and {id(p) for p in new_left.children} == {id(p) for p in run.left.child_sas}
    ups = [e for e in run.network.events if isinstance(e, SaEstablished) and e.sa.kind == "ike" and e.peer == "left"]
    assert len(ups) == 2


def test_garbage_and_truncated_datagrams_never_crash() -> None:
    run = started(DemoOptions(seed=15))
    run.network.run()
    right = run.right
    src, dst = (run.left.config.address, 500), (right.config.address, 500)
    for data in [b"", b"\x00", b"x" * 27, b"\xff" * 28, bytes(28), b"\x00" * 4, b"\xff"]:
        right.receive_datagram(data, src, dst, 1.0)
        right.receive_datagram(data, src, (dst[0], 4500), 1.0)
    # a real message with its encrypted body tampered with
    qm = [e for e in run.network.events if isinstance(e, MessageEvent) and e.direction == "sent" and e.exchange_type == ExchangeType.QUICK and e.peer == "left"][0]
    tampered = bytearray(qm.raw)
    tampered[-1] ^= 1
    right.receive_datagram(bytes(tampered), src, dst, 1.0)
    while right.next_event() is not None:
        pass
    assert right.counters.get("malformed", 0) >= 5
    assert right.counters.get("natt_keepalives") == 1
    assert run.established()


def test_bad_peer_does_not_disturb_good_peer() -> None:
    left_cfg, right_cfg = demo_configs(DemoOptions())
    mallory_cfg = PeerConfig(
        name="mallory",
        address="203.0.113.66",
        psk=b"guessing",
        isakmp_policies=[IsakmpPolicy(10, "aes128", "sha1", "psk", 14)],
        connections=[Connection("site", right_cfg.address, "main", left_cfg.connections[0].children)],
    )
    right_cfg.connections.append(
        Connection("mallory", mallory_cfg.address, "main", right_cfg.connections[0].children, psk=b"the-real-one")
    )
    peers = [Peer(c, rng=SeededRng(1, c.name)) for c in (left_cfg, right_cfg, mallory_cfg)]
    net = MemoryNetwork(peers)
    net.initiate("left", "site")
    net.run()
    net.initiate("mallory", "site")
    net.run()
    left, right, mallory = peers
    errors = [e for e in net.events if isinstance(e, ErrorEvent) and e.peer == "right"]
    assert errors and errors[0].code == "AUTHENTICATION_FAILED"
    assert not any(sa.established for sa in mallory.ike_sas.values())
    good = [sa for sa in right.ike_sas.values() if sa.established]
    assert len(good) == 1 and good[0].remote[0] == left.config.address
    # the good ISAKMP SA still carries new Quick Modes
    sa = next(iter(left.ike_sas.values()))
    left.start_child(sa, "net1", net.now)
    net.collect()
    net.run()
    assert len(left.child_sas) == 2 and len([p for p in right.child_sas if p.child == "net1"]) == 2
    assert dataclasses.replace(left_cfg).psk == DEMO_PSK


def test_quick_mode_before_phase1_completes_is_held() -> None:
    """Aggressive Mode: AM3 and QM1 may arrive in the wrong order; QM1 waits, then proceeds."""
    run = started(DemoOptions(mode="aggressive", seed=16))
    net = run.network
    net.step()  # AM1 -> right
    net.step()  # AM2 -> left, which now sends AM3 and QM1 back to back
    assert len(net.in_flight) == 2
    am3, qm1 = net.in_flight
    net.in_flight.clear()
    net.in_flight.extend([qm1, am3])
    net.run()
    assert run.established(), run.explanation()


def test_secrets_are_not_in_reprs() -> None:
    run = started(DemoOptions(seed=17))
    run.network.run()
    sa = next(iter(run.left.ike_sas.values()))
    text = repr(sa) + repr(run.left.child_sas) + repr(run.left.config)
    for secret in (sa.skeyid, sa.skeyid_e, sa.enc_key, run.left.child_sas[0].inbound.enc_key, DEMO_PSK):
        assert secret.hex() not in text and repr(secret) not in text


def test_responder_connection_with_any_remote_address() -> None:
    """``%any`` (as in swanctl.conf) accepts a peer whose address is not known in advance."""
    import pytest

    from ipseclab.errors import ConfigError

    left_cfg, right_cfg = demo_configs(DemoOptions())
    right_cfg.connections[0] = dataclasses.replace(right_cfg.connections[0], remote_address="%any")
    peers = [Peer(c, rng=SeededRng(2, c.name)) for c in (left_cfg, right_cfg)]
    net = MemoryNetwork(peers)
    net.initiate("left", "site")
    net.run()
    assert len(peers[0].child_sas) == len(peers[1].child_sas) == 1
    with pytest.raises(ConfigError, match="can only respond"):
        peers[1].initiate("site", 0.0)
    with pytest.raises(ConfigError, match="not an IP address"):
        Connection("x", "gateway.example")
