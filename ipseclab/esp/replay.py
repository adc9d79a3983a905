"""The ESP anti-replay window (RFC 4303 §3.4.3, Appendix A).

The receiver remembers the highest authenticated sequence number (``top``) and a
bitmap of the ``size`` numbers at and below it: bit *i* set means "``top - i``
was received".  A packet is checked *before* its ICV is verified (cheap rejection
of duplicates) and the window is updated only *after* the ICV verified, so a
forged packet can never move the window (RFC 4303 §3.4.3).

With Extended Sequence Numbers only the low 32 bits travel; :meth:`infer`
reconstructs the high 32 bits from the window position (RFC 4303 Appendix A2.2).
A wrong guess simply fails the ICV, because the high bits are part of the ICV
input (RFC 4303 §2.2.1) or the GCM AAD (RFC 4106 §5).

The bitmap is a plain Python ``int``: shifts and masks on it are single C calls,
so a check plus update costs well under a microsecond even for a 4096-packet window.
"""

from __future__ import annotations

OK = "ok"
REPLAYED = "replayed"
TOO_OLD = "too old"

MAX_WINDOW = 4096
_LOW32 = 0xFFFFFFFF
_SUBSPACE = 1 << 32


class ReplayWindow:
    """Sliding window of ``size`` sequence numbers (a multiple of 32, 32 … 4096).

    RFC 4303 §3.4.3 requires at least 32 and recommends 64 (the default here);
    larger windows tolerate more reordering, e.g. on multi-queue links.
    """

    __slots__ = ("size", "top", "bitmap", "mask")

    def __init__(self, size: int = 64) -> None:
        if not isinstance(size, int) or size < 32 or size > MAX_WINDOW or size % 32:
            raise ValueError(
                f"anti-replay window must be a multiple of 32 between 32 and {MAX_WINDOW}, got {size!r}"
            )
        self.size = size
        self.top = 0
        # Sequence number 0 is never sent (the counter starts at 1, RFC 4303 §3.3.3):
        # marking it as seen makes a forged or wrapped "0" a replay.
        self.bitmap = 1
        self.mask = (1 << size) - 1

    def __repr__(self) -> str:
        return f"<ReplayWindow size={self.size} top={self.top} received={len(self.received())}>"

    def check(self, seq: int) -> str:
        """``"ok"`` if ``seq`` may be accepted, else ``"replayed"`` or ``"too old"``.

        RFC 4303 §3.4.3: right of the window is new; left of it is too old; inside
        it, the bit says whether the number was already received.
        """
        top = self.top
        if seq > top:
            return OK
        diff = top - seq
        if diff >= self.size:
            return TOO_OLD
        if (self.bitmap >> diff) & 1:
            return REPLAYED
        return OK

    def update(self, seq: int) -> None:
        """Record ``seq`` as received; call only after its ICV verified (RFC 4303 §3.4.3)."""
        top = self.top
        if seq > top:
            shift = seq - top
            self.bitmap = 1 if shift >= self.size else ((self.bitmap << shift) | 1) & self.mask
            self.top = seq
        else:
            self.bitmap |= 1 << (top - seq)

    def infer(self, seq_low: int) -> int:
        """The full 64-bit ESN for the 32 low bits seen on the wire (RFC 4303 Appendix A2.2).

        Case A (``Tl >= W - 1``, the window lies in one 2^32 subspace): a number at or
        right of the window's bottom is in the same subspace, anything lower is in the
        next one.  Case B (the window straddles a subspace boundary): a number above
        the bottom (mod 2^32) belongs to the previous subspace, anything else to the
        current one.  Before the first wrap there is no previous subspace.
        """
        top = self.top
        th, tl = top >> 32, top & _LOW32
        w = self.size
        if tl >= w - 1:
            if seq_low >= tl - w + 1:
                return (th << 32) | seq_low
            return ((th + 1) << 32) | seq_low
        if seq_low >= tl - w + 1 + _SUBSPACE and th > 0:
            return ((th - 1) << 32) | seq_low
        return (th << 32) | seq_low

    def received(self) -> list[int]:
        """Sequence numbers inside the window that were received, highest first."""
        bits, top = self.bitmap, self.top
        return [top - i for i in range(min(self.size, top + 1)) if (bits >> i) & 1 and top - i > 0]

    def picture(self, width: int | None = None) -> str:
        """The window as text, newest right: ``#`` received, ``.`` not (yet) received."""
        n = min(width or self.size, self.size)
        # sequence numbers start at 1: never draw cells for numbers below it
        n = max(1, min(n, self.top)) if self.top else n
        cells = "".join("#" if (self.bitmap >> i) & 1 and self.top - i > 0 else "." for i in range(n - 1, -1, -1))
        return f"[{self.top - n + 1 if self.top else 0}] {cells} [{self.top}]"

    def state(self) -> dict[str, int]:
        """Plain data for the SA table: window size, highest sequence, packets seen in the window."""
        return {"size": self.size, "top": self.top, "received": len(self.received())}
