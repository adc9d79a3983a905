"""What every IKE version's header shares (RFC 2408 §3.1, RFC 7296 §3.1).

IKEv1 and IKEv2 headers have the same layout — two 8-byte SPIs (IKEv1: cookies),
next payload, version (major in the high nibble), exchange type, flags, message
ID, length — so the peer can tell a datagram's version before any version's codec
runs.
"""

from __future__ import annotations

HEADER_LENGTH = 28
VERSION_OFFSET = 17


def major_version(data: bytes) -> int | None:
    """The header's major version, or ``None`` when the datagram is shorter than a header."""
    if len(data) < HEADER_LENGTH:
        return None
    return data[VERSION_OFFSET] >> 4
