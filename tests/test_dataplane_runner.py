"""The data plane's I/O glue without root: SA reconciliation, NAT-T demultiplexing, helpers.

:class:`~ipseclab.runtime.dataplane_runner.DataPlaneRunner` is exercised against a stub UDP runner
around real :class:`~ipseclab.peer.Peer` objects from the in-memory demo: Quick Mode pairs are
installed (UDP-encapsulated ones with the ISAKMP SA's ports), follow a NAT's port change
without losing their sequence numbers, and go when the peer deletes them.  On a loopback UDP
socket the NAT-T demultiplexer hands IKE (non-ESP marker), keepalives and runts to the peer
and everything else to ESP (RFC 3948 §2.2).  The namespace tests (``test_esp_netns.py``)
cover the TUN and raw-socket paths as root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path
from typing import Any

import pytest

from ipseclab.demo import DemoOptions
from ipseclab.esp import packet as pk
from ipseclab.peer import NON_ESP_MARKER, Peer
from ipseclab.runtime.dataplane_runner import DataPlaneRunner
from ipseclab.runtime.netlab.inject import (
    ESP_CIPHERTEXT,
    ESP_ICV,
    CapturedEsp,
    esp_packets,
    flip_bit,
)
from ipseclab.runtime.netlab.pinger import parse
from ipseclab.runtime.transport.esp_raw import split_ipv4
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import Event, Info


class StubRunner:
    """What DataPlaneRunner uses of a UdpPeerRunner: peer, host, listeners, now, its sockets, receive."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.host = peer.config.address
        self.listeners: list[Any] = []
        self._loop = None
        self.ike: list[tuple[bytes, tuple[str, int], int]] = []

    def now(self) -> float:
        return self.peer.now

    def socket(self, port: int) -> None:
        return None

    def stop_reading(self, port: int) -> None:
        pass

    def resume_reading(self, port: int) -> None:
        pass

    def receive(self, batch: list[tuple[bytes, tuple[str, int], int]]) -> None:
        self.ike.extend(batch)

    def flush(self) -> None:
        self.sent = [*getattr(self, "sent", []), *self.peer.datagrams_to_send()]
        while (event := self.peer.next_event()) is not None:
            for listener in self.listeners:
                listener(event)


class StubTun:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, packet: bytes) -> bool:
        self.written.append(packet)
        return True


def _session(**options: Any) -> LabSession:
    session = LabSession(DemoOptions(seed=7, **options))
    session.run_to_end()
    assert session.left.child_sas and session.right.child_sas
    return session


def _runner(peer: Peer) -> tuple[DataPlaneRunner, StubRunner, list[Event]]:
    dpr = DataPlaneRunner(peer.name)
    events: list[Event] = []
    dpr.listeners.append(events.append)
    stub = StubRunner(peer)
    dpr.attach(stub)  # type: ignore[arg-type]
    return dpr, stub, events


def _icmp(src: str, dst: str) -> bytes:
    from scapy.layers.inet import ICMP, IP

    return bytes(IP(src=src, dst=dst) / ICMP(id=1, seq=1) / b"ping")


def test_pairs_are_installed_and_removed_with_the_peer() -> None:
    session = _session()
    left = session.left
    dpr, stub, events = _runner(left)
    (pair,) = left.child_sas
    assert {sa.spi for sa in dpr.dp.sas()} == {pair.inbound.spi, pair.outbound.spi}
    assert all(sa.udp_encap is None for sa in dpr.dp.sas()), "no NAT: plain ESP"
    assert any(isinstance(e, Info) and "installed" in e.message for e in events)
    assert dpr in [getattr(listener, "__self__", None) for listener in stub.listeners]
    out = dpr.dp.outbound(_icmp("10.1.1.1", "10.2.1.1"), left.now)
    assert [o.kind for o in out] == ["esp"], "protected for the raw socket"
    left.delete_child(pair, "test")
    dpr.sync()
    assert dpr.dp.sas() == [] and dpr.installed == {}
    dpr.detach()
    assert stub.listeners == []


def test_lifetime_limits_rekey_and_delete_through_the_peer() -> None:
    session = _session()
    left = session.left
    dpr, stub, events = _runner(left)
    (pair,) = left.child_sas
    sa_out = dpr.dp.sa(pair.outbound.spi)
    assert sa_out is not None
    sa_out.counters.bytes = 10**9  # as if a byte limit had been reached
    sa_out.lifetime = dataclasses.replace(sa_out.lifetime, soft_bytes=1000, hard_bytes=2000)
    dpr._on_lifetime(sa_out, "soft")
    assert pair.state == "REKEYING" and stub.sent, "a Quick Mode to the responder"
    dpr._on_lifetime(sa_out, "hard")
    assert pair not in left.child_sas
    assert dpr.dp.sas() == [], "the pair left the data plane"
    assert any(isinstance(e, Info) and "removed" in e.message for e in events)


