"""In-memory transport: two (or more) sans-I/O peers on a simulated network and clock.

Deterministic and steppable — the embedded default that works on any laptop
without root.  :meth:`MemoryNetwork.step` delivers exactly one datagram (what the
notebooks' *Next* button does); :meth:`MemoryNetwork.run` delivers until nothing is
in flight; :meth:`MemoryNetwork.advance` moves the simulated clock and fires
timers (retransmissions, SA expiry).  A ``nat`` function may rewrite datagrams in
flight (a simulated NAT), a ``drop`` predicate loses them (a lossy link).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ipseclab.peer import Datagram, Peer
from ipseclab.trace import Event

Listener = Callable[[Event], None]


@dataclass
class Delivery:
    """What one step did: the datagram delivered (or dropped) and to whom."""

    datagram: Datagram
    receiver: str | None
    dropped: bool = False


@dataclass
class MemoryNetwork:
    """A set of peers keyed by IP address, a FIFO of datagrams in flight and a clock."""

    peers: list[Peer]
    now: float = 0.0
    nat: Callable[[Datagram], Datagram | None] | None = None
    drop: Callable[[Datagram], bool] | None = None
    in_flight: deque[Datagram] = field(default_factory=deque)
    events: list[Event] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    dropped: int = 0
    #: every datagram put on the link: (time, as sent, as delivered or None when lost) —
    #: with a NAT the two differ, which is what a capture on each side of the router shows
    wire: list[tuple[float, Datagram, Datagram | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_address = {p.config.address: p for p in self.peers}

    def peer(self, name: str) -> Peer:
        return next(p for p in self.peers if p.name == name)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def _collect(self, peers: Iterable[Peer]) -> None:
        for p in peers:
            while (event := p.next_event()) is not None:
                self.events.append(event)
                for listener in self.listeners:
                    listener(event)
            self.in_flight.extend(p.datagrams_to_send())

    def collect(self) -> None:
        """Take the events and datagrams the peers queued after being called directly."""
        self._collect(self.peers)

    def initiate(self, peer_name: str, connection: str) -> None:
        self.peer(peer_name).initiate(connection, self.now)
        self._collect(self.peers)

    @property
    def pending(self) -> int:
        return len(self.in_flight)

    def step(self) -> Delivery | None:
        """Deliver the next datagram in flight; None when nothing is in flight."""
        if not self.in_flight:
            return None
        sent = dgram = self.in_flight.popleft()
        if self.drop is not None and self.drop(dgram):
            self.dropped += 1
            self.wire.append((self.now, sent, None))
            return Delivery(dgram, None, dropped=True)
        if self.nat is not None:
            translated = self.nat(dgram)
            if translated is None:
                self.dropped += 1
                self.wire.append((self.now, sent, None))
                return Delivery(dgram, None, dropped=True)
            dgram = translated
        self.wire.append((self.now, sent, dgram))
        receiver = self._by_address.get(dgram.dst[0])
        if receiver is None:
            self.dropped += 1
            return Delivery(dgram, None, dropped=True)
        receiver.receive_datagram(dgram.data, dgram.src, dgram.dst, self.now)
        self._collect(self.peers)
        return Delivery(dgram, receiver.name)

    def run(self, max_steps: int = 10_000) -> int:
        """Deliver until nothing is in flight; returns the number of deliveries."""
        steps = 0
        while self.in_flight and steps < max_steps:
            self.step()
            steps += 1
        return steps

    def next_timer(self) -> float | None:
        timers = [t for p in self.peers if (t := p.get_timer()) is not None]
        return min(timers) if timers else None

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer due on the way (and delivering its output)."""
        end = self.now + seconds
        while True:
            self.run()
            t = self.next_timer()
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            for p in self.peers:
                p.handle_timer(self.now)
            self._collect(self.peers)
        self.now = end
        self.run()
