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
from ipseclab.wire.chain import (
    encode_proposal_body,
    read_proposal_body,
    read_substructs,
    substruct_header,
)
from ipseclab.wire.reader import Reader
from ipseclab.wire.v1.sa import Attribute, decode_attributes
from ipseclab.wire.v2.constants import PayloadType, SubstructType, TransformAttribute

__all__ = ["Attribute", "Proposal", "SAPayload", "Transform", "decode_attributes"]

_FIELD = "Last Substruc"  # RFC 7296 §3.3.1: the name of a substructure's first byte

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
        return substruct_header(None if last else SubstructType.MORE_TRANSFORMS, len(body), "transform") + body

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
        body = encode_proposal_body(self.number, self.protocol_id, self.spi, self.transforms, SubstructType.MORE_TRANSFORMS)
        return substruct_header(None if last else SubstructType.MORE_PROPOSALS, len(body), "proposal") + body

    @classmethod
    def decode_body(cls, reader: Reader) -> Self:
        """Decode a proposal body (after its substructure header), transforms included."""
        return cls(*read_proposal_body(reader, SubstructType.MORE_TRANSFORMS, Transform.decode_body, field=_FIELD))


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
        proposals = read_substructs(
            Reader(body, offset), SubstructType.MORE_PROPOSALS, "proposal", "SA payload", Proposal.decode_body,
            field=_FIELD, at_least_one=True,
        )
        return cls(proposals, raw=bytes(body))
