"""IKEv2 message codec: header and payload chain, RFC 7296 §3.1-§3.2.

This module is the public face of the IKEv2 wire codec; the payload classes live in
:mod:`ipseclab.wire.v2.sa` and :mod:`ipseclab.wire.v2.payloads` and are re-exported here.

* the header (§3.1): SPIi, SPIr, Next Payload, version 2.0, exchange type, flags
  (Initiator, Version, Response), Message ID, Length — which must equal the datagram's
  length;
* the generic payload header (§3.2): Next Payload, Critical bit + RESERVED, Payload
  Length; unknown payload types are kept as :class:`UnknownPayload` with their
  Critical bit so that the engine can answer UNSUPPORTED_CRITICAL_PAYLOAD;
* SK (§3.14) and SKF (RFC 7383 §2.5) end the cleartext chain: their Next Payload names
  the first payload inside the ciphertext, and nothing may follow them.
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
from ipseclab.wire.v2.constants import MAJOR_VERSION, VERSION, HeaderFlag, PayloadType
from ipseclab.wire.v2.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
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
    TrafficSelector,
    TSiPayload,
    TSrPayload,
    UnknownPayload,
    UnknownSelector,
    VendorIDPayload,
)
from ipseclab.wire.v2.sa import Attribute, Proposal, SAPayload, Transform

__all__ = [
    "CRITICAL",
    "GENERIC_HEADER_LENGTH",
    "HEADER_LENGTH",
    "MAX_PAYLOADS",
    "Attribute",
    "AuthPayload",
    "CPPayload",
    "CertPayload",
    "CertReqPayload",
    "ConfigAttribute",
    "DeletePayload",
    "EAPPayload",
    "EncryptedFragmentPayload",
    "EncryptedPayload",
    "IDiPayload",
    "IDrPayload",
    "KEPayload",
    "Message",
    "NoncePayload",
    "NotifyPayload",
    "Payload",
    "PayloadSlot",
    "Proposal",
    "SAPayload",
    "TSiPayload",
    "TSrPayload",
    "TrafficSelector",
    "Transform",
    "UnknownPayload",
    "UnknownSelector",
    "VendorIDPayload",
    "decode_payload_body",
    "decode_payloads",
    "encode_payloads",
    "iter_payloads",
]

HEADER_LENGTH = 28
CRITICAL = 0x80  # RFC 7296 §3.2: the C bit of the generic payload header

Payload = (
    SAPayload
    | KEPayload
    | IDiPayload
    | IDrPayload
    | CertPayload
    | CertReqPayload
    | AuthPayload
    | NoncePayload
    | NotifyPayload
    | DeletePayload
    | VendorIDPayload
    | TSiPayload
    | TSrPayload
    | EncryptedPayload
    | CPPayload
    | EAPPayload
    | EncryptedFragmentPayload
    | UnknownPayload
)

_DECODERS: dict[int, Callable[[bytes, int], Payload]] = {
    PayloadType.SA: SAPayload.decode_body,
    PayloadType.KE: KEPayload.decode_body,
    PayloadType.IDi: IDiPayload.decode_body,
    PayloadType.IDr: IDrPayload.decode_body,
    PayloadType.CERT: CertPayload.decode_body,
    PayloadType.CERTREQ: CertReqPayload.decode_body,
    PayloadType.AUTH: AuthPayload.decode_body,
    PayloadType.NONCE: NoncePayload.decode_body,
    PayloadType.N: NotifyPayload.decode_body,
    PayloadType.D: DeletePayload.decode_body,
    PayloadType.V: VendorIDPayload.decode_body,
    PayloadType.TSi: TSiPayload.decode_body,
    PayloadType.TSr: TSrPayload.decode_body,
    PayloadType.CP: CPPayload.decode_body,
    PayloadType.EAP: EAPPayload.decode_body,
}

#: payloads whose Next Payload names the first inner payload and which end the chain
_ENCRYPTED = (PayloadType.SK, PayloadType.SKF)


def decode_payload_body(
    payload_type: int, body: bytes, offset: int, next_type: int = 0, flags: int = 0
) -> Payload:
    """Decode one payload body of ``payload_type`` found at absolute ``offset``.

    ``next_type`` and ``flags`` are the generic header's Next Payload and its
    Critical/RESERVED byte: SK and SKF keep the first as their inner first payload, an
    unknown payload keeps the Critical bit of the second.
    """
    if payload_type == PayloadType.SK:
        return EncryptedPayload.decode_body(body, offset, next_type)
    if payload_type == PayloadType.SKF:
        return EncryptedFragmentPayload.decode_body(body, offset, next_type)
    decoder = _DECODERS.get(payload_type)
    if decoder is not None:
        return decoder(body, offset)
    return UnknownPayload.decode_body(
        body, offset, payload_type=payload_type, critical=bool(flags & CRITICAL)
    )


def iter_payloads(first: int, data: bytes, base_offset: int = 0) -> Iterator[PayloadSlot]:
    """Walk a payload chain (RFC 7296 §3.2), yielding one slot per payload.

    The walk stops after an SK or SKF payload (its Next Payload is inside the
    ciphertext). Raises ParseError lazily when the chain is malformed. Bytes after the
    last payload are not looked at: callers decide.
    """
    return walk_payloads(first, data, base_offset, decode_payload_body, ends_chain=_ENCRYPTED)


def decode_payloads(first: int, data: bytes, base_offset: int = 0) -> list[Payload]:
    """Decode a payload chain starting with type ``first`` that fills ``data`` exactly."""
    return collect_payloads(iter_payloads(first, data, base_offset), data, base_offset)


def encode_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """Chain payloads with generic headers; return (first payload type, bytes).

    An SK or SKF payload must be the last one; its Next Payload is its ``first_payload``.
    """
    for payload in payloads[:-1]:
        if isinstance(payload, EncryptedPayload | EncryptedFragmentPayload):
            raise ValueError("an SK / SKF payload must be the last payload of a message")

    def next_of(i: int, payload: Payload) -> int:
        if isinstance(payload, EncryptedPayload | EncryptedFragmentPayload):
            return payload.first_payload
        return payloads[i + 1].payload_type if i + 1 < len(payloads) else PayloadType.NONE

    return encode_chain(payloads, lambda p: CRITICAL if isinstance(p, UnknownPayload) and p.critical else 0, next_of)


@dataclass
class Message:
    """An IKEv2 message: the header of RFC 7296 §3.1 and its cleartext payload chain.

    A protected message ends with an :class:`EncryptedPayload` (SK) or an
    :class:`EncryptedFragmentPayload` (SKF) whose content stays opaque here.
    """

    spi_i: bytes
    spi_r: bytes
    exchange_type: int
    flags: int = 0
    message_id: int = 0
    payloads: list[Payload] = field(default_factory=list)
    version: int = VERSION

    def _header(self, next_type: int, length: int) -> bytes:
        return encode_header(
            self.spi_i, self.spi_r, next_type, self.version, self.exchange_type, self.flags, self.message_id, length
        )

    def encode(self) -> bytes:
        """Header plus payload chain with every length filled in."""
        first, chain = encode_payloads(self.payloads)
        return self._header(first, HEADER_LENGTH + len(chain)) + chain

    @property
    def is_initiator(self) -> bool:
        """The Initiator flag: sent by the original initiator of the IKE SA."""
        return bool(self.flags & HeaderFlag.INITIATOR)

    @property
    def is_response(self) -> bool:
        """The Response flag."""
        return bool(self.flags & HeaderFlag.RESPONSE)

    @property
    def encrypted(self) -> EncryptedPayload | EncryptedFragmentPayload | None:
        """The SK or SKF payload ending the chain, if any."""
        last = self.payloads[-1] if self.payloads else None
        return last if isinstance(last, EncryptedPayload | EncryptedFragmentPayload) else None

    @property
    def unsupported_critical(self) -> list[int]:
        """Types of unknown payloads with the Critical bit set (RFC 7296 §3.2)."""
        return [
            p.payload_type for p in self.payloads if isinstance(p, UnknownPayload) and p.critical
        ]

    def find(self, cls: type[Payload]) -> list[Payload]:
        """The cleartext payloads of one class, in order."""
        return [p for p in self.payloads if isinstance(p, cls)]

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode one datagram; its length must equal the header's Length."""
        reader = Reader(data)
        spi_i = reader.take(8, "initiator SPI")
        spi_r = reader.take(8, "responder SPI")
        next_type = reader.u8("next payload")
        version = reader.u8("version")
        exchange_type = reader.u8("exchange type")
        flags = reader.u8("flags")
        message_id = reader.u32("message id")
        length = reader.u32("length")
        if version >> 4 != MAJOR_VERSION:
            raise ParseError(f"major version {version >> 4}, expected {MAJOR_VERSION}", 17)
        if length < HEADER_LENGTH:
            raise ParseError(f"message length {length} is shorter than the header", 24)
        if length != len(data):
            raise ParseError(f"message length {length} but the datagram has {len(data)} bytes", 24)
        payloads = decode_payloads(next_type, bytes(data[HEADER_LENGTH:]), HEADER_LENGTH)
        return cls(spi_i, spi_r, exchange_type, flags, message_id, payloads, version)
