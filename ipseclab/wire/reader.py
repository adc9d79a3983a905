"""Bounds-checked reading of wire buffers (helper for the RFC 2408 §3 codecs).

Every failure is a :class:`~ipseclab.errors.ParseError` carrying the absolute
offset of the byte where decoding stopped, never an ``IndexError`` or
``struct.error``.
"""

from __future__ import annotations

from ipseclab.errors import ParseError


class Reader:
    """A cursor over ``data`` whose position 0 is absolute offset ``base``."""

    __slots__ = ("data", "base", "pos")

    def __init__(self, data: bytes, base: int = 0) -> None:
        self.data = bytes(data)
        self.base = base
        self.pos = 0

    @property
    def offset(self) -> int:
        """Absolute offset of the cursor."""
        return self.base + self.pos

    @property
    def remaining(self) -> int:
        """Number of unread bytes."""
        return len(self.data) - self.pos

    def fail(self, reason: str, pos: int | None = None) -> ParseError:
        """Build a ParseError at the cursor (or at relative position ``pos``)."""
        return ParseError(reason, self.base + (self.pos if pos is None else pos))

    def take(self, n: int, what: str) -> bytes:
        """Read ``n`` bytes or raise ``ParseError("truncated <what>")``."""
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated {what}: need {n} bytes, {self.remaining} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        """Read one unsigned byte."""
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        """Read a big-endian 16-bit unsigned integer."""
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        """Read a big-endian 32-bit unsigned integer."""
        return int.from_bytes(self.take(4, what), "big")

    def rest(self) -> bytes:
        """Read everything that is left."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out
