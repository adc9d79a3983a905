"""Byte and packet SA lifetimes (RFC 2407 §4.5, RFC 4301 §4.4.2.1) that trigger a rekey."""

from __future__ import annotations

import dataclasses

import pytest

from ipseclab.config import CLOSE_ACTION_DELAY, PeerConfig
from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.errors import ConfigError
from ipseclab.ikev1.policy import TransformSet
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import Info, MessageEvent, PolicyDecision, SaDeleted, SaEstablished
from ipseclab.wire.v1.constants import ExchangeType, IpsecAttribute, LifeType
from ipseclab.wire.v1.isakmp import Message, decode_payloads
from ipseclab.wire.v1.sa import SAPayload

pytest.importorskip("scapy")


def _with_sets(cfg: PeerConfig, **limits: int | None) -> PeerConfig:
    conn = cfg.connections[0]
    children = tuple(
        dataclasses.replace(ch, transform_sets=tuple(dataclasses.replace(ts, **limits) for ts in ch.transform_sets))
        for ch in conn.children
    )
    return dataclasses.replace(cfg, connections=[dataclasses.replace(conn, children=children)])


def _session(left: dict[str, int | None], right: dict[str, int | None], seed: int = 31) -> LabSession:
    opts = DemoOptions(seed=seed)
    lcfg, rcfg = demo_configs(opts)
    session = LabSession(opts, configs=(_with_sets(lcfg, **left), _with_sets(rcfg, **right)))
    session.run_to_end()
    assert session.established()
    return session


def _ipsec_up(session: LabSession, peer: str) -> list[SaEstablished]:
    return [e for e in session.events if isinstance(e, SaEstablished) and e.sa.kind == "child" and e.peer == peer]


def test_kilobytes_attribute_is_offered_and_decodes() -> None:
    t = TransformSet(life_kilobytes=100_000).to_transform(1)
    pairs = [(a.type, a.int_value) for a in t.attributes]
    assert (IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES) in pairs
    assert pairs[pairs.index((IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES)) + 1] == (IpsecAttribute.SA_LIFE_DURATION, 100_000)
    assert "100000 KB" in TransformSet(life_kilobytes=100_000).describe()
    with pytest.raises(Exception, match="life_packets"):
        TransformSet(life_packets=0)


def test_responder_with_smaller_kilobytes_wins() -> None:
    session = _session({"life_kilobytes": 5000}, {"life_kilobytes": 40})
    # the Quick Mode SA payload offers Life Type 2 (kilobytes) with 5000
    qm1 = next(e for e in session.events if isinstance(e, MessageEvent) and e.exchange_type == ExchangeType.QUICK and e.peer == "left" and e.direction == "sent")
    assert qm1.plaintext is not None
    payloads = decode_payloads(Message.decode(qm1.raw).first_payload, qm1.plaintext, 28, allow_trailing=True)
    sa = next(p for p in payloads if isinstance(p, SAPayload))
    attrs = [(a.type, a.int_value) for a in sa.proposals[0].transforms[0].attributes]
    i = attrs.index((IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES))
    assert attrs[i + 1] == (IpsecAttribute.SA_LIFE_DURATION, 5000)
    for peer in (session.left, session.right):
        assert {p.life_kilobytes for p in peer.child_sas} == {40}
    assert any("RESPONDER-LIFETIME 40 kilobytes" in line for e in session.events if isinstance(e, PolicyDecision) and e.peer == "left" for line in e.explanation)


def test_initiator_without_byte_limit_adopts_the_responders() -> None:
    session = _session({}, {"life_kilobytes": 64})
    assert {p.life_kilobytes for p in session.left.child_sas} == {64}


def test_packet_limit_rekeys_and_traffic_continues() -> None:
    from ipseclab.esp.ping import ping_through_sas

    session = _session({"life_packets": 10}, {"life_packets": 10})
    old = {(p.inbound.spi, p.outbound.spi) for p in session.left.child_sas}
    result = ping_through_sas(session, 25)
    assert result.received == result.sent == 25, result.lines
    # two rekeys (after 9 and 18 packets): new Quick Modes, new SPIs in the data planes
    assert len(_ipsec_up(session, "left")) == 3
    rekeys = [e for e in session.events if isinstance(e, Info) and e.peer == "left" and "rekeying child" in e.message]
    assert len(rekeys) == 2 and all("packets limit reached" in e.message for e in rekeys)
    new = {(p.inbound.spi, p.outbound.spi) for p in session.left.child_sas}
    assert new and new.isdisjoint(old)
    installed = {sa.spi for sa in result.planes["left"].sas()}
    assert installed == {spi for key in new for spi in key}
    # the replaced pairs are gone on both sides, the responder told by a Delete
    deleted = [e for e in session.events if isinstance(e, SaDeleted) and e.sa.kind == "child"]
    assert sum(e.peer == "left" and e.reason.startswith("rekeyed") for e in deleted) == 2
    assert sum(e.peer == "right" and e.reason == "deleted by the peer" for e in deleted) == 2
    assert len(session.right.child_sas) == 1


