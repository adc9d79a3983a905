"""Take apart every IKE message in a capture — ours or anyone's — with our own codec.

IKEv2 messages are handed to :mod:`ipseclab.teaching.decode_ikev2` (its own key table,
``ikev2_decryption_table``); what follows is IKEv1's way.

This is the student's dissector behind ``ipseclab decode FILE.pcap``.  UDP 500 and
4500 are examined (on 4500 the non-ESP marker separates IKE from ESP and a single
0xFF byte is a NAT keepalive, RFC 3948 §2).  With Wireshark's
``ikev1_decryption_table`` (``<initiator cookie>,<encryption key>``) the encrypted
messages are decrypted the way a peer does it (RFC 2409 App. B): the cipher and hash
come from the responder's chosen transform, the phase-1 IV from ``hash(g^xi | g^xr)``
of the KE payloads, then CBC chaining, and ``hash(last phase-1 block | M-ID)`` for
each Quick Mode and Informational exchange.

ESP — IP protocol 50, or in UDP 4500 without the marker — and AH (protocol 51) are shown
with their SPI and sequence number; with Wireshark's ``esp_sa`` table (the rows our export
and charon's log give) an ESP packet is decrypted as its receiver would (RFC 4303 §3.4):
the ICV verdict and the inner packet, as tshark shows them.

Every packet gives a :class:`DecodedPacket`; what cannot be decoded is reported on
that packet, never raised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, Any

from ipseclab.crypto.kdf_v1 import phase1_iv, phase2_iv
from ipseclab.crypto.registry import (
    CipherSpec,
    EspCipherSpec,
    EspIntegritySpec,
    HashSpec,
    esp_cipher_named,
    esp_integrity_named,
    ike_cipher,
    ike_hash,
)
from ipseclab.errors import CryptoError, IpsecLabError, ParseError
from ipseclab.export import read_table
from ipseclab.ikev1.explain import explain_message, explain_payload
from ipseclab.ikev1.notation import exchange_name, summarize
from ipseclab.teaching.decode_ikev2 import PAYLOAD_WORDS, Ikev2Key, decode_ikev2, read_ikev2_table
from ipseclab.wire.header import major_version
from ipseclab.wire.v1.constants import ExchangeType, HeaderFlag, IkeAttribute, PayloadType
from ipseclab.wire.v1.isakmp import KEPayload, Message, Payload, SAPayload, decode_payloads
from ipseclab.wire.v1.tree import message_tree

IKE_PORTS = (500, 4500)


@dataclass(frozen=True)
class EspKey:
    """One row of Wireshark's ``esp_sa`` table: an SA direction's transform and keys."""

    src: str
    dst: str
    spi: int
    cipher: EspCipherSpec
    integ: EspIntegritySpec | None
    enc_key: bytes = field(repr=False)
    integ_key: bytes = field(repr=False)


def read_esp_table(directory: str | os.PathLike[str]) -> dict[int, EspKey]:
    """SPI → key, from an ``esp_sa`` file (``"IPv4","src","dst","0xSPI","cipher","0xkey",
    "integrity","0xkey"``); rows that name something unknown are skipped."""
    table: dict[int, EspKey] = {}
    for parts in read_table(directory, "esp_sa", 8):
        try:
            enc_key = bytes.fromhex(parts[5].removeprefix("0x"))
            integ_key = bytes.fromhex(parts[7].removeprefix("0x")) if parts[7] else b""
            spi = int(parts[3], 16)
            cipher = esp_cipher_named(parts[4], len(enc_key))
            integ = esp_integrity_named(parts[6])
        except (ValueError, CryptoError):
            continue
        table[spi] = EspKey(parts[1], parts[2], spi, cipher, integ, enc_key, integ_key)
    return table


def read_key_table(directory: str | os.PathLike[str]) -> dict[bytes, bytes]:
    """Initiator cookie → encryption key, from an ``ikev1_decryption_table`` file."""
    keys: dict[bytes, bytes] = {}
    for parts in read_table(directory, "ikev1_decryption_table", 2):
        if parts[0]:
            try:
                keys[bytes.fromhex(parts[0])] = bytes.fromhex(parts[1])
            except ValueError:
                continue
    return keys


@dataclass
class DecodedPacket:
    """One captured packet as our codec sees it."""

    number: int
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    kind: str  # "isakmp" | "esp" | "ah" | "keepalive" | "malformed"
    summary: str = ""
    exchange: str = ""
    exchange_type: int = 0
    message_id: int = 0
    encrypted: bool = False
    decrypted: bool | None = None
    payload_types: list[int] = field(default_factory=list)
    tree: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    index: int = 0
    explanation: str = ""
    spi: int = 0  # ESP/AH
    seq: int = 0
    icv: str = ""  # "good" | "bad: ..." | "" (not checked)
    inner: str = ""  # the decrypted inner packet, summarised
    ike_version: int = 1
    raw: bytes = field(default=b"", repr=False)  # the ISAKMP message (no non-ESP marker)
    plaintext: bytes | None = field(default=None, repr=False)  # its decrypted body

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k not in ("raw", "plaintext")}


@dataclass
class _SaTrack:
    """What a passive observer learns about one ISAKMP SA from the capture."""

    initiator: tuple[str, int]
    key: bytes | None
    cipher: CipherSpec | None = None
    hash: HashSpec | None = None
    gxi: bytes = b""
    gxr: bytes = b""
    iv: bytes | None = None
    last_phase1: bytes | None = None
    phase2: dict[int, bytes] = field(default_factory=dict)
    seen: dict[bytes, bytes | None] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    indexes: dict[bytes, int] = field(default_factory=dict)  # datagram -> its index (retransmissions keep it)
    problem: str = ""
    floated: bool = False


class CaptureDecoder:
    """Stateful decoder over the packets of one capture, in order."""

    def __init__(
        self, keys: dict[bytes, bytes] | None = None, esp_keys: dict[int, EspKey] | None = None,
        ikev2_keys: dict[tuple[bytes, bytes], list[Ikev2Key]] | None = None,
    ) -> None:
        self.keys = keys or {}
        self.esp_keys = esp_keys or {}
        self.ikev2_keys = ikev2_keys or {}
        self.ikev2_fragments: dict = {}
        self.ikev2_first_auth: dict[bytes, int] = {}  # IKE SA (SPIi) → Message ID of its first IKE_AUTH
        self.sas: dict[bytes, _SaTrack] = {}

    def decode_esp(self, number: int, time: float, src: tuple[str, int], dst: tuple[str, int], esp: bytes, *, in_udp: bool) -> DecodedPacket:
        """One ESP packet (RFC 4303 §2): SPI and sequence number; with its key, decrypted and
        its ICV checked as the receiver does (§3.4), and the inner packet summarised."""
        how = "ESP in UDP (RFC 3948)" if in_udp else "ESP"
        pkt = DecodedPacket(number, time, src, dst, "esp")
        if len(esp) < 8:
            pkt.kind, pkt.summary = "malformed", f"{how} of {len(esp)} bytes: shorter than its SPI and sequence number"
            return pkt
        pkt.spi, pkt.seq = int.from_bytes(esp[:4], "big"), int.from_bytes(esp[4:8], "big")
        pkt.summary = f"{how}: SPI 0x{pkt.spi:08x}, sequence {pkt.seq}"
        pkt.encrypted = True
        key = self.esp_keys.get(pkt.spi)
        if key is None:
            if self.esp_keys:
                pkt.note = "no key for this SPI in esp_sa"
            return pkt
        from ipseclab.esp.errors import EspDrop, EspError
        from ipseclab.esp.sa import EspSa

        try:
            sa = EspSa(spi=key.spi, src=key.src, dst=key.dst, cipher=key.cipher, integ=key.integ,
                       enc_key=key.enc_key, integ_key=key.integ_key, udp_encap=(src[1], dst[1]) if in_udp else None)
            payload, next_header = sa.unprotect(esp)
        except EspDrop as exc:
            pkt.decrypted, pkt.icv = False, f"bad: {exc}"
            pkt.summary += f" — refused: {exc}"
            return pkt
        except EspError as exc:
            pkt.decrypted, pkt.note = False, f"cannot use the key: {exc}"
            return pkt
        pkt.decrypted = True
        pkt.icv = "good" if key.integ is not None or key.cipher.aead else ""
        pkt.inner = _inner_summary(payload, next_header)
        pkt.summary += f", {key.cipher.name}" + (f" + {key.integ.name}" if key.integ else "") + (", ICV good" if pkt.icv == "good" else "")
        return pkt

    def decode_udp(self, number: int, time: float, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> DecodedPacket:
        pkt = DecodedPacket(number, time, src, dst, "isakmp")
        if 4500 in (src[1], dst[1]):
            if data == b"\xff":
                pkt.kind, pkt.summary = "keepalive", "NAT-T keepalive (0xFF, RFC 3948 §2.3)"
                return pkt
            if len(data) < 4:
                pkt.kind, pkt.summary = "malformed", f"{len(data)}-byte datagram on port 4500 (too short for marker or ESP)"
                return pkt
            if data[:4] != b"\x00\x00\x00\x00":
                return self.decode_esp(number, time, src, dst, data, in_udp=True)
            data = data[4:]
            pkt.note = "non-ESP marker"
        if major_version(data) == 2:
            return self._decode_v2(pkt, data)
        try:
            msg = Message.decode(data)
        except ParseError as exc:
            pkt.kind, pkt.summary = "malformed", f"not a valid ISAKMP message: {exc}"
            pkt.tree = message_tree(data)
            return pkt
        pkt.exchange_type, pkt.exchange, pkt.message_id = msg.exchange_type, exchange_name(msg.exchange_type), msg.message_id
        if msg.version >> 4 != 1:
            pkt.summary = f"IKE version {msg.version >> 4}: neither IKEv1 nor IKEv2"
            pkt.tree = message_tree(data)
            return pkt
        track = self.sas.get(msg.icookie)
        if track is None:
            track = _SaTrack(initiator=src, key=self.keys.get(msg.icookie))
            self.sas[msg.icookie] = track
        index = track.indexes.get(data) or track.counts.get(msg.message_id, 0) + 1
        if pkt.note == "non-ESP marker" and not track.floated:
            track.floated = True
            if track.counts:
                pkt.note = "IKE moved to UDP 4500 here (NAT-T float, RFC 3947 §4): a 4-byte zero non-ESP marker now precedes every IKE header"
        pkt.encrypted = bool(msg.flags & HeaderFlag.ENCRYPTION)
        plaintext: bytes | None = None
        payloads: list[Payload] | None
        if pkt.encrypted:
            plaintext, why = self._decrypt(track, msg, data)
            pkt.decrypted = plaintext is not None
            payloads = None
            if plaintext is not None:
                try:
                    payloads = decode_payloads(msg.first_payload, plaintext, allow_trailing=True)
                except ParseError as exc:
                    why = f"decrypted bytes do not parse ({exc}): wrong key or IV"
                    pkt.decrypted = False
            if payloads is None:
                pkt.note = why
        else:
            payloads = msg.payloads
            self._learn(track, msg, payloads, from_initiator=src[0] == track.initiator[0])
        if data not in track.seen:
            track.counts[msg.message_id] = index
            track.indexes[data] = index
        track.seen.setdefault(data, plaintext)
        pkt.raw, pkt.plaintext = data, plaintext if payloads is not None else None
        pkt.tree = message_tree(data, pkt.plaintext)
        pkt.index = index
        pkt.explanation = explain_message(msg.exchange_type, index)
        if payloads is not None:
            pkt.payload_types = [p.payload_type for p in payloads]
            pkt.summary = summarize(
                payloads,
                encrypted=pkt.encrypted,
                exchange_type=msg.exchange_type,
                from_initiator=src[0] == track.initiator[0],
                index=index,
            )
        else:
            pkt.summary = f"HDR*, <{len(msg.encrypted_body or b'')} encrypted bytes>"
        return pkt

    def _decode_v2(self, pkt: DecodedPacket, data: bytes) -> DecodedPacket:
        """An IKEv2 message (:mod:`ipseclab.teaching.decode_ikev2`)."""
        decoded = decode_ikev2(data, self.ikev2_keys, self.ikev2_fragments)
        pkt.raw, pkt.ike_version = data, 2
        if isinstance(decoded, str):
            from ipseclab.wire.v2.tree import message_tree as message_tree_v2

            pkt.kind, pkt.summary, pkt.tree = "malformed", decoded, message_tree_v2(data)
            return pkt
        pkt.exchange, pkt.exchange_type, pkt.message_id = decoded.exchange, decoded.exchange_type, decoded.message_id
        pkt.index, pkt.encrypted, pkt.decrypted = decoded.index, decoded.encrypted, decoded.decrypted
        if decoded.exchange_type == 35:  # IKE_AUTH's EAP rounds: AUTH3, AUTH4, … as the trace numbers them
            first = self.ikev2_first_auth.setdefault(data[:8], decoded.message_id)
            pkt.index += 2 * max(0, decoded.message_id - first)
        pkt.summary, pkt.payload_types, pkt.tree = decoded.summary, decoded.payload_types, decoded.tree
        pkt.plaintext = decoded.plaintext
        if decoded.note:
            pkt.note = decoded.note if pkt.note != "non-ESP marker" else f"non-ESP marker; {decoded.note}"
        return pkt

    def _learn(self, track: _SaTrack, msg: Message, payloads: list[Payload], *, from_initiator: bool) -> None:
        """Collect the chosen transform and the KE values (phase 1 in clear)."""
        if msg.message_id != 0:
            return
        for p in payloads:
            if isinstance(p, SAPayload) and not from_initiator:
                transforms = [t for prop in p.proposals for t in prop.transforms]
                if len(transforms) == 1:
                    t = transforms[0]
                    try:
                        track.cipher = ike_cipher(t.get(IkeAttribute.ENCRYPTION_ALGORITHM) or 0, t.get(IkeAttribute.KEY_LENGTH))
                        track.hash = ike_hash(t.get(IkeAttribute.HASH_ALGORITHM) or 0)
                    except CryptoError as exc:
                        track.problem = str(exc)
            elif isinstance(p, KEPayload):
                if from_initiator:
                    track.gxi = p.data
                else:
                    track.gxr = p.data

    def _decrypt(self, track: _SaTrack, msg: Message, data: bytes) -> tuple[bytes | None, str]:
        if data in track.seen:
            first = track.seen[data]
            return first, "" if first is not None else "retransmission of an earlier packet that could not be decrypted either"
        if track.key is None:
            return None, "encrypted: no key for these cookies (pass --keys DIR with an ikev1_decryption_table)"
        if track.cipher is None or track.hash is None:
            return None, track.problem or "encrypted: the negotiated transform was not seen in the capture"
        bs = track.cipher.block_size
        body = msg.encrypted_body or b""
        if not body or len(body) % bs:
            return None, f"encrypted body of {len(body)} bytes is not a multiple of the block size"
        if track.iv is None:
            if not track.gxi or not track.gxr:
                return None, "encrypted: the KE payloads were not seen, so the phase-1 IV is unknown"
            track.iv = phase1_iv(track.hash, track.gxi, track.gxr, bs)
        mid = msg.message_id
        try:
            if mid == 0:
                iv = track.iv
            else:
                if track.last_phase1 is None:
                    track.last_phase1 = track.iv
                iv = track.phase2.get(mid) or phase2_iv(track.hash, track.last_phase1, mid, bs)
            plaintext = track.cipher.decrypt(track.key, iv, body)
        except (CryptoError, IpsecLabError) as exc:
            return None, f"decryption failed: {exc}"
        if mid == 0:
            track.iv = body[-bs:]
        else:
            track.phase2[mid] = body[-bs:]
        return plaintext, ""


_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
_PCAPNG = b"\x0a\x0d\x0d\x0a"
_MAX_RECORD = 1 << 18  # no link type captures more than 256 KiB per packet


def capture_problem(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with a capture file's framing — cut short, or corrupt — else ``None``.

    Walks the pcap record headers (or pcapng block lengths) without reading the packets,
    as tshark does before it says a file "appears to have been cut short".
    """
    return _framing(path)[1]


