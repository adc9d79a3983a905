"""NAT-T in memory: the simulated NAT, the float to 4500, keepalives, mapping loss and repair."""

from __future__ import annotations

import dataclasses

from ipseclab.demo import NAT_PUBLIC_ADDRESS, DemoOptions
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import MessageEvent, NatDetected, NatKeepalive, PeerMoved, PortFloated
from ipseclab.wire.v1.constants import ExchangeType
from ipseclab.wire.v1.isakmp import Message, NatDPayload


def _session(**kw) -> LabSession:  # noqa: ANN003
    s = LabSession(DemoOptions(seed=11, nat=True, **kw))
    s.run_to_end()
    return s


def test_nat_is_detected_and_ike_floats_to_4500() -> None:
    s = _session()
    assert s.established(), s.explanation()
    det = {e.peer: e for e in s.events if isinstance(e, NatDetected)}
    assert det["left"].local_behind_nat and not det["left"].remote_behind_nat
    assert det["right"].remote_behind_nat and not det["right"].local_behind_nat
    floated = [e for e in s.events if isinstance(e, PortFloated)]
    assert {e.peer for e in floated} == {"left", "right"}
    sent = s.messages()
    assert [m.src[1] for m in sent[:4]] == [500] * 4
    assert all(m.src[1] == 4500 and m.dst[1] == 4500 and m.non_esp_marker for m in sent[4:])
    # right only ever sees (and answers) the NAT's public address
    assert all(m.dst[0] == NAT_PUBLIC_ADDRESS for m in sent if m.peer == "right")
    assert {p.udp_encapsulated for peer in (s.left, s.right) for p in peer.child_sas} == {True}
    assert s.nat is not None and len(s.nat.mappings) == 2  # 500 and 4500


def test_keepalives_hold_the_mapping_open() -> None:
    s = _session()
    s.advance(125)
    keepalives = [e for e in s.events if isinstance(e, NatKeepalive)]
    assert len(keepalives) == 6 and {e.peer for e in keepalives} == {"left"}
    assert all(e.dst[1] == 4500 for e in keepalives)
    assert s.right.counters.get("natt_keepalives") == 6
    assert not [e for e in s.events if isinstance(e, PeerMoved)]
    assert (s.left.config.address, 4500) in s.nat.mappings


def test_mapping_lost_without_keepalives_then_repaired() -> None:
    s = LabSession(DemoOptions(seed=12, nat=True), start=False)
    s.left.config.natt_keepalive = 0
    s.nat.remap_ports = True
    s.network.initiate("left", "site")
    s.run_to_end()
    assert s.established()
    first_port = s.nat.mappings[(s.left.config.address, 4500)].public_port
    s.advance(120)  # the NAT forgets left: nothing kept the mapping alive
    assert not s.nat.table()
    sa = next(iter(s.left.ike_sas.values()))
    s.left.start_child(sa, "net1", s.network.now)  # left speaks again: a new mapping, a new public port
    s.network.collect()
    s.run_to_end()
    moved = [e for e in s.events if isinstance(e, PeerMoved)]
    assert len(moved) == 1 and moved[0].peer == "right"
    assert moved[0].old[1] == first_port and moved[0].new[1] != first_port
    assert len(s.left.child_sas) == 2 and len(s.right.child_sas) == 2


def test_forced_encapsulation_without_nat() -> None:
    s = LabSession(DemoOptions(seed=13, encap=True))
    s.run_to_end()
    assert s.established()
    det = next(e for e in s.events if isinstance(e, NatDetected) and e.peer == "left")
    assert det.forced
    assert all(m.src[1] == 4500 for m in s.messages()[4:])


def test_spoofed_nat_d_and_junk_on_4500_do_not_hurt() -> None:
    s = LabSession(DemoOptions(seed=14, nat=True))
    net = s.network

    def spoof(d):  # noqa: ANN001, ANN202 - rewrite left's NAT-D hashes in MM3 to garbage
        msg = Message.decode(d.data) if d.dst[1] == 500 else None
        if msg and msg.exchange_type == ExchangeType.MAIN and not msg.encrypted_body and any(isinstance(p, NatDPayload) for p in msg.payloads):
            msg.payloads = [dataclasses.replace(p, data=b"\x00" * len(p.data)) if isinstance(p, NatDPayload) else p for p in msg.payloads]
            d = dataclasses.replace(d, data=msg.encode())
        return s.nat(d)

    net.nat = spoof
    s.run_to_end()
    assert s.established(), s.explanation()  # NAT-D only decides where to float; auth is unaffected
    right = s.right
    src = (NAT_PUBLIC_ADDRESS, 4500)
    for junk in [b"", b"\xff", b"\x00", b"\x00\x00\x00", b"\x00\x00\x00\x00", b"\x00\x00\x00\x00" + b"\x01" * 10, b"\x12\x34\x56\x78" + bytes(20)]:
        right.receive_datagram(junk, src, (right.config.address, 4500), net.now)
    while right.next_event() is not None:
        pass
    assert right.counters["natt_keepalives"] == 1
    assert right.counters["natt_truncated"] == 3
    assert right.counters["malformed"] >= 2
    assert s.established()
    assert [m for m in s.messages() if isinstance(m, MessageEvent)]


