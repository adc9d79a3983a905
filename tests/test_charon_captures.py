"""Sanity checks of the strongSwan reference captures in tests/data (made by
tests/data/make_charon_captures.py).

Checks that the files exist, that the stored KDF vectors are self-consistent under RFC 2409
(recomputed here with hashlib/hmac only), and -- if tshark is installed -- that the stored key
tables make tshark decrypt the encrypted phase-1 message and the ESP-in-UDP packets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from charon_data import DATA, SCENARIOS

PRF_HASH = {"PRF_HMAC_SHA1": "sha1", "PRF_HMAC_SHA2_256": "sha256"}


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.mark.parametrize("name", SCENARIOS)
def test_files_exist(name):
    for suffix in (".pcap", ".json", ".tshark.txt", ".keys/ikev1_decryption_table", ".keys/esp_sa"):
        path = DATA / f"{name}{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    facts = load(name)
    assert facts["scenario"] == name
    (row,) = (DATA / f"{name}.keys/ikev1_decryption_table").read_text().split()
    assert row == f"{facts['ike_sa']['cky_i']},{facts['ike_sa']['enc_key']}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_kdf_vectors_consistent(name):
    f = load(name)
    ike = f["ike_sa"]
    h = PRF_HASH[f["ike_algorithms"]["prf"]]
    b = bytes.fromhex

    def prf(k, d):
        return hmac.new(k, d, h).digest()

    gxy, cky = b(ike["g_xy"]), b(ike["cky_i"] + ike["cky_r"])
    skeyid = prf(f["psk"].encode(), b(ike["ni_b"] + ike["nr_b"]))
    assert skeyid.hex() == ike["skeyid"]
    d = prf(skeyid, gxy + cky + b"\0")
    a = prf(skeyid, d + gxy + cky + b"\1")
    e = prf(skeyid, a + gxy + cky + b"\2")
    assert (d.hex(), a.hex(), e.hex()) == (ike["skeyid_d"], ike["skeyid_a"], ike["skeyid_e"])
    assert e.hex().startswith(ike["enc_key"])
    iv = hashlib.new(h, b(ike["g_xi"] + ike["g_xr"])).digest()[:16]
    assert iv.hex() == ike["initial_iv"]
    assert prf(skeyid, b(ike["hash_i_data"])).hex() == ike["hash_i"]
    assert prf(skeyid, b(ike["hash_r_data"])).hex() == ike["hash_r"]
    for ch in f["children"]:
        assert (ch["g_xy"] is not None) == (f["esp_algorithms"]["pfs_group"] is not None)
        for sa in ch["sas"]:
            seed = (
                b(ch["g_xy"] or "")
                + bytes([ch["protocol_id"]])
                + b(sa["spi"] + ch["ni_b"] + ch["nr_b"])
            )
            assert seed.hex() == sa["keymat_seed"]
            need = (len(sa["encryption_key"]) + len(sa["integrity_key"])) // 2
            km, k = b"", b""
            while len(km) < need:
                k = prf(d, k + seed)
                km += k
            assert km[:need].hex() == sa["encryption_key"] + sa["integrity_key"]


def tshark(pcap: Path, *args: str, env: dict | None = None) -> list[list[str]]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), *args], capture_output=True, text=True, check=True, env=env
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@pytest.mark.tshark
@needs_tshark
@pytest.mark.parametrize("name", SCENARIOS)
def test_tshark_decrypts_phase1(name):
    f = load(name)
    ike = f["ike_sa"]
    uat = f"uat:ikev1_decryption_table:{ike['cky_i']},{ike['enc_key']}"
    # first encrypted initiator message of phase 1: MM5 (ID, HASH_I) or AM3 (HASH_I)
    frame = next(
        e["frame"]
        for e in f["exchanges"]
        if e["exchange_type"] in (2, 4) and e["encrypted"] and e["dir"] == "I->R"
    )
    rows = tshark(
        DATA / f"{name}.pcap",
        "-o",
        uat,
        "-Y",
        f"frame.number == {frame}",
        "-T",
        "fields",
        "-e",
        "isakmp.id.data.user_fqdn",
        "-e",
        "isakmp.hash",
    )
    assert len(rows) == 1
    fqdn, hash_ = rows[0]
    if f["mode"] == "main":
        assert fqdn == "left@lab"
    assert hash_.replace(":", "") == ike["hash_i"]


@pytest.mark.tshark
@needs_tshark
@pytest.mark.parametrize("name", SCENARIOS)
def test_tshark_decrypts_esp(name, tmp_path):
    f = load(name)
    (tmp_path / "wireshark").mkdir()
    for table in ("ikev1_decryption_table", "esp_sa"):
        shutil.copy(DATA / f"{name}.keys" / table, tmp_path / "wireshark" / table)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    rows = tshark(
        DATA / f"{name}.pcap",
        "-o",
        "esp.enable_encryption_decode:TRUE",
        "-o",
        "esp.enable_authentication_check:TRUE",
        "-Y",
        "esp",
        "-T",
        "fields",
        "-e",
        "esp.icv_good",
        "-e",
        "icmp.type",
        env=env,
    )
    assert len(rows) == len(f["esp_frames"]) > 0
    assert all(r[0] in ("1", "True") and r[1] in ("0", "8") for r in rows), rows
