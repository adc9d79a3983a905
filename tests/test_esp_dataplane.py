"""DataPlane: SPD/SAD, tunnel and transport, UDP encapsulation, sampled events, lifetimes."""

from __future__ import annotations

import json

import pytest
from esp_support import LEFT, RIGHT, icmp_packet, keys_for, sa_pair
from scapy.layers.inet import ICMP, IP, UDP, defragment
from scapy.layers.inet6 import IPv6

from ipseclab.esp import EspLifetime, EspSa
from ipseclab.esp.dataplane import DataPlane, Output
from ipseclab.trace import EspDropped, EspPacket, EspStats, Info, event_from_dict, event_to_dict


def _planes(esp_id=20, bits=128, auth=None, *, left_kw=None, right_kw=None, **sa_kw):
    """left protects 10.1.0.0/16 <-> 10.2.0.0/16 with right; returns planes and the 4 SAs."""
    out_l, in_r = sa_pair(esp_id, bits, auth, spi=0x1001, **sa_kw)
    keys = keys_for(esp_id, bits, auth)
    out_r, in_l = sa_pair(esp_id, bits, auth, spi=0x2002, keys=keys, src=RIGHT, dst=LEFT, **sa_kw)
    left, right = DataPlane("left", **(left_kw or {})), DataPlane("right", **(right_kw or {}))
    left.install(in_l, out_l, "10.1.0.0/16", "10.2.0.0/16", name="net")
    right.install(in_r, out_r, "10.2.0.0/16", "10.1.0.0/16", name="net")
    return left, right, (out_l, in_r, out_r, in_l)


def _carry(outputs: list[Output], receiver: DataPlane, now: float) -> bytes | None:
    (out,) = outputs
    if out.kind == "udp":
        return receiver.inbound_esp(out.data, out.src, out.dst, now)
    return receiver.inbound_ip(out.data, now)


@pytest.mark.parametrize("esp_id,bits,auth", [(20, 256, None), (12, 128, 2), (11, None, 5)], ids=["gcm", "cbc", "null"])
def test_tunnel_round_trip_ipv4_and_ipv6_inner(esp_id, bits, auth) -> None:
    left, right, (out_l, *_rest) = _planes(esp_id, bits, auth)
    request = icmp_packet("10.1.0.5", "10.2.3.4", size=100)
    (out,) = left.outbound(request, 1.0)
    assert out.kind == "esp" and (out.src, out.dst) == (LEFT, RIGHT)
    outer = IP(out.data)
    assert (outer.src, outer.dst, outer.proto) == (LEFT, RIGHT, 50) and out.esp == bytes(outer.payload)
    assert right.inbound_ip(out.data, 1.0) == request
    assert right.inbound_esp(left.outbound(request, 1.1)[0].esp, LEFT, RIGHT, 1.1) == request
    reply = bytes(IP(src="10.2.3.4", dst="10.1.0.5") / ICMP(type=0) / b"pong")
    assert _carry(right.outbound(reply, 1.2), left, 1.2) == reply
    # IPv6 inside IPv4 ESP (next header 41) with IPv6 selectors
    v6l, v6r = sa_pair(20, 128, None, spi=0x3003)
    left.install(None, v6l, "2001:db8:1::/48", "2001:db8:2::/48")
    right.install(v6r, None, "2001:db8:2::/48", "2001:db8:1::/48")
    inner6 = bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:2::1") / UDP(sport=1, dport=2) / b"six")
    assert right.inbound_ip(left.outbound(inner6, 2.0)[0].data, 2.0) == inner6
    assert left.counters.out_packets == 3 and right.counters.in_packets == 3


def test_udp_encapsulation_outputs_the_esp_packet_as_udp_payload() -> None:
    left, right, _ = _planes(udp_encap=(4500, 4500))
    request = icmp_packet("10.1.0.5", "10.2.0.9")
    (out,) = left.outbound(request, 0.0)
    assert out == Output("udp", out.data, LEFT, RIGHT, 4500, 4500)
    assert out.esp == out.data and out.data[:4] == (0x1001).to_bytes(4, "big")  # no non-ESP marker
    assert right.inbound_esp(out.data, "203.0.113.9", RIGHT, 0.0) == request  # NATed source is fine
    from ipseclab.esp.packet import udp_packet

    wire = udp_packet(LEFT, RIGHT, 4500, 4500, left.outbound(request, 0.1)[0].data)
    assert right.inbound_ip(wire, 0.1) == request
    ike = udp_packet(LEFT, RIGHT, 4500, 4500, b"\x00\x00\x00\x00" + b"ISAKMP...")
    assert right.inbound_ip(ike, 0.2) is None and right.counters.not_esp == 1
    assert right.inbound_esp(b"\xff", LEFT, RIGHT, 0.3) is None and right.counters.keepalives == 1


