"""ipseclab.crypto.certs: the lab CA and its peer certificates."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtensionOID, NameOID

from ipseclab.crypto.certs import LabIdentity, issue_peer_cert, make_lab_ca, verify_issued_by
from ipseclab.crypto.rsa_sig import sign_raw_pkcs1, verify_raw_pkcs1
from ipseclab.errors import CryptoError


@pytest.fixture(scope="module")
def ca() -> LabIdentity:
    return make_lab_ca()


@pytest.fixture(scope="module")
def peer(ca: LabIdentity) -> LabIdentity:
    return issue_peer_cert(
        ca,
        "moon.ipseclab.test",
        dns_names=["moon.ipseclab.test"],
        ip_addresses=["192.0.2.1", "2001:db8::1"],
    )


def test_ca_is_self_signed_ca(ca: LabIdentity) -> None:
    cert = ca.cert
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ipseclab Lab CA"
    bc = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.critical and bc.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert verify_issued_by(cert, cert)
    assert ca.key.key_size == 2048


def test_peer_cert_verifies_and_has_profile(ca: LabIdentity, peer: LabIdentity) -> None:
    cert = peer.cert
    assert verify_issued_by(cert, ca.cert)
    assert cert.subject.rfc4514_string() == "CN=moon.ipseclab.test,O=ipseclab,C=CH"
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["moon.ipseclab.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 366


def test_not_issued_by_other_ca(ca: LabIdentity, peer: LabIdentity) -> None:
    other = make_lab_ca("Other CA", key_size=1024)
    assert not verify_issued_by(peer.cert, other.cert)
    same_name = make_lab_ca("ipseclab Lab CA", key_size=1024)  # same DN, different key
    assert not verify_issued_by(peer.cert, same_name.cert)
    assert not verify_issued_by(ca.cert, peer.cert)


def test_encodings(peer: LabIdentity) -> None:
    assert x509.load_der_x509_certificate(peer.cert_der) == peer.cert
    assert x509.load_pem_x509_certificate(peer.cert_pem()) == peer.cert
    assert peer.subject_dn_der[0] == 0x30  # DER SEQUENCE (RDNSequence)
    assert (
        x509.Name.from_rfc4514_string(peer.cert.subject.rfc4514_string()).public_bytes()
        == peer.subject_dn_der
    )
    key = load_pem_private_key(peer.key_pem(), password=None)
    assert key.public_key().public_numbers() == peer.cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_repr_hides_key(peer: LabIdentity) -> None:
    text = repr(peer)
    assert "key=" not in text and "PRIVATE" not in text


def test_peer_key_signs_ike_hash(peer: LabIdentity) -> None:
    sig = sign_raw_pkcs1(peer.key, b"\x42" * 20)
    assert verify_raw_pkcs1(peer.cert.public_key(), sig, b"\x42" * 20)  # type: ignore[arg-type]


def test_bad_inputs(ca: LabIdentity) -> None:
    with pytest.raises(CryptoError):
        issue_peer_cert(ca, "x", ip_addresses=["not-an-ip"], key_size=1024)
    with pytest.raises(CryptoError):
        make_lab_ca(key_size=512)
