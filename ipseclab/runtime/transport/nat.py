"""A simulated NAT for the in-memory network (what a home router does to UDP).

Outbound datagrams from the inside network get the router's public address and a
mapped source port (RFC 4787 "endpoint-independent mapping", with the port kept when
free, as Linux's masquerade does, or remapped from a range); inbound datagrams to the
public address are translated back — if a live mapping exists.  A mapping not used for
``mapping_timeout`` seconds disappears, which is exactly why NAT-T peers send
keepalives (RFC 3948 §2.3); after it is gone the next outbound datagram gets a new
mapping (often a new port), and the responder must follow the peer to it.

Used as ``MemoryNetwork(nat=SimulatedNat(...))``; the NAT reads the network's clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from ipseclab.peer import Datagram
from ipseclab.trace import Address


@dataclass
class NatMapping:
    inside: Address
    public_port: int
    last_used: float


@dataclass
class SimulatedNat:
    """Masquerade ``inside`` behind ``public_ip``; ``clock()`` gives the simulated time."""

    inside: str
    public_ip: str
    clock: Callable[[], float] = lambda: 0.0
    mapping_timeout: float = 60.0
    remap_ports: bool = False
    port_base: int = 20000
    mappings: dict[Address, NatMapping] = field(default_factory=dict)
    translated: int = 0
    dropped: int = 0
    _next_port: int = 0

    def __post_init__(self) -> None:
        self._net = ipaddress.ip_network(self.inside)
        self._next_port = self.port_base

    def _expire(self, now: float) -> None:
        for key in [k for k, m in self.mappings.items() if now - m.last_used > self.mapping_timeout]:
            del self.mappings[key]

    def _public_port(self, inside: Address) -> int:
        used = {m.public_port for m in self.mappings.values()}
        if not self.remap_ports and inside[1] not in used:
            return inside[1]
        while self._next_port in used:
            self._next_port += 1
        port, self._next_port = self._next_port, self._next_port + 1
        return port

    def __call__(self, d: Datagram) -> Datagram | None:
        now = self.clock()
        self._expire(now)
        if ipaddress.ip_address(d.src[0]) in self._net:
            mapping = self.mappings.get(d.src)
            if mapping is None:
                mapping = NatMapping(d.src, self._public_port(d.src), now)
                self.mappings[d.src] = mapping
            mapping.last_used = now
            self.translated += 1
            return Datagram(d.data, (self.public_ip, mapping.public_port), d.dst)
        if d.dst[0] == self.public_ip:
            mapping = next((m for m in self.mappings.values() if m.public_port == d.dst[1]), None)
            if mapping is None:
                self.dropped += 1
                return None
            mapping.last_used = now
            self.translated += 1
            return Datagram(d.data, d.src, mapping.inside)
        return d

    def table(self) -> list[dict[str, object]]:
        """The live mapping table as a student would print it."""
        self._expire(self.clock())
        return [
            {"inside": f"{m.inside[0]}:{m.inside[1]}", "public": f"{self.public_ip}:{m.public_port}", "idle": round(self.clock() - m.last_used, 1)}
            for m in self.mappings.values()
        ]

    def captures(self, wire: list[tuple[float, Datagram, Datagram | None]]) -> tuple[list, list]:
        """What a capture on the inside and on the outside of this NAT would show.

        ``wire`` is :attr:`MemoryNetwork.wire` (each datagram as sent and as delivered).
        Returns two lists of (time, Datagram): inside addresses on the first, the public
        address on the second — the same packets, before and after translation.
        """
        inside, outside = [], []
        for when, sent, delivered in wire:
            from_inside = ipaddress.ip_address(sent.src[0]) in self._net
            if from_inside:
                inside.append((when, sent))
                if delivered is not None:
                    outside.append((when, delivered))
            else:
                outside.append((when, sent))
                if delivered is not None:
                    inside.append((when, delivered))
        return inside, outside
