"""IKEv2 Security Association payload and its substructures, RFC 7296 §3.3.

* transform attributes (§3.3.5): the same TV / TLV layout as ISAKMP data attributes
  (AF bit), so :class:`~ipseclab.wire.v1.sa.Attribute` is reused; Key Length (14) is TV,
* Transform substructures (§3.3.2): Last Substruc 3 (more follow) or 0, type, ID, attributes,
* Proposal substructures (§3.3.1): Last Substruc 2 (more follow) or 0, number, protocol,
  SPI, transforms,
* the SA payload body (§3.3): one or more proposals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from ipseclab.wire.base import PayloadBase, check_uint
from ipseclab.wire.reader import Reader
from ipseclab.wire.v1.sa import Attribute, decode_attributes
from ipseclab.wire.v2.constants import PayloadType, SubstructType, TransformAttribute

__all__ = ["Attribute", "Proposal", "SAPayload", "Transform", "decode_attributes"]

_SUB_HEADER = 4  # Last Substruc, RESERVED, Length


def _sub_header(last: bool, more: int, body_len: int, what: str) -> bytes:
    total = _SUB_HEADER + body_len
    if total > 0xFFFF:
        raise ValueError(f"{what} too long: {total} bytes")
    return bytes([SubstructType.LAST if last else more, 0]) + total.to_bytes(2, "big")


def _read_sub(reader: Reader, more: int, what: str) -> tuple[bool, Reader]:
    """Read a substructure header; return (more follow, reader over the rest of it)."""
    start = reader.pos
    last_substruc = reader.u8(f"{what} header")
    if last_substruc not in (SubstructType.LAST, more):
        raise reader.fail(f"{what} Last Substruc is {last_substruc}, expected {more} or 0", start)
    reader.u8(f"{what} header")
    length = reader.u16(f"{what} header")
    if length < _SUB_HEADER:
        raise reader.fail(f"{what} length {length} is shorter than its header", start + 2)
    if length - _SUB_HEADER > reader.remaining:
        raise reader.fail(f"{what} length {length} runs past the end of its container", start + 2)
    body_base = reader.offset
    return last_substruc == more, Reader(reader.take(length - _SUB_HEADER, what), body_base)


@dataclass
class Transform:
    """Transform substructure, RFC 7296 §3.3.2 (attributes §3.3.5)."""

    transform_type: int
    transform_id: int
    attributes: list[Attribute] = field(default_factory=list)

    @classmethod
    def with_key_length(cls, transform_type: int, transform_id: int, key_length: int) -> Self:
        """A transform with the Key Length attribute (TV form, RFC 7296 §3.3.5)."""
        return cls(
            transform_type, transform_id, [Attribute(TransformAttribute.KEY_LENGTH, key_length)]
        )

    def get(self, attr_type: int) -> int | None:
        """Integer value of the first attribute of ``attr_type``, or None."""
        for attr in self.attributes:
            if attr.type == attr_type:
                return attr.int_value
        return None

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute in bits, or None."""
        return self.get(TransformAttribute.KEY_LENGTH)

    def encode(self, last: bool = True) -> bytes:
        """Encode with the substructure header; Last Substruc 0 if ``last`` else 3."""
        body = (
            bytes([check_uint(self.transform_type, 8, "transform type"), 0])
            + check_uint(self.transform_id, 16, "transform id").to_bytes(2, "big")
            + b"".join(a.encode() for a in self.attributes)
        )
        return _sub_header(last, SubstructType.MORE_TRANSFORMS, len(body), "transform") + body

    @classmethod
    def decode_body(cls, reader: Reader) -> Self:
        """Decode a transform body (after its substructure header)."""
        transform_type = reader.u8("transform type")
        reader.u8("transform reserved")
        transform_id = reader.u16("transform id")
        offset = reader.offset
        return cls(transform_type, transform_id, decode_attributes(reader.rest(), offset))


@dataclass
class Proposal:
    """Proposal substructure, RFC 7296 §3.3.1."""

    number: int
    protocol_id: int
    spi: bytes = b""
    transforms: list[Transform] = field(default_factory=list)

    def of_type(self, transform_type: int) -> list[Transform]:
        """The transforms of one type, in order."""
        return [t for t in self.transforms if t.transform_type == transform_type]

    def encode(self, last: bool = True) -> bytes:
        """Encode with the substructure header; Last Substruc 0 if ``last`` else 2."""
        check_uint(len(self.spi), 8, "SPI size")
        count = check_uint(len(self.transforms), 8, "number of transforms")
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
        return _sub_header(last, SubstructType.MORE_PROPOSALS, len(body), "proposal") + body

    @classmethod
    def decode_body(cls, reader: Reader) -> Self:
        """Decode a proposal body (after its substructure header), transforms included."""
        number = reader.u8("proposal number")
        protocol_id = reader.u8("proposal protocol id")
        size_pos = reader.pos
        spi_size = reader.u8("proposal SPI size")
        count_pos = reader.pos
        count = reader.u8("proposal transform count")
        if spi_size > reader.remaining:
            raise reader.fail(f"SPI size {spi_size} exceeds the proposal", size_pos)
        spi = reader.take(spi_size, "SPI")
        transforms: list[Transform] = []
        more = reader.remaining > 0
        while more:
            more, body = _read_sub(reader, SubstructType.MORE_TRANSFORMS, "transform")
            transforms.append(Transform.decode_body(body))
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
    """Security Association payload, RFC 7296 §3.3: a list of proposals."""

    payload_type: ClassVar[int] = PayloadType.SA

    proposals: list[Proposal]

    def encode_body(self) -> bytes:
        """The chained proposals."""
        count = len(self.proposals)
        return b"".join(p.encode(last=i == count - 1) for i, p in enumerate(self.proposals))

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode an SA body located at absolute ``offset``; at least one proposal."""
        reader = Reader(body, offset)
        if not body:
            raise reader.fail("SA payload holds no proposal")
        proposals: list[Proposal] = []
        more = True
        while more:
            more, sub = _read_sub(reader, SubstructType.MORE_PROPOSALS, "proposal")
            proposals.append(Proposal.decode_body(sub))
            if more and not reader.remaining:
                raise reader.fail("proposal chain announces another proposal past the SA payload")
        if reader.remaining:
            raise reader.fail(f"{reader.remaining} bytes after the last proposal")
        return cls(proposals, raw=bytes(body))
