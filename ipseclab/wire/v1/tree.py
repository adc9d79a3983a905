"""JSON-ready dissection tree of an ISAKMP message (RFC 2408 §3 layouts).

Every node is ``{"name", "value", "offset", "length", "space", "children"}``
where ``offset``/``length`` cover exactly the bytes of that field in the
buffer named by ``space`` (``"wire"``: the datagram, ``"plaintext"``: the
decrypted body handed in). Malformed input yields a ``"Malformed"`` node;
:func:`message_tree` never raises.
"""

from __future__ import annotations

import ipaddress

from ipseclab.errors import ParseError
from ipseclab.wire.nodes import Node, NodeBuilder
from ipseclab.wire.nodes import blob as _blob
from ipseclab.wire.nodes import node as _node
from ipseclab.wire.nodes import size as _size
from ipseclab.wire.v1.constants import (
    AhTransformId,
    CertEncoding,
    CfgAttribute,
    CfgType,
    Doi,
    EspTransformId,
    ExchangeType,
    HeaderFlag,
    IdType,
    IkeTransformId,
    NotifyType,
    PayloadType,
    ProtocolId,
    Situation,
    attribute_names,
    enum_name,
)
from ipseclab.wire.v1.isakmp import (
    HEADER_LENGTH,
    AttributePayload,
    CertPayload,
    CertReqPayload,
    DeletePayload,
    IDPayload,
    NatDPayload,
    NatOAPayload,
    NotifyPayload,
    Payload,
    PayloadSlot,
    Proposal,
    SAPayload,
    Transform,
    UnknownPayload,
    VendorIDPayload,
    iter_payloads,
)

PAYLOAD_NAMES: dict[int, str] = {
    PayloadType.SA: "Security Association",
    PayloadType.P: "Proposal",
    PayloadType.T: "Transform",
    PayloadType.KE: "Key Exchange",
    PayloadType.ID: "Identification",
    PayloadType.CERT: "Certificate",
    PayloadType.CR: "Certificate Request",
    PayloadType.HASH: "Hash",
    PayloadType.SIG: "Signature",
    PayloadType.NONCE: "Nonce",
    PayloadType.N: "Notification",
    PayloadType.D: "Delete",
    PayloadType.VID: "Vendor ID",
    PayloadType.ATTR: "Attribute",
    PayloadType.NAT_D: "NAT-D",
    PayloadType.NAT_OA: "NAT-OA",
    PayloadType.NAT_D_DRAFT: "NAT-D (draft)",
    PayloadType.NAT_OA_DRAFT: "NAT-OA (draft)",
}

# Well-known Vendor IDs (RFC 3947 §3.1, RFC 3706 §3, draft-ietf-ipsec-isakmp-xauth).
KNOWN_VENDOR_IDS: dict[bytes, str] = {
    bytes.fromhex("4a131c81070358455c5728f20e95452f"): "RFC 3947 NAT-T",
    bytes.fromhex("afcad71368a1f1c96b8696fc77570100"): "RFC 3706 DPD",
    bytes.fromhex("09002689dfd6b712"): "XAUTH",
    bytes.fromhex("90cb80913ebb696e086381b5ec427b1f"): "draft-ietf-ipsec-nat-t-ike-02\\n",
    bytes.fromhex("cd60464335df21f87cfdb2fc68b6a448"): "draft-ietf-ipsec-nat-t-ike-02",
    bytes.fromhex("7d9419a65310ca6f2c179d9215529d56"): "draft-ietf-ipsec-nat-t-ike-03",
    bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d380000000"): "IKE fragmentation (Cisco)",
}

_TRANSFORM_IDS = {
    ProtocolId.ISAKMP: IkeTransformId,
    ProtocolId.IPSEC_AH: AhTransformId,
    ProtocolId.IPSEC_ESP: EspTransformId,
}


