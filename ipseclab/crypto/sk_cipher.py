"""The protection of IKEv2's Encrypted payload (SK, RFC 7296 §3.14) and of its fragments
(SKF, RFC 7383 §2.5): one function to seal, one to open.

::

    IV | ciphertext of (inner payloads | Padding | Pad Length) | ICV

* a block cipher with separate integrity (§3.14): the IV is one block, the plaintext
  is padded to a block multiple, the ICV is the integrity algorithm's truncated HMAC
  over the whole message up to the ICV (header and SK generic header included);
* an AEAD cipher — AES-GCM (RFC 5282 §3–§5), ChaCha20-Poly1305 (RFC 7634 §3): an 8-byte
  IV, nonce = 4-byte salt (the end of SK_e) | IV, the additional data is everything
  before the IV (the IKE header, the SK generic header; SKF's numbering too), the tag is
  the ICV; no padding is needed (Pad Length 0).

Opening checks the ICV before anything is decrypted and says what was wrong in
words; every primitive is the ``cryptography`` package's.
"""

from __future__ import annotations

import hmac as _hmac  # only compare_digest: a constant-time comparison
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ipseclab.crypto.registry import (
    ESP_3DES,
    ESP_AES_CBC,
    IKE_ENCR_3DES_CBC,
    IKE_ENCR_AES_CBC,
    CipherSpec,
    EspCipherSpec,
    EspIntegritySpec,
)
from ipseclab.crypto.registry_v2 import ENCR_CHACHA20_POLY1305
from ipseclab.errors import CryptoError

__all__ = ["SkCipher", "SkOpenError"]


