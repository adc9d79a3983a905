"""IKEv2 signature authentication (RFC 7296 §2.15, §3.8): the AUTH payload's data for the
signature methods.

* RFC 7427 Digital Signature (method 14), what we send: one byte with the length of an
  ASN.1 AlgorithmIdentifier, the AlgorithmIdentifier, then the signature.  RSA keys sign
  with RSASSA-PKCS1-v1_5 and SHA-256 (``sha256WithRSAEncryption``), EC keys with ECDSA and
  SHA-256 (``ecdsa-with-SHA256``, a DER ``Ecdsa-Sig-Value``).  The AlgorithmIdentifier is
  encoded by asn1crypto, never by hand.
* RSA Digital Signature (method 1), which we accept: RSASSA-PKCS1-v1_5 with SHA-1.
* ECDSA with SHA-256/384/512 on P-256/384/521 (methods 9–11, RFC 4754), which we accept:
  r and s as fixed-size big-endian integers.

The hash algorithms we announce in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) are
:data:`HASH_ALGORITHMS`.  Every primitive is the ``cryptography`` package's.
"""

from __future__ import annotations

from asn1crypto import algos
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ipseclab.errors import CryptoError

RSA_SIGNATURE = 1
ECDSA_METHODS = {9: (hashes.SHA256, 32), 10: (hashes.SHA384, 48), 11: (hashes.SHA512, 66)}
DIGITAL_SIGNATURE = 14
#: RFC 7427 §7 hash algorithm numbers we announce: SHA2-256, SHA2-384, SHA2-512
HASH_ALGORITHMS = (2, 3, 4)

_BY_NAME: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "sha256_rsa": ("rsa", hashes.SHA256),
    "sha384_rsa": ("rsa", hashes.SHA384),
    "sha512_rsa": ("rsa", hashes.SHA512),
    "sha1_rsa": ("rsa", hashes.SHA1),
    "sha256_ecdsa": ("ec", hashes.SHA256),
    "sha384_ecdsa": ("ec", hashes.SHA384),
    "sha512_ecdsa": ("ec", hashes.SHA512),
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def algorithm_identifier(name: str) -> bytes:
    """DER of the AlgorithmIdentifier ``name`` (asn1crypto's names: ``sha256_rsa``, ``sha256_ecdsa``)."""
    return algos.SignedDigestAlgorithm({"algorithm": name}).dump()


def sign(key: PrivateKey, octets: bytes) -> tuple[int, bytes]:
    """(AUTH method, AUTH data) signing ``octets`` the RFC 7427 way."""
    if isinstance(key, rsa.RSAPrivateKey):
        name, signature = "sha256_rsa", key.sign(octets, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        name, signature = "sha256_ecdsa", key.sign(octets, ec.ECDSA(hashes.SHA256()))
    else:  # pragma: no cover - the configuration only loads RSA and EC keys
        raise CryptoError(f"cannot sign with a {type(key).__name__}")
    ident = algorithm_identifier(name)
    return DIGITAL_SIGNATURE, bytes([len(ident)]) + ident + signature


def verify(key: PublicKey, method: int, data: bytes, octets: bytes) -> str | None:
    """``None`` when AUTH ``data`` of ``method`` signs ``octets`` with ``key``, else why not."""
    try:
        if method == DIGITAL_SIGNATURE:
            return _verify_digital_signature(key, data, octets)
        if method == RSA_SIGNATURE:
            if not isinstance(key, rsa.RSAPublicKey):
                return "RSA Digital Signature (method 1) with a certificate whose key is not RSA"
            key.verify(data, octets, padding.PKCS1v15(), hashes.SHA1())
            return None
        if method in ECDSA_METHODS:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return f"ECDSA (method {method}) with a certificate whose key is not EC"
            hash_cls, size = ECDSA_METHODS[method]
            if len(data) != 2 * size:
                return f"an ECDSA signature of {len(data)} bytes, {2 * size} expected (RFC 4754 §7)"
            r, s = int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big")
            key.verify(encode_dss_signature(r, s), octets, ec.ECDSA(hash_cls()))
            return None
    except InvalidSignature:
        return "the signature does not verify with the certificate's public key"
    return f"authentication method {method} is not a signature method we verify (1, 9-11, 14)"


def _verify_digital_signature(key: PublicKey, data: bytes, octets: bytes) -> str | None:
    if not data:
        return "an empty AUTH payload"
    size = data[0]
    if len(data) < 1 + size:
        return "the AlgorithmIdentifier runs past the AUTH payload (RFC 7427 §3)"
    try:
        name = algos.SignedDigestAlgorithm.load(data[1 : 1 + size])["algorithm"].native
    except (ValueError, TypeError, KeyError) as exc:
        return f"the AlgorithmIdentifier does not decode: {exc}"
    kind, hash_cls = _BY_NAME.get(name, (None, None))
    if kind is None or hash_cls is None:
        return f"signature algorithm {name} is not one we verify"
    signature = data[1 + size :]
    if kind == "rsa":
        if not isinstance(key, rsa.RSAPublicKey):
            return f"{name} with a certificate whose key is not RSA"
        key.verify(signature, octets, padding.PKCS1v15(), hash_cls())
    else:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return f"{name} with a certificate whose key is not EC"
        key.verify(signature, octets, ec.ECDSA(hash_cls()))
    return None
