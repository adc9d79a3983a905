"""No input grows memory without bound: half-open SAs, failed SAs, held messages, offers,
reflection — each tried with the exact datagrams an attacker would send."""

from __future__ import annotations

import dataclasses

from engine_support import LEFT, RIGHT, events_of, peer_config, peer_pair

from ipseclab.crypto.rng import SeededRng
from ipseclab.ikev1.policy import IsakmpPolicy
from ipseclab.ikev1.task_manager import MAX_PENDING
from ipseclab.peer import Peer
from ipseclab.trace import ErrorEvent, MessageEvent, SaDeleted
from ipseclab.wire.v1.constants import ExchangeType, HeaderFlag
from ipseclab.wire.v1.isakmp import Message, Proposal, SAPayload


def _responder(**bounds: object) -> Peer:
    cfg = dataclasses.replace(peer_config("right", RIGHT, LEFT, mirrored=True), **bounds)
    cfg.connections.append(dataclasses.replace(cfg.connections[0], name="any", remote_address="%any"))
    return Peer(cfg, rng=SeededRng(1, "right"))


def _mm1(n: int, *, transforms: int = 1) -> bytes:
    """A first Main Mode message with a fresh initiator cookie (no authentication needed)."""
    t = IsakmpPolicy(10).to_transform(1)
    many = [dataclasses.replace(t, number=i % 250 + 1) for i in range(transforms)]
    sa = SAPayload([Proposal(n // 250 + 1, 1, b"", many[n:n + 250]) for n in range(0, transforms, 250)])
    return Message(n.to_bytes(8, "big"), bytes(8), ExchangeType.MAIN, payloads=[sa]).encode()


def _drain(peer: Peer) -> list:
    out = []
    while (e := peer.next_event()) is not None:
        out.append(e)
    return out


def test_half_open_sas_expire() -> None:
    right = _responder()
    right.receive_datagram(_mm1(1), ("203.0.113.1", 500), (RIGHT, 500), 0.0)
    assert len(right.ike_sas) == 1
    assert right.get_timer() == 30.0
    right.handle_timer(30.0)
    assert not right.ike_sas and right.counters["half_open_expired"] == 1
    (gone,) = [e for e in _drain(right) if isinstance(e, SaDeleted)]
    assert "half-open for 30 s" in gone.reason


def test_each_first_message_is_answered_once_not_five_times() -> None:
    right = _responder()
    right.receive_datagram(_mm1(1), ("203.0.113.1", 500), (RIGHT, 500), 0.0)
    assert len(right.datagrams_to_send()) == 1
    for t in (2.0, 6.0, 14.0, 29.0):
        right.handle_timer(t)
    assert right.datagrams_to_send() == [], "no retransmission to an unauthenticated peer"


def test_half_open_sas_are_capped_per_source_address() -> None:
    right = _responder(max_half_open_per_address=5)
    for n in range(1, 21):
        right.receive_datagram(_mm1(n), ("203.0.113.1", 500), (RIGHT, 500), 0.0)
    assert len(right.ike_sas) == 5
    assert right.counters["half_open_per_address_limit"] == 15
    limits = [e for e in _drain(right) if isinstance(e, ErrorEvent) and e.code == "LIMIT"]
    assert len(limits) == 1, "rate-limited: one event, not fifteen"


def test_a_spoofed_flood_evicts_only_itself_and_a_real_peer_still_connects() -> None:
    pair = peer_pair()
    right = pair.right
    right.config.max_half_open = 50
    right.config.connections.append(dataclasses.replace(right.config.connections[0], name="any", remote_address="%any"))
    net = pair.network
    net.initiate("left", "site")
    net.step()  # MM1 reaches right: a half-open SA at MM_SA_REPLIED
    for n in range(1, 41):  # fewer than the cap between left's MM1 and MM3
        right.receive_datagram(_mm1(n), (f"198.18.{n // 250}.{n % 250 + 1}", 500), (RIGHT, 500), net.now)
    net.run()  # left's MM3 proves its address: from now on the flood cannot evict it
    for n in range(41, 2041):
        right.receive_datagram(_mm1(n), (f"198.18.{n // 250}.{n % 250 + 1}", 500), (RIGHT, 500), net.now)
    right.datagrams_to_send()
    assert len(right.ike_sas) <= 50 + 1
    assert right.counters["half_open_evicted"] >= 1990
    assert any(sa.established for sa in right.ike_sas.values()) and len(right.child_sas) == 1
    net.advance(31)
    assert len(right.ike_sas) == 1, "the flood's half-open SAs are gone, the real one stays"


def test_failed_sas_leave_the_table_after_a_grace() -> None:
    pair = peer_pair(right={"psk": b"other"}).initiate().run()
    assert [str(sa.state) for sa in pair.right.ike_sas.values()] == ["FAILED"]
    pair.network.advance(9)
    assert len(pair.right.ike_sas) == 1, "still listed for a while: list_sas shows why it failed"
    pair.network.advance(2)
    assert not pair.right.ike_sas


def test_messages_held_before_phase_1_completes_are_bounded() -> None:
    pair = peer_pair()
    net = pair.network
    net.initiate("left", "site")
    for _ in range(4):
        net.step()  # MM1..MM4: the SA has cookies and keys, phase 1 is not complete
    sa = next(iter(pair.right.ike_sas.values()))
    for mid in range(1, 40):
        qm = Message(sa.icookie, sa.rcookie, ExchangeType.QUICK, flags=HeaderFlag.ENCRYPTION, message_id=mid,
                     first_payload=8, encrypted_body=b"\x00" * 1024)
        pair.right.receive_datagram(qm.encode(), (LEFT, 500), (RIGHT, 500), net.now)
    held = pair.right.engine(1)._pending[sa.icookie]
    assert len(held) == MAX_PENDING and pair.right.counters["pending_dropped"] == 39 - MAX_PENDING


def test_an_offer_with_a_thousand_transforms_is_refused_unread() -> None:
    right = _responder()
    data = _mm1(1, transforms=1000)
    assert len(data) > 30_000
    right.receive_datagram(data, ("203.0.113.1", 500), (RIGHT, 500), 0.0)
    (err,) = [e for e in _drain(right) if isinstance(e, ErrorEvent)]
    assert err.code == "TOO_MANY_TRANSFORMS" and "1000 transforms" in err.message
    assert not [e for e in _drain(right) if isinstance(e, MessageEvent) and e.exchange_type == ExchangeType.MAIN and e.direction == "sent"]


def test_the_limits_are_configurable_in_toml() -> None:
    from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config

    cfg = dataclasses.replace(peer_config("right", RIGHT, LEFT), half_open_timeout=10.0, max_half_open=20,
                              max_half_open_per_address=2, failed_sa_grace=3.0)
    text = dump_peer_config(cfg)
    assert "max_half_open = 20" in text and "half_open_timeout = 10.0" in text
    back = parse_peer_config(text)
    assert (back.half_open_timeout, back.max_half_open, back.max_half_open_per_address, back.failed_sa_grace) == (10.0, 20, 2, 3.0)
    assert not events_of([], ErrorEvent)


def test_timers_come_from_a_heap_and_agree_with_every_sa() -> None:
    """get_timer() no longer scans every SA; what it returns is still the earliest deadline."""
    pair = peer_pair().initiate().run()
    left = pair.left
    for _ in range(12):  # more ISAKMP SAs, each with a child: many lifetimes and rekeys
        sa = left.initiate("site", pair.network.now)
        pair.network.collect()
        pair.run()
        if not sa.children:
            left.start_child(sa, "net1", pair.network.now)
            pair.network.collect()
            pair.run()

    def brute(peer: Peer) -> float | None:
        times = [s.expires_at for s in peer.ike_sas.values() if s.expires_at is not None]
        times += [p.expires_at for p in peer.child_sas] + [p.rekey_at for p in peer.child_sas if p.rekey_at is not None]
        times += [t for e in peer.engines.values() for t in e.timers()]
        return min(times) if times else None

    assert len(left.child_sas) >= 12
    for _ in range(6):
        for peer in (pair.left, pair.right):
            assert peer.get_timer() == brute(peer)
        pair.network.advance(700)  # rekeys, expiries, renegotiations
    assert pair.left.child_sas and pair.right.child_sas


def test_under_a_flood_configured_peers_are_served_before_strangers() -> None:
    """A runner that falls behind reads full batches: the real peer's first message, last in
    a batch of 300 spoofed ones, is answered; strangers beyond the budget are shed unread."""
    pair = peer_pair()
    right = pair.right
    right.config.connections.append(dataclasses.replace(right.config.connections[0], name="any", remote_address="%any"))
    pair.left.initiate("site", 0.0)
    (mm1,) = pair.left.datagrams_to_send()
    flood = [(_mm1(n), (f"198.18.{n // 250}.{n % 250 + 1}", 500), (RIGHT, 500)) for n in range(1, 301)]
    right.receive_batch([*flood, (mm1.data, mm1.src, mm1.dst)], 0.0)
    replies = right.datagrams_to_send()
    assert [d.dst for d in replies if d.dst[0] == LEFT] == [mm1.src], "the configured peer is answered"
    budget = right.config.max_strangers_per_batch
    assert budget == 4
    assert len(replies) == 1 + budget, "and only max_strangers_per_batch of the strangers"
    assert right.counters["shed_first_messages"] == 300 - budget
    (shed,) = [e for e in _drain(right) if isinstance(e, ErrorEvent) and e.code == "LIMIT"]
    assert "296 dropped unread" in shed.message and "max_strangers_per_batch = 4" in shed.message
    right.receive_batch(flood[:budget], 1.0)
    assert len(right.datagrams_to_send()) == budget and right.counters["shed_first_messages"] == 296, "a small batch sheds nothing"


def test_messages_of_running_exchanges_are_never_shed() -> None:
    pair = peer_pair()
    right = pair.right
    right.config.max_strangers_per_batch = 1
    right.config.connections.append(dataclasses.replace(right.config.connections[0], name="any", remote_address="%any"))
    net = pair.network
    net.initiate("left", "site")
    net.step()  # MM1 answered
    net.step()  # MM2 at left, MM3 in flight
    mm3 = net.in_flight.popleft()
    flood = [(_mm1(n), (f"198.18.0.{n}", 500), (RIGHT, 500)) for n in range(1, 50)]
    right.receive_batch([*flood, (mm3.data, mm3.src, mm3.dst)], net.now)
    replies = right.datagrams_to_send()
    assert [d.dst[0] for d in replies].count(LEFT) == 1, "MM4 goes out"
    assert right.counters["shed_first_messages"] == 48
    net.in_flight.extend(d for d in replies if d.dst[0] == LEFT)
    net.run()
    assert len(right.child_sas) == 1, "the flood cost the real peer nothing"
