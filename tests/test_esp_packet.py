"""Raw-bytes IP work for ESP: checksums, outer headers, transport mode, NAT fix-up, fragments."""

from __future__ import annotations

import os
import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, defragment
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP

from ipseclab.esp import packet as pk


def _scapy_checksum(data: bytes) -> int:
    from scapy.utils import checksum

    return checksum(data)


def test_checksum_matches_scapy_for_any_length() -> None:
    rng = random.Random(1)
    for n in list(range(0, 40)) + [1399, 1400, 65000]:
        data = bytes(rng.randrange(256) for _ in range(n))
        assert pk.checksum(data) == _scapy_checksum(data), n
    assert pk.checksum(b"\xff\xff") == _scapy_checksum(b"\xff\xff")
    assert pk.checksum(b"\x00\x00") == _scapy_checksum(b"\x00\x00")


def test_ipv4_header_checksum_verifies() -> None:
    h = pk.ipv4_header(pk.address_bytes("10.0.0.1"), pk.address_bytes("10.0.0.2"), 50, 1234, ident=0xBEEF, ttl=7)
    assert pk.checksum(h) == 0  # a correct header sums to zero
    ref = IP(bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=50, id=0xBEEF, ttl=7, len=1254, flags=0)))
    assert h == bytes(ref)[:20]


@pytest.mark.parametrize("ident", [0, 1, 0x7FFF, 0xFFFF])
def test_outer_header_ipv4_esp(ident) -> None:
    esp = os.urandom(200)
    wire = pk.OuterHeader("192.0.2.1", "198.51.100.1").wrap(esp, ident)
    ip = IP(wire)
    assert (ip.src, ip.dst, ip.proto, ip.len, ip.id, ip.ttl) == ("192.0.2.1", "198.51.100.1", 50, 220, ident, 64)
    assert pk.checksum(wire[:20]) == 0
    assert bytes(ip[ESP]) == esp


def test_outer_header_udp_encapsulation_ipv4_and_ipv6() -> None:
    esp = os.urandom(99)
    wire = pk.OuterHeader("192.0.2.1", "198.51.100.1", (4500, 31337)).wrap(esp, 5)
    ip = IP(wire)
    assert (ip.proto, ip[UDP].sport, ip[UDP].dport, ip[UDP].len, ip[UDP].chksum) == (17, 4500, 31337, 107, 0)
    assert bytes(ip[UDP].payload) == esp and pk.checksum(wire[:20]) == 0
    wire6 = pk.OuterHeader("2001:db8::1", "2001:db8::2", (4500, 4500)).wrap(esp)
    ip6 = IPv6(wire6)
    assert (ip6.nh, ip6.plen, ip6[UDP].len) == (17, 107, 107)
    ref = IPv6(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=4500, dport=4500) / esp))
    assert ip6[UDP].chksum == ref[UDP].chksum != 0  # IPv6 UDP needs a real checksum
    esp6 = pk.OuterHeader("2001:db8::1", "2001:db8::2").wrap(esp)
    assert IPv6(esp6).nh == 50 and bytes(IPv6(esp6)[ESP]) == esp


def test_udp_packet_and_split_outer() -> None:
    wire = pk.udp_packet("192.0.2.1", "198.51.100.1", 4500, 4500, b"\x00\x00\x12\x34rest")
    assert pk.split_outer(wire) == ("192.0.2.1", "198.51.100.1", 17, 4500, 4500, b"\x00\x00\x12\x34rest")
    raw = pk.OuterHeader("192.0.2.1", "198.51.100.1").wrap(b"ESP!")
    assert pk.split_outer(raw) == ("192.0.2.1", "198.51.100.1", 50, 0, 0, b"ESP!")
    assert pk.split_outer(bytes(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP())) is None
    assert pk.split_outer(b"short") is None


