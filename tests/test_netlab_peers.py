"""Peers as daemons in network namespaces: ``demo --netns``, ``lab up/status/down`` (root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

if os.geteuid() != 0:
    pytest.skip("needs root for network namespaces (CI runs as root)", allow_module_level=True)

IPSECLAB = [sys.executable, "-m", "ipseclab.cli"]


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([*IPSECLAB, *args], capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _tshark_payloads(pcap: Path, keys: Path) -> dict[int, list[str]]:
    """frame -> ISAKMP payload type names tshark shows (decrypted ones included)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from ipseclab.export import tshark_options

    out = subprocess.run(
        ["tshark", "-r", str(pcap), *tshark_options(keys), "-Y", "isakmp", "-T", "fields", "-e", "frame.number", "-e", "isakmp.typepayload"],
        capture_output=True, text=True, check=True,
    ).stdout
    frames = {}
    for line in out.splitlines():
        number, _, types = line.partition("\t")
        frames[int(number)] = types.split(",") if types else []
    return frames


@pytest.mark.parametrize("topology", ["site-to-site", "nat"])
def test_demo_over_namespaces_is_captured_and_decrypted(tmp_path: Path, topology: str) -> None:
    before = _namespaces()
    pcap, keys = tmp_path / "wire.pcap", tmp_path / "keys"
    proc = _run("demo", "--netns", "--topology", topology, "--seed", "3", "--pcap", str(pcap), "--keys", str(keys))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "result: phase 1 and all Quick Modes established" in proc.stdout
    assert _namespaces() == before, "the demo's namespaces are torn down"
    if topology == "nat":
        # NAT detected: from message 5 on, IKE uses port 4500 (RFC 3947 §4), ESP mode is UDP tunnel
        assert "192.168.77.2:4500 -> 203.0.113.2:4500" in proc.stdout
        assert "UDP tunnel" in proc.stdout
    frames = _tshark_payloads(pcap, keys)
    seen = [types for _, types in sorted(frames.items())]
    assert len(seen) == 9, seen
    # Main Mode 5/6 and the Quick Mode messages, decrypted by tshark with our keys (5 = ID, 8 = HASH)
    assert {"5", "8"} <= set(seen[4]) and {"5", "8"} <= set(seen[5])
    assert all("8" in types for types in seen[6:9]) and "10" in seen[6] and "10" in seen[7]
    # our own dissector agrees on the wire capture
    decoded = [json.loads(line) for line in _run("decode", str(pcap), "--keys", str(keys), "--json").stdout.splitlines()]
    isakmp = [d for d in decoded if d["kind"] == "isakmp"]
    assert len(isakmp) == 9 and all(d["decrypted"] for d in isakmp if d["encrypted"])


def test_demo_over_namespaces_explains_a_mismatch() -> None:
    proc = _run("demo", "--netns", "--mismatch", "--seed", "4")
    assert proc.returncode == 1
    assert "Hash algorithm offered does not match policy" in proc.stdout
    assert "NO_PROPOSAL_CHOSEN" in proc.stdout


def test_two_labs_coexist_and_down_leaves_nothing() -> None:
    from ipseclab.runtime.netlab import state
    from ipseclab.runtime.netlab.peers import attach_clients

    before = _namespaces()
    names = [f"t{os.getpid() % 10000}a", f"t{os.getpid() % 10000}b"]
    try:
        for name in names:
            proc = _run("lab", "up", "--name", name, "--seed", "5")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "left peer daemon: control ipc://" in proc.stdout
        clients = attach_clients(names[0])
        clients["left"].initiate("site")
        import time

        deadline = time.monotonic() + 10
        while not clients["left"].list_sas().get("ipsec") and time.monotonic() < deadline:
            time.sleep(0.1)
        for c in clients.values():
            c.close()
        status = _run("lab", "status", names[0]).stdout
        assert "left peer daemon:" in status and "QM_IDLE" in status and "net1" in status
        other = _run("lab", "status", names[1]).stdout
        assert "no ISAKMP SA" in other  # the second lab is untouched
        pids = [p["pid"] for n in names for p in state.read(n)["processes"]]
        assert len(pids) >= 4
    finally:
        for name in names:
            _run("lab", "down", name)
    assert _namespaces() == before
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
    for name in names:
        assert not Path(state.lab_dir(name)).exists()
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "ipseclab" not in nft


def test_demo_remote_access_behind_the_nat_router() -> None:
    """A road warrior behind the nftables NAT gets 10.3.0.1 from its gateway and pings from it."""
    proc = _run("demo", "--netns", "--topology", "nat", "--ike", "v2", "--remote-access", "--ping", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "virtual IP 10.3.0.1 from the gateway's pool" in proc.stdout
    assert "ping 10.3.0.1 -> 10.2.0.1 through ESP: 2 sent, 2 received, 0 lost" in proc.stdout
