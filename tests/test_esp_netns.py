"""Real traffic through our userspace ESP between peers in network namespaces (root).

Two ipseclab daemons with the data plane on (TUN ``ipl0``, raw protocol-50 socket, ESP-in-UDP
on the NAT-T socket) carry ``ping`` and a 5 MB TCP transfer between their protected hosts:

* plain ESP (IP protocol 50) in the site-to-site lab,
* ESP-in-UDP (RFC 3948) through the NAT lab's masquerading router, and forced without a NAT
  (``encap = true``);

tshark decrypts the capture of each with nothing but our ``esp_sa`` export and finds the inner
ICMP and TCP; a captured ESP packet re-injected is dropped as a replay, one with a flipped bit
in the ciphertext or the ICV fails the integrity check, both are counted (``esp`` command) and
the tunnel keeps working.  Against strongSwan's charon (kernel-libipsec: always ESP-in-UDP on
4500): both directions of set-up and of ping, AES-CBC + HMAC-SHA1 and AES-GCM-16.

Needs root, iputils ``ping``, tcpdump and tshark (charon for the interop tests); skips with
the reason otherwise.  No timing thresholds: only counts, hashes and what tshark shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN, raw sockets); CI runs as root"
    for tool in ("ping", "tcpdump", "tshark"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (see the Makefile's Debian packages)"
    return None


_REASON = _why_not()
if _REASON:
    print(f"skipping the ESP namespace tests: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

from ipseclab.demo import DemoOptions  # noqa: E402
from ipseclab.export import write_keys  # noqa: E402
from ipseclab.runtime.netlab.inject import ESP_CIPHERTEXT, ESP_ICV, esp_packets, flip_bit, inject  # noqa: E402
from ipseclab.runtime.netlab.nft import apply_ruleset  # noqa: E402
from ipseclab.runtime.netlab.peers import NetLab  # noqa: E402
from ipseclab.runtime.netlab.pinger import ping  # noqa: E402
from ipseclab.runtime.netlab.tcpxfer import transfer  # noqa: E402
from ipseclab.runtime.netlab.tshark import dissect  # noqa: E402

TCP_BYTES = 5_000_000


def _lab_name(tag: str) -> str:
    return f"e{tag}{os.getpid() % 100000}"


def _wait_installed(clients: list[Any], timeout: float = 15.0) -> None:
    """Until every daemon's data plane holds an outbound SA (both ends can send)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(any(s["direction"] == "outbound" for s in c.esp()["sas"]) for c in clients):
            return
        time.sleep(0.05)
    raise AssertionError(f"SAs not installed in the data planes: {[c.list_sas() for c in clients]}")


@contextlib.contextmanager
def _tunnel(tag: str, kind: str, *, encap: bool = False) -> Iterator[NetLab]:
    with NetLab(_lab_name(tag), kind, DemoOptions(encap=encap), dataplane=True) as lab:
        lab.clients["left"].initiate("site")
        _wait_installed([lab.clients["left"], lab.clients["right"]])
        yield lab


def _hosts(lab: NetLab) -> tuple[str, str]:
    return lab.topology.hosts["left"].protected[0], lab.topology.hosts["right"].protected[0]


def _inbound(client: Any) -> dict[str, Any]:
    (sa,) = [s for s in client.esp()["sas"] if s["direction"] == "inbound"]
    return sa


def _events(lab: NetLab) -> list[Any]:
    return lab.clients["left"].events_since(0) + lab.clients["right"].events_since(0)


