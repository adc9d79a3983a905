"""NAT traversal against strongSwan's charon through the nftables NAT router (root).

In the :func:`~ipseclab.runtime.netlab.topology.nat` lab (left 192.168.77.2 behind the masquerading
router 192.168.77.1 | 203.0.113.1, right 203.0.113.2) our daemon (data plane on) and charon
(kernel-libipsec) set up an IKEv1 tunnel in both arrangements:

* ipseclab on ``left`` (behind the NAT, initiator) — charon on ``right`` (``remote_addrs = %any``);
* charon on ``left`` (behind the NAT, initiator) — ipseclab on ``right`` (``%any``).

``ping`` crosses the tunnel in both directions.  tcpdump runs on both of the router's
interfaces (``eth0`` inside, ``eth1`` outside) and scapy checks what went over the wire: the
inside capture carries left's private 192.168.77.2, the outside one the router's 203.0.113.1;
IKE starts on port 500 and moves to 4500 (every IKE message there behind the 4-byte non-ESP
marker), the ESP packets are UDP-encapsulated on 4500 and their SPIs are those of the SA tables
of both daemons.  tshark then decodes the UDP 4500 traffic and decrypts it with our key export:
the IKE messages with ``ikev1_decryption_table``, the ESP packets with ``esp_sa``.

Our ``esp_sa`` export holds our daemon's view of the SA addresses only.  Wireshark matches rows
on the addresses as captured, so when our daemon is the one behind the NAT its rows name
192.168.77.2 and fit the inside capture; the test adds copies with the router's 203.0.113.1
for the outside capture (:func:`_with_translated_rows`).  When our daemon is ``right`` its rows
already name 203.0.113.1 and the test adds the private-address copies for the inside capture.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, TUN, raw sockets); CI runs as root"
    for tool in ("ping", "tcpdump", "tshark"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (see the Makefile's Debian packages)"
    from ipseclab.runtime.netlab.charon import Charon

    return Charon.available()


_REASON = _why_not()
if _REASON:
    print(f"skipping the NAT-T charon tests: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.utils import rdpcap  # noqa: E402

from ipseclab.export import write_keys  # noqa: E402
from ipseclab.runtime.netlab.esp_interop import CharonTunnel  # noqa: E402
from ipseclab.runtime.netlab.topology import nat  # noqa: E402
from ipseclab.runtime.netlab.tshark import dissect  # noqa: E402

PRIVATE, PUBLIC, RIGHT = "192.168.77.2", "203.0.113.1", "203.0.113.2"
PINGS = 3


def _lab_name(tag: str) -> str:
    return f"n{tag}{os.getpid() % 100000}"


def _udp(pcap: Path) -> list[tuple[str, int, str, int, bytes]]:
    """(src, sport, dst, dport, payload) of every IPv4/UDP packet of ``pcap``."""
    out = []
    for pkt in rdpcap(str(pcap)):
        if IP in pkt and UDP in pkt:
            ip, udp = pkt[IP], pkt[UDP]
            out.append((ip.src, udp.sport, ip.dst, udp.dport, bytes(udp.payload)))
    return out


def _check_wire(pcap: Path, left: str, spis: dict[str, set[str]], version: int = 1) -> None:
    """IKE on 500, then IKE (with the non-ESP marker) and ESP-in-UDP on 4500, between ``left``
    (as seen on this side of the router) and right; the ESP SPIs are the negotiated ones:
    ``spis["left_out"]`` on left's packets, ``spis["right_out"]`` on right's."""
    packets = [p for p in _udp(pcap) if {p[0], p[2]} == {left, RIGHT}]
    assert packets, f"no UDP between {left} and {RIGHT} in {pcap.name}"
    assert {p[0] for p in _udp(pcap)} | {p[2] for p in _udp(pcap)} <= {left, RIGHT}, "only the NATed pair on this link"
    ike500 = [i for i, p in enumerate(packets) if 500 in (p[1], p[3])]
    on4500 = [i for i, p in enumerate(packets) if p[1] == 4500 and p[3] == 4500]
    assert ike500 and on4500, [p[:4] for p in packets]
    assert len(ike500) + len(on4500) == len(packets), "nothing but 500 and 4500 <-> 4500"
    assert max(ike500) < min(on4500), "IKE starts on 500 and moves to 4500 for good"
    assert all(p[1] == p[3] == 500 for p in (packets[i] for i in ike500))
    assert all(packets[i][4][:4] != b"\0\0\0\0" for i in ike500), "no marker on port 500"
    ike4500, esp = [], {left: set(), RIGHT: set()}
    for i in on4500:
        src, _, _, _, payload = packets[i]
        if payload == b"\xff":  # NAT-T keepalive (RFC 3948 §2.3)
            continue
        if payload[:4] == b"\0\0\0\0":
            ike4500.append(payload[4:])
        else:
            esp[src].add(payload[:4].hex())
    assert ike4500, "IKE moved to 4500 behind the non-ESP marker"
    for msg in ike4500:
        if version == 2:  # IKE_AUTH and later: an IKEv2 header whose only payload is SK
            assert msg[17] == 0x20 and msg[16] == 46 and msg[18] in (35, 36, 37), msg[:28].hex()
            continue
        assert msg[16] in (5, 8), "an ISAKMP header follows the marker (first payload ID or HASH)"
        assert msg[19] & 1, "IKE on 4500 is encrypted (Main Mode 5/6, Quick Mode)"
    assert esp[left] == spis["left_out"], (esp, spis)
    assert esp[RIGHT] == spis["right_out"], (esp, spis)


def _with_translated_rows(keys: Path) -> None:
    """Give every ``esp_sa`` row a twin with left's address as seen on the other side of the
    router (private <-> 203.0.113.1): the export only has our daemon's view."""
    path = keys / "esp_sa"
    rows = [r for r in path.read_text().splitlines() if r.strip()]
    twins = []
    for row in rows:
        if f'"{PRIVATE}"' in row:
            twins.append(row.replace(f'"{PRIVATE}"', f'"{PUBLIC}"'))
        elif f'"{PUBLIC}"' in row:
            twins.append(row.replace(f'"{PUBLIC}"', f'"{PRIVATE}"'))
    path.write_text("".join(r + "\n" for r in rows + twins))


