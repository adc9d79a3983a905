"""Sources of random bytes for nonces, cookies, SPIs, IVs and DH private values.

Everything in ipseclab that needs randomness takes an :class:`Rng` argument
instead of calling ``os.urandom`` itself, so a notebook or a test can swap in a
:class:`SeededRng` and replay an exchange byte for byte.  Real IKE peers must use
:class:`SystemRng` (RFC 2409 §5 requires the nonces and DH private values to be
unpredictable).
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Protocol, runtime_checkable

from ipseclab.errors import CryptoError

__all__ = ["Rng", "SeededRng", "SystemRng"]


@runtime_checkable
class Rng(Protocol):
    """Anything that hands out random bytes."""

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` random bytes."""
        ...


def _check_count(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise CryptoError(f"random_bytes needs a non-negative byte count, got {n!r}")


class SystemRng:
    """The operating system's CSPRNG (``os.urandom``): use this for real peers."""

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` bytes from ``os.urandom``."""
        _check_count(n)
        return os.urandom(n)

    def __repr__(self) -> str:
        return "SystemRng()"


class SeededRng:
    """A deterministic byte stream, for reproducible notebooks and tests ONLY.

    It is NOT cryptographically secure: anyone who knows ``seed`` and ``label``
    can predict every byte (and so every nonce and DH private value).  Never use
    it for a peer that talks to anything but the lab.

    Each ``(seed, label)`` pair gives its own stream, derived as
    ``random.Random(SHA-256(f"{seed}:{label}"))``; different labels give
    independent streams, so e.g. the initiator and the responder of a lab
    exchange can each get a fork that does not depend on how many bytes the
    other one consumed.
    """

    def __init__(self, seed: int, label: str = "") -> None:
        self._seed = seed
        self._label = label
        digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
        self._random = random.Random(int.from_bytes(digest, "big"))

    @property
    def seed(self) -> int:
        """The integer seed this stream was made from."""
        return self._seed

    @property
    def label(self) -> str:
        """The label that separates this stream from its siblings."""
        return self._label

    def random_bytes(self, n: int) -> bytes:
        """Return the next ``n`` bytes of the stream."""
        _check_count(n)
        return self._random.randbytes(n)

    def fork(self, label: str) -> SeededRng:
        """Return an independent stream named ``<this label>/<label>``.

        The fork depends only on the seed and the labels, not on how many bytes
        this stream has handed out already.
        """
        child = f"{self._label}/{label}" if self._label else label
        return SeededRng(self._seed, child)

    def __repr__(self) -> str:
        return f"SeededRng(seed={self._seed!r}, label={self._label!r})"
