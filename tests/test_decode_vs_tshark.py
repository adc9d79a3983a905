"""``ipseclab decode`` against tshark on the strongSwan reference captures, and on bad input.

For every ``tests/data/charon_*`` capture both dissectors get the same key table
(``<name>.keys/ikev1_decryption_table``): ``ipseclab decode --json --keys DIR`` in a subprocess,
tshark with ``-o uat:ikev1_decryption_table:<row>`` and ``-T pdml`` (see ``conftest.py`` for
how the top-level payload chain is read from PDML).  They must list the same ISAKMP messages
(frame number, exchange type, message ID, encryption flag) with the same payload types in the
same order -- decrypted payloads included -- and the same ESP-in-UDP frames with the same SPIs.

One frame is handled explicitly: in ``charon_aggressive_psk_qm_retransmit`` frame 5 is a
byte-identical retransmission of QM1 (frame 4).  tshark 4.0.17 decrypts it with the CBC IV
already advanced past frame 4 (the last ciphertext block of QM1), so the first block comes out
as garbage and tshark shows a lone, bogus Hash payload.  A peer (and our decoder) recognises
the identical datagram and uses the first decryption, so our payload list for frame 5 must be
the one both dissectors agree on for frame 4.  tshark's garbled view of frame 5 is not compared.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from charon_data import DATA, SCENARIOS
from conftest import TsharkFrame, ipseclab

ESP_SPI = re.compile(r"\bSPI 0x([0-9a-f]{8})\b")


def decode_json(pcap: Path, *extra: str, status: int = 0) -> dict[int, dict]:
    result = ipseclab("decode", "--json", *extra, str(pcap))
    assert result.returncode == status, result.stderr
    packets = [json.loads(line) for line in result.stdout.splitlines()]
    numbers = [p["number"] for p in packets]
    assert numbers == sorted(set(numbers)), "one object per packet, in capture order"
    return {p["number"]: p for p in packets}


def uat_options(keys: Path) -> list[str]:
    rows = [r for r in (keys / "ikev1_decryption_table").read_text().splitlines() if r.strip()]
    assert rows
    return [opt for row in rows for opt in ("-o", f"uat:ikev1_decryption_table:{row}")]


def retransmissions(name: str) -> dict[int, int]:
    """Retransmitted frame -> original frame, from the capture's facts file."""
    out = {}
    for e in json.loads((DATA / f"{name}.json").read_text())["exchanges"]:
        m = re.fullmatch(r"retransmission of frame (\d+)", e["label"])
        if m:
            out[e["frame"]] = int(m.group(1))
    return out


def udp_payloads(pcap: Path) -> dict[int, bytes]:
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return {n: bytes(p[UDP].payload) for n, p in enumerate(rdpcap(str(pcap)), 1) if UDP in p}


@pytest.fixture(scope="module", params=SCENARIOS)
def both(request, tshark) -> tuple[str, dict[int, dict], dict[int, TsharkFrame]]:
    name = request.param
    pcap, keys = DATA / f"{name}.pcap", DATA / f"{name}.keys"
    ours = decode_json(pcap, "--keys", str(keys))
    theirs, _ = tshark(pcap, uat_options(keys))
    return name, ours, theirs


def test_same_isakmp_messages(both) -> None:
    name, ours, theirs = both
    our_msgs = {
        n: (p["exchange_type"], p["message_id"], p["encrypted"])
        for n, p in ours.items()
        if p["kind"] == "isakmp"
    }
    their_msgs = {
        n: (f.exchange_type, f.message_id, f.encrypted)
        for n, f in theirs.items()
        if f.exchange_type is not None
    }
    assert our_msgs == their_msgs
    # the facts file lists the same messages (tshark produced it at capture time)
    facts = json.loads((DATA / f"{name}.json").read_text())["exchanges"]
    assert sorted(our_msgs) == sorted(e["frame"] for e in facts)
    # phase 1 (Main 2 or Aggressive 4), Quick Mode 32, Informational 5
    exchange_types = {t for t, _, _ in our_msgs.values()}
    assert {32, 5} <= exchange_types and exchange_types & {2, 4}


