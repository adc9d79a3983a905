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
from ipseclab.wire.reader import Reader
from ipseclab.wire.v1.constants import Doi, PayloadType, Situation

_AF_BIT = 0x8000
_STRUCT_HEADER = 4  # next payload, reserved, length


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


def _struct_header(next_type: int, body_len: int, what: str) -> bytes:
    total = _STRUCT_HEADER + body_len
    if total > 0xFFFF:
        raise ValueError(f"{what} too long: {total} bytes")
    return bytes([next_type, 0]) + total.to_bytes(2, "big")


def _read_struct(reader: Reader, allowed_next: int, what: str) -> tuple[int, Reader]:
    """Read a nested generic header; return (next payload, reader over the body)."""
    start = reader.pos
    next_type = reader.u8(f"{what} header")
    if next_type not in (0, allowed_next):
        raise reader.fail(
            f"{what} next payload is {next_type}, expected {allowed_next} or 0", start
        )
    reader.u8(f"{what} header")
    length = reader.u16(f"{what} header")
    if length < _STRUCT_HEADER:
        raise reader.fail(f"{what} length {length} is shorter than its header", start + 2)
    if length - _STRUCT_HEADER > reader.remaining:
        raise reader.fail(f"{what} length {length} runs past the end of its container", start + 2)
    body_base = reader.offset
    return next_type, Reader(reader.take(length - _STRUCT_HEADER, what), body_base)


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
        return _struct_header(0 if last else PayloadType.T, len(body), "transform") + body

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
        check_uint(len(self.spi), 8, "SPI size")
        check_uint(len(self.transforms), 8, "number of transforms")
        count = len(self.transforms)
        body = (
            bytes(
                [
                    check_uint(self.number, 8, "proposal number"),
                    check_uint(self.protocol_id, 8, "protocol id"),
                    len(self.spi),
                    count,
                ]
            )
            + bytes(self.spi)
            + b"".join(t.encode(last=i == count - 1) for i, t in enumerate(self.transforms))
        )
        return _struct_header(0 if last else PayloadType.P, len(body), "proposal") + body

    @classmethod
    def decode_body(cls, reader: Reader) -> Self:
        """Decode a proposal body (after its generic header), transforms included."""
        number = reader.u8("proposal number")
        protocol_id = reader.u8("proposal protocol id")
        spi_size = reader.u8("proposal SPI size")
        count_pos = reader.pos
        count = reader.u8("proposal transform count")
        if spi_size > reader.remaining:
            raise reader.fail(f"SPI size {spi_size} exceeds the proposal", count_pos - 1)
        spi = reader.take(spi_size, "SPI")
        transforms: list[Transform] = []
        more = reader.remaining > 0
        while more:
            next_type, body = _read_struct(reader, PayloadType.T, "transform")
            transforms.append(Transform.decode_body(body))
            more = next_type != 0
            if more and not reader.remaining:
                raise reader.fail("transform chain announces another transform past the proposal")
        if reader.remaining:
            raise reader.fail(f"{reader.remaining} bytes after the last transform")
        if len(transforms) != count:
            raise reader.fail(
                f"proposal announces {count} transforms but holds {len(transforms)}", count_pos
            )
        return cls(number, protocol_id, spi, transforms)


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
        proposals: list[Proposal] = []
        more = reader.remaining > 0
        while more:
            next_type, sub = _read_struct(reader, PayloadType.P, "proposal")
            proposals.append(Proposal.decode_body(sub))
            more = next_type != 0
            if more and not reader.remaining:
                raise reader.fail("proposal chain announces another proposal past the SA payload")
        if reader.remaining:
            raise reader.fail(f"{reader.remaining} bytes after the last proposal")
        return cls(proposals, doi, situation, raw=bytes(body))
