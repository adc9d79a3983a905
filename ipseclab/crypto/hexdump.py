"""Turn hex as people paste it (RFC text, strongSwan logs, Wireshark) into bytes.

Used to feed published vectors and values copied from a charon log (``charondebug
= ike 4`` / ``filelog ... ike = 4`` prints SKEYID, g^xy, nonces, ... as hex dumps)
into :mod:`ipseclab.crypto.kdf_v1` without hand-editing.
"""

from __future__ import annotations

import re

from ipseclab.errors import CryptoError

__all__ = ["parse_strongswan_hexdump", "unhex"]

_SEPARATORS = re.compile(r"[\s:_\-]+")


def unhex(text: str) -> bytes:
    """Hex to bytes, ignoring whitespace, ``:``/``-``/``_`` separators and a ``0x`` prefix.

    >>> unhex("0x8b a4:CB-c7")
    b'\\x8b\\xa4\\xcb\\xc7'
    """
    cleaned = _SEPARATORS.sub("", text)
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CryptoError(f"not an even-length hex string: {text[:40]!r}") from None


# One dump line of strongSwan's chunk printer ("%b"/"%B"): an offset, a colon,
# up to 16 "XX " groups, then two spaces and an ASCII rendering.  The line may be
# prefixed by syslog/filelog fields ("Jan  1 12:00:00 09[IKE]").
_DUMP_LINE = re.compile(r"(?:^|\s)(\d+): ((?:[0-9A-Fa-f]{2} ?){1,16})(?:\s|$)")
_DUMP_HEADER = re.compile(r"=>\s*(\d+) bytes? @")


def parse_strongswan_hexdump(text: str) -> bytes:
    """The bytes of one strongSwan hex dump (a ``=> N bytes @ 0x...`` header and its lines).

    Lines look like ``   0: 8B A4 CB C7 3C 01 87 30 1D C1 9A 97 58 23 85 4D  ....<..0....X#.M``
    (offsets in decimal).  If a header is present, the length is checked.
    """
    out = bytearray()
    for line in text.splitlines():
        match = _DUMP_LINE.search(line)
        if not match:
            continue
        offset = int(match.group(1))
        if offset != len(out):
            raise CryptoError(f"hex dump line at offset {offset} follows {len(out)} bytes")
        out += bytes.fromhex(match.group(2))
    header = _DUMP_HEADER.search(text)
    if header and int(header.group(1)) != len(out):
        raise CryptoError(f"hex dump announces {header.group(1)} bytes but holds {len(out)}")
    if not out:
        raise CryptoError("no strongSwan hex dump lines found")
    return bytes(out)
