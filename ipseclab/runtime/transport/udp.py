"""asyncio UDP transport: one sans-I/O :class:`~ipseclab.peer.Peer` on real sockets.

Binds the IKE port (500 by default, any port in tests) and the NAT-T port
(4500; datagrams there carry the non-ESP marker, which the peer handles), feeds
every datagram to the peer with ``loop.time()`` as the clock, sends what the peer
queues from the socket bound to the datagram's source port (:meth:`UdpPeerRunner.send`,
which a subclass may override to hold datagrams back), keeps one timer armed at
``peer.get_timer()``, and publishes the peer's trace events to listeners
and an :class:`asyncio.Queue`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ipseclab.peer import Datagram, Peer
from ipseclab.trace import Event


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, runner: UdpPeerRunner, port: int) -> None:
        self.runner = runner
        self.port = port

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self.runner.on_datagram(data, (addr[0], addr[1]), self.port)

    def error_received(self, exc: Exception) -> None:
        self.runner.peer.count("socket_errors")


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
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ports(self) -> tuple[int, int]:
        return self.peer.config.port, self.peer.config.natt_port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for port in dict.fromkeys(self.ports):
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda port=port: _Protocol(self, port), local_addr=(self.host, port)
            )
            self._transports[port] = transport

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def initiate(self, connection: str) -> None:
        self.peer.initiate(connection, self.now())
        self._flush()

    def on_datagram(self, data: bytes, src: tuple[str, int], local_port: int) -> None:
        self.peer.receive_datagram(data, src, (self.host, local_port), self.now())
        self._flush()

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
        """Put one datagram on the wire, from the socket bound to its source port."""
        transport = self._transports.get(d.src[1]) or self._transports[self.peer.config.port]
        transport.sendto(d.data, d.dst)

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
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        await asyncio.sleep(0)
