"""Pings through the ESP SAs of an in-memory demo: the data plane visible without root.

:func:`ping_through_sas` gives each peer of a finished :class:`~ipseclab.teaching.lab.LabSession`
a :class:`~ipseclab.esp.dataplane.DataPlane` with its Quick Mode SA pairs, then sends
ICMP echo requests (built with scapy) from the first host of left's protected subnet
to the first host of right's: left's ``outbound`` → the wire → right's
``inbound_ip`` → an echo reply built by "right's host" → right's ``outbound`` →
left's ``inbound_ip``.  Every ESP packet on the wire is kept (for the pcap) and every
data plane event goes into the session's event list.

SA lifetimes are followed as the daemon does: a soft limit (bytes, packets, seconds)
makes the peer rekey the child (:meth:`~ipseclab.peer.Peer.rekey_child`, a Quick Mode
on the in-memory network between two echoes), a hard one deletes the pair; the data
planes then install the new pairs and drop the deleted ones (RFC 4301 §4.4.2.1).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ipseclab.esp import packet as pk
from ipseclab.esp.dataplane import DataPlane, LifetimeHook, Output
from ipseclab.esp.sa import EspSa
from ipseclab.trace import Event

if TYPE_CHECKING:
    from ipseclab.teaching.lab import LabSession

__all__ = ["PingResult", "ping_through_sas"]


@dataclass
class PingResult:
    """What the pings did: counts, each echo's outcome and the ESP packets on the wire."""

    sent: int = 0
    received: int = 0
    src: str = ""
    dst: str = ""
    lines: list[str] = field(default_factory=list)
    wire: list[tuple[float, bytes]] = field(default_factory=list)  # (time, IP packet) for a pcap
    planes: dict[str, DataPlane] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Echo requests without a matching reply."""
        return self.sent - self.received


def _wire_packet(out: Output) -> bytes:
    if out.kind == "udp":
        return pk.udp_packet(out.src, out.dst, out.sport, out.dport, out.data)
    return out.data


def _first_host(net: str) -> str:
    network = ipaddress.ip_network(net, strict=False)
    return str(next(network.hosts()) if network.num_addresses > 1 else network.network_address)


def ping_through_sas(session: LabSession, count: int, *, interval: float = 0.01, payload_size: int = 56) -> PingResult:
    """Send ``count`` echo requests through the established SAs (see the module docstring)."""
    from scapy.layers.inet import ICMP, IP
    from scapy.packet import Raw

    events: list[Event] = session.network.events
    left, right = session.left, session.right
    peers = {p.name: p for p in (left, right)}
    # lifetime limits reached while a packet is processed: handled between echoes
    reached: list[tuple[str, int, str, str]] = []

    def hook(name: str) -> LifetimeHook:
        def on_lifetime(sa: EspSa, stage: str) -> None:
            reached.append((name, sa.spi, stage, sa.limit_reached(sa_clock[0])))

        return on_lifetime

    sa_clock = [session.network.now]
    planes = {
        p.name: DataPlane(p.name, sink=events.append, next_seq=p.next_seq, on_lifetime=hook(p.name), lifetime_check_packets=1)
        for p in (left, right)
    }
    installed: dict[str, set[tuple[int, int]]] = {name: set() for name in planes}

    def sync() -> None:
        """Install new Quick Mode pairs in each data plane and remove deleted ones."""
        for peer in (left, right):
            plane, have = planes[peer.name], installed[peer.name]
            live = {(pair.inbound.spi, pair.outbound.spi): pair for pair in peer.child_sas}
            for key in have - live.keys():
                plane.remove(key[0])
                plane.remove(key[1])
                have.discard(key)
            for key, pair in live.items():
                if key in have:
                    continue
                # ESP-in-UDP uses the (floated, possibly NAT-mapped) ports of the ISAKMP SA
                isakmp = next((sa for sa in peer.ike_sas.values() if pair in sa.children), None)
                ports = (isakmp.local[1], isakmp.remote[1]) if isakmp is not None and pair.udp_encapsulated else None
                plane.install_pair(pair, udp_ports=ports)
                have.add(key)

    def follow_lifetimes(t: float) -> None:
        """Soft limit: the peer rekeys (a Quick Mode on the in-memory network); hard: the pair goes."""
        if not reached:
            return
        session.network.now = max(session.network.now, t)
        while reached:
            name, spi, stage, reason = reached.pop(0)
            peers[name].sa_lifetime_reached(spi, stage, session.network.now, reason)
            session.network.collect()
            session.network.run()
        sync()

    sync()
    result = PingResult(planes=planes)
    if not left.child_sas:
        result.lines.append("no IPsec SAs: nothing to ping through")
        return result
    first = left.child_sas[0]
    src, dst = _first_host(first.local_ts), _first_host(first.remote_ts)
    result.src, result.dst = src, dst
    start = session.network.now
    data = bytes(i & 0xFF for i in range(payload_size))

    def carry(outputs: list[Output], receiver: DataPlane, t: float) -> bytes | None:
        inner = None
        for out in outputs:
            wire = _wire_packet(out)
            result.wire.append((t, wire))
            inner = receiver.inbound_ip(wire, t)
        return inner

    for i in range(1, count + 1):
        t = start + i * interval
        sa_clock[0] = t
        follow_lifetimes(t)
        request = bytes(IP(src=src, dst=dst, id=i) / ICMP(type=8, id=0x1C5, seq=i) / Raw(data))
        result.sent += 1
        arrived = carry(planes[left.name].outbound(request, t), planes[right.name], t)
        if arrived is None:
            result.lines.append(f"echo {i}: request lost")
            continue
        req = IP(arrived)
        if not req.haslayer(ICMP) or req[ICMP].type != 8:
            result.lines.append(f"echo {i}: right received something else: {req.summary()}")
            continue
        reply = bytes(IP(src=req.dst, dst=req.src, id=0x8000 + i) / ICMP(type=0, id=req[ICMP].id, seq=req[ICMP].seq) / Raw(bytes(req[ICMP].payload)))
        back = carry(planes[right.name].outbound(reply, t + interval / 4), planes[left.name], t + interval / 4)
        if back is None:
            result.lines.append(f"echo {i}: reply lost")
            continue
        rep = IP(back)
        if rep.haslayer(ICMP) and rep[ICMP].type == 0 and rep[ICMP].seq == i and bytes(rep[ICMP].payload) == data:
            result.received += 1
            result.lines.append(f"echo {i}: {src} -> {dst} and back through ESP ({len(request)} bytes inside, {len(result.wire[-1][1])} on the wire)")
        else:
            result.lines.append(f"echo {i}: unexpected reply {rep.summary()}")
    end = start + (count + 1) * interval
    follow_lifetimes(end)
    for plane in planes.values():
        plane.flush_stats(end)
    return result
