"""A bounded TCP transfer between two lab hosts: byte count, SHA-256 and throughput.

The sink (``python -m ipseclab.runtime.netlab.tcpxfer sink --bind 10.2.0.1 --port 5001``) accepts one
connection, reads until EOF and prints one JSON line ``{"bytes": N, "sha256": "...",
"seconds": S}``; the source (``... source --connect 10.2.0.1 --port 5001 --bytes 5000000
--bind 10.1.0.1``) sends ``bytes`` pseudo-random bytes (seeded, so the sender knows the hash
in advance) and prints the same kind of line.  Both run inside lab namespaces
(:meth:`~ipseclab.runtime.netlab.topology.Topology.spawn`), so the transfer crosses the tunnel
between the protected addresses.  :func:`transfer` runs both and returns both reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import select
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipseclab.errors import NetlabError

if TYPE_CHECKING:
    from ipseclab.runtime.netlab.topology import Topology

CHUNK = 64 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    """The deterministic bytes a source sends (``random.Random(seed).randbytes``)."""
    return random.Random(seed).randbytes(size)


def sink(bind: str, port: int, timeout: float, *, hash_bytes: bool = True) -> dict[str, object]:
    """Accept one connection and read it to the end (hashing what arrives unless told not to:
    a benchmark leaves the CPU to the tunnel)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((bind, port))
    srv.listen(1)
    srv.settimeout(timeout)
    print(f"ready {bind}:{port}", flush=True)
    conn, peer = srv.accept()
    conn.settimeout(timeout)
    digest, total = hashlib.sha256(), 0
    t0 = time.monotonic()
    with conn:
        while True:
            data = conn.recv(CHUNK)
            if not data:
                break
            if hash_bytes:
                digest.update(data)
            total += len(data)
    seconds = time.monotonic() - t0
    srv.close()
    return {"bytes": total, "sha256": digest.hexdigest() if hash_bytes else None, "seconds": round(seconds, 4), "from": peer[0]}


def source(connect: str, port: int, size: int, bind: str | None, timeout: float, seed: int = 1) -> dict[str, object]:
    """Connect (from ``bind``), send ``size`` bytes, close; report what was sent."""
    data = payload(size, seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if bind:
        sock.bind((bind, 0))
    t0 = time.monotonic()
    sock.connect((connect, port))
    view = memoryview(data)
    for i in range(0, size, CHUNK):
        sock.sendall(view[i : i + CHUNK])
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)  # wait for the sink's close: everything arrived
    seconds = time.monotonic() - t0
    sock.close()
    return {"bytes": size, "sha256": hashlib.sha256(data).hexdigest(), "seconds": round(seconds, 4)}


@dataclass(frozen=True)
class TransferResult:
    """Both ends' reports; ``ok`` when the sink got exactly what the source sent."""

    sent: dict[str, object]
    received: dict[str, object]

    @property
    def ok(self) -> bool:
        """Same byte count, and the same SHA-256 unless the sink did not hash."""
        same_hash = self.received["sha256"] is None or self.sent["sha256"] == self.received["sha256"]
        return self.sent["bytes"] == self.received["bytes"] and same_hash

    @property
    def mbit_per_s(self) -> float:
        """Goodput seen by the source (connect to the sink's close)."""
        return float(self.sent["bytes"]) * 8 / max(float(self.sent["seconds"]), 1e-9) / 1e6  # type: ignore[arg-type]


def _last_json(text: str) -> dict[str, object]:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise NetlabError(f"no report in the output: {text[-400:]!r}")


def transfer(
    topo: Topology,
    *,
    src_role: str,
    src_address: str,
    dst_role: str,
    dst_address: str,
    size: int,
    port: int = 5001,
    timeout: float = 60.0,
    verify: bool = True,
) -> TransferResult:
    """Send ``size`` bytes over TCP from ``src_address`` (in ``src_role``) to a sink on
    ``dst_address:port`` (in ``dst_role``); both processes are children of the topology.
    ``verify=False``: the sink only counts bytes (no SHA-256), for benchmarks."""
    sink_argv = [sys.executable, "-m", "ipseclab.runtime.netlab.tcpxfer", "sink", "--bind", dst_address, "--port", str(port), "--timeout", str(timeout)]
    sink_proc = topo.spawn(
        dst_role,
        sink_argv + ([] if verify else ["--no-hash"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sink_proc.stdout is not None
        ready, _, _ = select.select([sink_proc.stdout], [], [], 10.0)
        line = sink_proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            raise NetlabError(f"TCP sink in {dst_role} did not start: {line!r}")
        argv = [
            sys.executable, "-m", "ipseclab.runtime.netlab.tcpxfer", "source", "--connect", dst_address, "--port", str(port),
            "--bytes", str(size), "--bind", src_address, "--timeout", str(timeout),
        ]
        done = topo.run(src_role, argv, capture_output=True, text=True, timeout=timeout + 10)
        if done.returncode != 0:
            raise NetlabError(f"TCP source in {src_role} failed ({done.returncode}): {done.stdout[-400:]} {done.stderr[-800:]}")
        out, _ = sink_proc.communicate(timeout=timeout)
        return TransferResult(_last_json(done.stdout), _last_json(out))
    finally:
        if sink_proc.poll() is None:
            sink_proc.kill()
            sink_proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bounded TCP transfer with a SHA-256 of the bytes")
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--port", type=int, default=5001)
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--no-hash", action="store_true", help="count bytes only")
    c = sub.add_parser("source")
    c.add_argument("--connect", required=True)
    c.add_argument("--port", type=int, default=5001)
    c.add_argument("--bytes", type=int, default=5_000_000)
    c.add_argument("--bind")
    c.add_argument("--timeout", type=float, default=60.0)
    c.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.role == "sink":
            report = sink(args.bind, args.port, args.timeout, hash_bytes=not args.no_hash)
        else:
            report = source(args.connect, args.port, args.bytes, args.bind, args.timeout, args.seed)
    except OSError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
