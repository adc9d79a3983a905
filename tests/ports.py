"""Free UDP ports on loopback for tests that run real sockets."""

from __future__ import annotations

import socket


def free_udp_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports the kernel just handed out for ``host`` (bound together, then freed)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel just handed out for ``host`` (bound, then freed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
