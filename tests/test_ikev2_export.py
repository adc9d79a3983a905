"""Wireshark reads our IKEv2: the ``ikev2_decryption_table`` exported from the trace lets
tshark open every SK payload of a run (IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL); a
table with one wrong key does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from engine_support import established_pair, terminate

from ipseclab.export import ikev2_decryption_rows, write_keys, write_pcap
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.runtime.netlab.tshark import dissect

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

IDI, IDR, AUTH, SA, NONCE, D, TSI, TSR, SK = 35, 36, 39, 33, 40, 42, 44, 45, 46


def run(tmp_path: Path, **kw: object) -> tuple[Path, list]:
    pp = established_pair(version=2, children=2, **kw)
    terminate(pp.network, "left")
    write_pcap(pp.events, tmp_path / "run.pcap")
    write_keys(pp.events, tmp_path / "keys")
    return tmp_path / "run.pcap", pp.events


def test_rows_name_spis_keys_and_wireshark_algorithms(tmp_path: Path) -> None:
    _, events = run(tmp_path, policy=IsakmpPolicy(10, "aes256", "sha256"))
    (row,) = ikev2_decryption_rows(events)
    spi_i, spi_r, ei, er, encr, ai, ar, integ = row.split(",")
    assert (len(spi_i), len(spi_r), len(ei), len(ai)) == (16, 16, 64, 64)
    assert (encr, integ) == ('"AES-CBC-256 [RFC3602]"', '"HMAC_SHA2_256_128 [RFC4868]"')
    assert (tmp_path / "keys" / "ikev2_decryption_table").stat().st_mode & 0o077 == 0


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("suite", ["aes128-sha1", "aes256-sha256", "3des-sha512"])
def test_tshark_opens_every_sk_payload(tmp_path: Path, suite: str) -> None:
    enc, hash_ = suite.split("-")
    pcap, _ = run(tmp_path, policy=IsakmpPolicy(10, enc, hash_), transform_set=TransformSet("ts", pfs_group=14))
    frames = dissect(pcap, tmp_path / "keys")
    inner = {(f.exchange_type, f.src): set(f.payloads) for f in frames}
    assert {IDI, AUTH, SA, TSI, TSR} <= inner[(35, "192.0.2.1")]
    assert {IDR, AUTH, SA, TSI, TSR} <= inner[(35, "198.51.100.1")]
    assert {SA, NONCE, TSI, TSR, 34} <= inner[(36, "192.0.2.1")]  # the second child, with PFS (KE = 34)
    assert D in inner[(37, "192.0.2.1")]


@needs_tshark
@pytest.mark.tshark
def test_a_wrong_key_leaves_the_sk_payload_closed(tmp_path: Path) -> None:
    pcap, _ = run(tmp_path)
    table = tmp_path / "keys" / "ikev2_decryption_table"
    fields = table.read_text().strip().split(",")
    fields[2] = "00" * 16  # SK_ei
    table.write_text(",".join(fields) + "\n")
    frames = dissect(pcap, tmp_path / "keys")
    auth_i = next(f for f in frames if f.exchange_type == 35 and f.src == "192.0.2.1")
    assert SK in auth_i.payloads and not {AUTH, TSI, TSR} & set(auth_i.payloads)
