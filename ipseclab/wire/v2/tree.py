"""JSON-ready dissection tree of an IKEv2 message (RFC 7296 §3, RFC 7383 §2.5).

The IKEv2 counterpart of :mod:`ipseclab.wire.v1.tree`, with the same node shape so that
the widgets' message inspector shows it unchanged. Every node is
``{"name", "value", "offset", "length", "space", "children"}`` where
``offset``/``length`` cover exactly the bytes of that field in the buffer named by
``space`` (``"wire"``: the datagram, ``"plaintext"``: the decrypted inner payload chain
of an SK payload handed in). A node's children tile its bytes exactly. Malformed input
yields a ``"Malformed"`` node carrying the codec's ParseError reason;
:func:`message_tree` never raises.

Payload bodies are decoded by :mod:`ipseclab.wire.v2.message` (which validates them);
the substructure positions (proposals, transforms, attributes, selectors, CP
attributes) are then read from the validated bytes themselves, so offsets are exact
even where an encoding is not canonical.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

from ipseclab.errors import ParseError
from ipseclab.wire.nodes import Node, NodeBuilder
from ipseclab.wire.nodes import blob as _blob
from ipseclab.wire.nodes import node as _node
from ipseclab.wire.nodes import size as _size
from ipseclab.wire.v2.constants import (
    MAJOR_VERSION,
    AuthMethod,
    CertEncoding,
    CfgAttributeType,
    CfgType,
    EapCode,
    EncrId,
    EsnId,
    ExchangeType,
    HeaderFlag,
    IdType,
    IntegId,
    KeMethod,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    SubstructType,
    TransformAttribute,
    TransformType,
    TsType,
    enum_name,
)
from ipseclab.wire.v2.message import (
    CRITICAL,
    HEADER_LENGTH,
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CPPayload,
    DeletePayload,
    EAPPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IDiPayload,
    IDrPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    PayloadSlot,
    SAPayload,
    TrafficSelector,
    TSiPayload,
    TSrPayload,
    VendorIDPayload,
    iter_payloads,
)
from ipseclab.wire.v2.payloads import id_value

__all__ = ["PAYLOAD_NAMES", "message_tree"]


ROOT_NAME = "IKEv2 Message"

PAYLOAD_NAMES: dict[int, str] = {
    PayloadType.SA: "Security Association",
    PayloadType.KE: "Key Exchange",
    PayloadType.IDi: "Identification - Initiator",
    PayloadType.IDr: "Identification - Responder",
    PayloadType.CERT: "Certificate",
    PayloadType.CERTREQ: "Certificate Request",
    PayloadType.AUTH: "Authentication",
    PayloadType.NONCE: "Nonce",
    PayloadType.N: "Notify",
    PayloadType.D: "Delete",
    PayloadType.V: "Vendor ID",
    PayloadType.TSi: "Traffic Selector - Initiator",
    PayloadType.TSr: "Traffic Selector - Responder",
    PayloadType.SK: "Encrypted and Authenticated",
    PayloadType.CP: "Configuration",
    PayloadType.EAP: "Extensible Authentication",
    PayloadType.GSPM: "Generic Secure Password Methods",
    PayloadType.IDg: "Group Identification",
    PayloadType.GSA: "Group Security Association",
    PayloadType.KD: "Key Download",
    PayloadType.SKF: "Encrypted Fragment",
}

#: which enum names a Transform ID, per Transform Type (RFC 7296 §3.3.2, RFC 9370 §2.2.1)
_TRANSFORM_IDS: dict[int, Any] = {
    TransformType.ENCR: EncrId,
    TransformType.PRF: PrfId,
    TransformType.INTEG: IntegId,
    TransformType.KE: KeMethod,
    TransformType.ESN: EsnId,
    **{t: KeMethod for t in range(TransformType.ADDKE1, TransformType.ADDKE7 + 1)},
}

#: CP attributes whose value is one address (RFC 7296 §3.15.1)
_CFG_ADDRESS = {
    CfgAttributeType.INTERNAL_IP4_ADDRESS,
    CfgAttributeType.INTERNAL_IP4_NETMASK,
    CfgAttributeType.INTERNAL_IP4_DNS,
    CfgAttributeType.INTERNAL_IP4_NBNS,
    CfgAttributeType.INTERNAL_IP4_DHCP,
    CfgAttributeType.INTERNAL_IP6_DNS,
    CfgAttributeType.INTERNAL_IP6_DHCP,
    CfgAttributeType.P_CSCF_IP4_ADDRESS,
    CfgAttributeType.P_CSCF_IP6_ADDRESS,
}
_CFG_TEXT = {CfgAttributeType.APPLICATION_VERSION, CfgAttributeType.INTERNAL_DNS_DOMAIN}

#: EAP method types (IANA "Method Types", RFC 3748 §5)
_EAP_TYPES = {
    1: "Identity",
    2: "Notification",
    3: "Nak",
    4: "MD5-Challenge",
    5: "One-Time Password",
    6: "Generic Token Card",
    13: "EAP-TLS",
    18: "EAP-SIM",
    21: "EAP-TTLS",
    23: "EAP-AKA",
    25: "PEAP",
    26: "EAP-MSCHAPv2",
    50: "EAP-AKA'",
}

_FLAG_NAMES = (
    (HeaderFlag.INITIATOR, "Initiator"),
    (HeaderFlag.VERSION, "Version"),
    (HeaderFlag.RESPONSE, "Response"),
)

_OPAQUE = "Initialization vector + ciphertext + ICV"


def _u16(buf: bytes, pos: int) -> int:
    return int.from_bytes(buf[pos : pos + 2], "big")


def _flags(value: int) -> str:
    names = [name for bit, name in _FLAG_NAMES if value & bit]
    other = value & ~sum(bit for bit, _ in _FLAG_NAMES) & 0xFF
    if other:
        names.append(f"unknown bits 0x{other:02x}")
    return f"{', '.join(names) or 'none'} (0x{value:02x})"


def _protocol(protocol_id: int) -> str:
    return "none (0)" if protocol_id == 0 else enum_name(ProtocolId, protocol_id)


def _identity(id_type: int, data: bytes) -> str:
    try:
        value = id_value(id_type, data)
    except ValueError:
        return _blob(data)
    return _blob(value) if isinstance(value, bytes) else str(value)


def _cfg_value(attr_type: int, value: bytes) -> str:
    if not value:
        return "<empty>"
    if attr_type in _CFG_ADDRESS and len(value) in (4, 16):
        return str(IPv4Address(value) if len(value) == 4 else IPv6Address(value))
    if attr_type == CfgAttributeType.INTERNAL_IP4_SUBNET and len(value) == 8:
        return f"{IPv4Address(value[:4])}/{IPv4Address(value[4:])}"
    if (
        attr_type
        in (
            CfgAttributeType.INTERNAL_IP6_ADDRESS,
            CfgAttributeType.INTERNAL_IP6_SUBNET,
        )
        and len(value) == 17
    ):
        return f"{IPv6Address(value[:16])}/{value[16]}"
    if attr_type in _CFG_TEXT:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return value.hex()


def _vendor(data: bytes) -> str:
    if data and all(32 <= b < 127 for b in data):
        return data.decode("ascii")
    return _blob(data)


class _Builder(NodeBuilder):
    """Emits nodes for one buffer ``buf`` (``space``); positions are absolute in it."""

    def __init__(self, space: str, buf: bytes) -> None:
        super().__init__(space)
        self.buf = buf

    def malformed(self, reason: str, offset: int, limit: int) -> Node:
        offset = min(max(offset, 0), limit)
        return self.leaf("Malformed", reason, offset, limit - offset)

    # -- SA (§3.3) ------------------------------------------------------------------

    def sub_header(self, pos: int, what: str) -> list[Node]:
        last = self.buf[pos]
        value = "last (0)" if last == SubstructType.LAST else f"more ({last})"
        return self.fields(
            pos,
            [
                ("Last substruc", value, 1),
                ("Reserved", None, 1),
                (f"{what} length", str(_u16(self.buf, pos + 2)), 2),
            ],
        )

    def attribute(self, pos: int, end: int) -> Node:
        raw_type = _u16(self.buf, pos)
        attr_type = raw_type & 0x7FFF
        tv = bool(raw_type & 0x8000)
        type_name = enum_name(TransformAttribute, attr_type)
        node_name = "Key Length" if attr_type == TransformAttribute.KEY_LENGTH else type_name
        kids = [self.leaf("Attribute type", f"{type_name} ({'TV' if tv else 'TLV'})", pos, 2)]
        if tv:
            value = str(_u16(self.buf, pos + 2))
            kids.append(self.leaf("Value", value, pos + 2, 2))
            length = 4
        else:
            vlen = _u16(self.buf, pos + 2)
            data = self.buf[pos + 4 : pos + 4 + vlen]
            value = str(int.from_bytes(data, "big")) if data else "<empty>"
            kids.append(self.leaf("Length", str(vlen), pos + 2, 2))
            kids.append(self.leaf("Value", _blob(data), pos + 4, vlen))
            length = 4 + vlen
        if length > end - pos:  # cannot happen after the codec validated the SA
            raise ParseError("attribute runs past its transform", pos)
        return _node(node_name, value, pos, length, self.space, kids)

    def transform(self, pos: int) -> Node:
        buf = self.buf
        length = _u16(buf, pos + 2)
        ttype = buf[pos + 4]
        tid = _u16(buf, pos + 6)
        type_name = enum_name(TransformType, ttype)
        id_enum = _TRANSFORM_IDS.get(ttype)
        id_name = enum_name(id_enum, tid) if id_enum else str(tid)
        children = self.sub_header(pos, "Transform")
        children += self.fields(
            pos + 4,
            [("Transform type", type_name, 1), ("Reserved", None, 1), ("Transform ID", id_name, 2)],
        )
        apos, end = pos + 8, pos + length
        summary = f"{type_name}: {id_name}"
        while apos < end:
            attr = self.attribute(apos, end)
            children.append(attr)
            if attr["name"] == "Key Length":
                summary += f", {attr['value']} bits"
            apos += attr["length"]
        return _node("Transform", summary, pos, length, self.space, children)

    def proposal(self, pos: int) -> Node:
        buf = self.buf
        length = _u16(buf, pos + 2)
        number, protocol, spi_size, count = buf[pos + 4 : pos + 8]
        proto = _protocol(protocol)
        children = self.sub_header(pos, "Proposal")
        children += self.fields(
            pos + 4,
            [
                ("Proposal number", str(number), 1),
                ("Protocol ID", proto, 1),
                ("SPI size", str(spi_size), 1),
                ("Number of transforms", str(count), 1),
            ],
        )
        tpos, end = pos + 8, pos + length
        if spi_size:
            children.append(self.leaf("SPI", buf[tpos : tpos + spi_size].hex(), tpos, spi_size))
            tpos += spi_size
        while tpos < end:
            node = self.transform(tpos)
            children.append(node)
            tpos += node["length"]
        summary = f"{proto}, {count} transform(s)"
        return _node(f"Proposal #{number}", summary, pos, length, self.space, children)

    def sa(self, payload: SAPayload, off: int, body_len: int) -> list[Node]:
        out: list[Node] = []
        pos, end = off, off + body_len
        while pos < end:
            node = self.proposal(pos)
            out.append(node)
            pos += node["length"]
        return out

    # -- traffic selectors (§3.13) ---------------------------------------------------------

    def selector(self, pos: int, selector: Any) -> Node:
        length = _u16(self.buf, pos + 2)
        ts_type = enum_name(TsType, self.buf[pos])
        if isinstance(selector, TrafficSelector):
            size = len(selector.start_address.packed)
            proto = selector.ip_protocol
            summary = (
                f"{selector.start_address}-{selector.end_address}, protocol {proto}, "
                f"ports {selector.start_port}-{selector.end_port}"
            )
            kids = self.fields(
                pos,
                [
                    ("TS type", ts_type, 1),
                    ("IP protocol ID", "any (0)" if proto == 0 else str(proto), 1),
                    ("Selector length", str(length), 2),
                    ("Start port", str(selector.start_port), 2),
                    ("End port", str(selector.end_port), 2),
                    ("Starting address", str(selector.start_address), size),
                    ("Ending address", str(selector.end_address), size),
                ],
            )
        else:
            summary = f"{ts_type}, {_size(length - 4)}"
            kids = self.fields(
                pos,
                [
                    ("TS type", ts_type, 1),
                    ("IP protocol ID / Reserved", str(selector.second), 1),
                    ("Selector length", str(length), 2),
                    ("Selector data", _blob(selector.data), length - 4),
                ],
            )
        return _node("Traffic selector", summary, pos, length, self.space, kids)

    # -- payload bodies ------------------------------------------------------------------

    def body(self, payload: Payload, off: int, body_len: int) -> tuple[str | None, list[Node]]:
        """Return (summary, field nodes) of a payload body at ``off``."""
        if isinstance(payload, SAPayload):
            return f"{len(payload.proposals)} proposal(s)", self.sa(payload, off, body_len)
        if isinstance(payload, KEPayload):
            group = enum_name(KeMethod, payload.group)
            return group, self.fields(
                off,
                [
                    ("Key exchange method", group, 2),
                    ("Reserved", None, 2),
                    ("Key exchange data", _blob(payload.data), len(payload.data)),
                ],
            )
        if isinstance(payload, IDiPayload | IDrPayload):
            id_name = enum_name(IdType, payload.id_type)
            shown = _identity(payload.id_type, payload.data)
            return f"{id_name} {shown}", self.fields(
                off,
                [
                    ("ID type", id_name, 1),
                    ("Reserved", None, 3),
                    ("Identification data", shown, len(payload.data)),
                ],
            )
        if isinstance(payload, CertPayload | CertReqPayload):
            enc = enum_name(CertEncoding, payload.encoding)
            is_cert = isinstance(payload, CertPayload)
            data = payload.data if isinstance(payload, CertPayload) else payload.authority
            label = "Certificate data" if is_cert else "Certification authority"
            return enc, self.fields(
                off, [("Certificate encoding", enc, 1), (label, _blob(data), len(data))]
            )
        if isinstance(payload, AuthPayload):
            method = enum_name(AuthMethod, payload.method)
            return method, self.fields(
                off,
                [
                    ("Auth method", method, 1),
                    ("Reserved", None, 3),
                    ("Authentication data", _blob(payload.data), len(payload.data)),
                ],
            )
        if isinstance(payload, NoncePayload):
            return _size(body_len), [self.leaf("Nonce data", _blob(payload.data), off, body_len)]
        if isinstance(payload, NotifyPayload):
            ntype = enum_name(NotifyType, payload.notify_type)
            specs: list[tuple[str, str | None, int]] = [
                ("Protocol ID", _protocol(payload.protocol_id), 1),
                ("SPI size", str(len(payload.spi)), 1),
                ("Notify message type", ntype, 2),
            ]
            if payload.spi:
                specs.append(("SPI", payload.spi.hex(), len(payload.spi)))
            if payload.data:
                specs.append(("Notification data", payload.data.hex(), len(payload.data)))
            return ntype, self.fields(off, specs)
        if isinstance(payload, DeletePayload):
            proto = _protocol(payload.protocol_id)
            specs = [
                ("Protocol ID", proto, 1),
                ("SPI size", str(payload.spi_size), 1),
                ("Number of SPIs", str(len(payload.spis)), 2),
            ] + [("SPI", _blob(s), len(s)) for s in payload.spis]
            return f"{proto}, {len(payload.spis)} SPI(s)", self.fields(off, specs)
        if isinstance(payload, VendorIDPayload):
            shown = _vendor(payload.data)
            return shown[:32], [self.leaf("Vendor ID", shown, off, body_len)]
        if isinstance(payload, TSiPayload | TSrPayload):
            count = len(payload.selectors)
            out = self.fields(off, [("Number of TSs", str(count), 1), ("Reserved", None, 3)])
            pos = off + 4
            for selector in payload.selectors:
                node = self.selector(pos, selector)
                out.append(node)
                pos += node["length"]
            return f"{count} selector(s)", out
        if isinstance(payload, EncryptedPayload):
            first = enum_name(PayloadType, payload.first_payload)
            summary = f"{_size(body_len)}, first inner payload {first}"
            return summary, [self.leaf(_OPAQUE, _size(body_len), off, body_len)]
        if isinstance(payload, EncryptedFragmentPayload):
            number, total = payload.fragment_number, payload.total_fragments
            return f"fragment {number} of {total}", self.fields(
                off,
                [
                    ("Fragment number", str(number), 2),
                    ("Total fragments", str(total), 2),
                    (_OPAQUE, _size(len(payload.data)), len(payload.data)),
                ],
            )
        if isinstance(payload, CPPayload):
            cfg = enum_name(CfgType, payload.cfg_type)
            out = self.fields(off, [("CFG type", cfg, 1), ("Reserved", None, 3)])
            pos = off + 4
            for attr in payload.attributes:
                rbit = self.buf[pos] & 0x80
                type_name = enum_name(CfgAttributeType, attr.type)
                alen = len(attr.value)
                kids = self.fields(
                    pos,
                    [
                        ("Attribute type", type_name + (", R bit set" if rbit else ""), 2),
                        ("Length", str(alen), 2),
                    ],
                )
                value = _cfg_value(attr.type, attr.value)
                if alen:
                    kids.append(self.leaf("Value", value, pos + 4, alen))
                known = not type_name.startswith("unknown")
                name = type_name.split(" (")[0] if known else f"Attribute {attr.type}"
                out.append(_node(name, value, pos, 4 + alen, self.space, kids))
                pos += 4 + alen
            return f"{cfg}, {len(payload.attributes)} attribute(s)", out
        if isinstance(payload, EAPPayload):
            code = enum_name(EapCode, payload.code)
            specs = [
                ("Code", code, 1),
                ("Identifier", str(payload.identifier), 1),
                ("Length", str(body_len), 2),
            ]
            summary = code
            if payload.data and payload.code in (EapCode.REQUEST, EapCode.RESPONSE):
                etype = payload.data[0]
                tname = f"{_EAP_TYPES.get(etype, 'unknown')} ({etype})"
                summary += f", {tname}"
                specs.append(("Type", tname, 1))
                size = payload.data[1] if len(payload.data) > 1 else 0
                if etype == 4 and size and len(payload.data) >= 2 + size:  # MD5-Challenge, RFC 3748 §5.4
                    value = payload.data[2:2 + size]
                    what = "the challenge" if payload.code == EapCode.REQUEST else "MD5(Identifier | password | challenge)"
                    specs += [("Value-Size", str(size), 1), ("Value", f"{value.hex()} ({what})", size)]
                    if len(payload.data) > 2 + size:
                        specs.append(("Name", payload.data[2 + size:].decode(errors="replace"), len(payload.data) - 2 - size))
                elif etype == 1 and len(payload.data) > 1:  # Identity, §5.1
                    specs.append(("Identity", payload.data[1:].decode(errors="replace"), len(payload.data) - 1))
                elif len(payload.data) > 1:
                    specs.append(("Type data", payload.data[1:].hex(), len(payload.data) - 1))
            elif payload.data:
                specs.append(("Data", payload.data.hex(), len(payload.data)))
            return summary, self.fields(off, specs)
        data = getattr(payload, "data", b"")
        return _size(body_len), [self.leaf("Data", _blob(data), off, body_len)]

    def payload(self, slot: PayloadSlot) -> Node:
        name = PAYLOAD_NAMES.get(slot.payload_type, f"Payload type {slot.payload_type}")
        critical = "critical (1)" if slot.flags & CRITICAL else "not critical (0)"
        reserved = slot.flags & 0x7F
        if reserved:
            critical += f", reserved bits 0x{reserved:02x}"
        # the Critical bit and the 7 RESERVED bits share one byte: one node covers it
        children = self.fields(
            slot.offset,
            [
                ("Next payload", enum_name(PayloadType, slot.next_type), 1),
                ("Critical bit / Reserved", critical, 1),
                ("Payload length", str(slot.length), 2),
            ],
        )
        summary, body = self.body(slot.payload, slot.offset + 4, slot.length - 4)
        return _node(name, summary, slot.offset, slot.length, self.space, children + body)

    def chain(
        self, first: int, data: bytes, base: int, padding_ok: bool
    ) -> tuple[list[Node], PayloadSlot | None]:
        """Nodes for a payload chain in ``data`` (which sits at ``base``), and its last slot."""
        out: list[Node] = []
        end = base
        limit = base + len(data)
        last: PayloadSlot | None = None
        try:
            for slot in iter_payloads(first, data, base):
                out.append(self.payload(slot))
                end = slot.offset + slot.length
                last = slot
        except ParseError as exc:
            bad = min(max(exc.offset, end), limit)
            if bad > end:  # the start of the payload that failed to decode
                out.append(self.leaf("Undecoded", _size(bad - end), end, bad - end))
            out.append(self.malformed(exc.reason, bad, limit))
            return out, None
        if end < limit:
            if padding_ok:
                out.append(self.leaf("Padding", _size(limit - end), end, limit - end))
            else:
                out.append(
                    self.malformed(f"{limit - end} bytes after the last payload", end, limit)
                )
        return out, last


def _header(data: bytes) -> Node:
    w = _Builder("wire", data)
    version = data[17]
    exchange = enum_name(ExchangeType, data[18])
    children = w.fields(
        0,
        [
            ("Initiator SPI", data[0:8].hex(), 8),
            ("Responder SPI", data[8:16].hex(), 8),
            ("Next payload", enum_name(PayloadType, data[16]), 1),
            ("Version", f"{version >> 4}.{version & 0xF}", 1),
            ("Exchange type", exchange, 1),
            ("Flags", _flags(data[19]), 1),
            ("Message ID", str(int.from_bytes(data[20:24], "big")), 4),
            ("Length", str(int.from_bytes(data[24:28], "big")), 4),
        ],
    )
    return _node("Header", exchange, 0, HEADER_LENGTH, "wire", children)


def _inner(last: PayloadSlot, plaintext: bytes) -> list[Node]:
    """The decrypted inner chain of the SK (or reassembled SKF) payload ``last``."""
    p = _Builder("plaintext", plaintext)
    payload = last.payload
    first = 0
    if isinstance(payload, EncryptedPayload | EncryptedFragmentPayload):
        first = payload.first_payload
    if first == PayloadType.NONE:
        # a non-first fragment: its plaintext is the middle of a chain
        return [p.leaf("Decrypted data", _size(len(plaintext)), 0, len(plaintext))]
    nodes, _ = p.chain(first, plaintext, 0, True)
    return nodes


def _tree(data: bytes, plaintext: bytes | None) -> Node:
    w = _Builder("wire", data)
    root = _node(ROOT_NAME, None, 0, len(data), "wire")
    kids: list[Node] = root["children"]
    if len(data) < HEADER_LENGTH:
        reason = f"truncated header: {len(data)} of {HEADER_LENGTH} bytes"
        kids.append(w.malformed(reason, 0, len(data)))
        return root
    kids.append(_header(data))
    root["value"] = enum_name(ExchangeType, data[18])
    if data[17] >> 4 != MAJOR_VERSION:
        kids.append(w.malformed(f"major version {data[17] >> 4}, expected {MAJOR_VERSION}", 17, 18))
        return root
    length = int.from_bytes(data[24:28], "big")
    if length < HEADER_LENGTH or length > len(data):
        reason = f"header length {length} does not fit {len(data)} bytes"
        kids.append(w.malformed(reason, 24, 28))
        return root
    nodes, last = w.chain(data[16], data[HEADER_LENGTH:length], HEADER_LENGTH, False)
    kids.extend(nodes)
    if length < len(data):
        kids.append(w.leaf("Ignored bytes", _size(len(data) - length), length, len(data) - length))
    if (
        plaintext is not None
        and last is not None
        and last.payload_type in (PayloadType.SK, PayloadType.SKF)
    ):
        kids.extend(_inner(last, bytes(plaintext)))
    return root


def message_tree(data: bytes, plaintext: bytes | None = None) -> dict:
    """Dissect an IKEv2 datagram ``data`` into a node tree.

    ``plaintext`` is the decrypted content of its SK payload (the inner payload chain,
    padding and Pad Length removed or not); it is dissected in the ``"plaintext"``
    space after the wire nodes, starting with the payload type named by SK's Next
    Payload. Never raises: decoding problems become ``"Malformed"`` nodes.
    """
    data = bytes(data)
    try:
        return _tree(data, plaintext)
    except Exception as exc:  # noqa: BLE001 - last-resort guard, the tree must not raise
        root = _node(ROOT_NAME, None, 0, len(data), "wire")
        root["children"].append(
            _node("Malformed", f"internal error: {exc!r}", 0, len(data), "wire")
        )
        return root
