"""The Attribute payload (payload type 14) of IKEv1's Transaction exchange:
draft-dukes-ike-mode-cfg §3.2 (Mode Config) and draft-beaulieu-ike-xauth §4 (XAUTH).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |   RESERVED    |           Identifier          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    ~                           Attributes                          ~

Type is REQUEST, REPLY, SET or ACK; the attributes are ISAKMP data attributes (RFC 2408
§3.3: TV when the AF bit is set, else TLV), an empty TLV value meaning "give me one".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from ipseclab.errors import ParseError
from ipseclab.wire.base import PayloadBase, check_uint
from ipseclab.wire.reader import Reader
from ipseclab.wire.v1.constants import PayloadType
from ipseclab.wire.v1.sa import Attribute, decode_attributes


@dataclass
class AttributePayload(PayloadBase):
    """Type, identifier and the configuration attributes."""

    payload_type: ClassVar[int] = PayloadType.ATTR

    cfg_type: int
    identifier: int = 0
    attributes: list[Attribute] = field(default_factory=list)

    def get(self, attr_type: int) -> Attribute | None:
        return next((a for a in self.attributes if a.type == attr_type), None)

    def encode_body(self) -> bytes:
        return (bytes([check_uint(self.cfg_type, 8, "attribute payload type"), 0])
                + check_uint(self.identifier, 16, "attribute payload identifier").to_bytes(2, "big")
                + b"".join(a.encode() for a in self.attributes))

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """The header and the attributes; up to three zero bytes after the last attribute are
        padding (libreswan aligns the payload to four bytes), anything else is malformed."""
        reader = Reader(body, offset)
        cfg_type = reader.u8("attribute payload type")
        reader.u8("reserved")
        identifier = reader.u16("attribute payload identifier")
        attrs = body[4:]
        most = min(len(attrs) - len(attrs.rstrip(b"\0")), 3)
        for cut in range(most + 1):  # the shortest zero tail whose removal leaves whole attributes
            try:
                attributes = decode_attributes(attrs[: len(attrs) - cut], offset + 4)
                break
            except ParseError:
                if cut == most:
                    raise
        return cls(cfg_type, identifier, attributes, raw=bytes(body))
