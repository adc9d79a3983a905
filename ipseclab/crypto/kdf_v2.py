"""IKEv2 key derivation: RFC 7296 §2.13 (prf+), §2.14 (SKEYSEED and the SK_* keys),
§2.17 (child SA KEYMAT), §2.18 (IKE SA rekey), §2.15 (the PSK AUTH value), and the
additional key exchanges of RFC 9370 §2.2.2.

Each function is one formula of the RFC and takes plain ``bytes``, so values out of a
strongSwan log can be fed in directly.  ``prf`` is the negotiated :class:`PrfSpec`.
Notation: ``Ni``/``Nr`` are the nonces (payload data, without the generic header),
``SPIi``/``SPIr`` the 8-byte IKE SPIs, ``g^ir`` the shared secret in its wire encoding,
``|`` concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipseclab.crypto.registry_v2 import PrfSpec
from ipseclab.errors import CryptoError

#: RFC 7296 §2.15: the key pad of the PSK AUTH value
KEY_PAD = b"Key Pad for IKEv2"


def prf_plus(prf: PrfSpec, key: bytes, seed: bytes, length: int) -> bytes:
    """``prf+(K, S) = T1 | T2 | ...``, ``T1 = prf(K, S | 0x01)``, ``Tn = prf(K, Tn-1 | S | n)``
    (RFC 7296 §2.13); at most 255 rounds."""
    rounds = -(-length // prf.size)
    if rounds > 255:
        raise CryptoError(f"prf+ can give at most {255 * prf.size} bytes with {prf.name}, {length} asked")
    out, t = b"", b""
    for n in range(1, rounds + 1):
        t = prf(key, t + seed + bytes([n]))
        out += t
    return out[:length]


def skeyseed(prf: PrfSpec, ni: bytes, nr: bytes, gir: bytes) -> bytes:
    """``SKEYSEED = prf(Ni | Nr, g^ir)`` (§2.14)."""
    return prf(ni + nr, gir)


def skeyseed_rekey(prf: PrfSpec, sk_d_old: bytes, gir_new: bytes, ni: bytes, nr: bytes) -> bytes:
    """``SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)`` for a rekeyed IKE SA (§2.18)."""
    return prf(sk_d_old, gir_new + ni + nr)


def skeyseed_additional(prf: PrfSpec, sk_d_prev: bytes, shared: bytes, ni: bytes, nr: bytes) -> bytes:
    """``SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)`` after additional key exchange n
    (RFC 9370 §2.2.2): each round's secret is folded into the keys of the one before."""
    return prf(sk_d_prev, shared + ni + nr)


@dataclass(frozen=True)
class IkeKeys:
    """``{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}`` (§2.14). Secret: no repr."""

    sk_d: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)
    sk_ei: bytes = field(repr=False)
    sk_er: bytes = field(repr=False)
    sk_pi: bytes = field(repr=False)
    sk_pr: bytes = field(repr=False)

    def items(self) -> list[tuple[str, bytes]]:
        return [(n, getattr(self, n.lower())) for n in ("SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr")]


def ike_keys(
    prf: PrfSpec, seed_key: bytes, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes, *, integ_bytes: int, encr_bytes: int
) -> IkeKeys:
    """``prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`` cut into the seven keys (§2.14).

    ``integ_bytes`` is the integrity key length (0 with an AEAD cipher), ``encr_bytes``
    the encryption key length including an AEAD salt (RFC 5282 §7.1).
    """
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise CryptoError(f"IKE SPIs are 8 bytes each (RFC 7296 §3.1), got {len(spi_i)} and {len(spi_r)}")
    sizes = [prf.size, integ_bytes, integ_bytes, encr_bytes, encr_bytes, prf.size, prf.size]
    stream = prf_plus(prf, seed_key, ni + nr + spi_i + spi_r, sum(sizes))
    keys, pos = [], 0
    for size in sizes:
        keys.append(stream[pos : pos + size])
        pos += size
    return IkeKeys(*keys)


def child_keymat(prf: PrfSpec, sk_d: bytes, ni: bytes, nr: bytes, length: int, gir_new: bytes = b"") -> bytes:
    """``KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)`` (§2.17); the caller takes the
    initiator→responder SA's encryption then integrity key first, then the other way."""
    return prf_plus(prf, sk_d, gir_new + ni + nr, length)


def psk_auth(prf: PrfSpec, psk: bytes, signed_octets: bytes) -> bytes:
    """``AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`` (§2.15)."""
    return prf(prf(psk, KEY_PAD), signed_octets)


def maced_id(prf: PrfSpec, sk_p: bytes, id_body: bytes) -> bytes:
    """``MACedIDForI = prf(SK_pi, RestOfInitIDPayload)`` (and with SK_pr for R, §2.15):
    the ID payload without its generic header."""
    return prf(sk_p, id_body)


def signed_octets(real_message: bytes, peer_nonce: bytes, maced: bytes, int_auth: bytes = b"") -> bytes:
    """``RealMessage | NonceData | MACedID`` (§2.15), with RFC 9242 §3.3.2's ``IntAuth``
    appended when IKE_INTERMEDIATE exchanges took place."""
    return real_message + peer_nonce + maced + int_auth
