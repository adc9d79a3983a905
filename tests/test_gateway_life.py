"""A real gateway's life, first slices: IKE that starts on 4500, Deletes naming either SPI,
libreswan's padded messages, and IKE sent to 4500 without the non-ESP marker."""

from __future__ import annotations

import dataclasses

from engine_support import LEFT, RIGHT, events_of, peer_config, peer_pair

from ipseclab.crypto.rng import SeededRng
from ipseclab.peer import NON_ESP_MARKER, Peer
from ipseclab.trace import ErrorEvent, MessageEvent, SaDeleted
from ipseclab.wire.v1.constants import ExchangeType
from ipseclab.wire.v1.isakmp import Message


def test_ike_that_starts_on_4500_is_answered_there_with_the_marker() -> None:
    pair = peer_pair()
    pair.left.config.connections[0] = dataclasses.replace(pair.left.config.connections[0], remote_port=4500)
    pair.initiate().run()
    assert all(sa.established for p in (pair.left, pair.right) for sa in p.ike_sas.values())
    assert len(pair.right.child_sas) == 1
    sent = [e for e in events_of(pair.events, MessageEvent) if e.direction == "sent"]
    assert {(e.src[1], e.dst[1]) for e in sent} == {(4500, 4500)}
    assert all(e.non_esp_marker for e in sent), "every message, from MM1 and MM2 on, carries the marker"


def test_ike_sent_to_4500_without_the_marker_is_dropped_with_an_event() -> None:
    right = Peer(peer_config("right", RIGHT, LEFT, mirrored=True), rng=SeededRng(1, "r"))
    left = Peer(peer_config("left", LEFT, RIGHT), rng=SeededRng(1, "l"))
    left.initiate("site", 0.0)
    (mm1,) = left.datagrams_to_send()
    for _ in range(3):
        right.receive_datagram(mm1.data, (LEFT, 4500), (RIGHT, 4500), 0.0)
    errors = []
    while (e := right.next_event()) is not None:
        errors += [e] if isinstance(e, ErrorEvent) else []
    (err,) = errors  # rate-limited
    assert err.code == "NO_NON_ESP_MARKER" and "looks like an IKE message" in err.message
    assert not right.ike_sas and right.counters["esp_without_data_plane"] == 3
    right.receive_datagram(NON_ESP_MARKER + mm1.data, (LEFT, 4500), (RIGHT, 4500), 0.0)
    assert len(right.ike_sas) == 1


def test_a_delete_naming_our_inbound_spi_removes_the_pair() -> None:
    pair = peer_pair().initiate().run()
    left_pair = pair.left.child_sas[0]
    sa = next(iter(pair.right.ike_sas.values()))
    # right names the SPI *left* receives on as if it were its own (charon after a failed install)
    fake = dataclasses.replace(pair.right.child_sas[0], inbound=dataclasses.replace(pair.right.child_sas[0].inbound, spi=left_pair.outbound.spi))
    pair.right.engine(1).send_delete_child(sa, fake)
    pair.network.collect()
    pair.run()
    assert left_pair not in pair.left.child_sas  # gone (and, as the initiator, renewed)
    assert [e.reason for e in events_of(pair.events, SaDeleted, "left")] == ["deleted by the peer"]


def test_libreswans_padded_messages_are_accepted() -> None:
    """ikepad=yes: up to three zero bytes after the last payload, inside the header's length."""
    right = Peer(peer_config("right", RIGHT, LEFT, mirrored=True), rng=SeededRng(1, "r"))
    left = Peer(peer_config("left", LEFT, RIGHT), rng=SeededRng(1, "l"))
    left.initiate("site", 0.0)
    (mm1,) = left.datagrams_to_send()
    padded = bytearray(mm1.data + b"\x00\x00")
    padded[24:28] = len(padded).to_bytes(4, "big")
    right.receive_datagram(bytes(padded), (LEFT, 500), (RIGHT, 500), 0.0)
    (mm2,) = right.datagrams_to_send()
    assert Message.decode(mm2.data).exchange_type == ExchangeType.MAIN
    assert Message.decode(bytes(padded)).padding == 2
    nonzero = bytearray(padded)
    nonzero[-1] = 1
    right2 = Peer(peer_config("right", RIGHT, LEFT, mirrored=True), rng=SeededRng(1, "r"))
    right2.receive_datagram(bytes(nonzero), (LEFT, 500), (RIGHT, 500), 0.0)
    assert right2.counters["malformed"] == 1, "non-zero bytes after the last payload stay malformed"