class _Builder(NodeBuilder):
    """Emits nodes for one buffer (``space``); positions are absolute in it."""

    def struct_header(self, offset: int, next_type: int, length: int) -> list[Node]:
        return self.fields(
            offset,
            [
                ("Next payload", enum_name(PayloadType, next_type), 1),
                ("Reserved", None, 1),
                ("Length", str(length), 2),
            ],
        )

    # -- SA -----------------------------------------------------------------

    def transform(self, t: Transform, protocol_id: int, offset: int, last: bool) -> Node:
        length = 8 + sum(len(a.encode()) for a in t.attributes)
        id_enum = _TRANSFORM_IDS.get(protocol_id)
        tid = enum_name(id_enum, t.transform_id) if id_enum else str(t.transform_id)
        children = self.struct_header(offset, 0 if last else PayloadType.T, length)
        children += self.fields(
            offset + 4,
            [
                ("Transform number", str(t.number), 1),
                ("Transform ID", tid, 1),
                ("Reserved", None, 2),
            ],
        )
        pos = offset + 8
        for attr in t.attributes:
            alen = len(attr.encode())
            type_name, value_name = attribute_names(protocol_id, attr.type, attr.value)
            form = "TLV" if alen > 4 or attr.tlv else "TV"
            kids = [self.leaf("Attribute type", f"{attr.type} ({form})", pos, 2)]
            if form == "TLV":
                kids.append(self.leaf("Length", str(alen - 4), pos + 2, 2))
                kids.append(self.leaf("Value", _blob(attr.encode()[4:]), pos + 4, alen - 4))
            else:
                kids.append(self.leaf("Value", str(attr.int_value), pos + 2, 2))
            children.append(_node(type_name, value_name, pos, alen, self.space, kids))
            pos += alen
        return _node(f"Transform #{t.number}", tid, offset, length, self.space, children)

    def proposal(self, p: Proposal, offset: int, last: bool) -> Node:
        tlens = [8 + sum(len(a.encode()) for a in t.attributes) for t in p.transforms]
        length = 8 + len(p.spi) + sum(tlens)
        proto = enum_name(ProtocolId, p.protocol_id)
        children = self.struct_header(offset, 0 if last else PayloadType.P, length)
        children += self.fields(
            offset + 4,
            [
                ("Proposal number", str(p.number), 1),
                ("Protocol ID", proto, 1),
                ("SPI size", str(len(p.spi)), 1),
                ("Number of transforms", str(len(p.transforms)), 1),
            ],
        )
        pos = offset + 8
        if p.spi:
            children.append(self.leaf("SPI", p.spi.hex(), pos, len(p.spi)))
            pos += len(p.spi)
        for i, (t, tlen) in enumerate(zip(p.transforms, tlens, strict=True)):
            children.append(self.transform(t, p.protocol_id, pos, i == len(p.transforms) - 1))
            pos += tlen
        summary = f"{proto}, {len(p.transforms)} transform(s)"
        return _node(f"Proposal #{p.number}", summary, offset, length, self.space, children)

    def sa(self, sa: SAPayload, off: int) -> list[Node]:
        out = self.fields(
            off,
            [
                ("DOI", enum_name(Doi, sa.doi), 4),
                ("Situation", enum_name(Situation, sa.situation), 4),
            ],
        )
        pos = off + 8
        for i, p in enumerate(sa.proposals):
            node = self.proposal(p, pos, i == len(sa.proposals) - 1)
            out.append(node)
            pos += node["length"]
        return out

    # -- Mode Config / XAUTH -----------------------------------------------------

    def attributes(self, payload: AttributePayload, off: int) -> tuple[str, list[Node]]:
        """draft-dukes-ike-mode-cfg §3.2: type, identifier, then data attributes (TV or TLV)."""
        cfg = enum_name(CfgType, payload.cfg_type)
        out = self.fields(off, [("Type", cfg, 1), ("Reserved", None, 1), ("Identifier", str(payload.identifier), 2)])
        pos = off + 4
        for attr in payload.attributes:
            alen = len(attr.encode())
            name = enum_name(CfgAttribute, attr.type)
            form = "TLV" if attr.tlv else "TV"
            kids = [self.leaf("Attribute type", f"{name} ({form})", pos, 2)]
            if form == "TLV":
                value = bytes(attr.value) if isinstance(attr.value, bytes) else attr.encode()[4:]
                shown = _cfg_value(attr.type, value)
                kids += [self.leaf("Length", str(alen - 4), pos + 2, 2), self.leaf("Value", shown, pos + 4, alen - 4)]
            else:
                shown = str(attr.int_value)
                if attr.type == CfgAttribute.XAUTH_STATUS:
                    shown += " (OK)" if attr.int_value == 1 else " (FAIL)"
                kids.append(self.leaf("Value", shown, pos + 2, 2))
            out.append(_node(name, shown, pos, alen, self.space, kids))
            pos += alen
        return f"{cfg}, {len(payload.attributes)} attribute(s)", out

    # -- other payloads ---------------------------------------------------------

    def body(self, payload: Payload, off: int, body_len: int) -> tuple[str | None, list[Node]]:
        """Return (summary, field nodes) of a payload body at ``off``."""
        if isinstance(payload, SAPayload):
            n = len(payload.proposals)
            return f"{n} proposal(s)", self.sa(payload, off)
        if isinstance(payload, IDPayload):
            id_name = enum_name(IdType, payload.id_type)
            value = payload.value
            shown = (
                value.hex()
                if isinstance(value, bytes)
                else (f"{value[0]}-{value[1]}" if isinstance(value, tuple) else str(value))
            )
            return f"{id_name} {shown}", self.fields(
                off,
                [
                    ("ID type", id_name, 1),
                    ("Protocol ID", str(payload.protocol_id), 1),
                    ("Port", str(payload.port), 2),
                    ("Identification data", shown, len(payload.data)),
                ],
            )
        if isinstance(payload, CertPayload | CertReqPayload):
            enc = enum_name(CertEncoding, payload.encoding)
            data = payload.data if isinstance(payload, CertPayload) else payload.authority
            label = (
                "Certificate data" if isinstance(payload, CertPayload) else "Certificate authority"
            )
            return enc, self.fields(
                off, [("Certificate encoding", enc, 1), (label, _blob(data), len(data))]
            )
        if isinstance(payload, AttributePayload):
            return self.attributes(payload, off)
        if isinstance(payload, NotifyPayload):
            ntype = enum_name(NotifyType, payload.notify_type)
            specs: list[tuple[str, str | None, int]] = [
                ("DOI", enum_name(Doi, payload.doi), 4),
                ("Protocol ID", enum_name(ProtocolId, payload.protocol_id), 1),
                ("SPI size", str(len(payload.spi)), 1),
                ("Notify message type", ntype, 2),
            ]
            if payload.spi:
                specs.append(("SPI", payload.spi.hex(), len(payload.spi)))
            if payload.data:
                specs.append(("Notification data", payload.data.hex(), len(payload.data)))
            return ntype, self.fields(off, specs)
        if isinstance(payload, DeletePayload):
            proto = enum_name(ProtocolId, payload.protocol_id)
            specs = [
                ("DOI", enum_name(Doi, payload.doi), 4),
                ("Protocol ID", proto, 1),
                ("SPI size", str(payload.spi_size), 1),
                ("Number of SPIs", str(len(payload.spis)), 2),
            ] + [("SPI", s.hex() or "<empty>", len(s)) for s in payload.spis]
            return f"{proto}, {len(payload.spis)} SPI(s)", self.fields(off, specs)
        if isinstance(payload, NatOAPayload):
            addr = str(payload.value)
            return addr, self.fields(
                off,
                [
                    ("ID type", enum_name(IdType, payload.id_type), 1),
                    ("Reserved", None, 3),
                    ("Original address", addr, len(payload.address)),
                ],
            )
        if isinstance(payload, VendorIDPayload):
            known = KNOWN_VENDOR_IDS.get(payload.data)
            return known or payload.data.hex()[:32], [
                self.leaf("Vendor ID", known or _blob(payload.data), off, body_len)
            ]
        if isinstance(payload, NatDPayload):
            return payload.data.hex()[:16], [self.leaf("Hash", _blob(payload.data), off, body_len)]
        if isinstance(payload, UnknownPayload):
            return _size(body_len), [self.leaf("Data", _blob(payload.data), off, body_len)]
        label = {
            PayloadType.KE: "Key exchange data",
            PayloadType.HASH: "Hash data",
            PayloadType.SIG: "Signature data",
            PayloadType.NONCE: "Nonce data",
        }.get(payload.payload_type, "Data")
        data = getattr(payload, "data", b"")
        return _size(body_len), [self.leaf(label, _blob(data), off, body_len)]

    def payload(self, slot: PayloadSlot) -> Node:
        name = PAYLOAD_NAMES.get(slot.payload_type, f"Payload type {slot.payload_type}")
        children = self.fields(
            slot.offset,
            [
                ("Next payload", enum_name(PayloadType, slot.next_type), 1),
                ("Reserved", str(slot.reserved) if slot.reserved else None, 1),
                ("Payload length", str(slot.length), 2),
            ],
        )
        summary, body = self.body(slot.payload, slot.offset + 4, slot.length - 4)
        return _node(name, summary, slot.offset, slot.length, self.space, children + body)

    def chain(self, first: int, data: bytes, base: int, padding_ok: bool) -> list[Node]:
        """Nodes for a payload chain in ``data`` (which sits at ``base``)."""
        out: list[Node] = []
        end = base
        limit = base + len(data)
        try:
            for slot in iter_payloads(first, data, base):
                out.append(self.payload(slot))
                end = slot.offset + slot.length
        except ParseError as exc:
            out.append(self.malformed(exc.reason, exc.offset, limit))
            return out
        if end < limit:
            trailing = data[end - base:]
            if padding_ok or (len(trailing) < 4 and not trailing.strip(b"\x00")):  # or libreswan's ikepad
                out.append(self.leaf("Padding", _size(limit - end), end, limit - end))
            else:
                reason = f"{limit - end} bytes after the last payload"
                out.append(self.malformed(reason, end, limit))
        return out

    def malformed(self, reason: str, offset: int, limit: int) -> Node:
        return self.leaf("Malformed", reason, offset, max(0, limit - offset))


