"""ESP straight on IP: a raw socket for IP protocol 50 (RFC 4303 §2, IANA protocol number 50).

Without NAT, ESP packets are IP packets whose protocol field is 50 — there is no port.  This
kernel has no ESP of its own, so a raw socket ``socket(AF_INET, SOCK_RAW, 50)`` sees every
protocol-50 packet addressed to this namespace; the kernel hands it over *with* its IPv4
header (raw IPv4 sockets always do), and since no ESP protocol handler is registered it
answers nothing itself (no ICMP protocol-unreachable once a raw socket took the packet).

**Sending: ``IP_HDRINCL``.**  The data plane builds the outer IPv4 header itself
(:mod:`ipseclab.esp.packet`), so what goes on the wire is byte for byte what the trace showed
a student (TTL, ID, DF, addresses).  With ``IP_HDRINCL`` Linux still fills in the total length
and the header checksum (and the ID when it is 0), ``raw(7)``; it does not fragment — an outer
packet above the route MTU fails with ``EMSGSIZE`` and is counted.  The alternative (let the
kernel prepend the header) would hide the header from the trace; we chose visibility.

:class:`RawEspSocket` is asyncio-integrated the same way as the TUN: ``loop.add_reader`` on
the non-blocking socket, draining a batch per wake-up; sends never block (a full send
buffer drops the packet and counts it, as a router would).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable

from ipseclab.errors import IpsecLabError

IPPROTO_ESP = 50
#: Packets handled per reader wake-up before the event loop gets control back.
BATCH = 64
#: Receive buffer: the outer packet plus its IP header (no jumbo frames on our veths).
RECV_SIZE = 65535
#: Socket buffer sizes asked for (the kernel caps them at net.core.[rw]mem_max).
SOCKET_BUFFER = 4 << 20

#: ``callback(packet)``: the whole received IPv4 packet, outer header included.
EspReceiver = Callable[[bytes], None]


class RawEspError(IpsecLabError):
    """The raw ESP socket could not be opened (root or CAP_NET_RAW is needed)."""


def split_ipv4(packet: bytes) -> tuple[bytes, str, str] | None:
    """``(payload, src, dst)`` of a received IPv4 packet; None if it is not one."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or len(packet) < ihl:
        return None
    return packet[ihl:], socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])


class RawEspSocket:
    """A raw IPv4 protocol-50 socket: ``send(ip_packet)`` with our own outer header, and
    ``start_reader(callback)`` for every ESP packet that arrives (as the whole IP packet:
    transport mode rebuilds the inner packet from the received header, and
    :func:`split_ipv4` takes it apart when only the ESP part is wanted)."""

    def __init__(self, bind: str | None = None) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_ESP)
        except PermissionError:
            raise RawEspError("a raw ESP socket (IP protocol 50) needs root or CAP_NET_RAW") from None
        except OSError as exc:
            raise RawEspError(f"cannot open a raw ESP socket: {exc.strerror or exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            if bind is not None:
                sock.bind((bind, 0))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise RawEspError(f"cannot set up the raw ESP socket: {exc.strerror or exc}") from None
        self.sock = sock
        self.bound = bind
        self.received = 0
        self.sent = 0
        self.send_errors = 0
        self.malformed = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<RawEspSocket bound={self.bound} sent={self.sent} received={self.received}>"

    def send(self, packet: bytes, dst: str | None = None) -> bool:
        """Send one complete IPv4 packet (outer header included) to its destination address
        (``dst``, when the caller knows it as text already, saves converting the header's)."""
        try:
            self.sock.sendto(packet, (dst or socket.inet_ntoa(packet[16:20]), 0))
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.EMSGSIZE, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM):
                raise
            self.send_errors += 1
            return False
        self.sent += 1
        return True

    def start_reader(self, callback: EspReceiver, *, batch: int = BATCH) -> None:
        """Call ``callback(packet)`` for each arriving IPv4 packet, from the running loop."""
        loop = asyncio.get_running_loop()
        recv = self.sock.recv

        def on_readable() -> None:
            for _ in range(batch):
                try:
                    packet = recv(RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                self.received += 1
                if len(packet) < 28 or packet[0] >> 4 != 4:  # IPv4 header + SPI + sequence
                    self.malformed += 1
                    continue
                callback(packet)

        loop.add_reader(self.sock.fileno(), on_readable)
        self._loop = loop

    def stop_reader(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
            self._loop = None

    def close(self) -> None:
        self.stop_reader()
        self.sock.close()

    def __enter__(self) -> RawEspSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
