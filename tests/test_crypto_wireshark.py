"""The ESP ``wireshark_name`` strings are accepted by the installed tshark's esp_sa UAT.

tshark validates each ``-o uat:esp_sa:...`` record against its value strings
(``esp_encryption_type_vals`` / ``esp_authentication_type_vals`` in
epan/dissectors/packet-ipsec.c) and reports "invalid value" otherwise.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ipseclab.crypto.registry import esp_cipher, esp_integrity

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]

CIPHER_NAMES = [esp_cipher(11).wireshark_name, esp_cipher(3).wireshark_name] + [
    esp_cipher(i, 128).wireshark_name for i in (12, 18, 19, 20)
]
INTEGRITY_NAMES = [esp_integrity(i).wireshark_name for i in (1, 2, 5, 6, 7)]


@pytest.fixture(scope="module")
def empty_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pcap") / "empty.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    return path


def _run_tshark(pcap: Path, records: list[tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    args = ["tshark", "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE"]
    for encr, auth in records:
        args += ["-o", f'uat:esp_sa:"IPv4","*","*","*","{encr}","0x00","{auth}","0x00"']
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_tshark_accepts_every_uat_name(empty_pcap: Path) -> None:
    records = [(c, "NULL") for c in CIPHER_NAMES] + [("NULL", a) for a in INTEGRITY_NAMES]
    result = _run_tshark(empty_pcap, records)
    assert "invalid value" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr


def test_tshark_rejects_a_wrong_name(empty_pcap: Path) -> None:
    result = _run_tshark(empty_pcap, [("AES-CBC [RFC9999]", "NULL")])
    assert "invalid value" in result.stderr
