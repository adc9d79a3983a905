"""Diffie-Hellman groups for the IKEv1 Key Exchange payload.

* MODP groups 1 and 2: RFC 2409 §6.1, §6.2; groups 5, 14, 15, 16, 17, 18: RFC 3526.
* ECP groups 19, 20, 21 (NIST P-256/384/521): RFC 5903; the KE payload carries
  ``x || y`` with each coordinate left-padded to the field size and no 0x04 point
  format octet, and the shared secret g^xy is the x coordinate alone (RFC 5903 §7).
* Group 31, Curve25519: RFC 8031 §3 (32-byte public values and shared secret,
  RFC 7748 encoding).

Private values are drawn from an :class:`~ipseclab.crypto.rng.Rng`, so a
``SeededRng`` makes a whole exchange reproducible.  Key agreement itself is
``cryptography``'s ``exchange()``; the only arithmetic done here is the MODP
public value ``y = g^x mod p`` (``pow``) used to load a chosen private value.

Names are strongSwan's proposal keywords (``modp2048``, ``ecp256``, ...), so they
can go straight into an ``ike=`` line.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519
from cryptography.utils import CryptographyDeprecationWarning

from ipseclab.crypto._modp_primes import MODP_PRIMES
from ipseclab.crypto.rng import Rng
from ipseclab.errors import CryptoError

__all__ = ["DHGroup", "DHKeyPair", "dh_group", "supported_groups"]

#: Bits of the MODP private exponent per group: at least twice the larger
#: strength estimate of RFC 3526 §8 (e.g. 2048-bit MODP: 160 bits -> 320), and
#: 256 bits for the small RFC 2409 groups.  Short exponents keep MODP-8192 fast.
_MODP_PRIVATE_BITS = {1: 256, 2: 256, 5: 256, 14: 320, 15: 420, 16: 480, 17: 540, 18: 620}

_ECP_CURVES: dict[int, Callable[[], ec.EllipticCurve]] = {
    19: ec.SECP256R1,
    20: ec.SECP384R1,
    21: ec.SECP521R1,
}

#: Order n of the base point of each ECP group (FIPS 186-4 D.1.2 / RFC 5903 §3).
_ECP_ORDERS = {
    19: int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16),
    20: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    21: int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}

_NAMES = {
    1: "modp768",
    2: "modp1024",
    5: "modp1536",
    14: "modp2048",
    15: "modp3072",
    16: "modp4096",
    17: "modp6144",
    18: "modp8192",
    19: "ecp256",
    20: "ecp384",
    21: "ecp521",
    31: "curve25519",
}

_MAX_DRAWS = 64


@contextmanager
def _ffdh_allowed() -> Iterator[None]:
    """cryptography >= 47 flags finite-field DH as deprecated; IKEv1 needs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


