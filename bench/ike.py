"""IKE benchmark: Main Mode + Quick Mode (``--ike v2``: IKE_SA_INIT + IKE_AUTH) against our
responder daemon vs strongSwan's charon.

Run as root: ``.venv/bin/python bench/ike.py`` (``--quick`` for a shorter run, ``--ike v2`` for
IKEv2 with classical groups on both sides).  Not part of
the test suite.  In one run, on the same machine, in a ``site_to_site`` namespace lab, the
same initiator (an in-process sans-I/O ipseclab peer on real UDP sockets in ``left``) drives
negotiations against the responder in ``right``:

* ours: ``ipseclab peer`` (data plane on: every child SA is installed in the userspace ESP);
* charon: strongSwan 5.9.8 with kernel-libipsec (CHILD_SAs installed in libipsec).

For each: **set-ups per second** (N ISAKMP SAs with one IPsec pair each, 4 negotiations in
flight — below both responders' per-address half-open limit of 5), **responder CPU per
negotiation** (user + system time of the responder process over the N set-ups, from
``/proc``), **memory per established SA** (resident set growth over the N SAs); then a
bounded **half-open flood** (spoofed first messages from addresses no host owns, sent with
IP_HDRINCL from ``left``): the responder's peak resident set, a legitimate set-up's time
during the flood vs idle, and the half-open state 60 s later.

Ratios are ours / charon (CPU and memory: < 1 means ours needs less).  Absolute figures vary
between machines and runs; compare within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import select
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ipseclab.crypto.rng import SystemRng  # noqa: E402
from ipseclab.ikev1.policy import IsakmpPolicy  # noqa: E402
from ipseclab.peer import Peer  # noqa: E402
from ipseclab.runtime.config_toml import parse_peer_config  # noqa: E402
from ipseclab.runtime.netlab.esp_interop import our_config, start_charon  # noqa: E402
from ipseclab.runtime.netlab.peers import spawn_daemon, wait_for_daemon  # noqa: E402
from ipseclab.runtime.netlab.topology import site_to_site  # noqa: E402
from ipseclab.trace import SaEstablished  # noqa: E402
from ipseclab.wire.v1.constants import ExchangeType, ProtocolId  # noqa: E402
from ipseclab.wire.v1.isakmp import Message, Proposal, SAPayload  # noqa: E402

ESP = "aes128-sha1"
IN_FLIGHT = 4


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, what: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(what + ":"):
            return int(line.split()[1])
    return 0


def v2_config(text: str, pq: bool = False) -> str:
    """Our daemon's TOML speaking IKEv2 on connection ``lab`` (``pq``: with ML-KEM-768 after the group)."""
    text = text.replace("[connections.lab.children.c1]", "version = 2\n\n[connections.lab.children.c1]")
    return text.replace('auth = "psk"', 'auth = "psk"\nadditional_ke = "mlkem768"', 1) if pq else text


class Initiator:
    """A sans-I/O ipseclab peer on UDP 500/4500 in ``left``'s namespace, driven in this process."""

    def __init__(self, topo, version: int = 1, pq: bool = False) -> None:  # noqa: ANN001
        text = our_config(topo, "left", esp=ESP).replace("dataplane = true", "dataplane = false")
        cfg = parse_peer_config(v2_config(text, pq) if version == 2 else text)
        self.wire_bytes = 0  # UDP payload bytes both ways (IKE only: no data plane here)
        self.peer = Peer(cfg, rng=SystemRng())
        self.address = cfg.address
        with topo.in_netns("left"):
            self.socks = {}
            for port in (cfg.port, cfg.natt_port):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
                s.bind((cfg.address, port))
                s.setblocking(False)
                self.socks[port] = s
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def close(self) -> None:
        for s in self.socks.values():
            s.close()

    def _flush(self) -> None:
        for d in self.peer.datagrams_to_send():
            self.wire_bytes += len(d.data)
            self.socks[d.src[1]].sendto(d.data, d.dst)

    def run(self, count: int, timeout: float = 600.0) -> float:
        """Negotiate ``count`` ISAKMP SAs, each with one IPsec pair; returns the seconds taken."""
        started = done = 0
        waiting_child: dict[str, object] = {}
        start = time.monotonic()
        deadline = start + timeout
        while done < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {count} negotiations completed in {timeout} s")
            while started < count and started - done < IN_FLIGHT:
                self.peer.initiate("lab", self.now())
                started += 1
            self._flush()
            timer = self.peer.get_timer()
            wait = 0.05 if timer is None else max(0.0, min(0.05, timer - self.now()))
            ready, _, _ = select.select(list(self.socks.values()), [], [], wait)
            for s in ready:
                with contextlib.suppress(BlockingIOError):
                    while True:
                        data, src = s.recvfrom(65535)
                        self.wire_bytes += len(data)
                        self.peer.receive_datagram(data, src, s.getsockname(), self.now())
            timer = self.peer.get_timer()
            if timer is not None and timer <= self.now():
                self.peer.handle_timer(self.now())
            while (e := self.peer.next_event()) is not None:
                if isinstance(e, SaEstablished) and e.ike is not None:
                    sa = self.peer.ike_sas.get(bytes.fromhex(e.sa.spi_i))
                    if sa is not None and not sa.children:  # the child is live under an older SA
                        waiting_child[e.sa.spi_i] = sa
                        self.peer.start_child(sa, "c1", self.now())
                elif isinstance(e, SaEstablished) and e.child is not None:
                    done += 1
            self._flush()
        return time.monotonic() - start


