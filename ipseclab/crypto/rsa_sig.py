"""IKEv1 RSA signature authentication (RFC 2409 §5.1).

In IKEv1 the SIG payload is an RSA PKCS#1 v1.5 signature (block type 1) over the
raw HASH_I / HASH_R bytes *without* an ASN.1 DigestInfo: RFC 2409 §5.1 says the
"hash" is signed directly, and every implementation (strongSwan calls this
scheme ``SIGN_RSA_EMSA_PKCS1_NULL``) pads the bare prf output.

The one gap in ``cryptography``
-------------------------------
``cryptography`` only signs with a hash algorithm, so it always wraps the input
in a DigestInfo.  :func:`sign_raw_pkcs1` therefore builds the EMSA-PKCS1-v1_5
block itself (RFC 8017 §9.2 steps 4-5, with T = the raw data) and applies the
private key as ``s = m^d mod n`` using the key's private numbers (RFC 8017 §5.2.1
RSASP1).  That exponentiation is plain Python ``pow`` and not constant-time:
fine for a lab, not for production keys.  The result is checked with the public
key before it is returned.  Verification needs no gap: ``cryptography``'s
``recover_data_from_signature`` with PKCS1v15 and no hash returns T.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ipseclab.errors import CryptoError

__all__ = ["emsa_pkcs1_v15_raw", "sign_raw_pkcs1", "verify_raw_pkcs1"]


def emsa_pkcs1_v15_raw(data: bytes, em_len: int) -> bytes:
    """``EM = 0x00 || 0x01 || PS (0xFF...) || 0x00 || data`` (RFC 8017 §9.2, T = data).

    PS is at least 8 bytes, so ``data`` may be at most ``em_len - 11`` bytes.
    """
    if len(data) > em_len - 11:
        raise CryptoError(
            f"{len(data)} bytes are too long for PKCS#1 v1.5 with a {em_len}-byte modulus "
            f"(at most {em_len - 11})"
        )
    return b"\x00\x01" + b"\xff" * (em_len - len(data) - 3) + b"\x00" + data


def sign_raw_pkcs1(private_key: RSAPrivateKey, data: bytes) -> bytes:
    """PKCS#1 v1.5 type-1 signature over ``data`` with no DigestInfo (IKEv1 SIG payload)."""
    priv = private_key.private_numbers()
    pub = priv.public_numbers
    k = (pub.n.bit_length() + 7) // 8
    m = int.from_bytes(emsa_pkcs1_v15_raw(data, k), "big")
    s = pow(m, priv.d, pub.n)
    if pow(s, pub.e, pub.n) != m:  # pragma: no cover - guards against a broken key
        raise CryptoError("RSA signature self-check failed")
    return s.to_bytes(k, "big")


def verify_raw_pkcs1(public_key: RSAPublicKey, signature: bytes, data: bytes) -> bool:
    """True if ``signature`` is a PKCS#1 v1.5 type-1 signature over exactly ``data``."""
    k = (public_key.key_size + 7) // 8
    if len(signature) != k:
        return False
    try:
        recovered = public_key.recover_data_from_signature(signature, PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return False
    return hmac.compare_digest(recovered, data)