def test_transport_mode_with_udp_encapsulation_fixes_the_inner_checksum() -> None:
    tx, rx = sa_pair(12, 128, 2, mode="transport", udp_encap=(4500, 4500))
    left, right = DataPlane("left"), DataPlane("right")
    left.install(None, tx, "10.0.0.5/32", f"{RIGHT}/32")
    right.install(rx, None, f"{RIGHT}/32", "203.0.113.7/32")
    right_oa = DataPlane("right-oa")
    rx2 = EspSa(rx.spi, rx.src, rx.dst, rx.cipher, rx.integ, rx.enc_key, rx.integ_key, mode="transport", udp_encap=(4500, 4500))
    right_oa.install(rx2, None, f"{RIGHT}/32", "203.0.113.7/32", nat_oa=("10.0.0.5", RIGHT))
    original = bytes(IP(src="10.0.0.5", dst=RIGHT) / UDP(sport=5000, dport=53) / b"query")
    (out,) = left.outbound(original, 0.0)
    assert out.kind == "udp"
    for plane in (right, right_oa):  # full recompute, and RFC 1624 incremental with NAT-OA
        got = IP(plane.inbound_esp(out.data, "203.0.113.7", RIGHT, 0.0))
        assert got.src == "203.0.113.7" and bytes(got[UDP].payload) == b"query"
        claimed = got[UDP].chksum
        del got[UDP].chksum
        assert IP(bytes(got))[UDP].chksum == claimed


def test_spd_drops_and_counts_uncovered_packets() -> None:
    left, right, _ = _planes()
    assert left.outbound(icmp_packet("10.9.9.9", "10.2.0.1"), 0.0) == []
    assert left.outbound(icmp_packet("10.1.0.1", "10.3.0.1"), 0.1) == []
    assert left.outbound(b"\x45" + bytes(10), 0.2) == []
    assert left.counters.no_policy == 2 and left.counters.bad_inner == 1 and left.counters.out_packets == 0
    drops = [e for e in left.drain_events() if isinstance(e, EspDropped)]
    assert [d.reason for d in drops] == ["no policy", "bad inner packet"]  # second "no policy" rate-limited
    assert "10.9.9.9 -> 10.2.0.1" in drops[0].detail
    # the most specific policy wins; a rekey replaces the outbound SA of the same selectors
    narrow, _ = sa_pair(20, 128, None, spi=0x4004)
    left.install(None, narrow, "10.1.2.0/24", "10.2.0.0/16", name="narrow")
    (out,) = left.outbound(icmp_packet("10.1.2.3", "10.2.0.1"), 1.0)
    assert out.esp[:4] == (0x4004).to_bytes(4, "big")
    rekeyed, _ = sa_pair(20, 128, None, spi=0x5005)
    left.install(None, rekeyed, "10.1.2.0/24", "10.2.0.0/16", name="narrow")
    assert left.outbound(icmp_packet("10.1.2.3", "10.2.0.1"), 1.1)[0].esp[:4] == (0x5005).to_bytes(4, "big")
    assert [p["spi_out"] for p in left.policies()] == ["00005005", "00001001"]
    assert {r["spi"]: r["state"] for r in left.sa_table()}["00004004"] == "superseded"
    assert left.remove(0x5005) and not left.remove(0x5005)
    assert left.outbound(icmp_packet("10.1.2.3", "10.2.0.1"), 1.2)[0].esp[:4] == (0x1001).to_bytes(4, "big")