def complete_length(path: str | os.PathLike[str]) -> int:
    """How many bytes of a capture end in a whole packet (a capture still being written may
    end in half of one); 0 without a complete file header."""
    return _framing(path)[0]


def _framing(path: str | os.PathLike[str]) -> tuple[int, str | None]:
    """(bytes up to the end of the last whole record, what is wrong with the framing or None)."""
    import struct

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return 0, f"shorter than a capture file header ({len(head)} bytes)"
        if head[:4] == _PCAPNG:
            order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            off, n = 0, 0
            while off < size:
                f.seek(off)
                block = f.read(8)
                if len(block) < 8:
                    return off, f"cut short in the header of block {n + 1}"
                length = struct.unpack(order + "I", block[4:8])[0]
                if length < 12 or length % 4 or length > _MAX_RECORD + 64:
                    return off, f"block {n + 1} has an impossible length ({length} bytes): the file is corrupt"
                if off + length > size:
                    return off, f"cut short in the middle of block {n + 1} ({size - off} of {length} bytes)"
                off, n = off + length, n + 1
            return off, None
        order = _PCAP_MAGIC.get(head[:4])
        if order is None:
            return 0, "not a pcap or pcapng file"
        off, n = 24, 0
        while off < size:
            f.seek(off)
            record = f.read(16)
            if len(record) < 16:
                return off, f"cut short in the header of packet {n + 1}"
            caplen, wirelen = struct.unpack(order + "II", record[8:16])
            if caplen > _MAX_RECORD or caplen > wirelen:
                return off, f"packet {n + 1} has an impossible length ({caplen} bytes captured of {wirelen}): the file is corrupt"
            if off + 16 + caplen > size:
                return off, f"cut short in the middle of packet {n + 1} ({size - off - 16} of {caplen} bytes)"
            off, n = off + 16 + caplen, n + 1
    return size, None


