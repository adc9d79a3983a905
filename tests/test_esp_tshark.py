"""Wireshark decrypts our ESP with our ``esp_sa`` export; ``ipseclab demo --ping`` end to end."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from esp_support import LEFT, RIGHT, keys_for, sa_pair
from scapy.layers.inet import ICMP, IP

from ipseclab.esp.dataplane import DataPlane
from ipseclab.esp.packet import udp_packet
from ipseclab.export import esp_sa_row, tshark_options, write_pcap

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def _fields(pcap: Path, keys: Path, *fields: str, display: str = "icmp") -> list[list[str]]:
    cmd = ["tshark", "-r", str(pcap), *tshark_options(keys), "-o", "esp.enable_authentication_check:TRUE",
           "-Y", display, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines() if line.strip()]


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("udp", [False, True], ids=["esp", "udp-4500"])
@pytest.mark.parametrize("esp_id,bits,auth", [(20, 128, None), (20, 256, None), (12, 128, 2), (12, 256, 5)],
                         ids=["gcm128", "gcm256", "cbc128-sha1", "cbc256-sha256"])
def test_tshark_decrypts_our_esp_with_our_esp_sa_rows(tmp_path, esp_id, bits, auth, udp) -> None:
    encap = (4500, 4500) if udp else None
    out_l, in_r = sa_pair(esp_id, bits, auth, spi=0x1001, udp_encap=encap)
    out_r, in_l = sa_pair(esp_id, bits, auth, spi=0x2002, keys=keys_for(esp_id, bits, auth), src=RIGHT, dst=LEFT, udp_encap=encap)
    left, right = DataPlane("left"), DataPlane("right")
    left.install(in_l, out_l, "10.1.0.0/16", "10.2.0.0/16")
    right.install(in_r, out_r, "10.2.0.0/16", "10.1.0.0/16")
    wire = []
    for i in range(1, 4):
        request = bytes(IP(src="10.1.0.1", dst="10.2.0.1") / ICMP(type=8, id=9, seq=i) / (b"x" * 40))
        reply = bytes(IP(src="10.2.0.1", dst="10.1.0.1") / ICMP(type=0, id=9, seq=i) / (b"x" * 40))
        for plane, packet in ((left, request), (right, reply)):
            (out,) = plane.outbound(packet, float(i))
            wire.append((float(i), udp_packet(out.src, out.dst, out.sport, out.dport, out.data) if udp else out.data))
    pcap, keys = tmp_path / "esp.pcap", tmp_path / "keys"
    keys.mkdir()
    (keys / "esp_sa").write_text("".join(esp_sa_row(sa) + "\n" for sa in (out_l, out_r)))
    assert write_pcap([], pcap, extra=wire) == 6
    rows = _fields(pcap, keys, "esp.spi", "esp.sequence", "icmp.type", "icmp.seq", "ip.src")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (spi, str(i), t, str(i)) for i in range(1, 4) for spi, t in (("0x00001001", "8"), ("0x00002002", "0"))
    ]
    if auth:  # Wireshark checks HMAC ICVs (not GCM tags)
        assert all(r[0] == "1" for r in _fields(pcap, keys, "esp.icv_good", display="esp"))


@needs_tshark
@pytest.mark.tshark
@pytest.mark.parametrize("extra", [(), ("--encap",), ("--nat",)], ids=["esp", "udp-encap", "nat"])
def test_demo_ping_pcap_and_keys_decrypt_in_tshark(tmp_path, run_ipseclab, extra) -> None:
    pcap, keys = tmp_path / "demo.pcap", tmp_path / "keys"
    result = run_ipseclab("demo", "--seed", "21", *extra, "--ping", "5", "--pcap", str(pcap), "--keys", str(keys))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 sent, 5 received, 0 lost" in result.stdout
    if not extra:
        assert "wrote 19 packets" in result.stdout  # 9 IKE messages + 10 ESP packets
    proto = _fields(pcap, keys, "ip.proto", display="esp")
    assert len(proto) == 10 and {r[0].split(",")[0] for r in proto} == {"17" if extra else "50"}
    rows = _fields(pcap, keys, "ip.src", "ip.dst", "icmp.type", "icmp.seq", "esp.icv_good")
    assert len(rows) == 10
    assert [r[2] for r in rows] == ["8", "0"] * 5 and [r[3] for r in rows] == [str(i) for i in range(1, 6) for _ in (1, 2)]
    assert all(r[4] == "1" for r in rows)  # every ICV verified with the exported integrity keys
    assert {(r[0].split(",")[-1], r[1].split(",")[-1]) for r in rows} == {("10.1.1.1", "10.2.1.1"), ("10.2.1.1", "10.1.1.1")}


def test_demo_ping_json_and_exit_code_when_a_ping_is_lost(monkeypatch, capsys) -> None:
    import json

    from ipseclab import cli
    from ipseclab.esp import dataplane

    assert cli.main(["demo", "--seed", "22", "--ping", "3", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[-1]["ping"] == {"sent": 3, "received": 3, "lost": 0}
    assert {"esp-packet", "esp-stats"} <= {x["kind"] for x in lines}

    real = dataplane.DataPlane.inbound_ip
    calls = {"n": 0}

    def lossy(self, packet, now):  # the third ESP packet on the wire never arrives
        calls["n"] += 1
        return None if calls["n"] == 3 else real(self, packet, now)

    monkeypatch.setattr(dataplane.DataPlane, "inbound_ip", lossy)
    assert cli.main(["demo", "--seed", "22", "--ping", "3"]) == 1
    out = capsys.readouterr().out
    assert "3 sent, 2 received, 1 lost" in out and "echo 2: request lost" in out