def test_kilobyte_limit_rekeys() -> None:
    from ipseclab.esp.ping import ping_through_sas

    session = _session({"life_kilobytes": 1}, {})
    result = ping_through_sas(session, 40)  # 84-byte echoes: 1 KB is ~12 of them
    assert result.received == result.sent
    rekeys = [e for e in session.events if isinstance(e, Info) and e.peer == "left" and "rekeying child" in e.message]
    assert rekeys and all("bytes limit reached" in e.message for e in rekeys)


def test_hard_limit_on_the_responder_deletes_and_the_initiator_renews() -> None:
    """The responder never rekeys; its hard limit deletes the pair, and an initiator whose
    connection says close_action = start negotiates it again."""
    session = _session({}, {})
    conn = dataclasses.replace(session.left.config.connections[0], close_action="start")
    session.left.config.connections[0] = conn
    for sa in session.left.ike_sas.values():
        sa.connection = conn
    pair = session.right.child_sas[0]
    # the responder never starts a Quick Mode: a soft limit there does nothing
    assert session.right.sa_lifetime_reached(pair.inbound.spi, "soft", session.network.now, "soft packets limit reached") is pair
    session.network.collect()
    assert not session.network.pending
    session.right.sa_lifetime_reached(pair.outbound.spi, "hard", session.network.now, "hard packets limit reached (10 of 10)")
    session.network.collect()
    session.network.run()
    assert pair not in session.right.child_sas
    assert any(isinstance(e, SaDeleted) and e.peer == "right" and e.reason.startswith("hard packets limit") for e in session.events)
    session.network.advance(CLOSE_ACTION_DELAY)
    assert len(_ipsec_up(session, "left")) == 2 and session.established()


def test_soft_seconds_rekey_before_hard_expiry() -> None:
    session = _session({"lifetime": 100}, {"lifetime": 100})
    old = session.left.child_sas[0]
    session.network.advance(95)
    assert old not in session.left.child_sas
    assert len(session.left.child_sas) == 1
    msgs = [e.message for e in session.events if isinstance(e, Info) and "rekeying child" in e.message]
    assert msgs and "soft lifetime" in msgs[0]
    assert not any(isinstance(e, SaDeleted) and "expired" in e.reason for e in session.events)


def test_toml_byte_and_packet_limits_round_trip() -> None:
    from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config

    lcfg, _ = demo_configs(DemoOptions(seed=1))
    cfg = _with_sets(lcfg, life_kilobytes=2048, life_packets=1000, rekey_packets=800)
    text = dump_peer_config(cfg)
    assert "life_bytes = 2097152" in text and "life_packets = 1000" in text and "rekey_packets = 800" in text
    again = parse_peer_config(text)
    ts = again.connections[0].children[0].transform_sets[0]
    assert (ts.life_kilobytes, ts.life_packets, ts.rekey_bytes, ts.rekey_packets) == (2048, 1000, None, 800)
    assert dump_peer_config(again) == text
    # swanctl byte counts that are no whole kilobyte are rounded up for IKEv1
    odd = text.replace("life_bytes = 2097152", "life_bytes = 1500\nrekey_bytes = 1000")
    ts = parse_peer_config(odd).connections[0].children[0].transform_sets[0]
    assert (ts.life_kilobytes, ts.rekey_bytes) == (2, 1000)
    with pytest.raises(ConfigError, match="rekey_packets"):
        parse_peer_config(text.replace("rekey_packets = 800", "rekey_packets = 1000"))


def test_hard_expiry_during_a_rekey_starts_no_second_quick_mode() -> None:
    session = _session({}, {})
    pair = session.left.child_sas[0]
    assert session.left.rekey_child(pair, session.network.now, "bytes limit reached")
    assert not session.left.rekey_child(pair, session.network.now, "again"), "one rekey per pair"
    session.left.expire_child(pair, session.network.now, "hard bytes limit reached")
    session.network.collect()
    session.network.run()
    assert len(_ipsec_up(session, "left")) == 2, "only the rekey's Quick Mode ran"
    assert len(session.left.child_sas) == 1 and pair not in session.left.child_sas
    assert any(isinstance(e, Info) and "bytes limit reached" in e.message for e in session.events)
