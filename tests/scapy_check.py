"""Cross-check of our ISAKMP decoder against scapy's independent dissector.

scapy (2.5-2.8) quirk worked around here: ``ISAKMP_payload_Proposal.trans``
takes ``length - 8`` bytes, ignoring the SPI, so after a proposal with a
non-empty SPI scapy's proposal chain goes off the rails. We therefore let
scapy dissect each proposal on its own, cut at the length scapy itself reads
from the proposal header.
"""

from __future__ import annotations

import logging
from typing import Any

from scapy.layers.isakmp import (
    ISAKMP,
    PROTO_IPSEC_ESP,
    PROTO_ISAKMP,
    IPSECAttributeTypes,
    ISAKMP_payload,
    ISAKMP_payload_Proposal,
    ISAKMP_payload_SA,
    ISAKMP_payload_Transform,
    ISAKMPAttributeTypes,
)

from ipseclab.wire.v1.constants import HeaderFlag
from ipseclab.wire.v1.isakmp import Message, SAPayload

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


def _scapy_attr_to_numbers(protocol_id: int, attr: tuple[Any, Any]) -> tuple[int, int]:
    """Undo scapy's name translation of a (type, value) attribute tuple."""
    typ, val = attr
    if protocol_id == PROTO_ISAKMP:
        table = ISAKMPAttributeTypes
    elif protocol_id == PROTO_IPSEC_ESP:
        table = IPSECAttributeTypes
    else:
        table = {}
    if isinstance(typ, str):
        typ_num, values, _tlv = table[typ]
    else:
        typ_num, values = typ, {}
    if isinstance(val, str):
        val = values[val]
    return int(typ_num), int(val)


def _scapy_proposals(sa: ISAKMP_payload_SA) -> list[dict[str, Any]]:
    """Proposals of a scapy SA layer, each re-dissected on its own (see module doc)."""
    region = bytes(sa.original)[12 : sa.length]
    out = []
    pos = 0
    while pos < len(region):
        length = ISAKMP_payload_Proposal(region[pos:]).length
        assert length and length >= 8, f"scapy reads proposal length {length}"
        prop = ISAKMP_payload_Proposal(region[pos : pos + length])
        transforms = []
        t = prop.trans
        while isinstance(t, ISAKMP_payload_Transform):
            attrs = [_scapy_attr_to_numbers(prop.proto, a) for a in (t.transforms or [])]
            transforms.append((t.transform_count, t.transform_id, attrs))
            t = t.payload
        out.append(
            {
                "number": prop.proposal,
                "protocol_id": prop.proto,
                "spi": bytes(prop.SPI),
                "count": prop.trans_nb,
                "transforms": transforms,
            }
        )
        pos += length
    return out


def _our_proposals(sa: SAPayload) -> list[dict[str, Any]]:
    return [
        {
            "number": p.number,
            "protocol_id": p.protocol_id,
            "spi": p.spi,
            "count": len(p.transforms),
            "transforms": [
                (t.number, t.transform_id, [(a.type, a.int_value) for a in t.attributes])
                for t in p.transforms
            ],
        }
        for p in sa.proposals
    ]


def assert_scapy_agrees(data: bytes, *, decoded: Message | None = None) -> None:
    """Assert that scapy and :meth:`Message.decode` read ``data`` the same way.

    ``decoded`` replaces our own decoding (used to test this helper). For an
    encrypted message only the header is compared.
    """
    ours = decoded if decoded is not None else Message.decode(data)
    pkt = ISAKMP(data)
    ours_header = (
        ours.icookie,
        ours.rcookie,
        ours.first_payload
        if ours.encrypted_body is not None
        else (ours.payloads[0].payload_type if ours.payloads else 0),
        ours.exchange_type,
        int(ours.flags),
        ours.message_id,
        len(ours.encode()),
    )
    scapy_header = (
        bytes(pkt.init_cookie),
        bytes(pkt.resp_cookie),
        pkt.next_payload,
        pkt.exch_type,
        int(pkt.flags),
        pkt.id,
        pkt.length,
    )
    assert ours_header == scapy_header, f"header: ours {ours_header} != scapy {scapy_header}"
    if ours.flags & HeaderFlag.ENCRYPTION:
        return

    scapy_chain: list[tuple[int, int]] = []
    scapy_sas: list[ISAKMP_payload_SA] = []
    layer, ptype = pkt.payload, pkt.next_payload
    while ptype and isinstance(layer, ISAKMP_payload):
        scapy_chain.append((ptype, layer.length))
        if isinstance(layer, ISAKMP_payload_SA):
            scapy_sas.append(layer)
        layer, ptype = layer.payload, layer.next_payload
    ours_chain = [(int(p.payload_type), 4 + len(p.encode_body())) for p in ours.payloads]
    assert ours_chain == scapy_chain, f"payload chain: ours {ours_chain} != scapy {scapy_chain}"

    ours_sas = [p for p in ours.payloads if isinstance(p, SAPayload)]
    for mine, theirs in zip(ours_sas, scapy_sas, strict=True):
        assert (mine.doi, mine.situation) == (theirs.doi, theirs.situation)
        a, b = _our_proposals(mine), _scapy_proposals(theirs)
        assert a == b, f"proposals: ours {a} != scapy {b}"