def _wide_left(pair, local: str, remote: str) -> None:  # noqa: ANN001
    conn = pair.left.config.connections[0]
    child = dataclasses.replace(conn.children[0], local_ts=local, remote_ts=remote)
    pair.left.config.connections[0] = dataclasses.replace(conn, children=(child,))


def test_the_responder_narrows_and_the_initiator_installs_what_it_returned() -> None:
    """We propose 10.0.0.0/8 <-> 10.0.0.0/8, the responder is configured for two /24s."""
    from ipseclab.trace import PolicyDecision

    pair = peer_pair()
    _wide_left(pair, "10.0.0.0/8", "10.0.0.0/8")
    pair.initiate().run()
    (left_pair,), (right_pair,) = pair.left.child_sas, pair.right.child_sas
    assert (left_pair.local_ts, left_pair.remote_ts) == ("10.1.1.0/24", "10.2.1.0/24")
    assert (right_pair.local_ts, right_pair.remote_ts) == ("10.2.1.0/24", "10.1.1.0/24")
    table = pair.left.sa_table()["ipsec"][0]
    assert (table["local_ts"], table["remote_ts"]) == ("10.1.1.0/24", "10.2.1.0/24")
    said = [x for e in events_of(pair.events, PolicyDecision) for x in e.explanation if "narrowed" in x]
    assert any(e.startswith("The responder narrowed") for e in said) and any("narrowed to" in e for e in said)
    qm2 = [e for e in events_of(pair.events, MessageEvent, "right") if e.direction == "sent" and e.exchange_type == ExchangeType.QUICK][0]
    assert "IDci, IDcr" in qm2.summary


def test_selectors_outside_the_proposal_are_refused(monkeypatch) -> None:  # noqa: ANN001
    from ipseclab.ikev1.quick_mode import QuickModeResponder

    real = QuickModeResponder._find_child

    def widening(self, ids):  # noqa: ANN001, ANN202 - a responder that answers wider than asked
        child = real(self, ids)
        self.narrowed = ("10.0.0.0/8", "10.0.0.0/8")
        return child

    monkeypatch.setattr(QuickModeResponder, "_find_child", widening)
    pair = peer_pair().initiate().run()
    assert not pair.left.child_sas
    (err,) = [e for e in events_of(pair.events, ErrorEvent, "left")]
    assert err.code == "INVALID_ID_INFORMATION" and "not inside what we proposed" in err.message


def _naming_each_other(pair):  # noqa: ANN001, ANN202
    """Each side's connection names the other's identity (its address), as remote_id."""
    from ipseclab.config import Identity

    for me, other in ((pair.left, RIGHT), (pair.right, LEFT)):
        me.config.connections[0] = dataclasses.replace(me.config.connections[0], remote_identity=Identity.parse(other))
    return pair


def _mm5_summaries(events: list, peer: str) -> list[str]:
    return [e.summary for e in events if isinstance(e, MessageEvent) and e.peer == peer and e.direction == "sent"
            and e.exchange_type == ExchangeType.MAIN and e.index == 5]


def test_the_first_isakmp_sa_to_a_named_peer_says_initial_contact() -> None:
    """RFC 2407 §4.6.3.3 as charon sends it: in MM5, encrypted, SPI = both cookies; not on a
    second SA while one is up, not when the connection accepts any identity."""
    pair = _naming_each_other(peer_pair()).initiate().run()
    (mm5,) = [e for e in pair.network.events if isinstance(e, MessageEvent) and e.peer == "left" and e.direction == "sent"
              and e.exchange_type == ExchangeType.MAIN and e.index == 5]
    assert mm5.encrypted and mm5.summary.endswith("N(INITIAL_CONTACT)"), mm5.summary
    sa = next(iter(pair.left.ike_sas.values()))
    assert (sa.icookie + sa.rcookie).hex() in str(mm5.tree)
    pair.network.events.clear()
    pair.network.initiate("left", "site")  # a second ISAKMP SA while the first is up
    pair.network.run()
    (second,) = _mm5_summaries(pair.network.events, "left")
    assert "INITIAL_CONTACT" not in second and len(pair.left.ike_sas) == 2

    anyone = peer_pair().initiate().run()  # no remote_id: %any
    assert not [s for s in _mm5_summaries(anyone.network.events, "left") if "INITIAL_CONTACT" in s]