class SkOpenError(CryptoError):
    """An SK/SKF payload that does not open: ``reason`` is a short code for counters
    (``too short``, ``icv failure``, ``bad padding``), the message says it in words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SkCipher:
    """The negotiated ENCR (and INTEG, unless ENCR is an AEAD) of an IKE SA."""

    cipher: EspCipherSpec
    integrity: EspIntegritySpec | None

    def __post_init__(self) -> None:
        if self.cipher.aead and self.integrity is not None:
            raise CryptoError(f"{self.cipher.name} authenticates itself: no integrity algorithm goes with it (RFC 5282 §8)")
        if not self.cipher.aead and self.integrity is None:
            raise CryptoError(f"{self.cipher.name} needs an integrity algorithm (RFC 7296 §3.3.3)")

    @property
    def iv_size(self) -> int:
        return self.cipher.iv_size

    @property
    def icv_size(self) -> int:
        return self.integrity.icv_size if self.integrity is not None else self.cipher.icv_size

    @property
    def block_size(self) -> int:
        return self.cipher.block_size

    @property
    def encr_key_bytes(self) -> int:
        """SK_e length: the key, plus the salt of an AEAD (RFC 5282 §7.1)."""
        return self.cipher.keymat_bytes

    @property
    def integ_key_bytes(self) -> int:
        """SK_a length: 0 with an AEAD."""
        return self.integrity.key_bytes if self.integrity is not None else 0

    def pad_length(self, plain_len: int) -> int:
        """Padding so that payloads + padding + Pad Length fill whole blocks."""
        return -(plain_len + 1) % self.block_size if not self.cipher.aead else 0

    def sealed_length(self, plain_len: int) -> int:
        """Bytes of IV + ciphertext + ICV for ``plain_len`` bytes of inner payloads."""
        return self.iv_size + plain_len + self.pad_length(plain_len) + 1 + self.icv_size

    def overhead(self) -> int:
        """Bytes an SK payload adds to its inner payloads at most (without the generic header)."""
        return self.iv_size + self.block_size + self.icv_size

    # -- sealing and opening ---------------------------------------------------------

    def seal(self, enc_key: bytes, integ_key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> bytes:
        """IV | ciphertext | ICV for inner payloads ``plaintext``; ``aad`` is the message
        from its first byte up to the IV, with the final lengths already in it."""
        if len(iv) != self.iv_size:
            raise CryptoError(f"{self.cipher.name} needs a {self.iv_size}-byte IV, got {len(iv)}")
        pad = self.pad_length(len(plaintext))
        padded = plaintext + bytes(pad) + bytes([pad])
        if self.cipher.aead:
            return iv + self._aead_seal(enc_key, iv, padded, aad)
        body = iv + self._cbc(enc_key).encrypt(enc_key, iv, padded)
        assert self.integrity is not None
        return body + self.integrity.compute_icv(integ_key, aad + body)

    def open(self, enc_key: bytes, integ_key: bytes, aad: bytes, body: bytes) -> bytes:
        """The inner payloads of an SK/SKF body (IV | ciphertext | ICV); :class:`SkOpenError`
        when it is too short, fails its ICV or has impossible padding."""
        minimum = self.iv_size + self.icv_size + (self.block_size if not self.cipher.aead else 1)
        if len(body) < minimum:
            raise SkOpenError("too short", f"{len(body)} bytes of encrypted content: {self.cipher.name} needs at least {minimum}")
        iv, rest = body[: self.iv_size], body[self.iv_size :]
        if self.cipher.aead:
            try:
                padded = self._aead_open(enc_key, iv, rest, aad)
            except InvalidTag:
                raise SkOpenError(
                    "icv failure", f"the {self.cipher.name} tag does not verify: other keys (another SA, a wrong "
                    "Diffie-Hellman result) or the message was changed on the way"
                ) from None
        else:
            assert self.integrity is not None
            ciphertext, icv = rest[: -self.icv_size], rest[-self.icv_size :]
            want = self.integrity.compute_icv(integ_key, aad + body[: -self.icv_size])
            if not _hmac.compare_digest(want, icv):
                raise SkOpenError(
                    "icv failure", f"the {self.integrity.name} checksum does not verify: other keys or a changed message"
                )
            if len(ciphertext) % self.block_size:
                raise SkOpenError(
                    "bad padding", f"{len(ciphertext)} bytes of ciphertext are not whole {self.block_size}-byte blocks"
                )
            padded = self._cbc(enc_key).decrypt(enc_key, iv, ciphertext)
        pad = padded[-1]
        if pad + 1 > len(padded):
            raise SkOpenError("bad padding", f"Pad Length {pad} is longer than the {len(padded) - 1} bytes decrypted")
        return padded[: -pad - 1]

    # -- the primitives --------------------------------------------------------------

    def _cbc(self, enc_key: bytes) -> CipherSpec:
        if self.cipher.esp_id == ESP_AES_CBC:
            return CipherSpec(self.cipher.name, IKE_ENCR_AES_CBC, self.cipher.key_bits, 16)
        if self.cipher.esp_id == ESP_3DES:
            return CipherSpec(self.cipher.name, IKE_ENCR_3DES_CBC, 192, 8)
        raise CryptoError(f"{self.cipher.name} cannot protect an SK payload")

    def _split(self, enc_key: bytes) -> tuple[bytes, bytes]:
        if len(enc_key) != self.encr_key_bytes:
            raise CryptoError(f"{self.cipher.name} needs {self.encr_key_bytes} bytes of SK_e, got {len(enc_key)}")
        return enc_key[:-4], enc_key[-4:]

    def _aead_seal(self, enc_key: bytes, iv: bytes, padded: bytes, aad: bytes) -> bytes:
        key, salt = self._split(enc_key)
        if self.cipher.esp_id == ENCR_CHACHA20_POLY1305:
            return ChaCha20Poly1305(key).encrypt(salt + iv, padded, aad)
        if self.cipher.icv_size == 16:
            return AESGCM(key).encrypt(salt + iv, padded, aad)
        enc = Cipher(algorithms.AES(key), modes.GCM(salt + iv)).encryptor()
        enc.authenticate_additional_data(aad)
        ct = enc.update(padded) + enc.finalize()
        return ct + enc.tag[: self.cipher.icv_size]

    def _aead_open(self, enc_key: bytes, iv: bytes, rest: bytes, aad: bytes) -> bytes:
        key, salt = self._split(enc_key)
        if self.cipher.esp_id == ENCR_CHACHA20_POLY1305:
            return ChaCha20Poly1305(key).decrypt(salt + iv, rest, aad)
        if self.cipher.icv_size == 16:
            return AESGCM(key).decrypt(salt + iv, rest, aad)
        icv = self.cipher.icv_size
        dec = Cipher(algorithms.AES(key), modes.GCM(salt + iv, rest[-icv:], min_tag_length=icv)).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(rest[:-icv]) + dec.finalize()
