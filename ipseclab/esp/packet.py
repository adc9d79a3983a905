"""IP header work for ESP on raw bytes: tunnel and transport mode, UDP encapsulation.

No scapy here: these run per packet.  Layouts follow RFC 791 (IPv4), RFC 8200
(IPv6), RFC 768 (UDP) and the ESP placement rules of RFC 4303 §3.1:

* **tunnel mode** (§3.1.2): the ESP payload is the whole inner IP packet, next
  header 4 (IPv4) or 41 (IPv6); a new outer header (``OuterHeader``) carries the
  SA's addresses and protocol 50 — or UDP with destination port 4500 and the ESP
  packet as the UDP payload (RFC 3948 §2.1, §3.1; the UDP checksum may be 0 over IPv4).
* **transport mode** (§3.1.1): the ESP payload is the original IP payload, next
  header the original protocol; the original header stays, with protocol 50
  (or 17 with the UDP header) and its total length and checksum fixed.

Checksums use the "one's complement sum = value mod 0xFFFF" identity (RFC 1071
§2: the sum is independent of byte order and of how the words are grouped):
``int.from_bytes(data) % 0xFFFF`` is one C call for any length.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

__all__ = [
    "ESP_PROTO",
    "IPV4",
    "IPV6",
    "NATT_PORT",
    "OuterHeader",
    "address_bytes",
    "checksum",
    "fix_l4_checksum",
    "fragment_ipv4",
    "ip_addresses",
    "ipv4_header",
    "ipv6_header",
    "recompute_l4_checksum",
    "split_outer",
    "transport_decap",
    "transport_encap",
    "transport_split",
    "udp_packet",
]

ESP_PROTO = 50
UDP_PROTO = 17
TCP_PROTO = 6
IPV4 = 4  # next header value of an IPv4 inner packet (IP-in-IP)
IPV6 = 41
NATT_PORT = 4500  # RFC 3948 §2.1 / RFC 3947 §4
DEFAULT_TTL = 64

_V4_HEAD = struct.Struct("!HHHHHH8s")  # ver/ihl+tos, total, id, flags+frag, ttl+proto, checksum, addrs
_V6_HEAD = struct.Struct("!IHBB32s")  # ver/tc/flow, payload length, next header, hop limit, addrs
_UDP_HEAD = struct.Struct("!HHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data`` (RFC 1071): one's complement of the one's complement sum."""
    if len(data) & 1:
        data += b"\x00"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF  # a non-zero sum that is a multiple of 0xFFFF is "negative zero" (0xFFFF)
    return ~s & 0xFFFF


def _fold(s: int) -> int:
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


def address_bytes(address: str) -> bytes:
    """``"192.0.2.1"`` → 4 bytes, an IPv6 address → 16 bytes."""
    return ipaddress.ip_address(address).packed


def ip_addresses(packet: bytes) -> tuple[str, str]:
    """Source and destination of an IPv4 or IPv6 packet, as text."""
    # socket.inet_ntop: a C call, a few microseconds cheaper per packet than ipaddress
    if packet[0] >> 4 == 6:
        return socket.inet_ntop(socket.AF_INET6, packet[8:24]), socket.inet_ntop(socket.AF_INET6, packet[24:40])
    return socket.inet_ntop(socket.AF_INET, packet[12:16]), socket.inet_ntop(socket.AF_INET, packet[16:20])


def ipv4_header(
    src: bytes, dst: bytes, proto: int, payload_len: int, *, ident: int = 0, ttl: int = DEFAULT_TTL, tos: int = 0
) -> bytes:
    """A 20-byte IPv4 header with a correct header checksum (RFC 791 §3.1)."""
    total = 20 + payload_len
    s = 0x4500 + tos + total + ident + (ttl << 8 | proto) + sum(struct.unpack("!4H", src + dst))
    return _V4_HEAD.pack(0x4500 | tos, total, ident, 0, ttl << 8 | proto, ~_fold(s) & 0xFFFF, src + dst)


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_len: int, *, hop_limit: int = DEFAULT_TTL) -> bytes:
    """A 40-byte IPv6 header (RFC 8200 §3)."""
    return _V6_HEAD.pack(0x60000000, payload_len, next_header, hop_limit, src + dst)


def _pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """One's complement sum of the TCP/UDP pseudo-header (RFC 768, RFC 793 §3.1, RFC 8200 §8.1)."""
    return int.from_bytes(src, "big") % 0xFFFF + int.from_bytes(dst, "big") % 0xFFFF + proto + length