def test_initial_contact_from_a_restarted_gateway_leaves_one_sa_per_child() -> None:
    """The gateway restarts and reconnects; its MM5 says INITIAL-CONTACT: our SAs with its
    former self go, and exactly one ISAKMP SA and one IPsec pair per child remain."""
    from ipseclab.runtime.transport.memory import MemoryNetwork
    from ipseclab.trace import Info

    pair = _naming_each_other(peer_pair()).initiate().run()
    left = pair.left
    old_ike, old_child = next(iter(left.ike_sas.values())), left.child_sas[0]
    reborn = Peer(pair.right.config, rng=SeededRng(99, "right"))  # the gateway after its restart
    net = MemoryNetwork([left, reborn])
    net.initiate("right", "site")
    net.run()
    assert [s for s in _mm5_summaries(net.events, "right") if "INITIAL_CONTACT" in s]
    assert len(left.ike_sas) == 1 and next(iter(left.ike_sas.values())) is not old_ike
    assert len(left.child_sas) == 1 and left.child_sas[0] is not old_child
    assert any("INITIAL-CONTACT" in e.message for e in net.events if isinstance(e, Info) and e.peer == "left")
    gone = [e.reason for e in net.events if isinstance(e, SaDeleted) and e.peer == "left"]
    assert gone.count("INITIAL-CONTACT: the peer restarted") == 2


def test_initial_contact_in_clear_deletes_nothing() -> None:
    from ipseclab.wire.v1.constants import NotifyType, ProtocolId
    from ipseclab.wire.v1.isakmp import NotifyPayload

    pair = peer_pair().initiate().run()
    sa = next(iter(pair.right.ike_sas.values()))
    msg = Message(sa.icookie, sa.rcookie, ExchangeType.INFORMATIONAL, message_id=5,
                  payloads=[NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, sa.icookie + sa.rcookie)])
    pair.right.receive_datagram(msg.encode(), (LEFT, 500), (RIGHT, 500), 1.0)
    assert len(pair.right.ike_sas) == 1 and len(pair.right.child_sas) == 1


def _with_dpd(pair, **dpd: object) -> None:  # noqa: ANN001
    pair.left.config.connections[0] = dataclasses.replace(pair.left.config.connections[0], **dpd)


def test_dpd_from_our_side_keeps_a_live_peer() -> None:
    from ipseclab.trace import Info

    pair = peer_pair()
    _with_dpd(pair, dpd_delay=10.0, dpd_timeout=30.0)
    pair.initiate().run()
    pair.network.advance(35)
    said = [e.message for e in events_of(pair.events, Info, "left") if e.message.startswith("DPD")]
    assert len([m for m in said if "R-U-THERE #" in m]) == 3
    assert len([m for m in said if "is alive" in m]) == 3
    acks = [e for e in events_of(pair.events, MessageEvent, "right") if e.direction == "sent" and "N(R_U_THERE_ACK)" in e.summary]
    assert len(acks) == 3 and all(e.encrypted for e in acks)
    assert pair.left.child_sas and not events_of(pair.events, SaDeleted)


def test_a_silent_peer_is_declared_dead_within_dpd_timeout_and_cleared() -> None:
    pair = peer_pair()
    _with_dpd(pair, dpd_delay=10.0, dpd_timeout=30.0)
    pair.initiate().run()
    start = pair.network.now
    pair.network.drop = lambda d: True  # the gateway is gone
    pair.network.advance(45)
    (dead,) = [e for e in events_of(pair.events, ErrorEvent, "left") if e.code == "DPD_DEAD"]
    assert dead.time - start <= 10 + 30 and "dpd_action = clear" in dead.message
    assert not pair.left.ike_sas and not pair.left.child_sas
    assert {e.reason for e in events_of(pair.events, SaDeleted, "left")} == {"dead peer (DPD)"}


def test_dpd_action_trap_clears_and_waits_for_traffic() -> None:
    pair = peer_pair()
    _with_dpd(pair, dpd_delay=10.0, dpd_timeout=30.0, dpd_action="trap")
    pair.initiate().run()
    net = pair.network
    net.drop = lambda d: True
    net.advance(45)
    assert not pair.left.ike_sas and not pair.left.child_sas
    net.drop = None  # the gateway is back; nothing happens until traffic asks
    net.advance(30)
    assert not pair.left.ike_sas
    assert pair.left.acquire("10.1.1.5", "10.2.1.9", net.now)
    net.collect()
    net.run()
    assert len(pair.left.child_sas) == 1