# -- our peers on both ends -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "encap", "udp"),
    [("site-to-site", False, False), ("nat", False, True), ("site-to-site", True, True)],
    ids=["raw-esp", "udp-through-nat", "udp-forced"],
)
def test_ping_and_tcp_through_the_tunnel_decrypted_by_tshark(tmp_path: Path, kind: str, encap: bool, udp: bool) -> None:
    with _tunnel("t", kind, encap=encap) as lab:
        topo = lab.topology
        left, right = lab.clients["left"], lab.clients["right"]
        src, dst = _hosts(lab)
        capture = topo.capture("left", tmp_path / "wire.pcap")
        stats = ping(topo, "left", src, dst, count=5)
        assert (stats.sent, stats.received) == (5, 5), stats.lines
        result = transfer(topo, src_role="left", src_address=src, dst_role="right", dst_address=dst, size=TCP_BYTES)
        back = transfer(topo, src_role="right", src_address=dst, dst_role="left", dst_address=src, size=TCP_BYTES // 5, port=5002)
        capture.stop()
        assert result.received["bytes"] == TCP_BYTES and result.ok, (result.sent, result.received)
        assert back.ok, (back.sent, back.received)
        table = left.esp()
        assert all((s["udp_encap"] is not None) == udp for s in table["sas"])
        assert table["counters"]["sa_drops"] == {} and table["counters"]["no_policy"] == 0
        assert table["counters"]["out_bytes"] > TCP_BYTES
        assert _inbound(right)["counters"]["packets"] > TCP_BYTES // 1400
        assert table["io_errors"] == {} and right.esp()["io_errors"] == {}
        keys = write_keys(_events(lab), tmp_path / "keys")["esp_sa"].parent
    frames = [f for f in dissect(tmp_path / "wire.pcap", keys) if f.esp_spi]
    assert frames, "tshark found no ESP in the capture"
    assert all((f.dport == 4500) == udp for f in frames), "raw ESP or ESP-in-UDP on 4500, as negotiated"
    assert sum(f.inner_icmp for f in frames) >= 10, "tshark decrypts the echo requests and replies"
    assert sum(f.inner_tcp for f in frames) > 100, "tshark decrypts the TCP segments"
    # (a capture at this rate may miss frames; what it holds must all decrypt)
    assert all(f.inner_icmp or f.inner_tcp for f in frames), [f.describe() for f in frames if not (f.inner_icmp or f.inner_tcp)][:5]
    assert all(f.esp_icv_good is not False for f in frames), "every ICV verifies with our keys"


@pytest.mark.parametrize(("kind", "udp"), [("site-to-site", False), ("nat", True)], ids=["raw-esp", "udp-through-nat"])
def test_replayed_and_tampered_packets_are_dropped_and_counted(tmp_path: Path, kind: str, udp: bool) -> None:
    with _tunnel("r", kind) as lab:
        topo = lab.topology
        right = lab.clients["right"]
        src, dst = _hosts(lab)
        assert ping(topo, "left", src, dst, count=3).received == 3
        # right's host drops the next ESP packet before the daemon sees it; the capture has it
        esp_match = "udp dport 4500 @th,64,32 != 0" if udp else "ip protocol esp"
        rules = f"table ip esptest {{\n  chain input {{\n    type filter hook input priority 0;\n    {esp_match} drop\n  }}\n}}\n"
        apply_ruleset(topo.hosts["right"].netns, rules)
        capture = topo.capture("left", tmp_path / "lost.pcap")
        assert ping(topo, "left", src, dst, count=1, wait=1).received == 0
        capture.stop()
        apply_ruleset(topo.hosts["right"].netns, "delete table ip esptest\n")
        (lost,) = esp_packets(tmp_path / "lost.pcap", src=topo.hosts["left"].address)
        assert lost.udp == udp
        assert ping(topo, "left", src, dst, count=3).received == 3, "a gap in the sequence numbers is fine"

        before = _inbound(right)["counters"]
        inject(topo, "left", flip_bit(lost, ESP_CIPHERTEXT))
        inject(topo, "left", flip_bit(lost, ESP_ICV, bit=7))
        inject(topo, "left", lost.packet)  # never received: inside the window, accepted
        inject(topo, "left", lost.packet)  # now a replay
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = _inbound(right)["counters"]
            if after["icv_failures"] - before["icv_failures"] >= 2 and after["replay_drops"] > before["replay_drops"]:
                break
            time.sleep(0.05)
        assert after["icv_failures"] - before["icv_failures"] == 2
        assert after["replay_drops"] - before["replay_drops"] == 1
        assert after["packets"] - before["packets"] == 1, "the untouched late packet is accepted once"
        assert after["by_reason"].get("icv failure", 0) >= 2 and after["by_reason"].get("replayed", 0) >= 1

        # an old packet the receiver already took: dropped as a replay
        capture = topo.capture("left", tmp_path / "old.pcap")
        assert ping(topo, "left", src, dst, count=1).received == 1
        capture.stop()
        (old,) = esp_packets(tmp_path / "old.pcap", src=topo.hosts["left"].address)
        inject(topo, "left", old.packet)
        deadline = time.monotonic() + 5
        while _inbound(right)["counters"]["replay_drops"] < after["replay_drops"] + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _inbound(right)["counters"]["replay_drops"] == after["replay_drops"] + 1

        assert ping(topo, "left", src, dst, count=3).received == 3, "the tunnel keeps working"
        reasons = {e.reason for e in right.events_since(0) if e.kind == "esp-drop"}
        assert {"icv failure", "replayed"} <= reasons


def test_trace_next_takes_the_next_packets_apart() -> None:
    with _tunnel("n", "site-to-site") as lab:
        topo = lab.topology
        src, dst = _hosts(lab)
        assert ping(topo, "left", src, dst, count=4).received == 4  # past the SA's first traced packets
        left = lab.clients["left"]
        left.trace_next(2)  # armed; the events follow on the stream
        assert ping(topo, "left", src, dst, count=1).received == 1
        deadline = time.monotonic() + 5
        traced: list[Any] = []
        while len(traced) < 2 and time.monotonic() < deadline:
            traced = [e for e in left.events_since(0) if e.kind == "esp-packet" and e.reason == "requested"]
            time.sleep(0.05)
        assert [e.direction for e in traced] == ["out", "in"]
        assert all("ICMP" in e.inner_summary for e in traced)
        assert traced[0].outer["protocol"] == 50 and traced[0].iv and traced[0].icv
        with pytest.raises(Exception, match="from 1 to 1000"):
            left.trace_next(0)


def test_demo_netns_ping_cli(tmp_path: Path) -> None:
    import subprocess

    pcap, keys = tmp_path / "wire.pcap", tmp_path / "keys"
    proc = subprocess.run(
        [sys.executable, "-m", "ipseclab.cli", "demo", "--netns", "--topology", "nat", "--ping", "4", "--pcap", str(pcap), "--keys", str(keys)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 packets transmitted, 4 received" in proc.stdout
    assert "through ESP: 4 sent, 4 received, 0 lost" in proc.stdout
    frames = [f for f in dissect(pcap, keys) if f.esp_spi]
    assert sum(f.inner_icmp for f in frames) == 8 and all(f.dport == 4500 for f in frames)


# -- against strongSwan's charon (kernel-libipsec) -------------------------------------------


@pytest.mark.parametrize("initiator", ["ipseclab", "charon"])
@pytest.mark.parametrize("esp", ["aes128-sha1", "aes128gcm16"])
def test_tunnel_with_charon_libipsec(tmp_path: Path, esp: str, initiator: str) -> None:
    from ipseclab.runtime.netlab.charon import Charon
    from ipseclab.runtime.netlab.esp_interop import CharonTunnel
    from ipseclab.runtime.netlab.topology import site_to_site

    problem = Charon.available()
    if problem:
        print(f"skipping: {problem}", file=sys.stderr)
        pytest.skip(problem)
    with site_to_site(_lab_name("c"), routes=False) as topo:
        capture = topo.capture("left", tmp_path / "wire.pcap")
        with CharonTunnel(topo, tmp_path / "work", esp=esp) as tunnel:
            tunnel.establish(initiator=initiator)
            ours = tunnel.ping("left", 3)
            theirs = tunnel.ping("right", 3)
            assert (ours.sent, ours.received) == (3, 3), ours.lines
            assert (theirs.sent, theirs.received) == (3, 3), theirs.lines
            src, dst = topo.hosts["left"].protected[0], topo.hosts["right"].protected[0]
            result = transfer(topo, src_role="left", src_address=src, dst_role="right", dst_address=dst, size=1_000_000)
            assert result.ok, (result.sent, result.received)
            table = tunnel.client.esp()
            assert all(s["udp_encap"] == [4500, 4500] for s in table["sas"]), "libipsec: ESP-in-UDP on 4500"
            assert table["counters"]["sa_drops"] == {}
            keys = write_keys(tunnel.client.events_since(0), tmp_path / "keys")["esp_sa"].parent
        capture.stop()
    frames = [f for f in dissect(tmp_path / "wire.pcap", keys) if f.esp_spi]
    assert sum(f.inner_icmp for f in frames) == 12, "both directions' echoes, decrypted with our esp_sa"
    assert sum(f.inner_tcp for f in frames) > 0
