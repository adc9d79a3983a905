"""ML-KEM (FIPS 203) as an IKEv2 key exchange method (RFC 9370; draft-ietf-ipsecme-ikev2-mlkem):
the initiator's KE payload carries an encapsulation key, the responder's the ciphertext,
and both get the same 32-byte shared secret.

Unlike Diffie-Hellman the two sides do different things: the initiator generates a key
pair (from 64 seed bytes, so a seeded lab run makes the same keys) and decapsulates; the
responder encapsulates to the initiator's key (its randomness is OpenSSL's: an ML-KEM
ciphertext is not reproducible from the lab's seed).  ``cryptography`` provides
ML-KEM-768 and ML-KEM-1024; ML-KEM-512 is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import mlkem

from ipseclab.crypto.rng import Rng
from ipseclab.errors import CryptoError

ML_KEM_512, ML_KEM_768, ML_KEM_1024 = 35, 36, 37

#: IANA key exchange method → (name, private key class, public key class, ciphertext bytes)
_KEMS = {
    ML_KEM_768: ("ML-KEM-768", mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 1088),
    ML_KEM_1024: ("ML-KEM-1024", mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 1568),
}


def is_kem(method: int) -> bool:
    return method in (ML_KEM_512, ML_KEM_768, ML_KEM_1024)


def kem_name(method: int) -> str:
    return _KEMS[method][0] if method in _KEMS else ("ML-KEM-512" if method == ML_KEM_512 else f"KE method {method}")


def _spec(method: int) -> tuple[str, type, type, int]:
    if method not in _KEMS:
        why = "the cryptography package offers ML-KEM-768 and ML-KEM-1024 only" if method == ML_KEM_512 else "not an ML-KEM method"
        raise CryptoError(f"key exchange method {method} ({kem_name(method)}) is not supported: {why}")
    return _KEMS[method]


@dataclass
class KemInitiator:
    """The initiator's side: its encapsulation key, and the secret from the responder's ciphertext."""

    method: int
    public_bytes: bytes
    _key: object = field(repr=False)

    @classmethod
    def generate(cls, method: int, rng: Rng) -> KemInitiator:
        _name, private_cls, _public, _ct = _spec(method)
        key = private_cls.from_seed_bytes(rng.random_bytes(64))
        return cls(method, key.public_key().public_bytes_raw(), key)

    def shared_secret(self, ciphertext: bytes) -> bytes:
        name, _priv, _pub, ct_len = _spec(self.method)
        if len(ciphertext) != ct_len:
            raise CryptoError(f"an {name} ciphertext is {ct_len} bytes, got {len(ciphertext)}")
        return self._key.decapsulate(ciphertext)  # type: ignore[attr-defined]


def encapsulate(method: int, encapsulation_key: bytes) -> tuple[bytes, bytes]:
    """The responder's side: (ciphertext for the KE payload, shared secret)."""
    name, _priv, public_cls, _ct = _spec(method)
    try:
        public = public_cls.from_public_bytes(encapsulation_key)
    except ValueError as exc:
        raise CryptoError(f"the {name} encapsulation key is unusable ({len(encapsulation_key)} bytes): {exc}") from None
    shared, ciphertext = public.encapsulate()
    return ciphertext, shared
