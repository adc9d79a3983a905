"""IKEv2 transforms by their IANA numbers (RFC 7296 §3.3.2; IANA "IKEv2 Parameters",
Transform Types 1–3), for the IKE SA's SK payload and for ESP child SAs.

* ENCR (type 1): 3 = 3DES, 12 = AES-CBC (RFC 3602, Key Length attribute), 18/19/20 =
  AES-GCM with an 8/12/16-byte ICV (RFC 5282 for IKE, RFC 4106 for ESP), 28 =
  ChaCha20-Poly1305 (RFC 7634).  The numbers are the ESP transform IDs too.
* PRF (type 2): 2 = HMAC-SHA1 (RFC 2104), 5/6/7 = HMAC-SHA2-256/384/512 (RFC 4868).
* INTEG (type 3): 2 = HMAC-SHA1-96 (RFC 2404), 12/13/14 = HMAC-SHA2-256-128/384-192/
  512-256 (RFC 4868) — the same algorithms as ESP's authentication attributes 2, 5, 6, 7.

Every primitive is the ``cryptography`` package's (through :mod:`ipseclab.crypto.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ipseclab.crypto.registry import (
    ESP_3DES,
    ESP_AES_CBC,
    ESP_AES_GCM_8,
    ESP_AES_GCM_12,
    ESP_AES_GCM_16,
    EspCipherSpec,
    EspIntegritySpec,
    HashSpec,
    esp_cipher,
    esp_integrity,
    ike_hash,
)
from ipseclab.errors import CryptoError

ENCR_CHACHA20_POLY1305 = 28

#: PRF transform ID → (name, IKEv1 hash ID of the HMAC's hash)
_PRFS = {2: ("PRF_HMAC_SHA1", 2), 5: ("PRF_HMAC_SHA2_256", 4), 6: ("PRF_HMAC_SHA2_384", 5), 7: ("PRF_HMAC_SHA2_512", 6)}
#: INTEG transform ID → (name, ESP authentication algorithm of the same HMAC and truncation)
_INTEGS = {
    2: ("AUTH_HMAC_SHA1_96", 2),
    12: ("AUTH_HMAC_SHA2_256_128", 5),
    13: ("AUTH_HMAC_SHA2_384_192", 6),
    14: ("AUTH_HMAC_SHA2_512_256", 7),
}
_ENCR_NAMES = {
    ESP_3DES: "ENCR_3DES",
    ESP_AES_CBC: "ENCR_AES_CBC",
    ESP_AES_GCM_8: "ENCR_AES_GCM_8",
    ESP_AES_GCM_12: "ENCR_AES_GCM_12",
    ESP_AES_GCM_16: "ENCR_AES_GCM_16",
    ENCR_CHACHA20_POLY1305: "ENCR_CHACHA20_POLY1305",
}


@dataclass(frozen=True)
class PrfSpec:
    """A negotiated IKEv2 PRF: HMAC with a hash, its output and preferred key size
    (RFC 7296 §2.13: SK_d, SK_pi and SK_pr are as long as the PRF's preferred key)."""

    name: str
    prf_id: int
    hash: HashSpec

    @property
    def size(self) -> int:
        """Output length = preferred key length for the HMAC PRFs (RFC 4868 §2.1.2)."""
        return self.hash.digest_size

    def __call__(self, key: bytes, data: bytes) -> bytes:
        return self.hash.prf(key, data)


def ikev2_prf(prf_id: int) -> PrfSpec:
    """The PRF transform ``prf_id``."""
    try:
        name, hash_id = _PRFS[prf_id]
    except KeyError:
        raise CryptoError(
            f"IKEv2 PRF {prf_id} is not supported (supported: 2 = HMAC-SHA1, 5/6/7 = HMAC-SHA2-256/384/512)"
        ) from None
    return PrfSpec(name, prf_id, ike_hash(hash_id))


def ikev2_integrity(integ_id: int) -> EspIntegritySpec:
    """The INTEG transform ``integ_id`` (IKE SA and ESP alike)."""
    try:
        _name, esp_auth = _INTEGS[integ_id]
    except KeyError:
        raise CryptoError(
            f"IKEv2 integrity algorithm {integ_id} is not supported "
            "(supported: 2 = HMAC-SHA1-96, 12/13/14 = HMAC-SHA2-256-128/384-192/512-256)"
        ) from None
    return esp_integrity(esp_auth)


def integrity_name(integ_id: int) -> str:
    """IANA's name of an INTEG transform (``AUTH_HMAC_SHA2_256_128``)."""
    return _INTEGS[integ_id][0] if integ_id in _INTEGS else f"INTEG {integ_id}"


def prf_name(prf_id: int) -> str:
    return _PRFS[prf_id][0] if prf_id in _PRFS else f"PRF {prf_id}"


def encryption_name(encr_id: int, key_bits: int | None) -> str:
    """IANA's name with the key length (``ENCR_AES_CBC_128``)."""
    name = _ENCR_NAMES.get(encr_id, f"ENCR {encr_id}")
    return f"{name}_{key_bits}" if key_bits and encr_id != ESP_3DES else name


def integ_id_for_esp(auth_alg: int) -> int:
    """The INTEG transform of an ESP authentication algorithm (RFC 2407 §4.5 numbering)."""
    for integ_id, (_name, esp_auth) in _INTEGS.items():
        if esp_auth == auth_alg:
            return integ_id
    raise CryptoError(f"ESP authentication algorithm {auth_alg} has no IKEv2 INTEG transform here")


def ikev2_cipher(encr_id: int, key_bits: int | None = None) -> EspCipherSpec:
    """The ENCR transform as a cipher description (key, salt, IV, block and ICV sizes).

    ChaCha20-Poly1305 (RFC 7634 §2) has a 256-bit key, a 4-byte salt, an 8-byte IV and
    a 16-byte tag; it takes no Key Length attribute.
    """
    if encr_id == ENCR_CHACHA20_POLY1305:
        if key_bits not in (None, 256):
            raise CryptoError(f"ChaCha20-Poly1305 has a fixed 256-bit key, got Key Length {key_bits}")
        return EspCipherSpec("CHACHA20-POLY1305", encr_id, 256, 4, 1, 8, True, 16, "ChaCha20 with Poly1305 [RFC7634]")
    return esp_cipher(encr_id, key_bits)


def wireshark_encryption(encr_id: int, key_bits: int | None, icv_size: int = 0) -> str:
    """The IKEv2 encryption algorithm as Wireshark's ``ikev2_decryption_table`` names it
    (``vs_ikev2_encr_algs`` in epan/dissectors/packet-isakmp.c)."""
    if encr_id == ESP_3DES:
        return "3DES [RFC2451]"
    if encr_id == ESP_AES_CBC:
        return f"AES-CBC-{key_bits} [RFC3602]"
    if encr_id in (ESP_AES_GCM_8, ESP_AES_GCM_12, ESP_AES_GCM_16):
        return f"AES-GCM-{key_bits} with {icv_size} octet ICV [RFC5282]"
    return f"ENCR {encr_id}"


def wireshark_integrity(integ_id: int | None) -> str:
    """The IKEv2 integrity algorithm as Wireshark names it (``vs_ikev2_auth_algs``)."""
    names = {
        2: "HMAC_SHA1_96 [RFC2404]",
        12: "HMAC_SHA2_256_128 [RFC4868]",
        13: "HMAC_SHA2_384_192 [RFC4868]",
        14: "HMAC_SHA2_512_256 [RFC4868]",
    }
    return names.get(integ_id or 0, "NONE [RFC4306]")


def sk_cipher_named(encryption: str, integrity: str) -> tuple[int, int | None, int | None]:
    """(ENCR ID, key bits, INTEG ID) of a Wireshark ``ikev2_decryption_table`` row's algorithm
    names (the inverse of :func:`wireshark_encryption` / :func:`wireshark_integrity`)."""
    encr: tuple[int, int | None] | None = None
    icv = 0
    for encr_id, bits in [(ESP_3DES, None)] + [(e, b) for e in (ESP_AES_CBC, ESP_AES_GCM_8, ESP_AES_GCM_12, ESP_AES_GCM_16)
                                               for b in (128, 192, 256)]:
        size = {ESP_AES_GCM_8: 8, ESP_AES_GCM_12: 12, ESP_AES_GCM_16: 16}.get(encr_id, 0)
        if wireshark_encryption(encr_id, bits, size) == encryption:
            encr, icv = (encr_id, bits), size
            break
    if encr is None:
        raise CryptoError(f"no IKEv2 encryption algorithm is called {encryption!r}")
    integ = next((i for i in _INTEGS if wireshark_integrity(i) == integrity), None)
    if integ is None and not (icv and integrity == wireshark_integrity(None)):
        raise CryptoError(f"no IKEv2 integrity algorithm is called {integrity!r}")
    return encr[0], encr[1], integ