def test_same_payload_chains_decrypted_included(both) -> None:
    name, ours, theirs = both
    rtx = retransmissions(name)
    compared_encrypted = 0
    for n, p in ours.items():
        if p["kind"] != "isakmp" or n in rtx:
            continue
        if p["encrypted"]:
            assert p["decrypted"] is True, (n, p["note"])
            compared_encrypted += 1
        assert p["payload_types"], n
        assert p["payload_types"] == theirs[n].payload_types, f"frame {n}: {p['summary']}"
    # every Quick Mode and Informational message is encrypted, so all were decrypted and compared
    assert compared_encrypted > 0
    assert all(p["encrypted"] for p in ours.values() if p["exchange_type"] in (5, 32))


def test_retransmitted_quick_mode_reuses_first_decryption(both) -> None:
    name, ours, theirs = both
    rtx = retransmissions(name)
    if name == "charon_aggressive_psk_qm_retransmit":
        assert rtx == {5: 4}
    else:
        assert rtx == {}
    payloads = udp_payloads(DATA / f"{name}.pcap")
    for copy, original in rtx.items():
        assert payloads[copy] == payloads[original], "a retransmission is the identical datagram"
        assert ours[copy]["encrypted"] and ours[copy]["decrypted"] is True
        # what both dissectors agree the original is: HASH(1), SA, Ni, IDci, IDcr
        assert theirs[original].payload_types == [8, 1, 10, 5, 5]
        assert ours[copy]["payload_types"] == theirs[original].payload_types
        qm1 = "HDR*, HASH(1), SA, Ni, IDci, IDcr"
        assert ours[copy]["summary"] == ours[original]["summary"] == qm1
        # tshark's view of the copy (CBC IV advanced past the first copy) is not compared


def test_same_esp_frames_and_spis(both) -> None:
    name, ours, theirs = both
    our_esp = {}
    for n, p in ours.items():
        if p["kind"] == "esp":
            m = ESP_SPI.search(p["summary"])
            assert m, p["summary"]
            our_esp[n] = int(m.group(1), 16)
    their_esp = {n: f.esp_spi for n, f in theirs.items() if f.esp_spi is not None}
    assert our_esp == their_esp
    facts = json.loads((DATA / f"{name}.json").read_text())["esp_frames"]
    assert our_esp == {e["frame"]: int(e["spi"], 16) for e in facts}
    children = json.loads((DATA / f"{name}.json").read_text())["children"]
    assert len(set(our_esp.values())) == 2 * len(children)  # both directions of every child


@pytest.mark.parametrize("name", SCENARIOS)
def test_unkeyed_decode_reports_encrypted_messages(name: str) -> None:
    pcap = DATA / f"{name}.pcap"
    keyed = decode_json(pcap, "--keys", str(DATA / f"{name}.keys"))
    unkeyed = decode_json(pcap)
    assert unkeyed.keys() == keyed.keys()
    encrypted = [p for p in unkeyed.values() if p["encrypted"] and p["kind"] == "isakmp"]
    assert encrypted
    esp = [p for p in unkeyed.values() if p["kind"] == "esp"]
    assert esp and all(p["encrypted"] and p["decrypted"] is None and not p["inner"] for p in esp), "ESP without its key: SPI and sequence only"
    rtx = retransmissions(name)
    for p in encrypted:
        assert p["decrypted"] is False
        assert p["payload_types"] == []
        assert ("retransmission" if p["number"] in rtx else "no key") in p["note"]
        assert p["summary"].startswith("HDR*, <") and "encrypted bytes>" in p["summary"]
    for n, p in unkeyed.items():
        if p["kind"] == "isakmp" and not p["encrypted"]:
            assert p["payload_types"] == keyed[n]["payload_types"]
    text = ipseclab("decode", "--brief", str(pcap))
    assert text.returncode == 0
    assert text.stdout.count("[encrypted]") == len(encrypted)
    assert "[decrypted]" not in text.stdout


# ---------------------------------------------------------------------------------- bad input


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    for content in (b"", b"this is not a capture\n" * 20, bytes(range(256)) * 8):
        path = tmp_path / "garbage.pcap"
        path.write_bytes(content)
        result = ipseclab("decode", "--json", str(path))
        assert result.returncode == 2, result
        assert result.stdout == ""
        assert f"cannot read {path}" in result.stderr
    result = ipseclab("decode", str(tmp_path / "missing.pcap"))
    assert result.returncode == 2 and "cannot read" in result.stderr