def _header(data: bytes) -> Node:
    w = _Builder("wire")
    version = data[17]
    children = w.fields(
        0,
        [
            ("Initiator cookie", data[0:8].hex(), 8),
            ("Responder cookie", data[8:16].hex(), 8),
            ("Next payload", enum_name(PayloadType, data[16]), 1),
            ("Version", f"{version >> 4}.{version & 0xF}", 1),
            ("Exchange type", enum_name(ExchangeType, data[18]), 1),
            ("Flags", enum_name(HeaderFlag, data[19]), 1),
            ("Message ID", f"0x{int.from_bytes(data[20:24], 'big'):08x}", 4),
            ("Length", str(int.from_bytes(data[24:28], "big")), 4),
        ],
    )
    return _node("Header", enum_name(ExchangeType, data[18]), 0, HEADER_LENGTH, "wire", children)


def _tree(data: bytes, plaintext: bytes | None) -> Node:
    w = _Builder("wire")
    root = _node("ISAKMP Message", None, 0, len(data), "wire")
    kids: list[Node] = root["children"]
    if len(data) < HEADER_LENGTH:
        kids.append(w.malformed(f"truncated header: {len(data)} of 28 bytes", 0, len(data)))
        return root
    kids.append(_header(data))
    root["value"] = enum_name(ExchangeType, data[18])
    length = int.from_bytes(data[24:28], "big")
    if length < HEADER_LENGTH or length > len(data):
        kids.append(w.malformed(f"header length {length} does not fit {len(data)} bytes", 24, 28))
        return root
    body = data[HEADER_LENGTH:length]
    if data[19] & HeaderFlag.ENCRYPTION:
        kids.append(w.leaf("Encrypted payloads", _size(len(body)), HEADER_LENGTH, len(body)))
        if plaintext is not None:
            kids.extend(_Builder("plaintext").chain(data[16], bytes(plaintext), 0, True))
    else:
        kids.extend(w.chain(data[16], body, HEADER_LENGTH, False))
    if length < len(data):
        kids.append(w.leaf("Ignored bytes", _size(len(data) - length), length, len(data) - length))
    return root


