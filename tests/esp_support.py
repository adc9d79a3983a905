"""Helpers for the ESP tests: matching sender/receiver SAs and inner packets."""

from __future__ import annotations

import os

from ipseclab.crypto.registry import esp_cipher, esp_integrity
from ipseclab.esp import EspSa

LEFT, RIGHT = "192.0.2.1", "198.51.100.1"

# (label, ESP transform ID, key bits, IPsec auth algorithm, scapy crypt_algo, scapy auth_algo)
TRANSFORMS = [
    ("aes128-cbc-sha1", 12, 128, 2, "AES-CBC", "HMAC-SHA1-96"),
    ("aes256-cbc-sha1", 12, 256, 2, "AES-CBC", "HMAC-SHA1-96"),
    ("aes128-cbc-sha256", 12, 128, 5, "AES-CBC", "SHA2-256-128"),
    ("aes256-cbc-sha256", 12, 256, 5, "AES-CBC", "SHA2-256-128"),
    ("aes128-gcm16", 20, 128, None, "AES-GCM", None),
    ("aes256-gcm16", 20, 256, None, "AES-GCM", None),
    ("null-sha1", 11, None, 2, "NULL", "HMAC-SHA1-96"),
]


def keys_for(esp_id: int, key_bits: int | None, auth: int | None) -> tuple[bytes, bytes]:
    cipher = esp_cipher(esp_id, key_bits)
    integ = esp_integrity(auth) if auth else None
    return os.urandom(cipher.keymat_bytes), os.urandom(integ.key_bytes) if integ else b""


def sa_pair(
    esp_id: int,
    key_bits: int | None,
    auth: int | None,
    *,
    spi: int = 0x1234,
    keys: tuple[bytes, bytes] | None = None,
    src: str = LEFT,
    dst: str = RIGHT,
    **kw,
) -> tuple[EspSa, EspSa]:
    """A sender and a receiver SA with the same SPI, transform and keys."""
    cipher = esp_cipher(esp_id, key_bits)
    integ = esp_integrity(auth) if auth else None
    enc, mac = keys or keys_for(esp_id, key_bits, auth)
    tx = EspSa(spi, src, dst, cipher, integ, enc, mac, direction="outbound", **kw)
    rx_kw = {k: v for k, v in kw.items() if k != "seq"}
    rx = EspSa(spi, src, dst, cipher, integ, enc, mac, direction="inbound", **rx_kw)
    return tx, rx


def icmp_packet(src: str = "10.1.1.1", dst: str = "10.2.1.1", size: int = 56, seq: int = 1) -> bytes:
    from scapy.layers.inet import ICMP, IP

    return bytes(IP(src=src, dst=dst) / ICMP(id=7, seq=seq) / bytes(i & 0xFF for i in range(size)))