def _check_tshark(pcap: Path, keys: Path, left: str, spis: set[str], version: int = 1) -> None:
    frames = dissect(pcap, keys)
    ike = [f for f in frames if f.exchange_type is not None and f.dport == 4500]
    if version == 2:  # IKE_AUTH on 4500, opened with our ikev2_decryption_table (IDi/IDr and AUTH inside SK)
        auth = [f for f in ike if f.exchange_type == 35]
        assert len(auth) >= 2 and all(39 in f.payloads and {35, 36} & set(f.payloads) for f in auth), [f.describe() for f in ike]
    else:
        assert ike and all(f.encrypted and f.decrypted for f in ike), [f.describe() for f in ike]
        assert {f.exchange_type for f in ike} >= {2, 32}, "Main Mode (5/6) and Quick Mode on 4500, decrypted"
    assert all(f.src in (left, RIGHT) for f in frames)
    esp = [f for f in frames if f.esp_spi]
    assert esp and all(f.sport == f.dport == 4500 for f in esp), "ESP-in-UDP on 4500"
    assert {f.esp_spi for f in esp} == spis
    assert sum(f.inner_icmp for f in esp) == 4 * PINGS, "both directions' echoes, decrypted with our esp_sa"
    assert all(f.esp_icv_good is not False for f in esp)


