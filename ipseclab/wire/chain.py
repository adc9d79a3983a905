"""Chains both IKE versions walk alike: payloads behind generic headers (RFC 2408 §3.2,
RFC 7296 §3.2) and the proposal/transform substructures of an SA payload (RFC 2408
§3.5–§3.6, RFC 7296 §3.3.1–§3.3.2).

A generic header is Next Payload, one byte of flags (IKEv2's Critical bit, IKEv1's
RESERVED), Payload Length.  A substructure header has the same shape; its first byte
says whether another substructure of the same kind follows (IKEv1: Next Payload 2 or
3, IKEv2: Last Substruc 2 or 3 — the same numbers) or 0 for the last.  Each codec
supplies what differs: how a payload body decodes, which payloads end a chain (IKEv2's
SK and SKF, whose Next Payload is inside the ciphertext), how a transform body decodes.
Every malformation is a :class:`~ipseclab.errors.ParseError` with its absolute offset.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from ipseclab.errors import ParseError
from ipseclab.wire.base import check_uint
from ipseclab.wire.reader import Reader

GENERIC_HEADER_LENGTH = 4
MAX_PAYLOADS = 256
_SUB_HEADER = 4


class PayloadSlot(NamedTuple):
    """Where one payload sits in a chain (offsets absolute)."""

    payload_type: int
    offset: int  # of the generic header
    length: int  # payload length incl. generic header
    next_type: int
    flags: int  # the generic header's second byte: IKEv2's Critical bit, IKEv1's RESERVED
    payload: Any

    @property
    def reserved(self) -> int:
        """IKEv1's name for the second byte."""
        return self.flags


#: decode one payload body: (type, body, absolute body offset, next type, flags) → payload
BodyDecoder = Callable[[int, bytes, int, int, int], Any]


def walk_payloads(
    first: int, data: bytes, base_offset: int, decode: BodyDecoder, *, ends_chain: Collection[int] = ()
) -> Iterator[PayloadSlot]:
    """Walk a payload chain starting with type ``first``, one slot per payload.

    The walk stops at Next Payload 0 or after a payload whose type is in
    ``ends_chain``.  Raises ParseError lazily; bytes after the last payload are not
    looked at (callers decide if they are padding or an error).
    """
    reader = Reader(data, base_offset)
    payload_type = first
    count = 0
    while payload_type != 0:
        count += 1
        if count > MAX_PAYLOADS:
            raise reader.fail(f"more than {MAX_PAYLOADS} payloads")
        start = reader.pos
        next_type = reader.u8("generic payload header")
        flags = reader.u8("generic payload header")
        length = reader.u16("generic payload header")
        if length < GENERIC_HEADER_LENGTH:
            raise reader.fail(f"payload length {length} is shorter than its header", start + 2)
        if length - GENERIC_HEADER_LENGTH > reader.remaining:
            raise reader.fail(
                f"payload length {length} runs past the end ({reader.remaining + 4} bytes left)",
                start + 2,
            )
        body_offset = reader.offset
        body = reader.take(length - GENERIC_HEADER_LENGTH, "payload body")
        payload = decode(payload_type, body, body_offset, next_type, flags)
        yield PayloadSlot(payload_type, base_offset + start, length, next_type, flags, payload)
        if payload_type in ends_chain:
            return
        payload_type = next_type


def collect_payloads(
    slots: Iterator[PayloadSlot], data: bytes, base_offset: int, *, allow_trailing: bool = False
) -> list[Any]:
    """The payloads of a walk; bytes after the last one are an error unless ``allow_trailing``
    (padding of a decrypted IKEv1 body, RFC 2408 §3.1 / RFC 2409 App. B)."""
    end = 0
    out: list[Any] = []
    for slot in slots:
        out.append(slot.payload)
        end = slot.offset - base_offset + slot.length
    if end < len(data) and not allow_trailing:
        raise ParseError(f"{len(data) - end} bytes after the last payload", base_offset + end)
    return out


class Encodable(Protocol):
    payload_type: Any

    def encode_body(self) -> bytes: ...