def test_inbound_unknown_spi_policy_mismatch_and_dummy_packets() -> None:
    left, right, (out_l, in_r, *_r) = _planes()
    assert right.inbound_esp(b"\x00\x00\x99\x99" + bytes(40), LEFT, RIGHT, 0.0) is None
    assert right.counters.unknown_spi == 1
    # an authentic packet whose inner source is outside the SA's selectors (RFC 4301 §5.2)
    spoofed = out_l.protect(icmp_packet("10.7.0.1", "10.2.0.1"), 4)
    assert right.inbound_esp(spoofed, LEFT, RIGHT, 0.1) is None
    assert right.counters.policy_mismatch == 1 and in_r.counters.packets == 1
    dummy = out_l.protect(b"", 59)  # next header 59: a TFC dummy packet (RFC 4303 §2.6)
    assert right.inbound_esp(dummy, LEFT, RIGHT, 0.2) is None and right.counters.dummy == 1
    # TFC padding after the inner packet is removed (RFC 4303 §2.7)
    inner = icmp_packet("10.1.0.1", "10.2.0.1")
    assert right.inbound_esp(out_l.protect(inner + bytes(50), 4), LEFT, RIGHT, 0.3) == inner
    reasons = [e.reason for e in right.drain_events() if isinstance(e, EspDropped)]
    assert reasons == ["unknown spi", "policy mismatch"]


def test_replay_and_tamper_drops_are_counted_and_reported_rate_limited() -> None:
    left, right, _ = _planes(right_kw={"drop_event_seconds": 1.0})
    (out,) = left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 0.0)
    assert right.inbound_ip(out.data, 0.0) is not None
    for i in range(5):
        assert right.inbound_ip(out.data, 0.1 + i * 0.1) is None  # captured and re-injected
    assert right.inbound_ip(out.data, 2.0) is None
    tampered = bytearray(left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 2.1)[0].data)
    tampered[40] ^= 0x01
    assert right.inbound_ip(bytes(tampered), 2.1) is None
    assert right.inbound_ip(left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 2.2)[0].data, 2.2) is not None
    assert right.counters.sa_drops == {"replayed": 6, "icv failure": 1}
    drops = [e for e in right.drain_events() if isinstance(e, EspDropped)]
    assert [(d.reason, d.suppressed, d.total) for d in drops] == [("replayed", 0, 1), ("replayed", 4, 6), ("icv failure", 0, 1)]
    assert "replayed" in drops[0].describe() and "dropped" in drops[0].describe()


def test_packet_events_first_few_per_sa_then_on_request_then_stats() -> None:
    left, right, _ = _planes(left_kw={"trace_first": 2, "stats_packets": 5, "stats_seconds": 100.0})
    for i in range(12):
        left.outbound(icmp_packet("10.1.0.1", "10.2.0.1", seq=i), 0.0)
    events = left.drain_events()
    packets = [e for e in events if isinstance(e, EspPacket)]
    assert [p.esp_seq for p in packets] == [1, 2]
    stats = [e for e in events if isinstance(e, EspStats)]
    assert [s.packets_out for s in stats] == [5, 5]  # every 5 packets (the first one opens the interval)
    left.trace_next(3)
    for i in range(5):
        left.outbound(icmp_packet("10.1.0.1", "10.2.0.1", size=10 + i), 1.0)
    packets = [e for e in left.drain_events() if isinstance(e, EspPacket)]
    assert [p.esp_seq for p in packets] == [13, 14, 15] and {p.reason for p in packets} == {"requested"}
    p = packets[0]
    assert p.direction == "out" and p.spi == 0x1001 and p.outer["protocol"] == 50 and p.outer["src"] == LEFT
    assert len(p.iv) == 8 and len(p.icv) == 16 and p.next_header == 4 and p.inner_len == 38
    assert "ICMP 10.1.0.1 > 10.2.0.1" in p.inner_summary and p.inner_fields["ICMP"]["type"] == 8
    assert p.ciphertext_len == len(p.esp) - 8 - 8 - 16 and p.wire_len == 20 + len(p.esp)


def test_stats_are_time_based_when_the_clock_moves() -> None:
    left, _, _ = _planes(left_kw={"trace_first": 0, "stats_packets": 10_000, "stats_seconds": 1.0})
    for t in (10.0, 10.5, 11.2, 11.5):
        left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), t)
    left.tick(11.9)  # less than a second since the last report: nothing
    left.tick(13.0)
    stats = [e for e in left.drain_events() if isinstance(e, EspStats)]
    assert [(s.packets_out, s.interval) for s in stats] == [(3, pytest.approx(1.2)), (1, pytest.approx(1.8))]
    assert {row["spi"]: row["packets"] for row in stats[0].sas} == {"00001001": 3, "00002002": 0}
    left.tick(20.0)  # no traffic since: no event
    assert left.drain_events() == []


