"""ISAKMP message codec: header and payload chain, RFC 2408 §3.1-§3.2.

This module is the public face of the wire codec; the payload classes live in
:mod:`ipseclab.wire.v1.sa` and :mod:`ipseclab.wire.v1.payloads` and are re-exported
here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Self

from ipseclab.errors import ParseError
from ipseclab.wire.chain import (
    GENERIC_HEADER_LENGTH,
    MAX_PAYLOADS,
    PayloadSlot,
    collect_payloads,
    encode_chain,
    walk_payloads,
)
from ipseclab.wire.header import encode_header
from ipseclab.wire.reader import Reader
from ipseclab.wire.v1.attributes import AttributePayload
from ipseclab.wire.v1.constants import HeaderFlag, PayloadType
from ipseclab.wire.v1.payloads import (
    CertPayload,
    CertReqPayload,
    DeletePayload,
    HashPayload,
    IDPayload,
    KEPayload,
    NatDPayload,
    NatOAPayload,
    NoncePayload,
    NotifyPayload,
    SigPayload,
    UnknownPayload,
    VendorIDPayload,
)
from ipseclab.wire.v1.sa import Attribute, Proposal, SAPayload, Transform

__all__ = [
    "HEADER_LENGTH",
    "GENERIC_HEADER_LENGTH",
    "MAX_PAYLOADS",
    "Attribute",
    "AttributePayload",
    "CertPayload",
    "CertReqPayload",
    "DeletePayload",
    "HashPayload",
    "IDPayload",
    "KEPayload",
    "Message",
    "NatDPayload",
    "NatOAPayload",
    "NoncePayload",
    "NotifyPayload",
    "Payload",
    "PayloadSlot",
    "Proposal",
    "SAPayload",
    "SigPayload",
    "Transform",
    "UnknownPayload",
    "VendorIDPayload",
    "decode_payload_body",
    "decode_payloads",
    "encode_payloads",
    "iter_payloads",
]

HEADER_LENGTH = 28
_CRITICAL = 0x80

Payload = (
    SAPayload
    | KEPayload
    | IDPayload
    | CertPayload
    | CertReqPayload
    | HashPayload
    | SigPayload
    | NoncePayload
    | NotifyPayload
    | AttributePayload
    | DeletePayload
    | VendorIDPayload
    | NatDPayload
    | NatOAPayload
    | UnknownPayload
)

_DECODERS: dict[int, Callable[[bytes, int], Payload]] = {
    PayloadType.SA: SAPayload.decode_body,
    PayloadType.KE: KEPayload.decode_body,
    PayloadType.ID: IDPayload.decode_body,
    PayloadType.CERT: CertPayload.decode_body,
    PayloadType.CR: CertReqPayload.decode_body,
    PayloadType.HASH: HashPayload.decode_body,
    PayloadType.SIG: SigPayload.decode_body,
    PayloadType.NONCE: NoncePayload.decode_body,
    PayloadType.N: NotifyPayload.decode_body,
    PayloadType.D: DeletePayload.decode_body,
    PayloadType.VID: VendorIDPayload.decode_body,
    PayloadType.ATTR: AttributePayload.decode_body,
    PayloadType.NAT_D: NatDPayload.decode_body,
    PayloadType.NAT_OA: NatOAPayload.decode_body,
    PayloadType.NAT_D_DRAFT: lambda b, o: NatDPayload.decode_body(b, o, draft=True),
    PayloadType.NAT_OA_DRAFT: lambda b, o: NatOAPayload.decode_body(b, o, draft=True),
}


def decode_payload_body(payload_type: int, body: bytes, offset: int, reserved: int = 0) -> Payload:
    """Decode one payload body of ``payload_type`` found at absolute ``offset``.

    Proposal and Transform payloads may only appear inside an SA payload
    (RFC 2408 §3.5, §3.6); unknown types become :class:`UnknownPayload` unless
    the RESERVED byte of their generic header (``reserved``) has the critical
    bit set.
    """
    decoder = _DECODERS.get(payload_type)
    if decoder is not None:
        return decoder(body, offset)
    if payload_type in (PayloadType.P, PayloadType.T):
        raise ParseError(f"payload type {payload_type} outside an SA payload", offset)
    if reserved & _CRITICAL:
        raise ParseError(f"unknown critical payload type {payload_type}", offset)
    return UnknownPayload.decode_body(body, offset, payload_type=payload_type)


def iter_payloads(first: int, data: bytes, base_offset: int = 0) -> Iterator[PayloadSlot]:
    """Walk a payload chain (RFC 2408 §3.2), yielding one slot per payload.

    Raises ParseError lazily when the chain is malformed. Bytes after the last
    payload are not looked at: callers decide if they are padding or an error.
    """
    return walk_payloads(first, data, base_offset, lambda t, body, off, _next, flags: decode_payload_body(t, body, off, flags))


def decode_payloads(
    first: int, data: bytes, base_offset: int = 0, *, allow_trailing: bool = False
) -> list[Payload]:
    """Decode a payload chain starting with type ``first``, RFC 2408 §3.2.

    With ``allow_trailing`` bytes after the last payload (padding of a
    decrypted body, RFC 2408 §3.1 / RFC 2409 App. B) are ignored; otherwise
    they are a ParseError.
    """
    return collect_payloads(iter_payloads(first, data, base_offset), data, base_offset, allow_trailing=allow_trailing)


def encode_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """Chain payloads with generic headers; return (first payload type, bytes)."""
    return encode_chain(payloads, lambda p: _CRITICAL if isinstance(p, UnknownPayload) and p.critical else 0)


@dataclass
class Message:
    """An ISAKMP message: the fixed header of RFC 2408 §3.1 and its payload chain.

    For an encrypted message (ENCRYPTION flag) ``payloads`` stays empty and
    ``encrypted_body`` holds the ciphertext; ``first_payload`` is then the
    header's Next Payload.
    """

    icookie: bytes
    rcookie: bytes
    exchange_type: int
    flags: int = 0
    message_id: int = 0
    payloads: list[Payload] = field(default_factory=list)
    version: int = 0x10
    encrypted_body: bytes | None = None
    first_payload: int = 0
    #: zero bytes after the last payload of a cleartext message (libreswan's ``ikepad``)
    padding: int = 0

    def _header(self, next_type: int, length: int) -> bytes:
        return encode_header(
            self.icookie, self.rcookie, next_type, self.version, self.exchange_type, self.flags, self.message_id, length
        )

    def encode(self) -> bytes:
        """Header plus payload chain (or plus ``encrypted_body``) with lengths filled in."""
        if self.encrypted_body is not None:
            body = bytes(self.encrypted_body)
            return self._header(self.first_payload, HEADER_LENGTH + len(body)) + body
        first, chain = encode_payloads(self.payloads)
        return self._header(first, HEADER_LENGTH + len(chain)) + chain

    @property
    def is_encrypted(self) -> bool:
        """True when the ENCRYPTION flag is set (RFC 2408 §3.1)."""
        return bool(self.flags & HeaderFlag.ENCRYPTION)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode a datagram; bytes beyond the header's Length are ignored."""
        reader = Reader(data)
        icookie = reader.take(8, "initiator cookie")
        rcookie = reader.take(8, "responder cookie")
        next_type = reader.u8("next payload")
        version = reader.u8("version")
        exchange_type = reader.u8("exchange type")
        flags = reader.u8("flags")
        message_id = reader.u32("message id")
        length = reader.u32("length")
        if length < HEADER_LENGTH:
            raise ParseError(f"message length {length} is shorter than the header", 24)
        if length > len(data):
            raise ParseError(f"message length {length} exceeds the {len(data)} bytes received", 24)
        body = bytes(data[HEADER_LENGTH:length])
        msg = cls(icookie, rcookie, exchange_type, flags, message_id, version=version)
        if flags & HeaderFlag.ENCRYPTION:
            msg.encrypted_body = body
            msg.first_payload = next_type
        else:
            # libreswan pads every message to a multiple of 4 bytes (``ikepad=yes``): up to
            # three zero bytes after the last payload, inside the header's Length, are padding
            slots = list(iter_payloads(next_type, body, HEADER_LENGTH))
            end = slots[-1].offset - HEADER_LENGTH + slots[-1].length if slots else 0
            trailing = body[end:]
            if trailing and (len(trailing) >= 4 or trailing.strip(b"\x00")):
                raise ParseError(f"{len(trailing)} bytes after the last payload", HEADER_LENGTH + end)
            msg.payloads = [s.payload for s in slots]
            msg.padding = len(trailing)
        return msg
