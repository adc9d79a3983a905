"""Cryptography for ipseclab: transforms, Diffie-Hellman, IKEv1 key derivation, RSA, a lab CA.

Every primitive comes from the ``cryptography`` package; these modules only
arrange them the way the IKEv1/ESP RFCs say.
"""

from ipseclab.crypto.certs import LabIdentity, issue_peer_cert, make_lab_ca, verify_issued_by
from ipseclab.crypto.dh import DHGroup, DHKeyPair, dh_group, supported_groups
from ipseclab.crypto.hexdump import parse_strongswan_hexdump, unhex
from ipseclab.crypto.kdf_v1 import (
    Phase1Keys,
    derive_phase1_keys,
    encryption_key,
    phase1_iv,
    phase2_iv,
    quick_mode_keymat,
    skeyid_a,
    skeyid_d,
    skeyid_e,
    skeyid_psk,
    skeyid_sig,
)
from ipseclab.crypto.registry import (
    CipherSpec,
    EspCipherSpec,
    EspIntegritySpec,
    HashSpec,
    esp_cipher,
    esp_integrity,
    ike_cipher,
    ike_hash,
)
from ipseclab.crypto.rng import Rng, SeededRng, SystemRng
from ipseclab.crypto.rsa_sig import sign_raw_pkcs1, verify_raw_pkcs1

__all__ = [
    "CipherSpec",
    "DHGroup",
    "DHKeyPair",
    "EspCipherSpec",
    "EspIntegritySpec",
    "HashSpec",
    "LabIdentity",
    "Phase1Keys",
    "Rng",
    "SeededRng",
    "SystemRng",
    "derive_phase1_keys",
    "dh_group",
    "encryption_key",
    "esp_cipher",
    "esp_integrity",
    "ike_cipher",
    "ike_hash",
    "issue_peer_cert",
    "make_lab_ca",
    "parse_strongswan_hexdump",
    "phase1_iv",
    "phase2_iv",
    "quick_mode_keymat",
    "sign_raw_pkcs1",
    "skeyid_a",
    "skeyid_d",
    "skeyid_e",
    "skeyid_psk",
    "skeyid_sig",
    "supported_groups",
    "unhex",
    "verify_issued_by",
    "verify_raw_pkcs1",
]