def test_udp_encapsulated_pairs_follow_the_nat_mapping() -> None:
    session = _session(nat=True)
    right = session.right  # sees left through the simulated NAT
    dpr, _, events = _runner(right)
    (pair,) = right.child_sas
    isakmp = next(iter(right.ike_sas.values()))
    out_sa = dpr.dp.sa(pair.outbound.spi)
    assert out_sa is not None and out_sa.udp_encap == (isakmp.local[1], isakmp.remote[1])
    (first,) = dpr.dp.outbound(_icmp("10.2.1.1", "10.1.1.1"), right.now)
    assert first.kind == "udp" and first.dport == isakmp.remote[1]
    isakmp.remote = (isakmp.remote[0], 20077)  # the NAT gave left a new port (PeerMoved)
    dpr.sync()
    (second,) = dpr.dp.outbound(_icmp("10.2.1.1", "10.1.1.1"), right.now)
    assert (second.kind, second.dport) == ("udp", 20077)
    assert int.from_bytes(second.data[4:8], "big") == int.from_bytes(first.data[4:8], "big") + 1, "same SA, next sequence number"
    assert any(isinstance(e, Info) and "20077" in e.message for e in events)


def test_natt_socket_demultiplexes_ike_and_esp() -> None:
    session = _session(nat=True)
    left, right = session.left, session.right
    dpr, stub, _ = _runner(left)
    dpr.tun = StubTun()  # type: ignore[assignment]
    peer_plane, _, _ = _runner(right)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        dpr._udp, dpr._udp_port = rx, 4500
        dest = rx.getsockname()
        (esp,) = peer_plane.dp.outbound(_icmp("10.2.1.1", "10.1.1.1"), right.now)
        for data in (NON_ESP_MARKER + b"an IKE message", b"\xff", esp.data, b"\x00\x00\x00\x01" + bytes(40), b"\x01\x02"):
            tx.sendto(data, dest)
        dpr._from_udp()
    finally:
        rx.close()
        tx.close()
    assert [d for d, _, _ in stub.ike] == [NON_ESP_MARKER + b"an IKE message", b"\xff", b"\x01\x02"]
    assert all(port == 4500 for _, _, port in stub.ike)
    assert dpr.tun.written == [_icmp("10.2.1.1", "10.1.1.1")], "the decrypted inner packet goes to the TUN"  # type: ignore[union-attr]
    assert dpr.dp.counters.unknown_spi == 1


def test_daemon_esp_commands_need_the_data_plane() -> None:
    from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config
    from ipseclab.runtime.daemon import PeerDaemon

    cfg = _session().left.config
    daemon = PeerDaemon(cfg, "ipc:///nonexistent/ctl")
    for cmd in (b'{"cmd": "esp"}', b'{"cmd": "trace_next", "n": 3}'):
        reply = asyncio.run(daemon.handle(cmd))
        assert not reply["ok"] and "without the ESP data plane" in reply["error"]
    text = dump_peer_config(cfg).replace("[peer]\n", "[peer]\ndataplane = true\n", 1)
    assert parse_peer_config(text).dataplane is True
    assert "dataplane = true" in dump_peer_config(parse_peer_config(text))
    assert parse_peer_config(dump_peer_config(cfg)).dataplane is False


def test_ping_output_is_parsed() -> None:
    out = """PING 10.2.0.1 (10.2.0.1) from 10.1.0.1 : 56(84) bytes of data.
64 bytes from 10.2.0.1: icmp_seq=1 ttl=64 time=0.303 ms

--- 10.2.0.1 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.303/0.476/0.648/0.172 ms
"""
    stats = parse(out, "10.1.0.1", "10.2.0.1", 3)
    assert (stats.sent, stats.received, stats.lost) == (3, 2, 1)
    assert (stats.rtt_min_ms, stats.rtt_avg_ms, stats.rtt_max_ms) == (0.303, 0.476, 0.648)
    assert parse("ping: connect: Network is unreachable", "a", "b", 4).received == 0


def test_captured_esp_packets_are_found_and_tampered(tmp_path: Path) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    session = _session()
    dpr, _, _ = _runner(session.left)
    (raw,) = dpr.dp.outbound(_icmp("10.1.1.1", "10.2.1.1"), 0.0)
    udp = pk.udp_packet("192.168.77.2", "203.0.113.2", 4500, 4500, raw.esp)
    ike = pk.udp_packet("192.168.77.2", "203.0.113.2", 4500, 4500, NON_ESP_MARKER + bytes(28))
    wrpcap(str(tmp_path / "c.pcap"), [Ether() / IP(p) for p in (raw.data, ike, udp)])
    found = esp_packets(tmp_path / "c.pcap")
    assert [(f.udp, f.seq) for f in found] == [(False, 1), (True, 1)], "IKE behind the marker is not ESP"
    assert found[0].esp == raw.esp and found[1].esp == raw.esp
    assert split_ipv4(raw.data) == (raw.esp, raw.src, raw.dst)
    plain: CapturedEsp = found[0]
    flipped = flip_bit(plain, ESP_CIPHERTEXT)
    assert sum(a != b for a, b in zip(flipped, plain.packet, strict=True)) == 1
    assert flip_bit(plain, ESP_ICV, bit=7)[-1] == plain.packet[-1] ^ 0x80
    with pytest.raises(ValueError):
        flip_bit(plain, 10_000)
