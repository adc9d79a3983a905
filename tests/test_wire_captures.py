"""Decode the real strongSwan (charon 5.9.8) captures in tests/data.

Every ISAKMP datagram must decode, re-encode to the identical bytes, agree
with scapy and with tshark's payload listing (plaintext messages), and render
as a tree without Malformed nodes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy_check import assert_scapy_agrees
from wire_support import check_tree, find

from ipseclab.wire.v1.constants import PayloadType
from ipseclab.wire.v1.isakmp import Message
from ipseclab.wire.v1.tree import message_tree

DATA = Path(__file__).parent / "data"
SCENARIOS = sorted(p.stem for p in DATA.glob("charon_*.pcap"))

TSHARK_NAMES = {
    PayloadType.SA: "SA",
    PayloadType.KE: "KE",
    PayloadType.ID: "ID",
    PayloadType.CERT: "CERT",
    PayloadType.CR: "CR",
    PayloadType.HASH: "HASH",
    PayloadType.SIG: "SIG",
    PayloadType.NONCE: "NONCE",
    PayloadType.N: "N",
    PayloadType.D: "D",
    PayloadType.VID: "VID",
    PayloadType.NAT_D: "NAT-D",
    PayloadType.NAT_OA: "NAT-OA",
    PayloadType.NAT_D_DRAFT: "NAT-D",
    PayloadType.NAT_OA_DRAFT: "NAT-OA",
}


def isakmp_datagrams(scenario: str) -> dict[int, bytes]:
    """Frame number -> ISAKMP message (non-ESP marker stripped on port 4500)."""
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    out = {}
    for number, pkt in enumerate(rdpcap(str(DATA / f"{scenario}.pcap")), 1):
        if UDP not in pkt:
            continue
        udp = pkt[UDP]
        data = bytes(udp.payload)
        if 4500 in (udp.sport, udp.dport):
            if data[:4] != bytes(4):
                continue  # ESP in UDP (RFC 3948)
            data = data[4:]
        out[number] = data
    return out


@pytest.mark.skipif(not SCENARIOS, reason="no captures in tests/data")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_capture(scenario: str) -> None:
    meta = json.loads((DATA / f"{scenario}.json").read_text())
    frames = isakmp_datagrams(scenario)
    exchanges = {e["frame"]: e for e in meta["exchanges"]}
    assert set(exchanges) <= set(frames)
    for number, data in frames.items():
        msg = Message.decode(data)
        assert msg.encode() == data, f"frame {number} does not re-encode identically"
        assert_scapy_agrees(data)
        tree = message_tree(data)
        check_tree(tree, data)
        assert not find(tree, "Malformed"), number
        info = exchanges.get(number)
        if info is None:
            continue
        assert msg.exchange_type == info["exchange_type"]
        assert f"0x{msg.message_id:08x}" == info["message_id"]
        assert msg.is_encrypted == info["encrypted"]
        if not msg.is_encrypted:
            ours = [TSHARK_NAMES[p.payload_type] for p in msg.payloads]
            assert ours == [p for p in info["payloads"] if p not in ("P", "T")], number