@pytest.mark.parametrize(
    ("into", "why"),
    [
        # Ethernet, IPv4 and UDP headers (42 bytes) complete, 58 of MM4's 372 ISAKMP bytes
        (100, "not a valid ISAKMP message: message length 372 exceeds the 58 bytes"),
        # Ethernet and IPv4 complete, 6 of the 8 UDP header bytes (the ports are there)
        (40, "UDP header cut short in the capture (6 of 8 bytes)"),
    ],
)
def test_truncated_pcap_reports_what_is_there(tmp_path: Path, into: int, why: str) -> None:
    whole = (DATA / "charon_main_psk.pcap").read_bytes()
    # pcap: 24-byte file header, then per packet a 16-byte record header with caplen at offset 8
    offset, ends = 24, []
    while offset < len(whole):
        caplen = struct.unpack_from("<I", whole, offset + 8)[0]
        offset += 16 + caplen
        ends.append(offset)
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole[: ends[2] + 16 + into])  # 3 whole packets, then MM4 cut short
    packets = decode_json(path, status=2)
    assert [p["number"] for p in packets.values()] == [1, 2, 3, 4]
    assert [p["payload_types"] for p in list(packets.values())[:3]] == [
        [1, 13, 13, 13, 13, 13],
        [1, 13, 13, 13, 13],
        [4, 10, 20, 20],
    ]
    assert packets[4]["kind"] == "malformed"
    assert packets[4]["summary"].startswith(why)
    assert (packets[4]["src"], packets[4]["dst"]) == (["10.99.0.2", 500], ["10.99.0.1", 500])
    text = ipseclab("decode", "--brief", str(path))
    assert "#4 10.99.0.2:500 -> 10.99.0.1:500  " + why in text.stdout
    # like tshark: what could be decoded is printed, and the exit status says the file was cut
    assert text.returncode == 2 and "cut short in the middle of packet 4" in text.stderr


def test_pcap_with_only_a_file_header_has_no_packets(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes((DATA / "charon_main_psk.pcap").read_bytes()[:24])
    assert decode_json(path) == {}


@pytest.fixture
def odd_pcap(tmp_path: Path) -> Path:
    """Truncated ISAKMP datagrams, a NAT-T keepalive and other oddities, then good messages."""
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    frames = udp_payloads(DATA / "charon_main_psk.pcap")
    mm1, qm1 = frames[1], frames[7]  # QM1 on 4500, non-ESP marker included
    assert qm1[:4] == bytes(4)

    def udp(port: int, data: bytes) -> IP:
        return IP(src="10.99.0.1", dst="10.99.0.2") / UDP(sport=port, dport=port) / Raw(data)

    path = tmp_path / "odd.pcap"
    wrpcap(
        str(path),
        [
            udp(500, mm1[:40]),  # 1 ISAKMP header says 180 bytes, 40 present
            udp(4500, b"\xff"),  # 2 NAT-T keepalive (RFC 3948 §2.3)
            udp(4500, b"\x00\x00"),  # 3 too short for a marker or an SPI
            udp(4500, bytes(4) + mm1[:20]),  # 4 non-ESP marker + a cut header
            udp(500, b""),  # 5 empty datagram
            udp(500, mm1),  # 6 a good MM1 after all that
            udp(4500, qm1),  # 7 encrypted, no key
        ],
    )
    return path


def test_truncated_datagrams_and_keepalive(odd_pcap: Path) -> None:
    packets = decode_json(odd_pcap)
    kinds = {n: p["kind"] for n, p in packets.items()}
    assert kinds == {
        1: "malformed",
        2: "keepalive",
        3: "malformed",
        4: "malformed",
        5: "malformed",
        6: "isakmp",
        7: "isakmp",
    }
    assert "exceeds the 40 bytes" in packets[1]["summary"]
    assert packets[6]["payload_types"] == [1, 13, 13, 13, 13, 13]
    assert packets[7]["encrypted"] and packets[7]["decrypted"] is False
    for args in ([], ["--brief"]):
        text = ipseclab("decode", *args, str(odd_pcap))
        assert text.returncode == 0
        for n in packets:
            assert re.search(rf"^#{n} 10\.99\.0\.1:\d+ -> 10\.99\.0\.2:\d+  ", text.stdout, re.M), n


def test_tshark_agrees_on_the_odd_packets(odd_pcap: Path, tshark) -> None:
    ours = decode_json(odd_pcap)
    theirs, _ = tshark(odd_pcap, [])
    assert theirs[2].keepalive and ours[2]["kind"] == "keepalive"
    for n in (6, 7):
        assert ours[n]["encrypted"] == theirs[n].encrypted
        assert ours[n]["payload_types"] == theirs[n].payload_types
    assert theirs[7].payload_types == []
