"""An ESP packet taken apart, for trace events and notebooks (never on the fast path).

:func:`esp_fields` splits an ESP packet into SPI, sequence number, IV, ciphertext
and ICV using only the SA's sizes (RFC 4303 §2, Figure 1); :func:`inner_view`
decodes the protected packet with scapy; :func:`outer_view` describes an outer
IPv4/IPv6 (+ UDP) header.  All return plain data (JSON-ready dicts).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ipseclab.esp.sa import EspSa

__all__ = ["esp_fields", "inner_view", "outer_view"]

_PROTO_NAMES = {1: "ICMP", 4: "IPv4", 6: "TCP", 17: "UDP", 41: "IPv6", 50: "ESP", 58: "ICMPv6", 59: "no next header"}


def esp_fields(sa: EspSa, esp: bytes, payload_len: int | None = None) -> dict[str, Any]:
    """SPI, sequence number, IV, ciphertext length, ICV (and, given the decrypted
    payload length, the pad length) of ``esp`` for ``sa``'s transform."""
    iv_size, icv_size = sa.iv_size, sa.icv_size
    body_len = len(esp) - 8 - iv_size - icv_size
    fields: dict[str, Any] = {
        "spi": int.from_bytes(esp[0:4], "big"),
        "seq": int.from_bytes(esp[4:8], "big"),
        "iv": esp[8 : 8 + iv_size],
        "ciphertext_len": body_len if sa.cipher.esp_id != 11 else 0,
        "icv": esp[len(esp) - icv_size :] if icv_size else b"",
        "transform": sa.cipher.name + (f" + {sa.integ.name}" if sa.integ else ""),
    }
    if payload_len is not None:
        fields["pad_len"] = max(body_len - payload_len - 2, 0)
    return fields


def outer_view(packet: bytes) -> dict[str, Any]:
    """Version, addresses, protocol and lengths of an outer header (and UDP ports)."""
    if not packet:
        return {}
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        view: dict[str, Any] = {
            "version": 4,
            "src": str(ipaddress.IPv4Address(packet[12:16])),
            "dst": str(ipaddress.IPv4Address(packet[16:20])),
            "protocol": packet[9],
            "ttl": packet[8],
            "total_length": int.from_bytes(packet[2:4], "big"),
            "header_checksum": f"0x{int.from_bytes(packet[10:12], 'big'):04x}",
        }
        proto, l4 = packet[9], packet[(packet[0] & 0x0F) * 4 :]
    elif version == 6 and len(packet) >= 40:
        view = {
            "version": 6,
            "src": str(ipaddress.IPv6Address(packet[8:24])),
            "dst": str(ipaddress.IPv6Address(packet[24:40])),
            "protocol": packet[6],
            "hop_limit": packet[7],
            "payload_length": int.from_bytes(packet[4:6], "big"),
        }
        proto, l4 = packet[6], packet[40:]
    else:
        return {"version": version}
    view["protocol_name"] = _PROTO_NAMES.get(proto, str(proto))
    if proto == 17 and len(l4) >= 8:
        view["udp"] = {
            "sport": int.from_bytes(l4[0:2], "big"),
            "dport": int.from_bytes(l4[2:4], "big"),
            "length": int.from_bytes(l4[4:6], "big"),
            "checksum": int.from_bytes(l4[6:8], "big"),
        }
    return view


def inner_view(payload: bytes, next_header: int) -> tuple[str, dict[str, Any]]:
    """A one-line summary and a few fields of the protected payload, decoded by scapy.

    ``next_header`` 4/41 means a whole inner IP packet (tunnel mode); anything else
    is the original IP payload of that protocol (transport mode).
    """
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw

    layers = {4: IP, 41: IPv6, 1: ICMP, 6: TCP, 17: UDP}
    cls = layers.get(next_header)
    if cls is None:
        return f"{_PROTO_NAMES.get(next_header, f'protocol {next_header}')} ({len(payload)} bytes)", {}
    try:
        pkt = cls(payload)
    except Exception:  # noqa: BLE001 - scapy raises many types on odd input
        pkt = Raw(payload)
    fields: dict[str, Any] = {}
    for layer, names in ((IP, ("src", "dst", "proto", "ttl", "len")), (IPv6, ("src", "dst", "nh", "hlim", "plen")),
                         (ICMP, ("type", "code", "id", "seq")), (TCP, ("sport", "dport", "seq", "ack")),
                         (UDP, ("sport", "dport", "len"))):
        if pkt.haslayer(layer):
            fields[layer.__name__] = {n: _plain(pkt[layer].getfieldval(n)) for n in names}
    if pkt.haslayer(TCP):
        fields["TCP"]["flags"] = str(pkt[TCP].flags)
    return pkt.summary(), fields


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | str | float) or value is None else str(value)