def test_dpd_action_restart_negotiates_anew() -> None:
    pair = peer_pair()
    _with_dpd(pair, dpd_delay=5.0, dpd_timeout=15.0, dpd_action="restart")
    pair.initiate().run()
    pair.network.drop = lambda d: True
    pair.network.advance(22)
    pair.network.drop = None  # the gateway is back: our retransmitted MM1 reaches it
    pair.network.advance(5)
    pair.network.run()
    assert any(e.code == "DPD_DEAD" for e in events_of(pair.events, ErrorEvent, "left"))
    assert any(sa.established for sa in pair.left.ike_sas.values()) and pair.left.child_sas


def test_dpd_settings_in_toml() -> None:
    from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config

    cfg = peer_config("left", LEFT, RIGHT)
    cfg.connections[0] = dataclasses.replace(cfg.connections[0], dpd_delay=30.0, dpd_timeout=90.0, dpd_action="restart")
    back = parse_peer_config(dump_peer_config(cfg)).connections[0]
    assert (back.dpd_delay, back.dpd_timeout, back.dpd_action) == (30.0, 90.0, "restart")
    import pytest

    from ipseclab.errors import ConfigError

    with pytest.raises(ConfigError, match="dpd_action"):
        parse_peer_config(dump_peer_config(cfg).replace('dpd_action = "restart"', 'dpd_action = "hold"'))


def test_an_ack_for_a_sequence_number_we_never_sent_proves_nothing() -> None:
    from ipseclab.wire.v1.constants import NotifyType

    pair = peer_pair()
    _with_dpd(pair, dpd_delay=10.0, dpd_timeout=30.0)
    pair.initiate().run()
    pair.network.drop = lambda d: True
    pair.network.advance(11)  # one R-U-THERE out, unanswered
    sa = next(iter(pair.right.ike_sas.values()))
    mine = next(iter(pair.left.ike_sas.values()))
    pair.right.engine(1).send_notify(sa, NotifyType.R_U_THERE_ACK, protect=True, data=((mine.dpd_seq + 1000) % (1 << 32)).to_bytes(4, "big"))
    pair.network.drop = None
    pair.network.collect()
    pair.network.drop = lambda d: d.src[0] == LEFT  # only right's (wrong) ACK gets through
    pair.run()
    assert pair.left.counters["dpd_ack_unexpected"] == 1 and mine.dpd_unacked_since is not None
    pair.network.advance(30)
    assert any(e.code == "DPD_DEAD" for e in events_of(pair.events, ErrorEvent, "left"))


# -- what the peer's Deletes mean: close_action; start_action; re-authentication -------------


def _connection(peer: Peer, **changes: object) -> None:
    peer.config.connections[0] = dataclasses.replace(peer.config.connections[0], **changes)


def test_a_gateway_that_takes_the_tunnel_down_is_obeyed_by_default() -> None:
    """charon's ``swanctl --terminate --ike``: Deletes for the child, then for the ISAKMP SA.
    With strongSwan's default close_action = none we stay down — no new Quick Mode on the
    SA being deleted, no new Main Mode later."""
    from engine_support import terminate

    from ipseclab.trace import Info

    pair = peer_pair().initiate().run()
    net = pair.network
    before = len(net.events)
    terminate(net, "right")
    net.advance(60)
    assert not pair.left.ike_sas and not pair.left.child_sas
    after = net.events[before:]
    assert not [e for e in after if isinstance(e, MessageEvent) and e.peer == "left" and e.direction == "sent"
                and e.exchange_type in (ExchangeType.QUICK, ExchangeType.MAIN)]
    said = [e.message for e in after if isinstance(e, Info) and e.peer == "left"]
    assert "the peer deleted child net1; close_action = none: it stays down" in said