class _Reassembly:
    """IPv4 fragments put back together, as tshark does (an IKE_AUTH with a certificate is
    often larger than the link's MTU): a datagram is decoded under the number of its last
    fragment.  At most :data:`MAX_PENDING_FRAGMENTS` datagrams wait, the oldest goes first."""

    MAX_PENDING_FRAGMENTS = 64

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str, int, int], list[Any]] = {}

    def add(self, pkt: Any) -> Any | None:
        from scapy.layers.inet import IP
        from scapy.packet import Raw

        ip = pkt.getlayer(IP)
        if ip is None or (not ip.flags.MF and ip.frag == 0):
            return pkt
        key = (ip.src, ip.dst, ip.id, ip.proto)
        group = self.pending.setdefault(key, [])
        group.append(pkt)
        if len(self.pending) > self.MAX_PENDING_FRAGMENTS:
            self.pending.pop(next(iter(self.pending)))
        pieces = sorted((p.getlayer(IP) for p in group), key=lambda p: p.frag)
        end = 0
        for piece in pieces:
            if piece.frag * 8 != end:
                return None
            end += len(piece.payload)
        if pieces[-1].flags.MF:
            return None
        del self.pending[key]
        head = pieces[0].copy()
        head.remove_payload()
        head.flags, head.frag = 0, 0
        del head.len, head.chksum
        out = IP(bytes(head / Raw(b"".join(bytes(p.payload) for p in pieces))))
        out.time = pkt.time
        return out


