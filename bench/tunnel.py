"""Tunnel benchmark: ping RTT and TCP throughput through our ESP vs strongSwan's libipsec.

Run as root: ``.venv/bin/python bench/tunnel.py`` (``--quick`` for a shorter run).  Not part
of the test suite.  In one run, on the same machine, in the same ``site_to_site`` namespace
topology (two hosts on one veth pair), for AES-128-CBC + HMAC-SHA1-96 and AES-GCM-16-128:

* ours, raw ESP: an ipseclab daemon with the data plane in each host (TUN ``ipl0``, ESP as IP
  protocol 50);
* ours, ESP-in-UDP: the same with ``encap = true`` (what charon's libipsec always does);
* charon: strongSwan 5.9.8 charon with kernel-libipsec in each host (TUN ``ipsec0``,
  ESP-in-UDP on 4500);
* plain: no tunnel (routes over the veth), for scale.

All tunnels of one transform are up at once (each in a lab of its own) and measured in turns,
round after round, so that the machine's drifting load affects them alike.  Each carries
``ping -i 0.01`` between the protected hosts (average RTT; median over the rounds) and a bounded
TCP transfer per round (a Python sender and a byte-counting sink — the tests check the SHA-256,
here hashing would take CPU from the tunnels; Mbit/s of goodput, best of the rounds).  Ratios
are ours / charon: throughput > 1 and RTT < 1 mean ours is better.  Absolute figures vary
between machines and runs; compare within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ipseclab.runtime.netlab.esp_interop import charon_pair, ipseclab_pair  # noqa: E402
from ipseclab.runtime.netlab.pinger import ping  # noqa: E402
from ipseclab.runtime.netlab.tcpxfer import transfer  # noqa: E402
from ipseclab.runtime.netlab.topology import site_to_site  # noqa: E402

TRANSFORMS = {"AES-CBC-128 + HMAC-SHA1-96": "aes128-sha1", "AES-GCM-16-128": "aes128gcm16"}


def rtt(topo, pings: int) -> float:  # noqa: ANN001
    """Average ping RTT (ms) between the protected hosts, left -> right."""
    src, dst = topo.hosts["left"].protected[0], topo.hosts["right"].protected[0]
    stats = ping(topo, "left", src, dst, count=pings, interval=0.01)
    if stats.lost or stats.rtt_avg_ms is None:
        raise SystemExit(f"ping through the tunnel lost {stats.lost} of {stats.sent}: {stats.lines[-3:]}")
    return stats.rtt_avg_ms


def throughput(topo, size: int, port: int) -> float:  # noqa: ANN001
    """TCP goodput (Mbit/s) of one bounded transfer, left -> right between the protected hosts."""
    src, dst = topo.hosts["left"].protected[0], topo.hosts["right"].protected[0]
    result = transfer(topo, src_role="left", src_address=src, dst_role="right", dst_address=dst, size=size, port=port, verify=False)
    if not result.ok:
        raise SystemExit(f"TCP transfer short: {result.sent} vs {result.received}")
    return result.mbit_per_s


def lab(tag: str):  # noqa: ANN201
    return site_to_site(f"bt{tag}{os.getpid() % 10000}", routes=tag == "p")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pings, smaller transfers, one round")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds; the tunnels take turns in each")
    parser.add_argument("--megabytes", type=int, default=100, help="size of each TCP transfer")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/tunnel.py needs root (network namespaces, TUN, charon)", file=sys.stderr)
        return 2
    pings = 50 if args.quick else 200
    size = (20 if args.quick else args.megabytes) * 1_000_000
    rounds = 1 if args.quick else args.rounds
    rtts: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ipseclab-bench-") as tmp:
        with lab("p") as topo:
            rtts["plain veth (no tunnel)"] = [rtt(topo, pings)]
            rates["plain veth (no tunnel)"] = [throughput(topo, size, 5000)]
        for label, esp in TRANSFORMS.items():
            # all three tunnels up at once (in labs of their own), measured in turns, so that
            # drift of the machine's load affects them alike
            with contextlib.ExitStack() as stack:
                tunnels = {}
                for tag, name, encap in (("o", "ours raw ESP", False), ("u", "ours ESP-in-UDP", True)):
                    topo = stack.enter_context(lab(tag))
                    stack.enter_context(ipseclab_pair(topo, esp=esp, encap=encap))
                    tunnels[f"{name}, {label}"] = topo
                topo = stack.enter_context(lab("c"))
                stack.enter_context(charon_pair(topo, Path(tmp) / esp, esp=esp))
                tunnels[f"charon libipsec (ESP-in-UDP), {label}"] = topo
                for topo in tunnels.values():  # warm-up: the first packets of an SA are traced
                    ping(topo, "left", topo.hosts["left"].protected[0], topo.hosts["right"].protected[0], count=5, interval=0.05)
                for i in range(rounds):
                    for name, topo in tunnels.items():
                        rtts.setdefault(name, []).append(rtt(topo, pings))
                        rates.setdefault(name, []).append(throughput(topo, size, 5001 + i))
    results = {name: {"rtt_ms": statistics.median(rtts[name]), "mbit_s": max(rates[name])} for name in rtts}
    width = max(len(k) for k in results)
    print(f"{'tunnel':{width}}  {'RTT ms':>8}  {'TCP Mbit/s':>10}   (RTT: median of rounds; TCP: best of {rounds}, each {size // 1_000_000} MB)")
    for name, r in results.items():
        print(f"{name:{width}}  {r['rtt_ms']:8.3f}  {r['mbit_s']:10.1f}   all rounds: {', '.join(f'{x:.0f}' for x in rates[name])} Mbit/s")
    print("\nours / charon (same transform): throughput ratio (> 1: ours faster), RTT ratio (< 1: ours faster)")
    for label in TRANSFORMS:
        theirs = results[f"charon libipsec (ESP-in-UDP), {label}"]
        for how in ("raw ESP", "ESP-in-UDP"):
            ours = results[f"ours {how}, {label}"]
            print(f"  {label}, ours {how:10}: throughput {ours['mbit_s'] / theirs['mbit_s']:5.2f}x   RTT {ours['rtt_ms'] / theirs['rtt_ms']:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