@dataclass(frozen=True)
class DHGroup:
    """One IKE Diffie-Hellman group (RFC 2409 §6, RFC 3526, RFC 5903, RFC 8031)."""

    number: int
    name: str
    kind: str  # "modp" | "ecp" | "curve25519"
    public_size: int  # bytes of the KE payload data

    # -- key generation -----------------------------------------------------

    def generate(self, rng: Rng) -> DHKeyPair:
        """A fresh key pair whose private value is drawn from ``rng``."""
        if self.kind == "modp":
            bits = _MODP_PRIVATE_BITS[self.number]
            p = MODP_PRIMES[self.number][0]
            for _ in range(_MAX_DRAWS):
                x = _draw_bits(rng, bits)
                if 2 <= x <= p - 2:
                    return self._modp_pair(x)
        elif self.kind == "ecp":
            order = _ECP_ORDERS[self.number]
            for _ in range(_MAX_DRAWS):
                d = _draw_bits(rng, order.bit_length())
                if 1 <= d < order:
                    return self._ecp_pair(d)
        else:
            return self.from_private_bytes(rng.random_bytes(32))
        raise CryptoError(f"could not draw a private value for DH group {self.number}")

    def from_private_bytes(self, private: bytes) -> DHKeyPair:
        """The key pair for a known private value (big-endian; X25519: RFC 7748 bytes).

        For test vectors (RFC 5903 §8, RFC 7748 §6.1) and step-by-step notebooks.
        """
        if self.kind == "curve25519":
            if len(private) != 32:
                raise CryptoError(f"a Curve25519 private key is 32 bytes, got {len(private)}")
            key = x25519.X25519PrivateKey.from_private_bytes(private)
            return DHKeyPair(self, key.public_key().public_bytes_raw(), key)
        value = int.from_bytes(private, "big")
        if self.kind == "modp":
            p = MODP_PRIMES[self.number][0]
            if not 2 <= value <= p - 2:
                raise CryptoError(f"a {self.name} private value must lie in [2, p-2]")
            return self._modp_pair(value)
        if not 1 <= value < _ECP_ORDERS[self.number]:
            raise CryptoError(f"an {self.name} private value must lie in [1, n-1]")
        return self._ecp_pair(value)

    def _modp_pair(self, x: int) -> DHKeyPair:
        p, g, _ = MODP_PRIMES[self.number]
        with _ffdh_allowed():
            params = dh.DHParameterNumbers(p, g)
            y = _modp_public(x, params)
            key = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(y, params)).private_key()
        return DHKeyPair(self, y.to_bytes(self.public_size, "big"), key)

    def _ecp_pair(self, d: int) -> DHKeyPair:
        key = ec.derive_private_key(d, _ECP_CURVES[self.number]())
        nums = key.public_key().public_numbers()
        half = self.public_size // 2
        return DHKeyPair(self, nums.x.to_bytes(half, "big") + nums.y.to_bytes(half, "big"), key)

    # -- key agreement ------------------------------------------------------

    def _check_peer(self, peer_public: bytes) -> None:
        if len(peer_public) != self.public_size:
            raise CryptoError(
                f"DH group {self.number} ({self.name}) expects a {self.public_size}-byte "
                f"public value, got {len(peer_public)} bytes"
            )


def _modp_public(x: int, params: dh.DHParameterNumbers) -> int:
    """g^x mod p computed by OpenSSL (constant-time Montgomery, ~5x Python's ``pow``).

    cryptography has no "public key of this private value" call for FFDH, but a key
    agreement with ``g`` as the peer's public value is exactly g^x mod p; the private key
    used for it carries a placeholder public value that the agreement does not read.
    """
    try:
        helper = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(2, params)).private_key()
        return int.from_bytes(helper.exchange(dh.DHPublicNumbers(params.g, params).public_key()), "big")
    except ValueError:  # an OpenSSL that checks the placeholder: the slow way
        return pow(params.g, x, params.p)


