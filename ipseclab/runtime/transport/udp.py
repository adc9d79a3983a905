"""asyncio UDP transport: one sans-I/O :class:`~ipseclab.peer.Peer` on real sockets.

Binds the IKE port (500 by default, any port in tests) and the NAT-T port
(4500; datagrams there carry the non-ESP marker, which the peer handles). Each socket
is read from ``loop.add_reader`` in batches — everything waiting, up to :data:`BATCH`
datagrams — which go to :meth:`Peer.receive_batch <ipseclab.peer.Peer.receive_batch>`
together, so that under a flood the peer can serve running exchanges and configured
peers before strangers' first messages (and shed those cheaply). The receive buffers
are large (:data:`RECEIVE_BUFFER`) so a burst waits in the kernel instead of being lost.
The clock is ``loop.time()``; what the peer queues is sent from the socket bound to the
datagram's source port (:meth:`UdpPeerRunner.send`, which a subclass may override to
hold datagrams back); one timer stays armed at ``peer.get_timer()``; the peer's trace
events go to listeners and an :class:`asyncio.Queue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from ipseclab.peer import Address, Datagram, Peer
from ipseclab.trace import Event

#: datagrams read from one socket per wake-up at most
BATCH = 256
#: bytes of kernel receive (and send) buffer asked for each socket
RECEIVE_BUFFER = 4 << 20


class UdpPeerRunner:
    """Runs a peer on asyncio UDP sockets bound to ``host``:``port`` and ``host``:``natt_port``."""

    def __init__(self, peer: Peer, *, host: str | None = None, queue_events: bool = True) -> None:
        self.peer = peer
        self.host = host or peer.config.address
        #: every event, for a consumer that awaits them; ``queue_events=False`` when only
        #: listeners consume them (a long-running daemon must not grow an unread queue)
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.queue_events = queue_events
        self.listeners: list[Callable[[Event], None]] = []
        self._sockets: dict[int, socket.socket] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ports(self) -> tuple[int, int]:
        return self.peer.config.port, self.peer.config.natt_port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            for port in dict.fromkeys(self.ports):
                sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
                self._sockets[port] = sock
                sock.setblocking(False)
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
                sock.bind((self.host, port))
                self._loop.add_reader(sock.fileno(), self._readable, sock, port)
        except OSError:
            await self.close()
            raise

    def socket(self, port: int) -> socket.socket | None:
        """The socket bound to ``port`` (the data plane shares the NAT-T one)."""
        return self._sockets.get(port)

    def stop_reading(self, port: int) -> None:
        """Leave reading ``port``'s socket to someone else (the data plane reads 4500)."""
        sock = self._sockets.get(port)
        if sock is not None and self._loop is not None:
            self._loop.remove_reader(sock.fileno())

    def resume_reading(self, port: int) -> None:
        """Read ``port``'s socket again (the data plane gave it back)."""
        sock = self._sockets.get(port)
        if sock is not None and self._loop is not None and sock.fileno() >= 0:
            self._loop.add_reader(sock.fileno(), self._readable, sock, port)

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def initiate(self, connection: str) -> None:
        self.peer.initiate(connection, self.now())
        self._flush()

    def _readable(self, sock: socket.socket, port: int) -> None:
        batch: list[tuple[bytes, Address, int]] = []
        for _ in range(BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP port unreachable reported on the socket
                self.peer.count("socket_errors")
                continue
            batch.append((data, (addr[0], addr[1]), port))
        if batch:
            self.receive(batch)

    def receive(self, batch: list[tuple[bytes, Address, int]]) -> None:
        """Datagrams read at once, as ``(data, source, local port)``; a subclass may filter."""
        self.peer.receive_batch([(data, src, (self.host, port)) for data, src, port in batch], self.now())
        self._flush()

    def on_datagram(self, data: bytes, src: Address, local_port: int) -> None:
        """One datagram read elsewhere (the data plane hands over IKE on 4500)."""
        self.receive([(data, src, local_port)])

    def _on_timer(self) -> None:
        self._timer = None
        self.peer.handle_timer(self.now())
        self._flush()

    def flush(self) -> None:
        """Send what the peer queued and hand out its events (after calling into it directly)."""
        self._flush()

    def _flush(self) -> None:
        for d in self.peer.datagrams_to_send():
            self.send(d)
        while (event := self.peer.next_event()) is not None:
            if self.queue_events:
                self.events.put_nowait(event)
            for listener in self.listeners:
                listener(event)
        self._arm_timer()

    def send(self, d: Datagram) -> None:
        """Put one datagram on the wire, from the socket bound to its source port; a full
        send buffer or an unreachable destination drops it (counted), as UDP does."""
        sock = self._sockets.get(d.src[1]) or self._sockets.get(self.peer.config.port)
        if sock is None:
            return
        try:
            sock.sendto(d.data, d.dst)
        except (BlockingIOError, InterruptedError):
            self.peer.count("send_buffer_full")
        except OSError:
            self.peer.count("socket_errors")

    def _arm_timer(self) -> None:
        """Keep exactly one timer armed at ``peer.get_timer()`` (on the loop's clock)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.peer.get_timer()
        if when is not None and self._loop is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for sock in self._sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        await asyncio.sleep(0)
