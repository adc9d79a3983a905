"""Common base of all payload dataclasses (RFC 2408 §3.2, RFC 7296 §3.2 generic payload),
and the body layouts IKEv1 and IKEv2 share byte for byte."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from ipseclab.wire.reader import Reader


@dataclass
class PayloadBase:
    """Behaviour shared by every payload.

    ``raw`` is set by ``decode_body`` to the exact body bytes received (without
    the 4-byte generic header, RFC 2408 §3.2); it is excluded from equality and
    repr. It is keyword-only so that subclasses keep their natural positional
    fields.
    """

    raw: bytes | None = field(default=None, compare=False, repr=False, kw_only=True)

    def encode_body(self) -> bytes:  # pragma: no cover - overridden
        """Encode the payload body (no generic header)."""
        raise NotImplementedError

    def wire_body(self) -> bytes:
        """The received body bytes if this payload was decoded, else :meth:`encode_body`.

        Use this for HASH inputs such as SAi_b (RFC 2409 §5), which must be
        computed over the bytes exactly as they were on the wire.
        """
        return self.raw if self.raw is not None else self.encode_body()


def check_uint(value: int, bits: int, what: str) -> int:
    """Validate an integer field before packing it (encode-side programming errors)."""
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{what} {value!r} does not fit in {bits} bits")
    return value


@dataclass
class DataPayload(PayloadBase):
    """A payload whose body is one opaque byte string (IKEv1 KE, HASH, SIG, Nonce, Vendor ID;
    IKEv2 Vendor ID)."""

    data: bytes

    def encode_body(self) -> bytes:
        """The opaque data."""
        return bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Keep the body as data (``offset`` unused: nothing can be malformed)."""
        return cls(bytes(body), raw=bytes(body))


@dataclass
class CertBody(PayloadBase):
    """Certificate encoding, then the certificate: RFC 2408 §3.9 and RFC 7296 §3.6 alike."""

    encoding: int
    data: bytes

    def encode_body(self) -> bytes:
        """Certificate encoding then certificate data."""
        return bytes([check_uint(self.encoding, 8, "cert encoding")]) + bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode encoding byte and data."""
        reader = Reader(body, offset)
        encoding = reader.u8("certificate encoding")
        return cls(encoding, reader.rest(), raw=bytes(body))


@dataclass
class CertReqBody(PayloadBase):
    """Certificate encoding, then the certification authority: RFC 2408 §3.10 and RFC 7296
    §3.7 alike."""

    encoding: int
    authority: bytes = b""

    def encode_body(self) -> bytes:
        """Certificate encoding then certification authority."""
        return bytes([check_uint(self.encoding, 8, "cert encoding")]) + bytes(self.authority)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode encoding byte and authority."""
        reader = Reader(body, offset)
        encoding = reader.u8("certificate encoding")
        return cls(encoding, reader.rest(), raw=bytes(body))


# -- Notify and Delete: the same fields after IKEv1's DOI (RFC 2408 §3.14-§3.15, RFC 7296 §3.10-§3.11)


def encode_notify_fields(protocol_id: int, spi: bytes, notify_type: int, data: bytes) -> bytes:
    """Protocol ID, SPI Size, Notify Message Type, SPI, Notification Data."""
    return (
        bytes([check_uint(protocol_id, 8, "protocol id"), check_uint(len(spi), 8, "SPI size")])
        + check_uint(notify_type, 16, "notify type").to_bytes(2, "big")
        + bytes(spi)
        + bytes(data)
    )


def read_notify_fields(reader: Reader) -> tuple[int, int, bytes, bytes]:
    """(notify type, protocol ID, SPI, data) from the rest of ``reader``."""
    protocol_id = reader.u8("notify protocol id")
    spi_size = reader.u8("notify SPI size")
    notify_type = reader.u16("notify message type")
    spi = reader.take(spi_size, "notify SPI")
    return notify_type, protocol_id, spi, reader.rest()


def encode_delete_fields(protocol_id: int, spi_size: int, spis: list[bytes]) -> bytes:
    """Protocol ID, SPI Size, Num of SPIs, SPIs (each exactly ``spi_size`` bytes)."""
    for spi in spis:
        if len(spi) != spi_size:
            raise ValueError(f"SPI {spi.hex()} is not {spi_size} bytes long")
    return (
        bytes([check_uint(protocol_id, 8, "protocol id"), check_uint(spi_size, 8, "SPI size")])
        + check_uint(len(spis), 16, "number of SPIs").to_bytes(2, "big")
        + b"".join(bytes(s) for s in spis)
    )


def read_delete_fields(reader: Reader) -> tuple[int, int, list[bytes]]:
    """(protocol ID, SPI size, SPIs) from the rest of ``reader``; the SPIs must fill it."""
    protocol_id = reader.u8("delete protocol id")
    spi_size = reader.u8("delete SPI size")
    count_pos = reader.pos
    count = reader.u16("delete SPI count")
    if spi_size * count != reader.remaining:
        raise reader.fail(f"{count} SPIs of {spi_size} bytes do not match the {reader.remaining} bytes left", count_pos)
    return protocol_id, spi_size, [reader.take(spi_size, "SPI") for _ in range(count)]