def test_transport_mode_behind_nat_sends_original_addresses() -> None:
    """RFC 3947 §5.2: NAT-OA payloads carry the addresses the NAT rewrote."""
    import ipaddress

    from ipseclab.demo import LEFT_INSIDE_ADDRESS, RIGHT_ADDRESS, demo_configs
    from ipseclab.ikev1.policy import TransformSet
    from ipseclab.wire.v1.isakmp import NatOAPayload, decode_payloads

    opts = DemoOptions(seed=15, nat=True)
    configs = demo_configs(opts)
    ts = TransformSet("ts1", "aes128", "sha1", "transport")
    for cfg in configs:
        cfg.connections = [
            dataclasses.replace(c, children=tuple(dataclasses.replace(ch, transform_sets=(ts,)) for ch in c.children))
            for c in cfg.connections
        ]
    s = LabSession(opts, configs=configs)
    s.run_to_end()
    assert s.established(), s.explanation()
    qm1, qm2 = [m for m in s.messages() if m.exchange == "Quick Mode"][:2]
    assert qm1.summary.endswith("NAT-OAi, NAT-OAr") and qm2.summary.endswith("NAT-OAi, NAT-OAr")
    msg = Message.decode(qm1.raw)
    oas = [p for p in decode_payloads(msg.first_payload, qm1.plaintext, allow_trailing=True) if isinstance(p, NatOAPayload)]
    assert [str(p.value) for p in oas] == [LEFT_INSIDE_ADDRESS, RIGHT_ADDRESS]
    right_pair = s.right.child_sas[0]
    assert right_pair.mode == "UDP transport"
    assert right_pair.original_addresses == (LEFT_INSIDE_ADDRESS, RIGHT_ADDRESS)
    assert ipaddress.ip_address(s.left.child_sas[0].original_addresses[0]) == ipaddress.ip_address(NAT_PUBLIC_ADDRESS)


def test_captures_on_both_sides_of_the_nat(tmp_path) -> None:  # noqa: ANN001
    import shutil
    import subprocess

    from ipseclab.demo import LEFT_INSIDE_ADDRESS, RIGHT_ADDRESS
    from ipseclab.export import write_datagrams_pcap

    s = _session()
    inside, outside = s.nat.captures(s.network.wire)
    assert len(inside) == len(outside) == 9
    assert {d.src[0] for _, d in inside} == {LEFT_INSIDE_ADDRESS, RIGHT_ADDRESS}
    assert {d.src[0] for _, d in outside} == {NAT_PUBLIC_ADDRESS, RIGHT_ADDRESS}
    assert [d.data for _, d in inside] == [d.data for _, d in outside]  # same bytes, other addresses
    if shutil.which("tshark"):
        for name, side in (("inside", inside), ("outside", outside)):
            path = tmp_path / f"{name}.pcap"
            assert write_datagrams_pcap(side, path) == 9
            out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "ip.src", "-e", "udp.srcport"], capture_output=True, text=True, check=True).stdout
            assert (LEFT_INSIDE_ADDRESS if name == "inside" else NAT_PUBLIC_ADDRESS) in out


def test_lab_session_start_quick_mode_after_the_mapping_timed_out() -> None:
    """LabSession.start_quick_mode: left speaks again at the network's time; the NAT maps it anew."""
    import pytest

    from ipseclab.errors import ConfigError

    s = LabSession(DemoOptions(seed=12, nat=True), start=False)
    s.left.config.natt_keepalive = 0
    s.network.initiate("left", "site")
    with pytest.raises(ConfigError, match="phase 1"):
        s.start_quick_mode()  # MM1 is only in flight: no ISAKMP SA yet
    s.run_to_end()
    old_mid = s.left.child_sas[0].message_id
    s.advance(120)
    assert not s.nat.table()
    s.nat.remap_ports = True  # the renewed mapping gets another public port
    kinds: list[str] = []
    s.subscribe(kinds.append)
    mid = s.start_quick_mode()
    assert kinds == ["step"] and mid != old_mid and s.pending == 1
    qm1 = s.messages()[-1]
    assert (qm1.exchange, qm1.index, qm1.message_id, qm1.time) == ("Quick Mode", 1, mid, 120.0)
    s.run_to_end()
    moved = [e for e in s.events if isinstance(e, PeerMoved)]
    assert [(e.peer, e.old, e.new) for e in moved] == [("right", (NAT_PUBLIC_ADDRESS, 4500), (NAT_PUBLIC_ADDRESS, 20000))]
    assert {p.message_id for p in s.right.child_sas} == {old_mid, mid}
    with pytest.raises(ConfigError, match="no child"):
        s.start_quick_mode("net9")