def _inner_summary(payload: bytes, next_header: int) -> str:
    """What an ESP packet carried: the inner IP packet (tunnel mode) or transport payload."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    if next_header == 4:
        return IP(payload).summary()
    if next_header == 41:
        return IPv6(payload).summary()
    layer = {1: ICMP, 6: TCP, 17: UDP}.get(next_header)
    if layer is not None:
        return f"transport mode: {layer(payload).summary()}"
    return f"next header {next_header}, {len(payload)} bytes"


def _ah(number: int, time: float, src: str, dst: str, ah: bytes) -> DecodedPacket:
    """An AH header (RFC 4302 §2): next header, SPI, sequence number (its ICV is not checked here)."""
    pkt = DecodedPacket(number, time, (src, 0), (dst, 0), "ah")
    if len(ah) < 12:
        pkt.kind, pkt.summary = "malformed", f"AH of {len(ah)} bytes: shorter than its fixed header"
        return pkt
    pkt.spi, pkt.seq = int.from_bytes(ah[4:8], "big"), int.from_bytes(ah[8:12], "big")
    pkt.summary = f"AH (RFC 4302): SPI 0x{pkt.spi:08x}, sequence {pkt.seq}, next header {ah[0]} (integrity not checked here)"
    return pkt


def decode_pcap(
    path: str | os.PathLike[str] | IO[bytes], keys: dict[bytes, bytes] | None = None, esp_keys: dict[int, EspKey] | None = None,
    ikev2_keys: dict[tuple[bytes, bytes], list[Ikev2Key]] | None = None,
) -> list[DecodedPacket]:
    """Decode every IKE/NAT-T, ESP and AH packet of a pcap or pcapng file (a path or an open
    binary file); ``keys``/``ikev2_keys``/``esp_keys`` are the rows of Wireshark's tables."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    decoder = CaptureDecoder(keys, esp_keys, ikev2_keys)
    out: list[DecodedPacket] = []
    fragments = _Reassembly()
    with PcapReader(path if hasattr(path, "read") else str(path)) as reader:
        for number, captured in enumerate(reader, 1):
            pkt = fragments.add(captured)
            if pkt is None:  # a fragment of an IPv4 datagram still incomplete: decoded with its last one
                continue
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            proto = getattr(ip, "proto", getattr(ip, "nh", None)) if ip is not None else None
            if ip is not None and proto in (50, 51) and pkt.getlayer(UDP) is None:
                body = bytes(ip.payload)
                if proto == 50:
                    out.append(decoder.decode_esp(number, float(pkt.time), (ip.src, 0), (ip.dst, 0), body, in_udp=False))
                else:
                    out.append(_ah(number, float(pkt.time), ip.src, ip.dst, body))
                continue
            udp = pkt.getlayer(UDP)
            if ip is not None and udp is None and getattr(ip, "proto", getattr(ip, "nh", None)) == 17:
                head = bytes(ip.payload)  # UDP header cut short (snap length or a truncated file)
                ports = (int.from_bytes(head[:2], "big"), int.from_bytes(head[2:4], "big")) if len(head) >= 4 else (0, 0)
                if set(ports) & set(IKE_PORTS):
                    summary = f"UDP header cut short in the capture ({len(head)} of 8 bytes)"
                    out.append(DecodedPacket(number, float(pkt.time), (ip.src, ports[0]), (ip.dst, ports[1]), "malformed", summary=summary))
                continue
            if ip is None or udp is None or not ({udp.sport, udp.dport} & set(IKE_PORTS)):
                continue
            data = bytes(udp.payload)
            try:
                decoded = decoder.decode_udp(number, float(pkt.time), (ip.src, udp.sport), (ip.dst, udp.dport), data)
            except Exception as exc:  # noqa: BLE001 - a per-packet report, never a crash
                decoded = DecodedPacket(number, float(pkt.time), (ip.src, udp.sport), (ip.dst, udp.dport), "malformed", summary=f"internal decoder error: {exc!r}")
            out.append(decoded)
    return out


