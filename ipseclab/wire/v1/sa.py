"""Security Association payload and its nested structures, RFC 2408 §3.3-§3.6.

* data attributes (§3.3, TV / TLV forms chosen by the AF bit),
* Transform payloads (§3.6) and Proposal payloads (§3.5), each with its own
  generic header whose Next Payload is 3 / 2 (more follow) or 0 (last),
* the SA payload body (§3.4): DOI, Situation (RFC 2407 §4.6.1), proposals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from ipseclab.errors import ParseError
from ipseclab.wire.base import PayloadBase, check_uint
from ipseclab.wire.chain import (
    encode_proposal_body,
    read_proposal_body,
    read_substructs,
    substruct_header,
)
from ipseclab.wire.reader import Reader
from ipseclab.wire.v1.constants import Doi, PayloadType, Situation

_AF_BIT = 0x8000


def _int_to_tlv_bytes(value: int) -> bytes:
    """Deterministic TLV encoding of an int: 4 bytes if it fits, else minimal length."""
    size = max(4, (value.bit_length() + 7) // 8)
    return value.to_bytes(size, "big")


@dataclass(eq=False)
class Attribute:
    """One SA data attribute, RFC 2408 §3.3.

    ``value`` is an int for the TV (basic) form and the raw value bytes for a
    decoded TLV (variable) form. ``tlv`` forces the TLV form on encode; decode
    sets it from the AF bit. Two attributes are equal when they encode to the
    same bytes, so ``Attribute(12, 86400)`` equals its decoded TLV form.
    """

    type: int
    value: int | bytes
    tlv: bool = False

    @property
    def int_value(self) -> int:
        """The TV value, or the big-endian integer of the TLV value bytes."""
        if isinstance(self.value, bytes):
            return int.from_bytes(self.value, "big")
        return int(self.value)

    @property
    def length(self) -> int:
        """Encoded length in bytes."""
        return len(self.encode())

    def encode(self) -> bytes:
        """Encode as TV when possible (int 0..65535, ``tlv`` false), else as TLV."""
        check_uint(self.type, 15, "attribute type")
        value = self.value
        if isinstance(value, int) and not self.tlv and 0 <= value <= 0xFFFF:
            return (_AF_BIT | self.type).to_bytes(2, "big") + value.to_bytes(2, "big")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"attribute value {value} is negative")
            data = _int_to_tlv_bytes(value)
        else:
            data = bytes(value)
        check_uint(len(data), 16, "attribute length")
        return self.type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attribute):
            return NotImplemented
        try:
            return self.encode() == other.encode()
        except (ValueError, TypeError, OverflowError):
            return (self.type, self.value, self.tlv) == (other.type, other.value, other.tlv)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def decode(cls, reader: Reader) -> Self:
        """Read one attribute from ``reader``."""
        word = reader.u16("attribute type")
        if word & _AF_BIT:
            return cls(word & ~_AF_BIT, reader.u16("attribute value"), False)
        length = reader.u16("attribute length")
        return cls(word, reader.take(length, "attribute value"), True)


def decode_attributes(data: bytes, offset: int) -> list[Attribute]:
    """Decode a sequence of attributes filling ``data`` exactly."""
    reader = Reader(data, offset)
    out: list[Attribute] = []
    while reader.remaining:
        out.append(Attribute.decode(reader))
    return out


@dataclass
class Transform:
    """Transform payload, RFC 2408 §3.6 (attributes per RFC 2409 App. A / RFC 2407 §4.5)."""

    number: int
    transform_id: int
    attributes: list[Attribute] = field(default_factory=list)

    def get(self, attr_type: int) -> int | None:
        """Integer value of the first attribute of ``attr_type``, or None."""
        for attr in self.attributes:
            if attr.type == attr_type:
                return attr.int_value
        return None

    def encode(self, last: bool = True) -> bytes:
        """Encode with generic header; Next Payload 0 if ``last`` else 3 (T)."""
        body = (
            bytes([check_uint(self.number, 8, "transform number")])
            + bytes([check_uint(self.transform_id, 8, "transform id")])
            + b"\x00\x00"
            + b"".join(a.encode() for a in self.attributes)
        )
        return substruct_header(None if last else PayloadType.T, len(body), "transform") + body

    @classmethod
    def decode_body(cls, reader: Reader) -> Self:
        """Decode a transform body (after its generic header)."""
        number = reader.u8("transform number")
        transform_id = reader.u8("transform id")
        reader.take(2, "transform reserved")
        offset = reader.offset
        return cls(number, transform_id, decode_attributes(reader.rest(), offset))


@dataclass
class Proposal:
    """Proposal payload, RFC 2408 §3.5."""

    number: int
    protocol_id: int
    spi: bytes = b""
    transforms: list[Transform] = field(default_factory=list)

    def encode(self, last: bool = True) -> bytes:
        """Encode with generic header; Next Payload 0 if ``last`` else 2 (P)."""
        body = encode_proposal_body(self.number, self.protocol_id, self.spi, self.transforms, PayloadType.T)
        return substruct_header(None if last else PayloadType.P, len(body), "proposal") + body

    @classmethod
    def decode_body(cls, reader: Reader) -> Self:
        """Decode a proposal body (after its generic header), transforms included."""
        return cls(*read_proposal_body(reader, PayloadType.T, Transform.decode_body))


@dataclass
class SAPayload(PayloadBase):
    """Security Association payload, RFC 2408 §3.4 (IPsec DOI situation: RFC 2407 §4.6.1).

    Labeled-domain situations (SECRECY / INTEGRITY bits in the IPsec DOI) are
    not supported: decoding them raises ParseError.
    """

    payload_type: ClassVar[int] = PayloadType.SA

    proposals: list[Proposal]
    doi: int = Doi.IPSEC
    situation: int = Situation.IDENTITY_ONLY

    def encode_body(self) -> bytes:
        """DOI, Situation and the chained proposals."""
        count = len(self.proposals)
        return (
            check_uint(self.doi, 32, "DOI").to_bytes(4, "big")
            + check_uint(self.situation, 32, "situation").to_bytes(4, "big")
            + b"".join(p.encode(last=i == count - 1) for i, p in enumerate(self.proposals))
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode an SA body located at absolute ``offset``."""
        reader = Reader(body, offset)
        doi = reader.u32("SA DOI")
        situation = reader.u32("SA situation")
        if doi == Doi.IPSEC and situation & (Situation.SECRECY | Situation.INTEGRITY):
            raise ParseError("labeled-domain situations are not supported", offset + 4)
        proposals = read_substructs(reader, PayloadType.P, "proposal", "SA payload", Proposal.decode_body)
        return cls(proposals, doi, situation, raw=bytes(body))
