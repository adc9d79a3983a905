"""Typed exceptions of the ESP data plane (RFC 4303).

:class:`EspDrop` is what :meth:`ipseclab.esp.sa.EspSa.unprotect` raises for every
packet it refuses; ``reason`` is one of the :data:`DROP_REASONS` strings, the same
strings the per-SA counters and the trace events use, so a student reading
"replayed" in a widget finds the same word in the code and in the counters.
"""

from __future__ import annotations

from ipseclab.errors import IpsecLabError

#: Every reason an ESP packet can be refused, in plain words.
DROP_REASONS = (
    "truncated",  # shorter than header + IV + minimal trailer + ICV (RFC 4303 §2)
    "bad length",  # ciphertext not a multiple of the cipher block (RFC 4303 §2.4)
    "wrong spi",  # the SPI is not this SA's (RFC 4303 §3.4.2)
    "replayed",  # sequence number already seen inside the window (RFC 4303 §3.4.3)
    "too old",  # sequence number left of the window (RFC 4303 §3.4.3)
    "icv failure",  # integrity check failed (RFC 4303 §3.4.4)
    "bad padding",  # padding bytes not 1, 2, 3, ... or longer than the payload (§2.4)
    "sequence overflow",  # sender: the counter would cycle (RFC 4303 §3.3.3)
    "hard lifetime",  # the SA reached a hard lifetime limit (RFC 4301 §4.4.2.1)
)


class EspError(IpsecLabError):
    """Base class of ESP data plane errors."""


class EspConfigError(EspError):
    """An SA or policy cannot be built (unsupported transform, bad key length, bad window)."""


class EspDrop(EspError):
    """A packet was refused; ``reason`` is one of :data:`DROP_REASONS`.

    The SA's counters were already updated when this is raised.
    """

    def __init__(self, reason: str, detail: str = "", *, spi: int | None = None, seq: int | None = None) -> None:
        text = reason + (f": {detail}" if detail else "")
        super().__init__(text)
        self.reason = reason
        self.detail = detail
        self.spi = spi
        self.seq = seq


class EspSeqOverflow(EspDrop):
    """The outbound sequence number would cycle: the SA must be rekeyed (RFC 4303 §3.3.3).

    Without ESN the counter stops at 2^32 - 1, with ESN at 2^64 - 1; a sender
    "MUST NOT" let it wrap, because the receiver's anti-replay window would then
    reject every following packet and, for GCM, the nonce would repeat.
    """


class EspLifetimeExpired(EspDrop):
    """The SA reached a hard lifetime limit (packets) and refuses to protect more."""