def test_inbound_packet_events_decode_the_inner_packet() -> None:
    left, right, _ = _planes()
    right.inbound_ip(left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 0.0)[0].data, 0.0)
    (event,) = [e for e in right.drain_events() if isinstance(e, EspPacket)]
    assert event.direction == "in" and event.outer["src"] == LEFT and event.outer["protocol"] == 50
    assert event.inner_fields["IP"]["src"] == "10.1.0.1"


def test_events_survive_json_round_trip() -> None:
    left, right, _ = _planes(left_kw={"stats_packets": 2})
    for _ in range(3):
        right.inbound_ip(left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 0.0)[0].data, 0.0)
    right.inbound_esp(b"\x00\x00\x77\x77" + bytes(30), LEFT, RIGHT, 0.0)
    events = left.drain_events() + right.drain_events()
    kinds = {e.kind for e in events}
    assert {"esp-packet", "esp-stats", "esp-drop"} <= kinds
    for e in events:
        data = json.loads(json.dumps(event_to_dict(e)))
        assert event_from_dict(data) == e


def test_no_keys_in_tables_stats_or_events() -> None:
    left, right, sas = _planes(12, 256, 2)
    right.inbound_ip(left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 0.0)[0].data, 0.0)
    text = json.dumps([left.sa_table(), left.stats(), [event_to_dict(e) for e in left.drain_events() + right.drain_events()]])
    for sa in sas:
        assert sa.enc_key.hex() not in text and sa.integ_key.hex() not in text


def test_lifetimes_soft_then_hard_call_back_and_remove_the_sa() -> None:
    calls = []
    life = EspLifetime(soft_packets=3, hard_packets=5, soft_seconds=100.0, hard_seconds=200.0)
    left, right, (out_l, *_r) = _planes(left_kw={"on_lifetime": lambda sa, stage: calls.append((sa.spi, sa.direction, stage))}, lifetime=life)
    for i in range(3):
        assert left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), float(i))
    left.tick(3.0)
    assert calls == [(0x1001, "outbound", "soft")]
    left.tick(3.5)  # reported once per stage
    assert len(calls) == 1
    for _ in range(2):
        assert left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 4.0)
    assert left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 4.1) == []  # hard limit: refused ...
    assert calls[-1] == (0x1001, "outbound", "hard") and left.sa(0x1001) is None  # ... and removed
    assert left.outbound(icmp_packet("10.1.0.1", "10.2.0.1"), 4.2) == [] and left.counters.no_policy == 1
    left.tick(250.0)  # the inbound SA ages out by time
    assert (0x2002, "inbound", "hard") in calls and left.sa(0x2002) is None
    infos = [e for e in left.drain_events() if isinstance(e, Info)]
    assert any("soft lifetime" in e.message for e in infos) and any("hard lifetime" in e.message for e in infos)


def test_large_outer_packets_are_fragmented_and_reassemble() -> None:
    left, right, _ = _planes(left_kw={"mtu": 576})
    big = icmp_packet("10.1.0.1", "10.2.0.1", size=1400)
    outs = left.outbound(big, 0.0)
    assert len(outs) == 3 and all(len(o.data) <= 576 for o in outs) and left.counters.fragments == 3
    whole = bytes(defragment([IP(o.data) for o in outs])[0])
    assert right.inbound_ip(whole, 0.0) == big


def test_install_pair_from_a_real_quick_mode_and_ping() -> None:
    from ipseclab.demo import DemoOptions, run_demo
    from ipseclab.esp.ping import ping_through_sas

    run = run_demo(DemoOptions(seed=5, policies=2))
    result = ping_through_sas(run, 4)
    assert (result.sent, result.received, result.lost) == (4, 4, 0)
    assert len(result.wire) == 8 and all(IP(w).proto == 50 for _, w in result.wire)
    left = result.planes["left"]
    assert len(left.policies()) == 2 and len(left.sa_table()) == 4
    kinds = [e.kind for e in run.events]
    # pings use the first child: 4 SAs (2 per peer) carry traffic, 3 full events for each
    assert kinds.count("esp-packet") == 12 and "esp-stats" in kinds