def _l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    length = len(segment)  # the pseudo-header carries the real length, not the padded one
    if length & 1:
        segment += b"\x00"
    s = (_pseudo_sum(src, dst, proto, length) + int.from_bytes(segment, "big")) % 0xFFFF
    c = ~s & 0xFFFF
    if c == 0 and proto == UDP_PROTO:
        c = 0xFFFF  # UDP sends a computed 0 as all ones (RFC 768)
    return c


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes, *, ident: int = 0) -> bytes:
    """An IP/UDP packet (IPv4 with checksum 0 as RFC 3948 §2.1 allows; IPv6 with a real checksum)."""
    s, d = address_bytes(src), address_bytes(dst)
    length = 8 + len(payload)
    if len(s) == 4:
        return ipv4_header(s, d, UDP_PROTO, length, ident=ident) + _UDP_HEAD.pack(sport, dport, length, 0) + payload
    udp = _UDP_HEAD.pack(sport, dport, length, 0) + payload
    csum = _l4_checksum(s, d, UDP_PROTO, udp)
    return ipv6_header(s, d, UDP_PROTO, length) + udp[:6] + csum.to_bytes(2, "big") + udp[8:]


class OuterHeader:
    """The precomputed outer header of one outbound SA (tunnel mode, or raw ESP).

    ``wrap(esp, ident)`` returns the packet to put on the wire: outer IPv4 header
    (protocol 50, or 17 + UDP header to ``udp_ports`` for RFC 3948) followed by the
    ESP packet.  The header checksum is updated from a precomputed partial sum,
    so a packet costs two additions and a ``struct.pack``.
    """

    __slots__ = ("src", "dst", "udp_ports", "version", "_addrs", "_base", "_udp_head", "_proto_word", "_v6")

    def __init__(self, src: str, dst: str, udp_ports: tuple[int, int] | None = None, *, ttl: int = DEFAULT_TTL) -> None:
        self.src, self.dst, self.udp_ports = src, dst, udp_ports
        s, d = address_bytes(src), address_bytes(dst)
        if len(s) != len(d):
            raise ValueError(f"outer addresses of different families: {src}, {dst}")
        self._addrs = s + d
        self.version = 4 if len(s) == 4 else 6
        proto = UDP_PROTO if udp_ports else ESP_PROTO
        self._proto_word = ttl << 8 | proto
        self._v6 = self.version == 6
        self._udp_head = _UDP_HEAD.pack(udp_ports[0], udp_ports[1], 0, 0)[:4] if udp_ports else b""
        self._base = 0x4500 + self._proto_word + (sum(struct.unpack("!4H", self._addrs)) if not self._v6 else 0)

    @property
    def size(self) -> int:
        """Bytes this header adds (IP header, plus 8 for UDP)."""
        return (40 if self._v6 else 20) + (8 if self.udp_ports else 0)

    def wrap(self, esp: bytes, ident: int = 0) -> bytes:
        """Outer header(s) + ``esp``."""
        if self.udp_ports:
            length = 8 + len(esp)
            udp = self._udp_head + length.to_bytes(2, "big")
            if self._v6:
                s, d = self._addrs[:16], self._addrs[16:]
                csum = _l4_checksum(s, d, UDP_PROTO, udp + b"\x00\x00" + esp)
                return ipv6_header(s, d, UDP_PROTO, length) + udp + csum.to_bytes(2, "big") + esp
            esp = udp + b"\x00\x00" + esp  # IPv4: UDP checksum 0 (RFC 3948 §2.1)
        elif self._v6:
            return _V6_HEAD.pack(0x60000000, len(esp), ESP_PROTO, self._proto_word >> 8, self._addrs) + esp
        total = 20 + len(esp)
        s = self._base + total + ident
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return _V4_HEAD.pack(0x4500, total, ident, 0, self._proto_word, ~s & 0xFFFF, self._addrs) + esp


def split_outer(packet: bytes) -> tuple[str, str, int, int, int, bytes] | None:
    """Take apart a received outer packet: ``(src, dst, proto, sport, dport, esp)``.

    For protocol 50 the ports are 0 and ``esp`` the IP payload; for UDP the ports
    are the UDP ports and ``esp`` the UDP payload (RFC 3948: ESP when its first 4
    bytes are not the zero non-ESP marker).  ``None`` for anything else.
    """
    if len(packet) < 20:
        return None
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        proto, body = packet[9], packet[ihl:total]
    elif version == 6 and len(packet) >= 40:
        proto, body = packet[6], packet[40 : 40 + int.from_bytes(packet[4:6], "big")]
    else:
        return None
    src, dst = ip_addresses(packet)
    if proto == ESP_PROTO:
        return src, dst, proto, 0, 0, body
    if proto == UDP_PROTO and len(body) >= 8:
        sport, dport = int.from_bytes(body[0:2], "big"), int.from_bytes(body[2:4], "big")
        return src, dst, proto, sport, dport, body[8:]
    return None


# -- transport mode ----------------------------------------------------------------


