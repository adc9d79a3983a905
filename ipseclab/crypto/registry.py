"""Transforms by their IANA numbers: IKEv1 ciphers and hashes, ESP ciphers and integrity.

Numbers come from the IANA "IPSEC Registry" / "ISAKMP Registry":

* IKEv1 phase-1 Encryption Algorithm and Hash Algorithm attributes, RFC 2409
  Appendix A (AES-CBC = 7 from RFC 3602 §5.1; SHA2 hashes = 4, 5, 6 from RFC 4868 §5).
* ESP transform IDs (IPsec DOI, RFC 2407 §4.4.4): ESP_3DES = 3, ESP_NULL = 11,
  ESP_AES_CBC = 12 (RFC 3602), ESP_AES_GCM_8/12/16 = 18/19/20 (RFC 4106 §8.4).
* IPsec Authentication Algorithm attribute (RFC 2407 §4.5): HMAC-MD5 = 1,
  HMAC-SHA = 2, HMAC-SHA2-256/384/512 = 5/6/7 (RFC 4868 §5).

Every primitive is the ``cryptography`` package's; nothing here is hand-rolled.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

from ipseclab.errors import CryptoError

try:  # cryptography >= 43 keeps TripleDES among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES as _TripleDES
except ImportError:  # pragma: no cover - older cryptography
    _TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc]

__all__ = [
    "CipherSpec",
    "EspCipherSpec",
    "EspIntegritySpec",
    "HashSpec",
    "esp_cipher",
    "esp_integrity",
    "ike_cipher",
    "ike_hash",
]

# --------------------------------------------------------------------------
# IKEv1 phase-1 / phase-2 encryption (CBC)
# --------------------------------------------------------------------------

IKE_ENCR_DES_CBC = 1
IKE_ENCR_3DES_CBC = 5
IKE_ENCR_AES_CBC = 7

_AES_KEY_BITS = (128, 192, 256)


@dataclass(frozen=True)
class CipherSpec:
    """A CBC block cipher as IKEv1 uses it (RFC 2409 §5.3 and Appendix B).

    The caller pads: IKEv1 pads the ISAKMP payloads to a block multiple itself
    (RFC 2408 §3.1, RFC 2409 Appendix B), so ``encrypt`` refuses anything that
    is not a multiple of ``block_size``.
    """

    name: str
    ike_id: int
    key_bits: int
    block_size: int

    @property
    def key_bytes(self) -> int:
        """Key length in bytes."""
        return self.key_bits // 8

    def _algorithm(self, key: bytes) -> CipherAlgorithm:
        if self.ike_id == IKE_ENCR_AES_CBC:
            return algorithms.AES(key)
        return _TripleDES(key)

    def _cipher(self, key: bytes, iv: bytes, data: bytes, what: str) -> Cipher[modes.CBC]:
        if len(key) != self.key_bytes:
            raise CryptoError(
                f"{self.name} needs a {self.key_bytes}-byte key, got {len(key)} bytes"
            )
        if len(iv) != self.block_size:
            raise CryptoError(f"{self.name} needs a {self.block_size}-byte IV, got {len(iv)} bytes")
        if len(data) % self.block_size:
            raise CryptoError(
                f"{self.name} {what} must be a multiple of {self.block_size} bytes, "
                f"got {len(data)} (IKEv1 pads before encrypting, RFC 2409 Appendix B)"
            )
        return Cipher(self._algorithm(key), modes.CBC(iv))

    def encrypt(self, key: bytes, iv: bytes, plaintext: bytes) -> bytes:
        """CBC-encrypt ``plaintext`` (already padded to a block multiple)."""
        enc = self._cipher(key, iv, plaintext, "plaintext").encryptor()
        return enc.update(plaintext) + enc.finalize()

    def decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        """CBC-decrypt ``ciphertext``; the padding is left for the caller to strip."""
        dec = self._cipher(key, iv, ciphertext, "ciphertext").decryptor()
        return dec.update(ciphertext) + dec.finalize()


def ike_cipher(ike_encr_id: int, key_bits: int | None = None) -> CipherSpec:
    """Look up an IKEv1 Encryption Algorithm (RFC 2409 Appendix A; AES: RFC 3602 §5).

    ``key_bits`` is the Key Length attribute (RFC 2409 Appendix A, class 14).
    AES-CBC must have it; 3DES-CBC has a fixed 192-bit key (168 effective).
    """
    if ike_encr_id == IKE_ENCR_AES_CBC:
        if key_bits is None:
            raise CryptoError(
                "AES-CBC needs a Key Length attribute (128, 192 or 256): AES has a "
                "variable key length, so RFC 3602 §5 makes the attribute mandatory"
            )
        if key_bits not in _AES_KEY_BITS:
            raise CryptoError(f"AES-CBC key length must be 128, 192 or 256 bits, got {key_bits}")
        return CipherSpec(f"AES-CBC-{key_bits}", IKE_ENCR_AES_CBC, key_bits, 16)
    if ike_encr_id == IKE_ENCR_3DES_CBC:
        if key_bits not in (None, 192):
            raise CryptoError(f"3DES-CBC has a fixed 192-bit key, got Key Length {key_bits}")
        return CipherSpec("3DES-CBC", IKE_ENCR_3DES_CBC, 192, 8)
    if ike_encr_id == IKE_ENCR_DES_CBC:
        raise CryptoError(
            "DES-CBC (IKE encryption algorithm 1) is not supported: its 56-bit key can "
            "be brute-forced in about a day on commodity hardware; propose AES-CBC (7) "
            "or at least 3DES-CBC (5)"
        )
    raise CryptoError(
        f"IKE encryption algorithm {ike_encr_id} is not supported "
        "(supported: 5 = 3DES-CBC, 7 = AES-CBC)"
    )


# --------------------------------------------------------------------------
# IKEv1 hashes (and their HMAC as the negotiated prf)
# --------------------------------------------------------------------------

_IKE_HASHES: dict[int, tuple[str, type[hashes.HashAlgorithm]]] = {
    1: ("MD5", hashes.MD5),
    2: ("SHA1", hashes.SHA1),
    4: ("SHA2-256", hashes.SHA256),
    5: ("SHA2-384", hashes.SHA384),
    6: ("SHA2-512", hashes.SHA512),
}


@dataclass(frozen=True)
class HashSpec:
    """A hash algorithm; ``prf`` is its HMAC (RFC 2409 §4: "the HMAC version of the
    negotiated hash algorithm is used as a pseudo-random function" when no PRF
    attribute is negotiated — which is always the case in practice)."""

    name: str
    ike_id: int
    digest_size: int

    def _new(self) -> hashes.HashAlgorithm:
        return _IKE_HASHES[self.ike_id][1]()

    def hash(self, data: bytes) -> bytes:
        """The plain hash of ``data``."""
        h = hashes.Hash(self._new())
        h.update(data)
        return h.finalize()

    def prf(self, key: bytes, data: bytes) -> bytes:
        """HMAC(key, data) with this hash (RFC 2104)."""
        h = hmac.HMAC(key, self._new())
        h.update(data)
        return h.finalize()


def ike_hash(ike_hash_id: int) -> HashSpec:
    """Look up an IKEv1 Hash Algorithm (RFC 2409 Appendix A; SHA2: RFC 4868 §5)."""
    try:
        name, alg = _IKE_HASHES[ike_hash_id]
    except KeyError:
        raise CryptoError(
            f"IKE hash algorithm {ike_hash_id} is not supported "
            "(supported: 1 = MD5, 2 = SHA1, 4 = SHA2-256, 5 = SHA2-384, 6 = SHA2-512)"
        ) from None
    return HashSpec(name, ike_hash_id, alg.digest_size)


# --------------------------------------------------------------------------
# ESP encryption (RFC 4303) — descriptions for keying, padding and Wireshark
# --------------------------------------------------------------------------

ESP_3DES = 3
ESP_NULL = 11
ESP_AES_CBC = 12
ESP_AES_GCM_8 = 18
ESP_AES_GCM_12 = 19
ESP_AES_GCM_16 = 20


@dataclass(frozen=True)
class EspCipherSpec:
    """An ESP encryption transform.

    ``wireshark_name`` is the exact string of Wireshark's ``esp_sa`` UAT
    (``esp_encryption_type_vals`` in epan/dissectors/packet-ipsec.c).  For the
    AEAD (GCM) transforms the KEYMAT is ``key || 4-byte salt`` (RFC 4106 §8.1)
    and Wireshark's key column expects that same concatenation.
    """

    name: str
    esp_id: int
    key_bits: int
    salt_bytes: int
    block_size: int
    iv_size: int
    aead: bool
    icv_size: int
    wireshark_name: str

    @property
    def key_bytes(self) -> int:
        """Cipher key length in bytes (without the salt)."""
        return self.key_bits // 8

    @property
    def keymat_bytes(self) -> int:
        """KEYMAT bytes this transform takes: key plus salt (RFC 4106 §8.1)."""
        return self.key_bytes + self.salt_bytes

    @property
    def padding_alignment(self) -> int:
        """ESP pads to the cipher block size and at least to 4 bytes (RFC 4303 §2.4)."""
        return max(self.block_size, 4)


_GCM_ICV = {ESP_AES_GCM_8: 8, ESP_AES_GCM_12: 12, ESP_AES_GCM_16: 16}


def esp_cipher(esp_transform_id: int, key_bits: int | None = None) -> EspCipherSpec:
    """Look up an ESP transform ID (RFC 2407 §4.4.4; AES-CBC RFC 3602, AES-GCM RFC 4106).

    ``key_bits`` is the Key Length SA attribute; it is required for the AES
    transforms (RFC 3602 §5, RFC 4106 §8.4) and must be absent or exact otherwise.
    """
    if esp_transform_id == ESP_NULL:
        if key_bits not in (None, 0):
            raise CryptoError(f"ESP_NULL has no key, got Key Length {key_bits}")
        return EspCipherSpec("NULL", ESP_NULL, 0, 0, 1, 0, False, 0, "NULL")
    if esp_transform_id == ESP_3DES:
        if key_bits not in (None, 192):
            raise CryptoError(f"ESP_3DES has a fixed 192-bit key, got Key Length {key_bits}")
        return EspCipherSpec(
            "3DES-CBC", ESP_3DES, 192, 0, 8, 8, False, 0, "TripleDES-CBC [RFC2451]"
        )
    if esp_transform_id == ESP_AES_CBC:
        _require_aes_bits("ESP_AES_CBC", key_bits)
        assert key_bits is not None
        return EspCipherSpec(
            f"AES-CBC-{key_bits}",
            ESP_AES_CBC,
            key_bits,
            0,
            16,
            16,
            False,
            0,
            "AES-CBC [RFC3602]",
        )
    if esp_transform_id in _GCM_ICV:
        icv = _GCM_ICV[esp_transform_id]
        _require_aes_bits(f"ESP_AES_GCM_{icv}", key_bits)
        assert key_bits is not None
        return EspCipherSpec(
            f"AES-GCM-{icv}-{key_bits}",
            esp_transform_id,
            key_bits,
            4,
            1,
            8,
            True,
            icv,
            f"AES-GCM with {icv} octet ICV [RFC4106]",
        )
    raise CryptoError(
        f"ESP transform {esp_transform_id} is not supported (supported: 3 = 3DES, "
        "11 = NULL, 12 = AES-CBC, 18/19/20 = AES-GCM with 8/12/16-byte ICV)"
    )


def _require_aes_bits(name: str, key_bits: int | None) -> None:
    if key_bits is None:
        raise CryptoError(f"{name} needs a Key Length attribute (128, 192 or 256)")
    if key_bits not in _AES_KEY_BITS:
        raise CryptoError(f"{name} key length must be 128, 192 or 256 bits, got {key_bits}")


# --------------------------------------------------------------------------
# ESP integrity
# --------------------------------------------------------------------------

_ESP_AUTH: dict[int, tuple[str, type[hashes.HashAlgorithm], int, str]] = {
    # id: (name, hash, ICV bytes, Wireshark esp_authentication_type_vals string)
    1: ("HMAC-MD5-96", hashes.MD5, 12, "HMAC-MD5-96 [RFC2403]"),
    2: ("HMAC-SHA1-96", hashes.SHA1, 12, "HMAC-SHA-1-96 [RFC2404]"),
    5: ("HMAC-SHA2-256-128", hashes.SHA256, 16, "HMAC-SHA-256-128 [RFC4868]"),
    6: ("HMAC-SHA2-384-192", hashes.SHA384, 24, "HMAC-SHA-384-192 [RFC4868]"),
    7: ("HMAC-SHA2-512-256", hashes.SHA512, 32, "HMAC-SHA-512-256 [RFC4868]"),
}


@dataclass(frozen=True)
class EspIntegritySpec:
    """An ESP integrity algorithm: HMAC truncated to ``icv_size`` bytes.

    Key sizes and truncations: RFC 2403 §3 (MD5), RFC 2404 §3 (SHA1), RFC 4868
    §2.1.1/§2.1.2 (SHA-2: key = full digest size, ICV = half of it).
    """

    name: str
    auth_alg_id: int
    key_bytes: int
    icv_size: int
    wireshark_name: str

    def compute_icv(self, key: bytes, data: bytes) -> bytes:
        """HMAC(key, data) truncated to ``icv_size`` bytes (RFC 4303 §2.8)."""
        if len(key) != self.key_bytes:
            raise CryptoError(
                f"{self.name} needs a {self.key_bytes}-byte key, got {len(key)} bytes"
            )
        h = hmac.HMAC(key, _ESP_AUTH[self.auth_alg_id][1]())
        h.update(data)
        return h.finalize()[: self.icv_size]


def esp_integrity(auth_alg_id: int) -> EspIntegritySpec:
    """Look up an IPsec Authentication Algorithm attribute value (RFC 2407 §4.5)."""
    try:
        name, alg, icv, ws = _ESP_AUTH[auth_alg_id]
    except KeyError:
        raise CryptoError(
            f"ESP authentication algorithm {auth_alg_id} is not supported (supported: "
            "1 = HMAC-MD5, 2 = HMAC-SHA1, 5/6/7 = HMAC-SHA2-256/384/512)"
        ) from None
    return EspIntegritySpec(name, auth_alg_id, alg.digest_size, icv, ws)


def esp_cipher_named(wireshark_name: str, keymat_bytes: int) -> EspCipherSpec:
    """The ESP transform a Wireshark ``esp_sa`` row names, told apart by its key's length
    (KEYMAT: the key, plus the 4-byte salt for GCM)."""
    candidates = [(ESP_NULL, None), (ESP_3DES, None)] + [
        (esp_id, bits) for esp_id in (ESP_AES_CBC, ESP_AES_GCM_8, ESP_AES_GCM_12, ESP_AES_GCM_16) for bits in (128, 192, 256)
    ]
    for esp_id, bits in candidates:
        spec = esp_cipher(esp_id, bits)
        if spec.wireshark_name == wireshark_name and spec.keymat_bytes == keymat_bytes:
            return spec
    raise CryptoError(f"no ESP transform is called {wireshark_name!r} with a {keymat_bytes}-byte key")


def esp_integrity_named(wireshark_name: str) -> EspIntegritySpec | None:
    """The ESP integrity algorithm a Wireshark ``esp_sa`` row names (None: "NULL", as with GCM)."""
    if wireshark_name.upper() == "NULL":
        return None
    for auth_id in _ESP_AUTH:
        spec = esp_integrity(auth_id)
        if spec.wireshark_name == wireshark_name:
            return spec
    raise CryptoError(f"no ESP integrity algorithm is called {wireshark_name!r}")