def test_close_action_start_negotiates_again_once_the_deletes_are_in() -> None:
    from engine_support import terminate

    pair = peer_pair()
    _connection(pair.left, close_action="start")
    pair.initiate().run()
    net = pair.network
    old = set(pair.left.ike_sas)
    before = len(net.events)
    terminate(net, "right")
    assert not pair.left.ike_sas and not pair.left.child_sas, "nothing started on the SA being deleted"
    assert not [e for e in net.events[before:] if isinstance(e, MessageEvent) and e.peer == "left" and e.direction == "sent"]
    net.advance(1.0)  # CLOSE_ACTION_DELAY
    assert len(pair.left.ike_sas) == 1 and not set(pair.left.ike_sas) & old
    assert len(pair.left.child_sas) == len(pair.right.child_sas) == 1


def test_start_action_start_initiates_when_loaded() -> None:
    from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config

    pair = peer_pair()
    assert pair.left.start_connections(0.0) == [], "start_action = none: nothing starts"
    _connection(pair.left, start_action="start")
    (sa,) = pair.left.start_connections(0.0)
    pair.network.collect()
    pair.network.run()
    assert sa.established and len(pair.right.child_sas) == 1
    text = dump_peer_config(pair.left.config)
    assert 'start_action = "start"' in text and parse_peer_config(text).connections[0].start_action == "start"


def test_start_action_trap_negotiates_when_traffic_finds_no_sa() -> None:
    """RFC 4301 §5.2: a packet that matches a trapped child and has no SA is an acquire."""
    from ipseclab.trace import Info

    pair = peer_pair()
    _connection(pair.left, start_action="trap")
    net = pair.network
    assert pair.left.start_connections(0.0) == [] and not pair.left.ike_sas, "a trap negotiates nothing yet"
    assert not pair.left.acquire("10.1.1.5", "10.9.9.9", 0.0), "traffic no child covers"
    assert pair.left.acquire("10.1.1.5", "10.2.1.9", 0.0)
    assert pair.left.acquire("10.1.1.6", "10.2.1.7", 0.0), "more traffic while phase 1 runs ..."
    net.collect()
    assert len(pair.left.ike_sas) == 1, "... starts nothing more"
    net.run()
    assert len(pair.left.child_sas) == len(pair.right.child_sas) == 1
    assert any(e.message.startswith("acquire: 10.1.1.5 -> 10.2.1.9") for e in events_of(net.events, Info, "left"))
    assert pair.left.counters["acquires"] == 1


def test_close_action_trap_comes_back_on_traffic_only() -> None:
    pair = peer_pair()
    _connection(pair.left, close_action="trap")
    pair.initiate().run()
    net = pair.network
    pair.right.delete_child(pair.right.child_sas[0], "administrator")
    net.collect()
    net.advance(5)
    assert not pair.left.child_sas and len(pair.left.ike_sas) == 1, "down until traffic asks"
    assert pair.left.acquire("10.1.1.5", "10.2.1.9", net.now)
    net.collect()
    net.run()
    assert len(pair.left.child_sas) == 1 and len(pair.left.ike_sas) == 1, "a Quick Mode under the ISAKMP SA still up"


def test_trap_needs_a_peer_to_initiate_to() -> None:
    import pytest

    from ipseclab.errors import ConfigError

    pair = peer_pair()
    with pytest.raises(ConfigError, match="trap needs a peer to initiate to"):
        _connection(pair.left, start_action="trap", remote_address="%any")
    with pytest.raises(ConfigError, match="close_action must be none, clear, trap, start"):
        _connection(pair.left, close_action="restart")


def test_the_initiator_re_authenticates_before_the_isakmp_sa_expires_and_keeps_the_ipsec_sas() -> None:
    """IKEv1 has no ISAKMP SA rekey: at 90 % of its lifetime a new Main Mode, make before
    break; the IPsec SAs are not renegotiated; the old ISAKMP SA goes with a Delete; the new
    one says no INITIAL-CONTACT (it would tell the peer to drop the SAs we keep)."""
    from ipseclab.ikev1.policy import IsakmpPolicy

    pair = _naming_each_other(peer_pair(policy=IsakmpPolicy(10, lifetime=1000))).initiate().run()
    net = pair.network
    old = next(iter(pair.left.ike_sas.values()))
    spis = {p.inbound.spi for p in pair.left.child_sas} | {p.inbound.spi for p in pair.right.child_sas}
    before = len(net.events)
    net.advance(899)
    assert list(pair.left.ike_sas.values()) == [old]
    net.advance(1)
    (new,) = pair.left.ike_sas.values()
    assert new is not old and new.initiator and new.established
    assert len(pair.right.ike_sas) == 1 and next(iter(pair.right.ike_sas.values())).established
    assert {p.inbound.spi for p in pair.left.child_sas} | {p.inbound.spi for p in pair.right.child_sas} == spis
    assert len(new.children) == 1
    after = net.events[before:]
    assert not [e for e in after if isinstance(e, MessageEvent) and e.exchange_type == ExchangeType.QUICK]
    assert not [s for s in _mm5_summaries(after, "left") if "INITIAL_CONTACT" in s]
    gone = {(e.peer, e.reason.split(":")[0]) for e in after if isinstance(e, SaDeleted)}
    assert gone == {("left", "re-authenticated"), ("right", "deleted by the peer")}
    net.advance(1000)  # and again, under the new one
    assert len(pair.left.ike_sas) == 1 and len(pair.left.child_sas) == 1 and pair.left.child_sas[0].state == "ESTABLISHED"