def _draw_bits(rng: Rng, bits: int) -> int:
    raw = rng.random_bytes((bits + 7) // 8)
    return int.from_bytes(raw, "big") & ((1 << bits) - 1)


if TYPE_CHECKING:  # evaluated lazily: touching dh.DHPrivateKey warns on cryptography >= 47
    _PrivateKey = dh.DHPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey


@dataclass(frozen=True, repr=False)
class DHKeyPair:
    """Our side of one Diffie-Hellman exchange.  The private key never shows in repr."""

    group: DHGroup
    public_bytes: bytes
    _private_key: _PrivateKey = field(compare=False)

    def __repr__(self) -> str:
        return (
            f"DHKeyPair(group={self.group.number} {self.group.name}, "
            f"public_bytes={self.public_bytes[:8].hex()}..({len(self.public_bytes)} bytes))"
        )

    def private_numbers_for_teaching(self) -> object:
        """The private value, for the teaching cells that redo the DH computation by hand.

        MODP: cryptography's ``DHPrivateNumbers`` (``.x``, ``.public_numbers.parameter_numbers.p/g``);
        ECP: ``EllipticCurvePrivateNumbers`` (``.private_value``); Curve25519: the 32 raw bytes.
        Never logged, never in a trace event: only a notebook that asks for it sees it.
        """
        key = self._private_key
        if isinstance(key, x25519.X25519PrivateKey):
            return key.private_bytes_raw()
        return key.private_numbers()

    def shared_secret(self, peer_public: bytes) -> bytes:
        """g^xy from the peer's KE payload data, in IKE's wire encoding.

        MODP: left-padded to the prime length (RFC 2409 §5; RFC 7296 §2.14 says the
        same explicitly).  ECP: the x coordinate, padded to the field size
        (RFC 5903 §7).  Curve25519: the 32-byte X25519 output (RFC 8031 §3).
        Invalid or degenerate peer values raise :class:`CryptoError`.
        """
        group = self.group
        group._check_peer(peer_public)
        if group.kind == "modp":
            return self._modp_secret(peer_public)
        if group.kind == "ecp":
            return self._ecp_secret(peer_public)
        return self._x25519_secret(peer_public)

    def _modp_secret(self, peer_public: bytes) -> bytes:
        p, g, _ = MODP_PRIMES[self.group.number]
        y = int.from_bytes(peer_public, "big")
        if y >= p:
            raise CryptoError(f"peer {self.group.name} public value is not below the prime p")
        if y in (0, 1, p - 1):
            raise CryptoError(
                f"peer {self.group.name} public value is degenerate (0, 1 or p-1): it "
                "would force a predictable shared secret (small-subgroup confinement)"
            )
        try:
            with _ffdh_allowed():
                peer = dh.DHPublicNumbers(y, dh.DHParameterNumbers(p, g)).public_key()
                secret = self._private_key.exchange(peer)  # type: ignore[arg-type]
        except ValueError as exc:
            raise CryptoError(f"{self.group.name} key agreement failed: {exc}") from None
        return secret.rjust(self.group.public_size, b"\x00")

    def _ecp_secret(self, peer_public: bytes) -> bytes:
        half = self.group.public_size // 2
        x = int.from_bytes(peer_public[:half], "big")
        y = int.from_bytes(peer_public[half:], "big")
        curve = _ECP_CURVES[self.group.number]()
        try:
            peer = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        except ValueError:
            raise CryptoError(
                f"peer {self.group.name} public value is not a point on {curve.name}"
            ) from None
        try:
            secret = self._private_key.exchange(ec.ECDH(), peer)  # type: ignore[call-arg,arg-type]
        except ValueError as exc:
            raise CryptoError(f"{self.group.name} key agreement failed: {exc}") from None
        return secret.rjust(half, b"\x00")

    def _x25519_secret(self, peer_public: bytes) -> bytes:
        peer = x25519.X25519PublicKey.from_public_bytes(peer_public)
        try:
            secret = self._private_key.exchange(peer)  # type: ignore[arg-type]
        except ValueError:
            raise CryptoError(
                "peer Curve25519 public value is a low-order point: the shared secret "
                "would be all zeros (RFC 8031 §2 says to reject it)"
            ) from None
        if secret == bytes(32):  # pragma: no cover - OpenSSL already refuses it
            raise CryptoError("Curve25519 shared secret is all zeros (RFC 8031 §2)")
        return secret


def _make_group(number: int) -> DHGroup:
    if number in MODP_PRIMES:
        size = (MODP_PRIMES[number][0].bit_length() + 7) // 8
        return DHGroup(number, _NAMES[number], "modp", size)
    if number in _ECP_CURVES:
        field_bytes = (_ECP_CURVES[number]().key_size + 7) // 8
        return DHGroup(number, _NAMES[number], "ecp", 2 * field_bytes)
    return DHGroup(number, _NAMES[number], "curve25519", 32)


_GROUPS: dict[int, DHGroup] = {n: _make_group(n) for n in _NAMES}


def supported_groups() -> tuple[int, ...]:
    """The group numbers :func:`dh_group` knows, in ascending order."""
    return tuple(sorted(_GROUPS))


def dh_group(number: int) -> DHGroup:
    """Look up a Diffie-Hellman group by its IKE Group Description number."""
    try:
        return _GROUPS[number]
    except KeyError:
        raise CryptoError(f"DH group {number} is not supported") from None