def render_tree(node: dict[str, Any], indent: int = 0) -> list[str]:
    """The payload tree as indented text lines."""
    value = node.get("value")
    line = "  " * indent + node["name"] + (f": {value}" if value not in (None, "") else "")
    lines = [line]
    for child in node.get("children", []):
        lines += render_tree(child, indent + 1)
    return lines


def _payload_names(types: list[int]) -> str:
    names = []
    for t in types:
        try:
            names.append(PayloadType(t).name)
        except ValueError:
            names.append(str(t))
    return ", ".join(names)


def render_packet(pkt: DecodedPacket, *, tree: bool = True) -> list[str]:
    if pkt.kind in ("esp", "ah") and not pkt.src[1]:
        head = f"#{pkt.number} {pkt.src[0]} -> {pkt.dst[0]}  "
    else:
        head = f"#{pkt.number} {pkt.src[0]}:{pkt.src[1]} -> {pkt.dst[0]}:{pkt.dst[1]}  "
    if pkt.kind != "isakmp":
        lines = [head + pkt.summary]
        if pkt.inner:
            lines.append(f"    inner: {pkt.inner}")
        if pkt.note:
            lines.append(f"    note: {pkt.note}")
        return lines
    state = ""
    if pkt.encrypted:
        state = " [decrypted]" if pkt.decrypted else " [encrypted]"
    lines = [head + f"{pkt.exchange} #{pkt.index} (M-ID {pkt.message_id:08x}): {pkt.summary}{state}"]
    if pkt.explanation:
        lines.append(f"    what: {pkt.explanation}")
    if pkt.note and pkt.note != "non-ESP marker":
        lines.append(f"    note: {pkt.note}")
    for t in dict.fromkeys(pkt.payload_types):
        words = PAYLOAD_WORDS.get(t, f"payload type {t}") if pkt.ike_version == 2 else explain_payload(t)
        lines.append(f"    - {words}")
    if tree and pkt.tree:
        lines += ["    " + x for x in render_tree(pkt.tree)]
    return lines


__all__ = [
    "CaptureDecoder", "DecodedPacket", "EspKey", "ExchangeType", "decode_pcap", "read_esp_table", "read_ikev2_table",
    "read_key_table", "render_packet",
]
