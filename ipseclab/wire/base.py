"""Common base of all ISAKMP payload dataclasses (RFC 2408 §3.2 generic payload)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
