"""The trace of real demo runs: JSON serialisation, round trips, secret masking, ordering.

Every event of several runs (Main/Aggressive Mode, PSK/RSA, PFS with two Quick
Modes, a proposal mismatch, a wrong PSK, a lossy link with retransmissions, forced
UDP encapsulation with a port float, and Informational Deletes) must serialise with
:func:`event_to_dict` to JSON and come back equal with :func:`event_from_dict`; no
secret may appear in the JSON unless ``include_secrets=True`` is asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict

import pytest
from engine_support import terminate

from ipseclab.crypto.rng import SeededRng
from ipseclab.demo import DEMO_PSK, DemoOptions, demo_configs, make_demo, run_demo
from ipseclab.peer import Datagram, Peer
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.trace import (
    EVENT_TYPES,
    SECRET_PLACEHOLDER,
    Event,
    KeyDerived,
    MessageEvent,
    event_from_dict,
    event_to_dict,
)
from ipseclab.wire.v1.constants import ExchangeType
from ipseclab.wire.v1.isakmp import Message


@dataclasses.dataclass
class Traced:
    events: list[Event]
    peers: list[Peer]
    secrets: dict[str, bytes]  # name -> secret value held by the peers at some point


def _peer_secrets(peers: list[Peer]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for peer in peers:
        for sa in peer.ike_sas.values():
            for field in ("gxy", "skeyid", "skeyid_d", "skeyid_a", "skeyid_e", "enc_key"):
                value = getattr(sa, field)
                if value:
                    out[f"{peer.name} {sa.ref} {field}"] = value
        for pair in peer.child_sas:
            for d, esp_sa in (("in", pair.inbound), ("out", pair.outbound)):
                out[f"{peer.name} {pair.child} {d} enc"] = esp_sa.enc_key
                out[f"{peer.name} {pair.child} {d} integ"] = esp_sa.integ_key
    return out


def _traced(net: MemoryNetwork, secrets: dict[str, bytes] | None = None) -> Traced:
    all_secrets = dict(secrets or {})
    all_secrets.update(_peer_secrets(net.peers))
    return Traced(list(net.events), list(net.peers), all_secrets)


def _demo(opts: DemoOptions) -> Traced:
    return _traced(run_demo(opts).network)


def _terminated() -> Traced:
    run = run_demo(DemoOptions(seed=201, pfs=14, policies=2))
    assert run.established()
    before = _peer_secrets(run.network.peers)
    terminate(run.network, "left")
    return _traced(run.network, before)


def _lossy() -> Traced:
    run = make_demo(DemoOptions(seed=202))
    lost: list[int] = []

    def drop(d: Datagram) -> bool:
        # lose the responder's first Main Mode and first Quick Mode reply
        ex = d.data[18]
        if (
            d.src[0] == run.right.config.address
            and ex in (ExchangeType.MAIN, ExchangeType.QUICK)
            and ex not in lost
        ):
            lost.append(ex)
            return True
        return False

    run.network.drop = drop
    run.network.initiate("left", "site")
    run.network.advance(60)
    assert run.established() and len(lost) == 2
    return _traced(run.network)


def _forced_encapsulation() -> Traced:
    left_cfg, right_cfg = demo_configs(DemoOptions())
    left_cfg.connections = [
        dataclasses.replace(c, force_encapsulation=True) for c in left_cfg.connections
    ]
    left = Peer(left_cfg, rng=SeededRng(203, "left"))
    right = Peer(right_cfg, rng=SeededRng(203, "right"))
    net = MemoryNetwork([left, right])
    net.initiate("left", "site")
    net.run()
    assert left.child_sas and right.child_sas
    return _traced(net)


def _nat_mapping_renewed() -> Traced:
    """Behind the simulated NAT: keepalives, then a lost mapping the responder follows."""
    from ipseclab.teaching.lab import LabSession

    s = LabSession(DemoOptions(seed=204, nat=True))
    s.run_to_end()
    s.advance(45)  # two keepalives
    s.left.config.natt_keepalive = 0
    s.nat.remap_ports = True
    sa = next(iter(s.left.ike_sas.values()))
    sa.next_keepalive = None
    s.advance(200)  # the mapping times out
    s.left.start_child(sa, "net1", s.network.now)
    s.network.collect()
    s.run_to_end()
    assert any(e.kind == "moved" for e in s.events) and any(e.kind == "keepalive" for e in s.events)
    return _traced(s.network)


def _esp_ping_with_replay() -> Traced:
    """Pings through the ESP data plane, then one ESP packet captured and re-injected."""
    from ipseclab.esp.ping import ping_through_sas

    run = run_demo(DemoOptions(seed=209))
    result = ping_through_sas(run, 4)
    assert result.lost == 0
    t, wire = result.wire[0]
    assert result.planes["right"].inbound_ip(wire, t + 1) is None  # replayed: dropped, reported
    return _traced(run.network)


SCENARIOS = {
    "main-psk": lambda: _demo(DemoOptions(seed=204)),
    "aggressive": lambda: _demo(DemoOptions(seed=205, mode="aggressive")),
    "rsa": lambda: _demo(DemoOptions(seed=206, auth="rsa")),
    "pfs-2-policies-terminated": _terminated,
    "mismatch": lambda: _demo(DemoOptions(seed=207, mismatch=True)),
    "wrong-psk": lambda: _demo(DemoOptions(seed=208, wrong_psk=True)),
    "lossy": _lossy,
    "forced-encapsulation": _forced_encapsulation,
    "nat-mapping-renewed": _nat_mapping_renewed,
    "esp-ping-replay": _esp_ping_with_replay,
}


@functools.cache
def scenario(name: str) -> Traced:
    return SCENARIOS[name]()


def test_scenarios_cover_every_event_type() -> None:
    kinds = {e.kind for name in SCENARIOS for e in scenario(name).events}
    assert kinds == set(EVENT_TYPES)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_event_round_trips_through_json(name: str) -> None:
    events = scenario(name).events
    assert events
    for e in events:
        data = event_to_dict(e)
        assert data["kind"] == e.kind
        back = event_from_dict(json.loads(json.dumps(data)))
        assert type(back) is type(e)
        if isinstance(e, KeyDerived) and e.secret:
            assert isinstance(back, KeyDerived)
            assert back.value == b""  # masked, not the placeholder text
            assert dataclasses.replace(back, value=e.value) == e
        else:
            assert back == e, e.describe()
        full = event_from_dict(json.loads(json.dumps(event_to_dict(e, include_secrets=True))))
        assert full == e, e.describe()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_secrets_are_masked_unless_asked_for(name: str) -> None:
    keys = [e for e in scenario(name).events if isinstance(e, KeyDerived)]
    if name != "mismatch":
        assert keys
    for e in keys:
        assert e.secret
        assert e.value
        assert event_to_dict(e)["value"] == SECRET_PLACEHOLDER
        assert event_to_dict(e, include_secrets=True)["value"] == {"hex": e.value.hex()}
        assert e.value.hex() not in repr(e)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_secret_anywhere_in_the_trace_json(name: str) -> None:
    traced = scenario(name)
    secrets = dict(traced.secrets)
    for e in traced.events:
        if isinstance(e, KeyDerived):
            secrets[f"{e.peer} {e.sa} {e.name}"] = e.value
    secrets["psk"] = DEMO_PSK
    names = " ".join(secrets)
    expected = {
        "mismatch": (),  # no key was ever derived
        "wrong-psk": ("g^xy", "SKEYID_d", "SKEYID_a", "SKEYID_e", "Ka"),
    }.get(name, ("g^xy", "SKEYID_d", "SKEYID_a", "SKEYID_e", "Ka", "KEYMAT", "ESP integrity key"))
    for what in expected:
        assert what in names
    masked = json.dumps([event_to_dict(e) for e in traced.events]).lower()
    masked += "\n".join(e.describe() for e in traced.events).lower()
    masked += "\n".join(repr(e) for e in traced.events).lower()
    assert DEMO_PSK.decode().lower() not in masked
    for label, value in secrets.items():
        assert len(value) >= 16, label
        assert value.hex() not in masked, f"{label} leaks into the trace"
    # and the search does find them when they are asked for
    full = json.dumps([event_to_dict(e, include_secrets=True) for e in traced.events]).lower()
    derived = [e for e in traced.events if isinstance(e, KeyDerived)]
    assert all(e.value.hex() in full for e in derived)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_seq_increases_strictly_per_peer(name: str) -> None:
    by_peer: dict[str, list[Event]] = defaultdict(list)
    for e in scenario(name).events:
        by_peer[e.peer].append(e)
    assert set(by_peer) == {"left", "right"}
    for events in by_peer.values():
        seqs = [e.seq for e in events]
        # every event a peer emitted reaches the trace, in order
        assert seqs == list(range(1, len(seqs) + 1))
        times = [e.time for e in events]
        assert times == sorted(times)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_message_events_are_complete(name: str) -> None:
    traced = scenario(name)
    address = {p.name: p.config.address for p in traced.peers}
    msgs = [e for e in traced.events if isinstance(e, MessageEvent)]
    assert any(e.direction == "sent" for e in msgs) and any(e.direction == "received" for e in msgs)
    for e in msgs:
        assert e.direction in ("sent", "received")
        assert e.sender_role in ("initiator", "responder")
        for addr in (e.src, e.dst):
            assert isinstance(addr, tuple) and len(addr) == 2
            assert isinstance(addr[0], str) and 0 < addr[1] < 65536
        local = e.src if e.direction == "sent" else e.dst
        assert local[0] == address[e.peer]
        # our own side is always IKE's 500 or 4500; a NAT may show the peer on any port
        assert local[1] in (500, 4500)
        assert e.src[0] != e.dst[0]
        assert isinstance(e.raw, bytes) and len(e.raw) >= 28
        msg = Message.decode(e.raw)
        assert (msg.icookie.hex(), msg.message_id, msg.exchange_type) == (
            e.icookie,
            e.message_id,
            e.exchange_type,
        )
        assert e.encrypted == msg.is_encrypted
        assert isinstance(e.tree, dict) and e.tree
        assert e.summary.startswith("HDR*" if e.encrypted else "HDR")
        if e.encrypted:
            assert isinstance(e.plaintext, bytes) and e.plaintext
            assert len(e.plaintext) == len(msg.encrypted_body or b"")
        else:
            assert e.plaintext is None
        # the non-ESP marker is used exactly on the NAT-T port (RFC 3948 §2.2)
        if e.direction == "sent":
            # the marker goes with our NAT-T socket (the peer's port may be a NAT's mapping)
            assert e.non_esp_marker == (e.src[1] == 4500)
    if name == "forced-encapsulation":
        assert any(e.src[1] == e.dst[1] == 4500 for e in msgs)
    if name == "lossy":
        assert any(e.retransmission for e in msgs)