def message_tree(data: bytes, plaintext: bytes | None = None) -> dict:
    """Dissect ``data`` (and the decrypted body ``plaintext``) into a node tree.

    Never raises: decoding problems become ``"Malformed"`` nodes.
    """
    data = bytes(data)
    try:
        return _tree(data, plaintext)
    except Exception as exc:  # noqa: BLE001 - last-resort guard, the tree must not raise
        root = _node("ISAKMP Message", None, 0, len(data), "wire")
        root["children"].append(
            _node("Malformed", f"internal error: {exc!r}", 0, len(data), "wire")
        )
        return root


def _cfg_value(attr_type: int, value: bytes) -> str:
    """A configuration attribute's value in words: an address, a name, or ``<empty>`` (a request)."""
    if not value:
        return "<empty>"
    if attr_type in (CfgAttribute.INTERNAL_IP4_ADDRESS, CfgAttribute.INTERNAL_IP4_NETMASK, CfgAttribute.INTERNAL_IP4_DNS,
                     CfgAttribute.INTERNAL_IP4_NBNS) and len(value) == 4:
        return str(ipaddress.IPv4Address(value))
    if attr_type in (CfgAttribute.XAUTH_USER_NAME, CfgAttribute.APPLICATION_VERSION, CfgAttribute.XAUTH_MESSAGE,
                     CfgAttribute.XAUTH_DOMAIN):
        return value.decode(errors="replace")
    if attr_type == CfgAttribute.XAUTH_USER_PASSWORD:
        return f"<{len(value)} bytes: the password, in the clear inside the encrypted ISAKMP SA>"
    return _blob(value)
