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


def test_initial_contact_from_a_restarted_gateway_leaves_one_sa_per_child(monkeypatch) -> None:  # noqa: ANN001
    """The gateway restarts and reconnects saying INITIAL-CONTACT (as charon does): our SAs
    with its former self go, and exactly one ISAKMP SA and one IPsec pair per child remain."""
    from ipseclab.ikev1 import phase1
    from ipseclab.runtime.transport.memory import MemoryNetwork
    from ipseclab.trace import Info
    from ipseclab.wire.v1.constants import NotifyType, ProtocolId
    from ipseclab.wire.v1.isakmp import NotifyPayload

    pair = peer_pair().initiate().run()
    left = pair.left
    old_ike, old_child = next(iter(left.ike_sas.values())), left.child_sas[0]
    real = phase1.auth_payloads

    def with_initial_contact(owner, sa, ident, *, initiator):  # noqa: ANN001, ANN202
        out = real(owner, sa, ident, initiator=initiator)
        if owner.config.name == "right" and initiator:
            out.append(NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, sa.icookie + sa.rcookie))
        return out

    monkeypatch.setattr(phase1, "auth_payloads", with_initial_contact)
    reborn = Peer(pair.right.config, rng=SeededRng(99, "right"))  # the gateway after its restart
    net = MemoryNetwork([left, reborn])
    net.initiate("right", "site")
    net.run()
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
