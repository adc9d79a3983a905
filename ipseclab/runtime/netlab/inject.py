"""Captured ESP packets, replayed or tampered with: the anti-replay window and the ICV at work.

An attacker on the path can record ESP packets and send them again, or change bits in them.
RFC 4303 answers both: the receiver's anti-replay window (§3.4.3) drops a sequence number
it has already accepted, and the ICV (§3.4.4) fails for any changed bit — the packet is
dropped before anything is decrypted (encrypt-then-MAC; for GCM the tag covers the same).

* :func:`esp_packets` lists the ESP packets of a pcap (plain protocol 50 and ESP-in-UDP on
  port 4500, RFC 3948) as :class:`CapturedEsp`: the whole IP packet (ready to be sent
  again: UDP checksum 0), SPI and sequence number.
* :func:`flip_bit` changes one bit of an IP packet at an offset counted from the start of
  the ESP header (``ESP_CIPHERTEXT`` or ``ESP_ICV`` pick typical places).
* :func:`inject` sends an IP packet exactly as given (``IP_HDRINCL``) from a lab host, so it
  travels the same path (and the same NAT mapping) as the original.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipseclab.runtime.netlab.topology import Topology

#: Offsets for :func:`flip_bit`, relative to the ESP header.
ESP_CIPHERTEXT = 40  # past SPI, sequence number and a 16-byte (CBC) or 8-byte (GCM) IV
ESP_ICV = -1  # the last byte of the packet: inside the ICV


@dataclass(frozen=True)
class CapturedEsp:
    """One ESP packet from a capture: the IP packet, where ESP starts in it, SPI and sequence."""

    packet: bytes
    esp_offset: int
    src: str
    dst: str
    spi: int
    seq: int
    udp: bool

    @property
    def esp(self) -> bytes:
        return self.packet[self.esp_offset :]


def _ipv4_esp(packet: bytes) -> CapturedEsp | None:
    if len(packet) < 28 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    proto = packet[9]
    src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
    if proto == 50:
        offset, udp = ihl, False
    elif proto == 17 and len(packet) >= ihl + 16 and 4500 in (
        int.from_bytes(packet[ihl : ihl + 2], "big"),
        int.from_bytes(packet[ihl + 2 : ihl + 4], "big"),
    ):
        offset, udp = ihl + 8, True
        if packet[offset : offset + 4] == b"\x00\x00\x00\x00" or len(packet) - offset < 8:
            return None  # IKE behind the non-ESP marker, or a NAT-keepalive
        # A capture on the sender holds checksum-offloaded (not yet final) UDP checksums;
        # 0 means "none" for UDP over IPv4 (RFC 768), so the copy is valid to send again.
        packet = packet[: offset - 2] + b"\x00\x00" + packet[offset:]
    else:
        return None
    spi = int.from_bytes(packet[offset : offset + 4], "big")
    seq = int.from_bytes(packet[offset + 4 : offset + 8], "big")
    return CapturedEsp(packet, offset, src, dst, spi, seq, udp)


def esp_packets(pcap: str | Path, *, src: str | None = None, dst: str | None = None) -> list[CapturedEsp]:
    """Every IPv4 ESP packet (raw or in UDP 4500) of an Ethernet or cooked capture, in order."""
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    found = []
    for frame in rdpcap(str(pcap)):
        if IP not in frame:
            continue
        esp = _ipv4_esp(bytes(frame[IP]))
        if esp is not None and (src is None or esp.src == src) and (dst is None or esp.dst == dst):
            found.append(esp)
    return found


def flip_bit(captured: CapturedEsp, offset: int, bit: int = 0) -> bytes:
    """The packet with one bit flipped at ``offset`` from the ESP header (negative: from the end).

    Only the ESP part changes (the UDP checksum of ESP-in-UDP is 0: none, see :func:`esp_packets`),
    so the receiving host delivers the datagram and the ESP receiver has to notice.
    """
    data = bytearray(captured.packet)
    pos = captured.esp_offset + offset if offset >= 0 else len(data) + offset
    if not captured.esp_offset <= pos < len(data):
        raise ValueError(f"offset {offset} is outside the ESP packet")
    data[pos] ^= 1 << bit
    return bytes(data)


def send_ip(packet: bytes) -> None:
    """Send one complete IPv4 packet as it is (``IP_HDRINCL``) from the current namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        sock.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))


def inject(topo: Topology, role: str, packet: bytes) -> None:
    """:func:`send_ip` from inside ``role``'s namespace (the original sender's host)."""
    with topo.in_netns(role):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with sock:
        sock.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))