def test_transport_encap_and_decap_restore_the_packet() -> None:
    original = bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=9, ttl=40, tos=0x10) / TCP(sport=1, dport=2) / b"data")
    header, proto, payload = pk.transport_split(original)
    assert proto == 6 and len(header) == 20
    fake_esp = b"E" * 60
    wire = pk.transport_encap(header, fake_esp)
    ip = IP(wire)
    assert (ip.proto, ip.len, ip.id, ip.ttl, ip.tos) == (50, 80, 9, 40, 0x10) and pk.checksum(wire[:20]) == 0
    assert pk.transport_decap(wire[:20], proto, payload) == original
    v6 = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=9) / UDP(sport=5, dport=6) / b"six")
    h6, p6, pl6 = pk.transport_split(v6)
    assert p6 == 17 and pk.transport_decap(pk.transport_encap(h6, b"xx")[:40], p6, pl6) == v6
    with pytest.raises(ValueError):
        pk.transport_split(b"\x50" + bytes(30))


def _verifies(src: str, dst: str, proto: int, segment: bytes) -> bool:
    """The receiver's check, written out word by word (RFC 768 / RFC 793 §3.1)."""
    pseudo = pk.address_bytes(src) + pk.address_bytes(dst) + bytes((0, proto)) + len(segment).to_bytes(2, "big")
    data = pseudo + segment + (b"\x00" if len(segment) % 2 else b"")
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


@pytest.mark.parametrize("size", [32, 33])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_nat_checksum_fix_incremental_and_full_recompute(proto, size) -> None:
    """RFC 3948 §3.1.2: the peer computed the checksum with its own (private) source address;
    after the NAT the receiver delivers the packet from the public one and must fix it."""
    l4 = TCP(sport=40000, dport=80, flags="PA") if proto == "tcp" else UDP(sport=40000, dport=53)
    sent = bytes(IP(src="10.0.0.5", dst="198.51.100.1") / l4 / os.urandom(size))
    _, nh, segment = pk.transport_split(sent)
    assert _verifies("10.0.0.5", "198.51.100.1", nh, segment)
    assert not _verifies("203.0.113.7", "198.51.100.1", nh, segment)
    old = (pk.address_bytes("10.0.0.5"), pk.address_bytes("198.51.100.1"))
    new = (pk.address_bytes("203.0.113.7"), pk.address_bytes("198.51.100.1"))
    fixed = pk.fix_l4_checksum(nh, segment, old, new)
    recomputed = pk.recompute_l4_checksum(nh, segment, *new)
    assert _verifies("203.0.113.7", "198.51.100.1", nh, fixed)
    assert _verifies("203.0.113.7", "198.51.100.1", nh, recomputed)
    assert fixed[:6] == segment[:6] and len(fixed) == len(segment)
    # scapy, asked to compute the checksum for the new addresses, agrees
    l4_new = (TCP if proto == "tcp" else UDP)(segment)
    del l4_new.chksum
    ref = IP(bytes(IP(src="203.0.113.7", dst="198.51.100.1") / l4_new))
    layer = ref[TCP] if proto == "tcp" else ref[UDP]
    assert layer.chksum == int.from_bytes(recomputed[16 if proto == "tcp" else 6 :][:2], "big")


def test_udp_checksum_zero_is_left_alone() -> None:
    seg = UDP(sport=1, dport=2, chksum=0) / b"abc"
    raw = bytes(seg)
    assert pk.fix_l4_checksum(17, raw, (b"\x01" * 4, b"\x02" * 4), (b"\x03" * 4, b"\x02" * 4)) == raw


def test_fragment_ipv4_reassembles() -> None:
    big = pk.OuterHeader("192.0.2.1", "198.51.100.1").wrap(os.urandom(3000), 42)
    frags = pk.fragment_ipv4(big, 1280)
    assert len(frags) == 3 and all(len(f) <= 1280 for f in frags)
    assert all(pk.checksum(f[:20]) == 0 for f in frags)
    whole = defragment([IP(f) for f in frags])
    assert bytes(whole[0]) == big
    assert pk.fragment_ipv4(big[:500], 1280) == [big[:500]]