def transport_split(packet: bytes) -> tuple[bytes, int, bytes]:
    """``(header, protocol, payload)`` of an IPv4 packet, or of an IPv6 packet without
    extension headers (RFC 4303 §3.1.1 puts ESP after them; this lab kit sends none)."""
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        if ihl < 20 or total > len(packet) or total < ihl:
            raise ValueError("malformed IPv4 header")
        return packet[:ihl], packet[9], packet[ihl:total]
    if version == 6:
        if len(packet) < 40:
            raise ValueError("truncated IPv6 header")
        nh = packet[6]
        if nh in (0, 43, 44, 60):
            raise ValueError(f"IPv6 extension header {nh} in transport mode is not supported")
        return packet[:40], nh, packet[40 : 40 + int.from_bytes(packet[4:6], "big")]
    raise ValueError(f"not an IP packet (version {version})")


def transport_encap(header: bytes, esp: bytes, *, proto: int = ESP_PROTO) -> bytes:
    """The original ``header`` with protocol ``proto`` (50, or 17 when a UDP header
    is already in front of ``esp``), total/payload length and checksum fixed."""
    if header[0] >> 4 == 6:
        return header[:4] + len(esp).to_bytes(2, "big") + bytes((proto,)) + header[7:40] + esp
    return _ipv4_rewrite(header, proto, len(header) + len(esp)) + esp


def _ipv4_rewrite(header: bytes, proto: int, total: int) -> bytes:
    h = header[:2] + total.to_bytes(2, "big") + header[4:9] + bytes((proto,)) + b"\x00\x00" + header[12:]
    return h[:10] + checksum(h).to_bytes(2, "big") + h[12:]


def transport_decap(header: bytes, next_header: int, payload: bytes) -> bytes:
    """Rebuild the original packet from the outer ``header`` (protocol 50/17) and the
    decrypted ``payload`` whose protocol is ``next_header`` (RFC 4303 §3.4.4.1)."""
    if header[0] >> 4 == 6:
        return header[:4] + len(payload).to_bytes(2, "big") + bytes((next_header,)) + header[7:40] + payload
    return _ipv4_rewrite(header, next_header, len(header) + len(payload)) + payload


def fix_l4_checksum(proto: int, segment: bytes, old: tuple[bytes, bytes], new: tuple[bytes, bytes]) -> bytes:
    """Incrementally adjust a TCP/UDP checksum for changed pseudo-header addresses
    (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')), as RFC 3948 §3.1.2 asks of a
    transport-mode receiver behind a NAT when it knows the original addresses
    (NAT-OA, RFC 3947 §5.2).  A UDP checksum of 0 ("none", IPv4) is left alone."""
    offset = 16 if proto == TCP_PROTO else 6 if proto == UDP_PROTO else -1
    if offset < 0 or len(segment) < offset + 2:
        return segment
    hc = int.from_bytes(segment[offset : offset + 2], "big")
    if proto == UDP_PROTO and hc == 0:
        return segment
    m_old = int.from_bytes(old[0], "big") % 0xFFFF + int.from_bytes(old[1], "big") % 0xFFFF
    m_new = int.from_bytes(new[0], "big") % 0xFFFF + int.from_bytes(new[1], "big") % 0xFFFF
    s = _fold((~hc & 0xFFFF) + (0xFFFF * 4 - m_old) % 0xFFFF + m_new)
    c = ~s & 0xFFFF
    if proto == UDP_PROTO and c == 0:
        c = 0xFFFF
    return segment[:offset] + c.to_bytes(2, "big") + segment[offset + 2 :]


def recompute_l4_checksum(proto: int, segment: bytes, src: bytes, dst: bytes) -> bytes:
    """Recompute a TCP/UDP checksum from scratch over the new pseudo-header
    (RFC 3948 §3.1.2's alternative when the original addresses are not known;
    ESP's ICV already protected the segment)."""
    offset = 16 if proto == TCP_PROTO else 6 if proto == UDP_PROTO else -1
    if offset < 0 or len(segment) < offset + 2:
        return segment
    zeroed = segment[:offset] + b"\x00\x00" + segment[offset + 2 :]
    return segment[:offset] + _l4_checksum(src, dst, proto, zeroed).to_bytes(2, "big") + segment[offset + 2 :]


def fragment_ipv4(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet (no DF) into fragments of at most ``mtu`` bytes (RFC 791 §3.2).

    Raw sockets with a prebuilt header do not fragment, so an outer ESP packet
    larger than the link MTU is fragmented here (RFC 4303 §3.3.5: after encryption).
    """
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) <= mtu:
        return [packet]
    header, body = packet[:ihl], packet[ihl:]
    chunk = (mtu - ihl) // 8 * 8
    if chunk <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    out = []
    for off in range(0, len(body), chunk):
        part = body[off : off + chunk]
        more = 0x2000 if off + chunk < len(body) else 0
        h = header[:2] + (ihl + len(part)).to_bytes(2, "big") + header[4:6] + (more | off // 8).to_bytes(2, "big") + header[8:10] + b"\x00\x00" + header[12:]
        out.append(h[:10] + checksum(h).to_bytes(2, "big") + h[12:] + part)
    return out