def test_lab_session_start_quick_mode_without_nat() -> None:
    s = LabSession(DemoOptions(seed=3, policies=2))
    s.run_to_end()
    mid = s.start_quick_mode("net2")
    s.run_to_end()
    assert s.established()
    pairs = [p for p in s.left.child_sas if p.message_id == mid]
    assert len(pairs) == 1 and pairs[0].child == "net2" and len(s.left.child_sas) == 3


def test_the_port_switch_note_does_not_overlap_the_ports_line() -> None:
    """The arrow where IKE moves to 4500 is taller; its note sits below the ports, not on them."""
    import re

    from ipseclab.teaching.widgets.render import FLOAT_NOTE_H, ROW_H, arrow_svg

    s = _session()
    mm5 = s.messages()[4]
    plain = arrow_svg(mm5, left_name="left", delivered=True, selected=False)
    marked = arrow_svg(mm5, left_name="left", delivered=True, selected=False, floated_here=True)
    assert "port switch" not in plain and f'height="{ROW_H}"' in plain
    assert f'height="{ROW_H + FLOAT_NOTE_H}"' in marked
    ys = {text: float(y) for y, text in re.findall(r'<text x="[\d.]+" y="([\d.]+)"[^>]*>([^<]+)</text>', marked)}
    ports = next(y for text, y in ys.items() if "(non-ESP marker)" in text)
    note = ys["port switch 500 \u2192 4500"]
    assert note - ports >= 12 and note <= ROW_H + FLOAT_NOTE_H - 3


def test_only_authenticated_messages_move_the_peer_and_never_the_natted_side() -> None:
    """RFC 3947 §7: a spoofed datagram with the right cookies must not redirect the SA."""
    s = _session()
    right_sa = next(iter(s.right.ike_sas.values()))
    before = right_sa.remote
    # same cookies, garbage encrypted body, from an attacker's address on 4500
    msg = Message(right_sa.icookie, right_sa.rcookie, ExchangeType.INFORMATIONAL, 1, 0x4242, first_payload=8, encrypted_body=bytes(32))
    s.right.receive_datagram(b"\x00" * 4 + msg.encode(), ("198.18.0.66", 4500), right_sa.local, s.network.now)
    assert right_sa.remote == before
    # the peer behind the NAT does not follow the other end around
    left_sa = next(iter(s.left.ike_sas.values()))
    assert left_sa.nat_local
    assert s.left.counters.get("peer_address_change_ignored", 0) == 0


def test_a_peer_view_capture_is_what_a_tap_beside_that_peer_sees(tmp_path) -> None:  # noqa: ANN001
    """``write_pcap(view=...)``: left's sent datagrams as sent, its received ones as they
    arrived — behind the NAT left sees its own inside address, right only the public one."""
    from scapy.all import UDP, rdpcap

    from ipseclab.demo import LEFT_INSIDE_ADDRESS, NAT_PUBLIC_ADDRESS, RIGHT_ADDRESS, DemoOptions
    from ipseclab.export import write_pcap
    from ipseclab.teaching.lab import LabSession

    run = LabSession(DemoOptions(seed=3, nat=True))
    run.run_to_end()
    counts = {}
    for view in ("left", "right"):
        path = tmp_path / f"{view}.pcap"
        counts[view] = write_pcap(run.events, path, view=view)
        pairs = {(p["IP"].src, p["IP"].dst) for p in rdpcap(str(path)) if UDP in p}
        if view == "left":
            assert pairs == {(LEFT_INSIDE_ADDRESS, RIGHT_ADDRESS), (RIGHT_ADDRESS, LEFT_INSIDE_ADDRESS)}
        else:
            assert pairs == {(NAT_PUBLIC_ADDRESS, RIGHT_ADDRESS), (RIGHT_ADDRESS, NAT_PUBLIC_ADDRESS)}
    assert counts["left"] == counts["right"] == len(run.messages())  # each message once: sent by one, received by the other