def encode_chain(
    payloads: Sequence[Encodable], flags_of: Callable[[Any], int], next_of: Callable[[int, Any], int] | None = None
) -> tuple[int, bytes]:
    """Chain payloads behind generic headers; return (first payload type, bytes).

    ``flags_of(payload)`` is the second header byte; ``next_of(i, payload)``, when
    given, overrides the Next Payload of payload ``i`` (IKEv2's SK names its inner
    first payload there).
    """
    parts: list[bytes] = []
    for i, payload in enumerate(payloads):
        next_type = payloads[i + 1].payload_type if i + 1 < len(payloads) else 0
        if next_of is not None:
            next_type = next_of(i, payload)
        body = payload.encode_body()
        total = GENERIC_HEADER_LENGTH + len(body)
        if total > 0xFFFF:
            raise ValueError(f"payload too long: {total} bytes")
        parts.append(bytes([check_uint(int(next_type), 8, "payload type"), flags_of(payload)]) + total.to_bytes(2, "big"))
        parts.append(body)
    first = payloads[0].payload_type if payloads else 0
    return int(first), b"".join(parts)


# -- SA substructures -----------------------------------------------------------------


def substruct_header(more: int | None, body_len: int, what: str) -> bytes:
    """A proposal or transform header: ``more`` (2 / 3) when another follows, else 0."""
    total = _SUB_HEADER + body_len
    if total > 0xFFFF:
        raise ValueError(f"{what} too long: {total} bytes")
    return bytes([more or 0, 0]) + total.to_bytes(2, "big")


def read_substructs(
    reader: Reader, more: int, what: str, container: str, decode: Callable[[Reader], Any], *,
    field: str = "next payload", at_least_one: bool = False,
) -> list[Any]:
    """Read a chain of substructures of one kind filling ``reader``.

    ``more`` is the first-byte value announcing another (its ``field`` name is the
    version's: IKEv1 "next payload", IKEv2 "Last Substruc"); ``decode`` reads one
    body.  With ``at_least_one`` an empty container is an error.
    """
    if at_least_one and not reader.remaining:
        raise reader.fail(f"{container} holds no {what}")
    items: list[Any] = []
    announced = reader.remaining > 0
    while announced:
        start = reader.pos
        marker = reader.u8(f"{what} header")
        if marker not in (0, more):
            raise reader.fail(f"{what} {field} is {marker}, expected {more} or 0", start)
        reader.u8(f"{what} header")
        length = reader.u16(f"{what} header")
        if length < _SUB_HEADER:
            raise reader.fail(f"{what} length {length} is shorter than its header", start + 2)
        if length - _SUB_HEADER > reader.remaining:
            raise reader.fail(f"{what} length {length} runs past the end of its container", start + 2)
        body_base = reader.offset
        items.append(decode(Reader(reader.take(length - _SUB_HEADER, what), body_base)))
        announced = marker == more
        if announced and not reader.remaining:
            raise reader.fail(f"{what} chain announces another {what} past the {container}")
    if reader.remaining:
        raise reader.fail(f"{reader.remaining} bytes after the last {what}")
    return items


def encode_proposal_body(number: int, protocol_id: int, spi: bytes, transforms: Sequence[Any], more_transforms: int) -> bytes:
    """Proposal #, Protocol ID, SPI Size, # of Transforms, SPI, transforms (same in both versions)."""
    check_uint(len(spi), 8, "SPI size")
    count = check_uint(len(transforms), 8, "number of transforms")
    return (
        bytes([check_uint(number, 8, "proposal number"), check_uint(protocol_id, 8, "protocol id"), len(spi), count])
        + bytes(spi)
        + b"".join(t.encode(last=i == count - 1) for i, t in enumerate(transforms))
    )


def read_proposal_body(
    reader: Reader, more_transforms: int, decode_transform: Callable[[Reader], Any], *, field: str = "next payload"
) -> tuple[int, int, bytes, list[Any]]:
    """(number, protocol ID, SPI, transforms) of a proposal body; the count must match."""
    number = reader.u8("proposal number")
    protocol_id = reader.u8("proposal protocol id")
    size_pos = reader.pos
    spi_size = reader.u8("proposal SPI size")
    count_pos = reader.pos
    count = reader.u8("proposal transform count")
    if spi_size > reader.remaining:
        raise reader.fail(f"SPI size {spi_size} exceeds the proposal", size_pos)
    spi = reader.take(spi_size, "SPI")
    transforms = read_substructs(reader, more_transforms, "transform", "proposal", decode_transform, field=field)
    if len(transforms) != count:
        raise reader.fail(f"proposal announces {count} transforms but holds {len(transforms)}", count_pos)
    return number, protocol_id, spi, transforms
