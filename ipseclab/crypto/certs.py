"""A small lab CA: a self-signed root and RSA peer certificates for IKEv1 RSA-sig auth.

The certificates follow RFC 5280 profiles that strongSwan accepts: the CA has
basicConstraints CA:TRUE (critical) and keyUsage keyCertSign/cRLSign; a peer has
basicConstraints CA:FALSE, keyUsage digitalSignature, subjectAltNames for its
DNS names / IP addresses (used as IKE identities, RFC 4945 §3.1), and subject /
authority key identifiers.  The peer's subject DN, DER-encoded, is its
ID_DER_ASN1_DN identity (RFC 2407 §4.6.2.1, RFC 4945 §3.1.5).

Lab-only: keys are generated in memory and written out unencrypted.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID

from ipseclab.errors import CryptoError

__all__ = ["LabIdentity", "issue_peer_cert", "make_lab_ca", "verify_issued_by"]


@dataclass
class LabIdentity:
    """A private key and its certificate.  The key never appears in ``repr``."""

    key: RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)
    cert: x509.Certificate

    @property
    def cert_der(self) -> bytes:
        """The certificate in DER (what goes into an IKEv1 CERT payload, encoding 4)."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def subject_dn_der(self) -> bytes:
        """DER of the subject Name: the ID_DER_ASN1_DN identification data."""
        return self.cert.subject.public_bytes()

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (lab use only)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipseclab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)


def _new_key(key_size: int) -> RSAPrivateKey:
    if key_size < 1024:
        raise CryptoError(f"RSA keys below 1024 bits are refused, got {key_size}")
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def make_lab_ca(common_name: str = "ipseclab Lab CA", key_size: int = 2048) -> LabIdentity:
    """A self-signed root CA ("C=CH, O=ipseclab, CN=<common_name>"), valid one year."""
    key = _new_key(key_size)
    name = _name(common_name)
    not_before, not_after = _validity()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return LabIdentity(key, cert)


def issue_peer_cert(
    ca: LabIdentity,
    common_name: str,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    key_size: int = 2048,
    key_type: str = "rsa",
) -> LabIdentity:
    """A peer certificate "C=CH, O=ipseclab, CN=<common_name>" signed by ``ca``.

    ``dns_names`` and ``ip_addresses`` become subjectAltNames, so the peer can
    also use ID_FQDN / ID_IPV4_ADDR identities that strongSwan checks against them.
    ``key_type`` ``"ecdsa"`` gives the peer a P-256 key (IKEv2's RFC 7427 ECDSA signatures;
    IKEv1's signatures here are RSA only).
    """
    if key_type not in ("rsa", "ecdsa"):
        raise CryptoError(f"key_type must be 'rsa' or 'ecdsa', not {key_type!r}")
    key = _new_key(key_size) if key_type == "rsa" else ec.generate_private_key(ec.SECP256R1())
    try:
        ips = [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    except ValueError as exc:
        raise CryptoError(f"bad IP address for subjectAltName: {exc}") from None
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans.extend(ips)
    not_before, not_after = _validity()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return LabIdentity(key, builder.sign(ca.key, hashes.SHA256()))


def verify_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True if ``ca_cert`` directly issued ``cert``: names chain and the signature verifies.

    This checks one link only (no validity period, no path building).
    """
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
