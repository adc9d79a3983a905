"""A tiny UDP echo service to prove reachability (and NAT) without ``ping``.

The server (``python -m ipseclab.runtime.netlab.udpecho --port 7777``) answers every datagram with a
JSON object saying from where it came: ``{"from": "203.0.113.1", "port": 20004, "data": "hi"}``
- so the sender learns the source address *the receiver saw*, which shows masquerading.

From Python::

    server = serve_echo(lab, "right", 7777)
    reply = probe(lab, "left", lab.hosts["right"].address, 7777)
    reply.seen_from  # ("203.0.113.1", 500) behind the NAT lab's router
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipseclab.errors import NetlabError

if TYPE_CHECKING:
    from ipseclab.runtime.netlab.topology import Topology


@dataclass(frozen=True)
class EchoReply:
    """What the echo server reported, and the socket address the probe sent from."""

    seen_from: tuple[str, int]
    data: str
    local: tuple[str, int]


def serve(bind: str, port: int, count: int = 0) -> None:
    """Echo ``count`` datagrams (0: forever); prints ``ready`` once bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    print(f"ready {bind}:{port}", flush=True)
    answered = 0
    while count == 0 or answered < count:
        data, (host, sport) = sock.recvfrom(65535)
        reply = {"from": host, "port": sport, "data": data.decode("latin-1")}
        sock.sendto(json.dumps(reply).encode(), (host, sport))
        answered += 1


def serve_echo(
    topo: Topology, role: str, port: int, *, bind: str = "0.0.0.0", count: int = 0
) -> subprocess.Popen[str]:
    """Start the echo server inside ``role`` (killed by ``topo.down()``); returns when bound."""
    proc = topo.spawn(
        role,
        [sys.executable, "-m", "ipseclab.runtime.netlab.udpecho", "--bind", bind, "--port", str(port),
         "--count", str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10.0)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        proc.kill()
        proc.wait()
        raise NetlabError(f"UDP echo server in {role} did not start (exit {proc.returncode})")
    return proc


def probe(
    topo: Topology,
    role: str,
    address: str,
    port: int,
    payload: bytes = b"hello",
    *,
    source: str | None = None,
    source_port: int = 0,
    timeout: float = 1.0,
    tries: int = 3,
) -> EchoReply:
    """Send ``payload`` from ``role`` (optionally from ``source``: a protected address) to the
    echo server at ``address:port`` and return its answer; NetlabError if none comes.

    An unreachable destination (no route) raises NetlabError at once.
    """
    with topo.in_netns(role):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind((source or "0.0.0.0", source_port))
        sock.settimeout(timeout)
        for _ in range(tries):
            try:
                sock.sendto(payload, (address, port))
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError as exc:
                raise NetlabError(
                    f"{role} cannot reach {address}:{port}: {exc.strerror}"
                ) from exc
            reply = json.loads(data)
            return EchoReply((reply["from"], reply["port"]), reply["data"], sock.getsockname())
    raise NetlabError(f"no echo from {address}:{port} to {role} after {tries} tries")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="UDP echo: answer with the sender's address")
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=0, help="stop after N datagrams (0: never)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.bind, args.port, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