@pytest.mark.parametrize("version", [1, 2], ids=["ikev1", "ikev2"])
@pytest.mark.parametrize(
    ("ours", "initiator"),
    [("left", "ipseclab"), ("right", "charon")],
    ids=["ipseclab-behind-nat-initiates", "charon-behind-nat-initiates"],
)
def test_nat_traversal_with_charon(tmp_path: Path, ours: str, initiator: str, version: int) -> None:
    v2 = {}
    if version == 2:
        v2 = {"config": lambda text: text.replace("[connections.lab.children.c1]", "version = 2\n\n[connections.lab.children.c1]"),
              "charon_conn": lambda conn: {**conn, "version": "2"}}
    with nat(_lab_name(f"{ours[0]}{version}")) as topo:
        inside = topo.capture("router", tmp_path / "inside.pcap", interface="eth0")
        outside = topo.capture("router", tmp_path / "outside.pcap", interface="eth1")
        with CharonTunnel(topo, tmp_path / "work", ours=ours, **v2) as tunnel:
            tunnel.establish(initiator=initiator)
            for role in ("left", "right"):
                stats = tunnel.ping(role, PINGS)
                assert (stats.sent, stats.received) == (PINGS, PINGS), stats.lines
            table = tunnel.client.esp()
            assert table["counters"]["sa_drops"] == {}
            assert all(s["udp_encap"] == [4500, 4500] for s in table["sas"]), "NAT-T: ESP-in-UDP on 4500"
            sas: dict[str, Any] = {s["direction"]: s for s in table["sas"]}
            (child,) = [c for ike in tunnel.charon.list_sas() for c in (ike.get("child-sas") or {}).values()]
            assert child.get("encap") == "yes", child
            assert {child["spi-in"], child["spi-out"]} == {sas["inbound"]["spi"], sas["outbound"]["spi"]}
            ours_out, ours_in = {sas["outbound"]["spi"]}, {sas["inbound"]["spi"]}
            keys = write_keys(tunnel.client.events_since(0), tmp_path / "keys")["esp_sa"].parent
        inside.stop()
        outside.stop()
    spis = {"left_out": ours_out, "right_out": ours_in} if ours == "left" else {"left_out": ours_in, "right_out": ours_out}
    _check_wire(tmp_path / "inside.pcap", PRIVATE, spis, version)
    _check_wire(tmp_path / "outside.pcap", PUBLIC, spis, version)
    _with_translated_rows(keys)
    for pcap, left in (("inside.pcap", PRIVATE), ("outside.pcap", PUBLIC)):
        _check_tshark(tmp_path / pcap, keys, left, ours_out | ours_in, version)


@pytest.mark.parametrize("version", [1, 2], ids=["ikev1", "ikev2"])
def test_nat_traversal_between_ipseclab_peers(tmp_path: Path, version: int) -> None:
    """The same checks with our daemons at both ends of the NAT router."""
    from ipseclab.runtime.netlab.esp_interop import ipseclab_pair
    from ipseclab.runtime.netlab.pinger import ping

    v2 = (lambda text: text.replace("[connections.lab.children.c1]", "version = 2\n\n[connections.lab.children.c1]")) \
        if version == 2 else None
    with nat(_lab_name(f"b{version}")) as topo:
        inside = topo.capture("router", tmp_path / "inside.pcap", interface="eth0")
        outside = topo.capture("router", tmp_path / "outside.pcap", interface="eth1")
        with ipseclab_pair(topo, config=v2) as clients:
            for a, b in (("left", "right"), ("right", "left")):
                stats = ping(topo, a, topo.hosts[a].protected[0], topo.hosts[b].protected[0], PINGS)
                assert (stats.sent, stats.received) == (PINGS, PINGS), stats.lines
            tables = {role: c.esp() for role, c in clients.items()}
            for table in tables.values():
                assert table["counters"]["sa_drops"] == {}
                assert all(s["udp_encap"] == [4500, 4500] for s in table["sas"]), "NAT-T: ESP-in-UDP on 4500"
            out = {role: {s["spi"] for s in t["sas"] if s["direction"] == "outbound"} for role, t in tables.items()}
            keys = write_keys(clients["left"].events_since(0), tmp_path / "keys")["esp_sa"].parent
        inside.stop()
        outside.stop()
    spis = {"left_out": out["left"], "right_out": out["right"]}
    _check_wire(tmp_path / "inside.pcap", PRIVATE, spis, version)
    _check_wire(tmp_path / "outside.pcap", PUBLIC, spis, version)
    _with_translated_rows(keys)
    for pcap, left in (("inside.pcap", PRIVATE), ("outside.pcap", PUBLIC)):
        _check_tshark(tmp_path / pcap, keys, left, out["left"] | out["right"], version)