def test_a_peer_that_re_authenticates_without_a_delete_leaves_one_isakmp_sa() -> None:
    """charon re-authenticates an IKEv1 SA with a new Main Mode and drops the old SA without
    a Delete. As responder the IPsec SAs move to the new SA at once; the old one goes after
    REAUTH_GRACE (with a Delete, which tells a peer that still holds it)."""
    from ipseclab.life_cycle import REAUTH_GRACE

    pair = _naming_each_other(peer_pair()).initiate().run()
    net = pair.network
    old = next(iter(pair.left.ike_sas.values()))
    kept = [p.inbound.spi for p in pair.left.child_sas]
    net.initiate("right", "site")  # the gateway re-authenticates (it holds an SA: no INITIAL-CONTACT)
    net.run()
    new = next(s for s in pair.left.ike_sas.values() if s is not old)
    assert [p.inbound.spi for p in new.children] == kept and not old.children
    net.advance(REAUTH_GRACE)
    assert list(pair.left.ike_sas.values()) == [new] and len(pair.right.ike_sas) == 1
    assert [p.inbound.spi for p in pair.left.child_sas] == kept, "the IPsec SAs were never renegotiated"
    gone = [e.reason for e in net.events if isinstance(e, SaDeleted) and e.sa.kind == "ike"]
    assert any(r.startswith("re-authenticated by the peer") for r in gone)


def test_the_delete_that_ends_a_peers_rekey_is_not_a_close() -> None:
    from ipseclab.trace import Info

    pair = peer_pair()
    _connection(pair.right, close_action="start")
    pair.initiate().run()
    net = pair.network
    before = len(net.events)
    assert pair.left.rekey_child(pair.left.child_sas[0], net.now, "test")
    net.collect()
    net.run()
    net.advance(2)
    said = [e.message for e in net.events[before:] if isinstance(e, Info) and e.peer == "right"]
    assert not [m for m in said if "close_action" in m], said
    assert len(pair.right.child_sas) == len(pair.left.child_sas) == 1


def test_an_error_notify_encrypted_as_libreswan_does_during_phase_1_is_read() -> None:
    """libreswan encrypts a phase-1 error notification with the hash of the Message ID alone
    as IV (its end-of-phase-1 IV is still empty). Read with the RFC's chained IV it is
    garbage, and the peer's INVALID-ID-INFORMATION passed for a key mismatch."""
    from ipseclab.crypto.kdf_v1 import phase2_iv
    from ipseclab.wire.v1.constants import NotifyType

    pair = peer_pair()
    net = pair.network
    net.initiate("left", "site")
    for _ in range(4):
        net.step()  # MM1..MM4: both sides hold the phase-1 keys; left's MM5 is in flight
    net.in_flight.clear()  # right never sees MM5: it refuses left's identity instead
    sa = next(iter(pair.right.ike_sas.values()))
    sa.iv_for = lambda mid: phase2_iv(sa.hash, b"", mid, sa.cipher.block_size) if mid else sa.iv  # as libreswan
    pair.right.engine(1).send_notify(sa, NotifyType.INVALID_ID_INFORMATION, protect=True)
    net.collect()
    net.run()
    (err,) = [e for e in net.events if isinstance(e, ErrorEvent) and e.peer == "left"]
    assert err.code == "PEER_INVALID_ID_INFORMATION" and "pre-shared keys differ" not in err.message.split(";")[0]