def first_message(target: str, version: int) -> bytes:
    """A genuine first message to ``target``: MM1, or IKEv2's IKE_SA_INIT request."""
    if version == 2:
        from ipseclab.config import Connection, PeerConfig

        peer = Peer(PeerConfig("flood", "10.78.0.1", psk=b"x", connections=[Connection("c", target, version=2)]))
        peer.initiate("c", 0.0)
        return peer.datagrams_to_send()[0].data
    offer = SAPayload([Proposal(1, ProtocolId.ISAKMP, b"", [IsakmpPolicy(10, group=14).to_transform(1)])])
    return Message(bytes(8), bytes(8), ExchangeType.MAIN, payloads=[offer]).encode()


def flood(topo, target: str, count: int, version: int = 1) -> float:  # noqa: ANN001
    """``count`` spoofed first messages to ``target`` (bounded, paced); seconds taken."""
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw

    template = bytes(IP(src="10.78.0.1", dst=target) / UDP(sport=500, dport=500, chksum=0) / Raw(first_message(target, version)))
    with topo.in_netns("left"):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.monotonic()
    with raw:
        for n in range(count):
            src = bytes([10, 78 + n // 60000, n // 250 % 240, n % 250 + 1])
            packet = bytearray(template)
            packet[12:16] = src
            packet[28:36] = os.urandom(8)  # a fresh initiator cookie
            raw.sendto(bytes(packet), (target, 0))
            if n % 200 == 199:
                time.sleep(0.01)  # about 20,000/s at most: what one sender in the lab manages anyway
    return time.monotonic() - start


def measure(name: str, topo, responder_pid: int, half_open, count: int, flood_count: int, linger: float, version: int = 1) -> dict:  # noqa: ANN001
    init = Initiator(topo, version)
    try:
        init.run(2)  # warm-up: both sides' code paths, sockets, first DH tables
        cpu0, rss0 = cpu_seconds(responder_pid), memory_kib(responder_pid)
        seconds = init.run(count)
        cpu = cpu_seconds(responder_pid) - cpu0
        rss = memory_kib(responder_pid) - rss0
        idle = min(init.run(1) for _ in range(3))
        target = topo.hosts["right"].address
        # a separate process, as an attacker is: a thread here would take the initiator's GIL
        flooder = multiprocessing.get_context("fork").Process(target=flood, args=(topo, target, flood_count, version))
        flooder.start()
        time.sleep(0.2)  # the flood is under way
        during = []
        while flooder.is_alive() or not during:
            during.append(init.run(1, timeout=120.0))
        flooder.join()
        peak = memory_kib(responder_pid, "VmHWM")
        time.sleep(linger)
        left_over = half_open()
    finally:
        init.close()
    return {
        "name": name,
        "rate": count / seconds,
        "cpu_ms": cpu / count * 1000,
        "kib_per_sa": rss / count,
        "idle_ms": idle * 1000,
        "during_ms": max(during) * 1000,
        "during_median_ms": statistics.median(during) * 1000,
        "peak_mib": peak / 1024,
        "half_open_after": left_over,
    }


def measure_pq(topo, count: int) -> list[dict]:  # noqa: ANN001
    """Our IKEv2 responder without and with the ML-KEM-768 round: rate, responder CPU, bytes."""
    runs: list[dict] = []
    for pq in (False, True, False, True):  # interleaved, twice each: the machine's drift hits both alike
        spawn_daemon(topo, "right", v2_config(our_config(topo, "right", esp=ESP), pq))
        client = wait_for_daemon(topo, "right")
        pid = int(client.status()["pid"])
        init = Initiator(topo, 2, pq)
        try:
            init.run(2)
            cpu0, bytes0 = cpu_seconds(pid), init.wire_bytes
            seconds = init.run(count)
            runs.append({"pq": pq, "rate": count / seconds,
                         "cpu_ms": (cpu_seconds(pid) - cpu0) / count * 1000, "bytes": (init.wire_bytes - bytes0) / count})
        finally:
            init.close()
            with contextlib.suppress(Exception):
                client.shutdown()
            client.close()
    return [{key: statistics.mean(r[key] for r in runs if r["pq"] is pq) for key in ("rate", "cpu_ms", "bytes")}
            for pq in (False, True)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 SAs, 5,000 spoofed messages, 35 s linger")
    ap.add_argument("--ours-only", action="store_true", help="skip charon (no ratios): for trying a change")
    ap.add_argument("--ike", choices=["v1", "v2"], default="v1", help="the IKE version both sides speak")
    ap.add_argument("--pq", action="store_true", help="IKEv2: our responder without and with ML-KEM-768 (charon 5.9.8 has none)")
    args = ap.parse_args(argv)
    version = 2 if args.ike == "v2" else 1
    if os.geteuid() != 0:
        print("bench/ike.py needs root (network namespaces)", file=sys.stderr)
        return 2
    count, flood_count, linger = (200, 5_000, 35.0) if args.quick else (1_000, 20_000, 60.0)
    if args.pq:
        with site_to_site(f"bq{os.getpid() % 10000}", routes=False) as topo:
            classic, hybrid = measure_pq(topo, count)
        print(f"IKEv2 modp2048 without and with ML-KEM-768 in IKE_INTERMEDIATE (RFC 9370), {count} SAs, ours both sides")
        print(f"{'':42}{'classic':>12}{'hybrid':>12}{'hybrid/classic':>15}")
        for label, key, fmt in (("set-ups per second", "rate", "{:.1f}"), ("responder CPU per negotiation (ms)", "cpu_ms", "{:.2f}"),
                                ("IKE bytes on the wire per set-up", "bytes", "{:.0f}")):
            print(f"{label:42}{fmt.format(classic[key]):>12}{fmt.format(hybrid[key]):>12}{hybrid[key] / classic[key]:>15.2f}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="ipl-bench-") as work:
        tag = f"bi{os.getpid() % 10000}"
        with site_to_site(tag + "o", routes=False) as topo:
            text = our_config(topo, "right", esp=ESP)
            spawn_daemon(topo, "right", v2_config(text) if version == 2 else text)
            client = wait_for_daemon(topo, "right")
            pid = int(client.status()["pid"])

            def ours_half_open() -> int:
                return sum(1 for s in client.list_sas()["isakmp"] if s["state"] not in ("QM_IDLE", "ESTABLISHED", "DELETED"))

            results.append(measure("ipseclab", topo, pid, ours_half_open, count, flood_count, linger, version))
            with contextlib.suppress(Exception):
                client.shutdown()
            client.close()
        if args.ours_only:
            print({k: round(v, 2) if isinstance(v, float) else v for k, v in results[0].items()})
            return 0
        with site_to_site(tag + "c", routes=False) as topo:
            charon = start_charon(topo, "right", Path(work) / "charon", esp=ESP,
                                  conn=(lambda c: {**c, "version": "2"}) if version == 2 else None)
            try:
                def charon_half_open() -> int:
                    return sum(1 for s in charon.list_sas() if s.get("state") != "ESTABLISHED")

                results.append(measure("charon", topo, charon.pid, charon_half_open, count, flood_count, linger, version))
            finally:
                charon.stop()
    ours, theirs = results
    what = ("IKEv2 IKE_SA_INIT + IKE_AUTH (modp2048)", "IKE_SA_INITs") if version == 2 else ("IKEv1 Main Mode + Quick Mode", "MM1s")
    print(f"{what[0]}, {count} SAs, {IN_FLIGHT} in flight; flood of {flood_count} spoofed {what[1]}")
    print(f"{'':42}{'ipseclab':>12}{'charon':>12}{'ours/charon':>13}")
    rows = [
        ("set-ups per second", "rate", "{:.1f}"),
        ("responder CPU per negotiation (ms)", "cpu_ms", "{:.2f}"),
        ("memory per established SA (KiB)", "kib_per_sa", "{:.1f}"),
        ("set-up time idle (ms)", "idle_ms", "{:.1f}"),
        ("set-up time during the flood, worst (ms)", "during_ms", "{:.1f}"),
        ("set-up time during the flood, median (ms)", "during_median_ms", "{:.1f}"),
        ("peak resident set (MiB)", "peak_mib", "{:.1f}"),
        (f"half-open SAs {linger:.0f} s later", "half_open_after", "{:d}"),
    ]
    for label, key, fmt in rows:
        a, b = ours[key], theirs[key]
        ratio = f"{a / b:.2f}" if isinstance(b, float) and b else "-"
        print(f"{label:42}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>13}")
    print(f"during the flood / idle: ipseclab {ours['during_ms'] / ours['idle_ms']:.2f}x, charon {theirs['during_ms'] / theirs['idle_ms']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
