"""What every IKE version's header shares (RFC 2408 §3.1, RFC 7296 §3.1).

IKEv1 and IKEv2 headers have the same layout — two 8-byte SPIs (IKEv1: cookies),
next payload, version (major in the high nibble), exchange type, flags, message
ID, length — so the peer can tell a datagram's version before any version's codec
runs.
"""

from __future__ import annotations

from ipseclab.wire.base import check_uint

HEADER_LENGTH = 28
VERSION_OFFSET = 17


def major_version(data: bytes) -> int | None:
    """The header's major version, or ``None`` when the datagram is shorter than a header."""
    if len(data) < HEADER_LENGTH:
        return None
    return data[VERSION_OFFSET] >> 4


def encode_header(
    spi_i: bytes, spi_r: bytes, next_type: int, version: int, exchange_type: int, flags: int, message_id: int, length: int
) -> bytes:
    """The 28-byte header both versions share (IKEv1: the SPIs are the cookies)."""
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise ValueError("IKE SPIs (IKEv1: cookies) must be 8 bytes long")
    return (
        bytes(spi_i)
        + bytes(spi_r)
        + bytes(
            [
                check_uint(next_type, 8, "next payload"),
                check_uint(version, 8, "version"),
                check_uint(exchange_type, 8, "exchange type"),
                check_uint(int(flags), 8, "flags"),
            ]
        )
        + check_uint(message_id, 32, "message id").to_bytes(4, "big")
        + check_uint(length, 32, "length").to_bytes(4, "big")
    )
