"""IKEv1 key derivation: RFC 2409 §5 (SKEYID and friends), §5.5 (KEYMAT), Appendix B.

Each function is one formula of the RFC and takes plain ``bytes``, so values
copied out of a strongSwan log (see :mod:`ipseclab.crypto.hexdump`) can be fed
in directly.  ``prf`` is the negotiated hash's :class:`HashSpec`; its ``prf``
method is the HMAC that RFC 2409 §4 uses when no PRF attribute is negotiated.

Notation (RFC 2409 §3.2): ``Ni_b``/``Nr_b`` are the nonce payload *bodies*,
``CKY-I``/``CKY-R`` the 8-byte ISAKMP cookies, ``g^xy`` the DH shared secret in
its wire encoding (see :meth:`DHKeyPair.shared_secret`), ``|`` concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipseclab.crypto.registry import HashSpec
from ipseclab.errors import CryptoError

__all__ = [
    "Phase1Keys",
    "derive_phase1_keys",
    "encryption_key",
    "phase1_iv",
    "phase2_iv",
    "quick_mode_keymat",
    "skeyid_a",
    "skeyid_d",
    "skeyid_e",
    "skeyid_psk",
    "skeyid_sig",
]


def _check_cookies(cky_i: bytes, cky_r: bytes) -> None:
    if len(cky_i) != 8 or len(cky_r) != 8:
        raise CryptoError(
            f"ISAKMP cookies are 8 bytes each (RFC 2408 §3.1), got {len(cky_i)} and {len(cky_r)}"
        )


# -- SKEYID (RFC 2409 §5) ------------------------------------------------------


def skeyid_psk(prf: HashSpec, psk: bytes, ni_b: bytes, nr_b: bytes) -> bytes:
    """Pre-shared key authentication: ``SKEYID = prf(pre-shared-key, Ni_b | Nr_b)``."""
    return prf.prf(psk, ni_b + nr_b)


def skeyid_sig(prf: HashSpec, ni_b: bytes, nr_b: bytes, gxy: bytes) -> bytes:
    """Signature authentication (RSA or DSS): ``SKEYID = prf(Ni_b | Nr_b, g^xy)``."""
    return prf.prf(ni_b + nr_b, gxy)


# -- SKEYID_d / _a / _e (RFC 2409 §5) ------------------------------------------


def skeyid_d(prf: HashSpec, skeyid: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes) -> bytes:
    """Keying material for IPsec SAs: ``SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)``."""
    _check_cookies(cky_i, cky_r)
    return prf.prf(skeyid, gxy + cky_i + cky_r + b"\x00")


def skeyid_a(
    prf: HashSpec, skeyid: bytes, skeyid_d_value: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes
) -> bytes:
    """ISAKMP authentication key: ``SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)``."""
    _check_cookies(cky_i, cky_r)
    return prf.prf(skeyid, skeyid_d_value + gxy + cky_i + cky_r + b"\x01")


def skeyid_e(
    prf: HashSpec, skeyid: bytes, skeyid_a_value: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes
) -> bytes:
    """ISAKMP encryption keying material: ``SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)``."""
    _check_cookies(cky_i, cky_r)
    return prf.prf(skeyid, skeyid_a_value + gxy + cky_i + cky_r + b"\x02")


# -- Appendix B: encryption key and IVs ---------------------------------------


def encryption_key(prf: HashSpec, skeyid_e_value: bytes, key_bytes: int) -> bytes:
    """The phase-1 cipher key from SKEYID_e (RFC 2409 Appendix B).

    If SKEYID_e is long enough, its first ``key_bytes`` bytes are the key.
    Otherwise it is expanded: ``Ka = K1 | K2 | K3 ...`` with
    ``K1 = prf(SKEYID_e, 0)`` (one zero octet) and ``Kn = prf(SKEYID_e, Kn-1)``,
    truncated to ``key_bytes`` (e.g. AES-256 with SHA1 needs 32 > 20 bytes).
    """
    if key_bytes < 0:
        raise CryptoError(f"key length must not be negative, got {key_bytes}")
    if len(skeyid_e_value) >= key_bytes:
        return skeyid_e_value[:key_bytes]
    out = b""
    block = prf.prf(skeyid_e_value, b"\x00")
    out += block
    while len(out) < key_bytes:
        block = prf.prf(skeyid_e_value, block)
        out += block
    return out[:key_bytes]


def _truncate(digest: bytes, block_size: int, what: str) -> bytes:
    if not 0 < block_size <= len(digest):
        raise CryptoError(
            f"{what}: cipher block size {block_size} does not fit the {len(digest)}-byte hash"
        )
    return digest[:block_size]


def phase1_iv(hash_: HashSpec, gxi: bytes, gxr: bytes, block_size: int) -> bytes:
    """Initial phase-1 IV: ``hash(g^xi | g^xr)`` truncated to the block size (App. B).

    ``g^xi``/``g^xr`` are the initiator's and responder's KE payload data.  After
    the first encrypted message, each IV is the last ciphertext block of the
    previous message (App. B); that chaining belongs to the caller.
    """
    return _truncate(hash_.hash(gxi + gxr), block_size, "phase-1 IV")


def phase2_iv(hash_: HashSpec, last_phase1_block: bytes, message_id: int, block_size: int) -> bytes:
    """First IV of a phase-2 (Quick Mode) or Informational exchange (App. B).

    ``hash(last CBC block of phase 1 | M-ID)`` truncated to the block size, where
    M-ID is the 4-byte big-endian Message ID of the exchange.
    """
    if not 0 <= message_id <= 0xFFFFFFFF:
        raise CryptoError(f"Message ID must fit in 32 bits, got {message_id}")
    return _truncate(
        hash_.hash(last_phase1_block + message_id.to_bytes(4, "big")), block_size, "phase-2 IV"
    )


# -- Quick Mode KEYMAT (RFC 2409 §5.5) -----------------------------------------


def quick_mode_keymat(
    prf: HashSpec,
    skeyid_d_value: bytes,
    protocol_id: int,
    spi: bytes,
    ni_b: bytes,
    nr_b: bytes,
    length: int,
    gxy_qm: bytes | None = None,
) -> bytes:
    """KEYMAT for one direction of one IPsec SA (RFC 2409 §5.5).

    ``KEYMAT = K1 | K2 | ...`` truncated to ``length`` bytes, with
    ``K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)`` and
    ``Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)``.
    ``protocol`` is the one-byte protocol ID (ESP = 3, AH = 2) and ``SPI`` the
    4-byte SPI *the receiver of that direction chose*; ``gxy_qm`` is the Quick
    Mode DH secret when PFS is used.  Callers split KEYMAT into the encryption
    key (+ salt) first, then the integrity key (RFC 2409 §5.5 / RFC 4106 §8.1).
    """
    if not 0 <= protocol_id <= 0xFF:
        raise CryptoError(f"protocol ID must fit in one byte, got {protocol_id}")
    if length < 0:
        raise CryptoError(f"KEYMAT length must not be negative, got {length}")
    seed = (gxy_qm or b"") + bytes([protocol_id]) + spi + ni_b + nr_b
    out = b""
    block = b""
    while len(out) < length:
        block = prf.prf(skeyid_d_value, block + seed)
        out += block
    return out[:length]


# -- convenience: everything phase 1 derives at once ---------------------------


@dataclass(frozen=True, repr=False)
class Phase1Keys:
    """The keys of one ISAKMP SA (RFC 2409 §5); secrets are kept out of ``repr``."""

    skeyid: bytes
    skeyid_d: bytes
    skeyid_a: bytes
    skeyid_e: bytes
    enc_key: bytes

    def __repr__(self) -> str:
        return (
            f"Phase1Keys(<secret: skeyid {len(self.skeyid)} B, skeyid_d {len(self.skeyid_d)} B, "
            f"skeyid_a {len(self.skeyid_a)} B, skeyid_e {len(self.skeyid_e)} B, "
            f"enc_key {len(self.enc_key)} B>)"
        )


def derive_phase1_keys(
    prf: HashSpec, skeyid: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes, key_bytes: int
) -> Phase1Keys:
    """SKEYID_d, SKEYID_a, SKEYID_e and the cipher key from SKEYID (§5 + App. B)."""
    d = skeyid_d(prf, skeyid, gxy, cky_i, cky_r)
    a = skeyid_a(prf, skeyid, d, gxy, cky_i, cky_r)
    e = skeyid_e(prf, skeyid, a, gxy, cky_i, cky_r)
    return Phase1Keys(skeyid, d, a, e, encryption_key(prf, e, key_bytes))
