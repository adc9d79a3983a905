"""``ipseclab decode`` shows the data too: ESP (raw and in UDP 4500) and AH, with SPI and
sequence number; with Wireshark's ``esp_sa`` table each ESP packet is decrypted as its receiver
would and its ICV checked — frame for frame what tshark shows on the same capture (charon's
captures, and our own in-memory ones with and without NAT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from charon_data import DATA, SCENARIOS
from conftest import ipseclab

from ipseclab.runtime.netlab.tshark import dissect
from ipseclab.teaching.decode import DecodedPacket, decode_pcap, read_esp_table, read_key_table


def _ours(pcap: Path, keys: Path | None) -> dict[int, DecodedPacket]:
    packets = decode_pcap(pcap, read_key_table(keys), read_esp_table(keys)) if keys else decode_pcap(pcap)
    return {p.number: p for p in packets if p.kind == "esp"}


def _agree(pcap: Path, keys: Path) -> dict[int, DecodedPacket]:
    ours = _ours(pcap, keys)
    theirs = {f.number: f for f in dissect(pcap, keys) if f.esp_spi}
    assert ours and ours.keys() == theirs.keys(), (sorted(ours), sorted(theirs))
    for n, frame in theirs.items():
        mine = ours[n]
        assert f"{mine.spi:08x}" == frame.esp_spi
        assert (mine.icv == "good") == bool(frame.esp_icv_good), (n, mine.summary, frame)
        assert ("ICMP" in mine.inner) == frame.inner_icmp, (n, mine.inner)
    return ours


@pytest.mark.parametrize("name", SCENARIOS)
def test_charons_esp_is_decrypted_as_tshark_does(name: str, tshark) -> None:  # noqa: ANN001
    ours = _agree(DATA / f"{name}.pcap", DATA / f"{name}.keys")
    assert all(p.decrypted and p.icv == "good" for p in ours.values())


@pytest.mark.parametrize("nat", [False, True], ids=["raw-esp", "esp-in-udp"])
def test_our_demo_capture_with_its_esp_sa_export(tmp_path: Path, nat: bool, tshark) -> None:  # noqa: ANN001
    args = ["demo", "--seed", "3", "--ping", "3", "--pcap", str(tmp_path / "run.pcap"), "--keys", str(tmp_path / "keys")]
    assert ipseclab(*args, *(["--nat"] if nat else [])).returncode == 0
    ours = _agree(tmp_path / "run.pcap", tmp_path / "keys")
    assert len(ours) == 6 and all("echo-re" in p.inner for p in ours.values())
    assert all(("ESP in UDP" in p.summary) == nat for p in ours.values())
    text = ipseclab("decode", "--brief", "--keys", str(tmp_path / "keys"), str(tmp_path / "run.pcap")).stdout
    assert "ICV good" in text and "inner: IP / ICMP 10.1.1.1 > 10.2.1.1 echo-request" in text


def test_a_tampered_packet_fails_its_icv_here_and_in_tshark(tmp_path: Path, tshark) -> None:  # noqa: ANN001
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap, wrpcap

    assert ipseclab("demo", "--seed", "3", "--ping", "1", "--pcap", str(tmp_path / "run.pcap"), "--keys", str(tmp_path / "keys")).returncode == 0
    packets = list(rdpcap(str(tmp_path / "run.pcap")))
    n, pkt = next((i, p) for i, p in enumerate(packets) if IP in p and p[IP].proto == 50)
    body = bytearray(bytes(pkt[IP].payload))
    body[30] ^= 0x01  # one bit of ciphertext
    packets[n] = pkt.__class__(bytes(pkt)[: len(bytes(pkt)) - len(body)] + bytes(body))
    wrpcap(str(tmp_path / "tampered.pcap"), packets)
    ours = _agree(tmp_path / "tampered.pcap", tmp_path / "keys")
    bad = ours[n + 1]
    assert bad.decrypted is False and bad.icv.startswith("bad") and "refused" in bad.summary


def test_without_keys_spi_and_sequence_only(tmp_path: Path) -> None:
    assert ipseclab("demo", "--seed", "3", "--ping", "1", "--pcap", str(tmp_path / "run.pcap")).returncode == 0
    ours = _ours(tmp_path / "run.pcap", None)
    assert len(ours) == 2 and all(p.seq == 1 and p.spi and p.decrypted is None and not p.inner for p in ours.values())


def test_ah_is_shown_with_its_spi_and_sequence(tmp_path: Path) -> None:
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.ipsec import AH
    from scapy.utils import wrpcap

    wrpcap(str(tmp_path / "ah.pcap"), [IP(src="192.0.2.1", dst="198.51.100.1") / AH(spi=0x1234, seq=7, nh=4, icv=bytes(12))
                                       / IP(src="10.1.0.1", dst="10.2.0.1") / ICMP()])
    (pkt,) = decode_pcap(tmp_path / "ah.pcap")
    assert (pkt.kind, pkt.spi, pkt.seq) == ("ah", 0x1234, 7) and "next header 4" in pkt.summary


def test_a_hostile_esp_sa_table_is_read_row_by_row(tmp_path: Path) -> None:
    """Rows that are cut short, name unknown algorithms, or carry bad hex or a key of the wrong
    length are skipped; the good row still decrypts."""
    assert ipseclab("demo", "--seed", "3", "--ping", "1", "--pcap", str(tmp_path / "run.pcap"), "--keys", str(tmp_path / "keys")).returncode == 0
    good = (tmp_path / "keys" / "esp_sa").read_text().splitlines()
    junk = [
        '"IPv4","1.2.3.4"',
        '"IPv4","1.2.3.4","5.6.7.8","0x1234","Rot13 [RFC0000]","0x00","NULL",""',
        '"IPv4","1.2.3.4","5.6.7.8","0xzz","AES-CBC [RFC3602]","0x00","NULL",""',
        '"IPv4","1.2.3.4","5.6.7.8","0x1234","AES-CBC [RFC3602]","0x0011","HMAC-SHA-1-96 [RFC2404]","0x00"',
        "# a comment",
        "x" * 10_000,
    ]
    (tmp_path / "keys" / "esp_sa").write_text("\n".join([*junk, good[0]]) + "\n")
    table = read_esp_table(tmp_path / "keys")
    assert list(table) == [int(good[0].split(",")[3].strip('"'), 16)]
    ours = _ours(tmp_path / "run.pcap", tmp_path / "keys")
    assert sorted(str(p.decrypted) for p in ours.values()) == ["None", "True"], "the SA with its key decrypts; the other shows SPI and sequence"
