"""The sans-I/O ESP data plane: SAD, SPD, tunnel/transport processing, sampled trace events.

:class:`DataPlane` is what sits between a TUN device and the network (RFC 4301 §5):

* **outbound** (:meth:`DataPlane.outbound`): an IP packet read from the TUN is
  matched against the SPD (local/remote traffic selectors → outbound SA, RFC 4301
  §4.4.1, §5.1); packets no policy covers are dropped and counted.  The matching
  SA protects it and the result is an :class:`Output` — a whole IP packet (outer
  header + ESP, IP protocol 50) for a raw socket, or the ESP packet as UDP payload
  with its addresses and ports for the UDP 4500 socket (RFC 3948).
* **inbound** (:meth:`DataPlane.inbound_esp`): an ESP packet is looked up in the
  SAD by SPI (RFC 4301 §5.2, RFC 4303 §3.4.2), unprotected, and — in tunnel mode —
  its inner packet checked against the SA's selectors before it is handed back
  for the TUN.

No sockets, no clock: the caller passes ``now`` (any monotonic clock in seconds, the
same one the SAs' ``created`` times use).  Nothing here is thread-safe: one
DataPlane per thread.

Trace events are sampled so that a ping flood never floods a widget: full
:class:`~ipseclab.trace.EspPacket` events for the first ``trace_first`` packets of
each SA and for the packets requested with :meth:`DataPlane.trace_next`; otherwise an
:class:`~ipseclab.trace.EspStats` at most every ``stats_seconds`` (or every
``stats_packets`` packets when the clock stands still, as in the simulated demo).
Drops are always counted; an :class:`~ipseclab.trace.EspDropped` event is emitted at
most once per ``drop_event_seconds`` per SA and reason, carrying how many were
suppressed in between.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ipseclab.esp import packet as pk
from ipseclab.esp.errors import EspConfigError, EspDrop
from ipseclab.esp.sa import EspLifetime, EspSa
from ipseclab.trace import DATA_PLANE, EspDropped, EspPacket, EspStats, Event, Info, SaRef

if TYPE_CHECKING:
    from ipseclab.sa import IpsecSaPair

__all__ = ["DataPlane", "DataPlaneCounters", "Output", "Policy"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EventSink = Callable[[Event], None]
LifetimeHook = Callable[[EspSa, str], None]

_MISS = object()
_new_output = tuple.__new__  # NamedTuple construction without the Python-level __new__


class Output(NamedTuple):
    """One thing to send.

    ``kind == "esp"``: ``data`` is a whole IP packet — outer header (protocol 50)
    and ESP — for a raw socket with a prebuilt header (``IP_HDRINCL``); the ESP
    packet alone is ``data[20:]`` (IPv4) or ``data[40:]`` (IPv6), see :attr:`esp`.
    ``kind == "udp"``: ``data`` is the UDP payload (the ESP packet, no non-ESP
    marker, RFC 3948 §2.2) to send from ``(src, sport)`` to ``(dst, dport)``.
    """

    kind: str
    data: bytes
    src: str
    dst: str
    sport: int = 0
    dport: int = 0

    @property
    def esp(self) -> bytes:
        """The ESP packet without any outer header."""
        if self.kind == "udp":
            return self.data
        if self.data[0] >> 4 == 6:
            return self.data[40:]
        return self.data[(self.data[0] & 0x0F) * 4 :]


@dataclass
class DataPlaneCounters:
    """What the data plane dropped or passed that no single SA accounts for."""

    out_packets: int = 0
    out_bytes: int = 0
    in_packets: int = 0
    in_bytes: int = 0
    no_policy: int = 0  # outbound packet no SPD entry covers (RFC 4301 §5.1: discard)
    unknown_spi: int = 0  # inbound SPI not in the SAD (RFC 4303 §3.4.2)
    policy_mismatch: int = 0  # inner packet outside the SA's selectors (RFC 4301 §5.2)
    bad_inner: int = 0  # inner packet malformed, or next header not IP in tunnel mode
    dummy: int = 0  # next header 59: dummy packet for traffic flow confidentiality (RFC 4303 §2.6)
    not_esp: int = 0  # inbound_ip: neither protocol 50 nor ESP-in-UDP
    keepalives: int = 0  # NAT-keepalive (0xFF) on the ESP-in-UDP port (RFC 3948 §2.3)
    fragments: int = 0  # outer IPv4 fragments made (RFC 4303 §3.3.5)
    sa_drops: dict[str, int] = field(default_factory=dict)  # EspDrop reasons, all SAs

    def as_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {**{k: v for k, v in self.__dict__.items() if k != "sa_drops"}, "sa_drops": dict(self.sa_drops)}


@dataclass
class Policy:
    """One SPD entry: traffic from ``local_ts`` to ``remote_ts`` is protected by ``sa``.

    Packets are matched on addresses only (the lab's Quick Mode selectors are
    subnets, any protocol and port).
    """

    name: str
    local_ts: Network
    remote_ts: Network
    sa: EspSa

    def covers(self, src: bytes, dst: bytes) -> bool:
        """Whether an outbound packet ``src → dst`` (packed addresses) matches."""
        return _inside(src, self.local_ts) and _inside(dst, self.remote_ts)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the SPD listing."""
        return {"name": self.name, "local_ts": str(self.local_ts), "remote_ts": str(self.remote_ts), "spi_out": f"{self.sa.spi:08x}"}


def _inside(address: bytes, net: Network) -> bool:
    if len(address) != (4 if net.version == 4 else 16):
        return False
    mask = int(net.netmask)
    return int.from_bytes(address, "big") & mask == int(net.network_address)


class _OutRoute:
    """Per outbound SA: everything ``outbound`` needs, resolved once."""

    __slots__ = ("sa", "tunnel", "outer", "udp", "label")

    def __init__(self, sa: EspSa) -> None:
        self.sa = sa
        self.tunnel = sa.mode == "tunnel"
        self.udp = sa.udp_encap
        self.outer = pk.OuterHeader(sa.src, sa.dst)
        self.label = _label(sa)


class _InRoute:
    """Per inbound SA: selectors (with a cache of packet address pairs) and NAT-OA."""

    __slots__ = ("sa", "tunnel", "local_ts", "remote_ts", "allowed", "nat_oa", "udp", "label")

    def __init__(self, sa: EspSa, local_ts: Network, remote_ts: Network, nat_oa: tuple[bytes, bytes] | None) -> None:
        self.sa = sa
        self.tunnel = sa.mode == "tunnel"
        self.local_ts, self.remote_ts = local_ts, remote_ts
        self.allowed: dict[bytes, bool] = {}
        self.nat_oa = nat_oa
        self.udp = sa.udp_encap is not None
        self.label = _label(sa)

    def permits(self, key: bytes) -> bool:
        """Inner ``src || dst`` inside remote_ts → local_ts (RFC 4301 §5.2 step 4)."""
        half = len(key) // 2
        return _inside(key[:half], self.remote_ts) and _inside(key[half:], self.local_ts)


def _label(sa: EspSa) -> SaRef:
    return SaRef.esp(sa.name, sa.direction, sa.spi)


def _network(ts: str | Network) -> Network:
    try:
        return ipaddress.ip_network(ts, strict=False) if isinstance(ts, str) else ts
    except ValueError as exc:
        raise EspConfigError(f"bad traffic selector {ts!r}: {exc}") from None


class DataPlane:
    """SAD + SPD + ESP processing for one peer, with no I/O (see the module docstring).

    ``name`` is the peer name put on trace events.  Events go to ``sink`` when
    given, else into a bounded buffer read with :meth:`drain_events`.
    ``on_lifetime(sa, "soft" | "hard")`` is called once per SA and stage when a
    lifetime limit is reached (soft: rekey now; hard: the SA was just removed).
    ``mtu`` bounds outer IPv4 packets of raw ESP: bigger ones are fragmented.
    ``next_seq`` numbers the events (default: the DataPlane's own counter); pass the
    peer's (``Peer.next_seq``) to keep one strictly increasing ``seq`` per peer.
    """

    def __init__(
        self,
        name: str = "",
        *,
        sink: EventSink | None = None,
        next_seq: Callable[[], int] | None = None,
        mtu: int = 1500,
        trace_first: int = 3,
        stats_packets: int = 10_000,
        stats_seconds: float = 1.0,
        drop_event_seconds: float = 1.0,
        max_events: int = 10_000,
        on_lifetime: LifetimeHook | None = None,
        lifetime_check_packets: int = 1024,
        cache_size: int = 65_536,
    ) -> None:
        self.name = name
        self.sink = sink
        self.next_seq = next_seq
        self.mtu = mtu
        self.trace_first = trace_first
        self.stats_packets = stats_packets
        self.stats_seconds = stats_seconds
        self.drop_event_seconds = drop_event_seconds
        self.on_lifetime = on_lifetime
        self.lifetime_check_packets = lifetime_check_packets
        self.cache_size = cache_size
        self.counters = DataPlaneCounters()
        self._events: deque[Event] = deque(maxlen=max_events)
        self._event_seq = 0
        self._sad: dict[bytes, _InRoute] = {}
        self._out: dict[int, _OutRoute] = {}
        self._spd: list[tuple[Policy, _OutRoute]] = []
        self._out_cache: dict[bytes, _OutRoute | None] = {}
        self._trace_budget = 0
        self._drop_limits: dict[tuple[str, str], list[float]] = {}
        self._lifetime_stage: dict[tuple[int, str], str] = {}
        # Per packet only a countdown is decremented; at 0 (or when the stats interval
        # is over) _periodic() does the statistics and lifetime bookkeeping.
        self._countdown = self._period = max(1, min(stats_packets, lifetime_check_packets))
        # statistics since the last EspStats
        self._stats_due = float("-inf")
        self._stats_since: float | None = None
        self._stats_base = (0, 0, 0, 0)
        self._stats_drops: dict[str, int] = {}

    # -- SAD / SPD ---------------------------------------------------------------------

    def install(
        self,
        inbound: EspSa | None,
        outbound: EspSa | None,
        local_ts: str | Network,
        remote_ts: str | Network,
        *,
        name: str = "",
        nat_oa: tuple[str, str] | None = None,
    ) -> None:
        """Install SAs for traffic ``local_ts <-> remote_ts``: ``inbound`` into the SAD
        (by SPI), ``outbound`` as the SPD entry's SA (replacing the SA of an entry with
        the same selectors: the rekeyed SA takes over; the old inbound SA stays in the
        SAD until :meth:`remove`, for packets still in flight).

        ``nat_oa`` = (original source, original destination) of the peer's transport
        mode packets (NAT-OA, RFC 3947 §5.2) for the RFC 3948 §3.1.2 checksum fix-up.
        """
        local, remote = _network(local_ts), _network(remote_ts)
        if inbound is not None:
            oa = (pk.address_bytes(nat_oa[0]), pk.address_bytes(nat_oa[1])) if nat_oa else None
            self._sad[inbound.spi.to_bytes(4, "big")] = _InRoute(inbound, local, remote, oa)
        if outbound is not None:
            route = _OutRoute(outbound)
            self._out[outbound.spi] = route
            policy = Policy(name or outbound.name or f"{local} <-> {remote}", local, remote, outbound)
            self._spd = [(p, r) for p, r in self._spd if (p.local_ts, p.remote_ts) != (local, remote)]
            self._spd.append((policy, route))
            # most specific selectors first (RFC 4301 §4.4.1: the SPD is ordered)
            self._spd.sort(key=lambda pr: -(pr[0].local_ts.prefixlen + pr[0].remote_ts.prefixlen))
            self._out_cache.clear()

    def install_pair(
        self,
        pair: IpsecSaPair,
        *,
        udp_ports: tuple[int, int] | None = None,
        esn: bool = False,
        replay_window: int = 64,
        lifetime: EspLifetime | None = None,
        nat_oa: tuple[str, str] | None = None,
    ) -> tuple[EspSa, EspSa]:
        """Install both SAs of a Quick Mode pair; returns ``(inbound, outbound)``.

        ``udp_ports`` = (local port, remote port) of the floated ISAKMP SA for
        UDP-encapsulated pairs (default 4500/4500).
        """
        kw: dict[str, Any] = {"udp_ports": udp_ports, "esn": esn, "replay_window": replay_window, "lifetime": lifetime}
        sa_in = EspSa.from_ipsec(pair.inbound, pair, "inbound", **kw)
        sa_out = EspSa.from_ipsec(pair.outbound, pair, "outbound", **kw)
        self.install(sa_in, sa_out, pair.local_ts, pair.remote_ts, name=pair.child, nat_oa=nat_oa)
        return sa_in, sa_out

    def remove(self, spi: int) -> bool:
        """Remove the SA with this SPI (inbound or outbound, and its SPD entry)."""
        found = self._sad.pop(spi.to_bytes(4, "big"), None) is not None
        for key in [k for k in self._lifetime_stage if k[0] == spi]:
            del self._lifetime_stage[key]
        route = self._out.pop(spi, None)
        if route is not None:
            found = True
            self._spd = [(p, r) for p, r in self._spd if r is not route]
            self._out_cache.clear()
        return found

    def sa(self, spi: int) -> EspSa | None:
        """The inbound or outbound SA with this SPI."""
        route = self._sad.get(spi.to_bytes(4, "big"))
        if route is not None:
            return route.sa
        out = self._out.get(spi)
        return out.sa if out is not None else None

    def sas(self) -> list[EspSa]:
        """Every installed SA, inbound first."""
        return [r.sa for r in self._sad.values()] + [r.sa for r in self._out.values()]

    def policies(self) -> list[dict[str, Any]]:
        """The SPD as plain data, in match order."""
        return [p.as_dict() for p, _ in self._spd]

    def sa_table(self) -> list[dict[str, Any]]:
        """Every SA as plain data (no keys), with whether an SPD entry uses it."""
        policies = {r.sa.spi: p for p, r in self._spd}
        rows = []
        for route in self._sad.values():
            rows.append({**route.sa.summary(), "local_ts": str(route.local_ts), "remote_ts": str(route.remote_ts), "state": "active"})
        for route in self._out.values():
            policy = policies.get(route.sa.spi)
            selectors = {"local_ts": str(policy.local_ts), "remote_ts": str(policy.remote_ts)} if policy else {}
            rows.append({**route.sa.summary(), **selectors, "state": "active" if policy else "superseded"})
        return rows

    def stats(self) -> dict[str, Any]:
        """Data plane counters plus per-SA counters, plain data."""
        return {"counters": self.counters.as_dict(), "sas": {f"{sa.spi:08x}": sa.counters.as_dict() for sa in self.sas()}}

    # -- outbound ------------------------------------------------------------------------

    def outbound(self, ip_packet: bytes, now: float) -> list[Output]:
        """Protect one IP packet from the TUN: ``[]`` if no policy covers it (counted)."""
        if len(ip_packet) < 20:
            self._plane_drop("out", "bad inner packet", f"{len(ip_packet)}-byte packet", now)
            return []
        version = ip_packet[0] >> 4
        if version == 4:
            key, nh = ip_packet[12:20], pk.IPV4
        elif version == 6 and len(ip_packet) >= 40:
            key, nh = ip_packet[8:40], pk.IPV6
        else:
            self._plane_drop("out", "bad inner packet", f"IP version {version}", now)
            return []
        route = self._out_cache.get(key, _MISS)
        if route is _MISS:
            route = self._resolve(key)
        if route is None:
            self.counters.no_policy += 1
            src, dst = pk.ip_addresses(ip_packet)
            self._plane_drop("out", "no policy", f"no SPD entry covers {src} -> {dst}", now)
            return []
        sa = route.sa
        header = b""
        try:
            if route.tunnel:
                inner, inner_nh = ip_packet, nh
            else:
                header, inner_nh, inner = pk.transport_split(ip_packet)
            esp = sa.protect(inner, inner_nh)
        except EspDrop as exc:
            self._sa_drop(route.label, "out", exc, now)
            return []
        except ValueError as exc:
            self._plane_drop("out", "bad inner packet", str(exc), now)
            return []
        if route.udp is not None:
            out = [_new_output(Output, ("udp", esp, sa.src, sa.dst, route.udp[0], route.udp[1]))]
        else:
            wire = route.outer.wrap(esp, sa.seq & 0xFFFF) if route.tunnel else pk.transport_encap(header, esp)
            if len(wire) > self.mtu and wire[0] >> 4 == 4:
                frags = pk.fragment_ipv4(wire, self.mtu)
                self.counters.fragments += len(frags)
                out = [Output("esp", f, sa.src, sa.dst) for f in frags]
            else:
                out = [_new_output(Output, ("esp", wire, sa.src, sa.dst, 0, 0))]
        c = self.counters
        c.out_packets += 1
        c.out_bytes += len(ip_packet)
        if sa.counters.packets <= self.trace_first or self._trace_budget > 0:
            self._packet_event(route.label, sa, "out", esp, inner, inner_nh, out[0].data, now)
        n = self._countdown - 1
        self._countdown = n
        if n <= 0 or now >= self._stats_due:
            self._periodic(now)
        return out

    def _resolve(self, key: bytes) -> _OutRoute | None:
        half = len(key) // 2
        src, dst = key[:half], key[half:]
        route = next((r for p, r in self._spd if p.covers(src, dst)), None)
        if len(self._out_cache) >= self.cache_size:
            self._out_cache.clear()
        self._out_cache[key] = route
        return route

    # -- inbound -------------------------------------------------------------------------

    def inbound_ip(self, packet: bytes, now: float) -> bytes | None:
        """Like :meth:`inbound_esp` for a whole received IP packet (what a raw socket
        reads): protocol 50, or UDP whose payload is ESP.  Transport mode keeps the
        received header's fields (TTL, TOS, ID)."""
        parts = pk.split_outer(packet)
        if parts is None or (parts[2] == pk.UDP_PROTO and parts[5][:4] == b"\x00\x00\x00\x00"):
            self.counters.not_esp += 1
            return None
        src, dst, _, _, _, esp = parts
        header = packet[: (packet[0] & 0x0F) * 4] if packet[0] >> 4 == 4 else packet[:40]
        return self.inbound_esp(esp, src, dst, now, header=header, wire=packet)

    def knows_spi(self, spi: bytes) -> bool:
        """Is there an inbound SA with this (4-byte, network order) SPI?"""
        return spi in self._sad

    def inbound_esp(
        self, esp: bytes, src: str, dst: str, now: float, *, header: bytes | None = None, wire: bytes = b""
    ) -> bytes | None:
        """The IP packet for the TUN carried by one received ESP packet (the IP
        payload of protocol 50, or the UDP payload on port 4500 after the caller
        took IKE's non-ESP-marker datagrams out), or ``None`` with a counted drop.

        ``src``/``dst`` are the outer addresses as received; transport mode uses
        them for the rebuilt header (and, with UDP encapsulation, fixes the inner
        TCP/UDP checksum, RFC 3948 §3.1.2).  ``header``/``wire`` (the received outer
        header and whole packet) are what :meth:`inbound_ip` passes: transport mode
        then keeps the header's fields, trace events show the whole packet.
        """
        route = self._sad.get(esp[:4])
        if route is None:
            if esp == b"\xff":
                self.counters.keepalives += 1
                return None
            self.counters.unknown_spi += 1
            spi = int.from_bytes(esp[:4], "big") if len(esp) >= 4 else None
            self._plane_drop("in", "unknown spi", f"no inbound SA for SPI {esp[:4].hex() or '-'} from {src}", now, spi=spi)
            return None
        sa = route.sa
        try:
            payload, nh = sa.unprotect(esp)
        except EspDrop as exc:
            self._sa_drop(route.label, "in", exc, now)
            return None
        if route.tunnel:
            if nh == pk.IPV4 and len(payload) >= 20 and payload[0] >> 4 == 4:
                total = int.from_bytes(payload[2:4], "big")
                key = payload[12:20]
            elif nh == pk.IPV6 and len(payload) >= 40 and payload[0] >> 4 == 6:
                total = 40 + int.from_bytes(payload[4:6], "big")
                key = payload[8:40]
            else:
                return self._bad_inner(route, nh, payload, now)
            if total != len(payload):
                if total > len(payload):
                    return self._bad_inner(route, nh, payload, now)
                payload = payload[:total]  # TFC padding after the inner packet (RFC 4303 §2.7)
            ok = route.allowed.get(key)
            if ok is None:
                ok = route.permits(key)
                if len(route.allowed) >= self.cache_size:
                    route.allowed.clear()
                route.allowed[key] = ok
            if not ok:
                self.counters.policy_mismatch += 1
                isrc, idst = pk.ip_addresses(payload)
                self._plane_drop("in", "policy mismatch", f"{isrc} -> {idst} is outside {route.remote_ts} -> {route.local_ts}", now, spi=sa.spi)
                return None
            inner = payload
        else:
            if nh == 59:
                self.counters.dummy += 1
                return None
            inner = self._transport_inner(route, payload, nh, src, dst, header)
        c = self.counters
        c.in_packets += 1
        c.in_bytes += len(inner)
        if sa.counters.packets <= self.trace_first or self._trace_budget > 0:
            self._packet_event(route.label, sa, "in", esp, payload, nh, wire, now, src=src, dst=dst)
        n = self._countdown - 1
        self._countdown = n
        if n <= 0 or now >= self._stats_due:
            self._periodic(now)
        return inner

    def _transport_inner(self, route: _InRoute, payload: bytes, nh: int, src: str, dst: str, header: bytes | None) -> bytes:
        s, d = pk.address_bytes(src), pk.address_bytes(dst)
        if route.udp and nh in (pk.TCP_PROTO, pk.UDP_PROTO):
            if route.nat_oa is not None:
                payload = pk.fix_l4_checksum(nh, payload, route.nat_oa, (s, d))
            else:
                payload = pk.recompute_l4_checksum(nh, payload, s, d)
        if header is None:
            header = pk.ipv4_header(s, d, nh, 0) if len(s) == 4 else pk.ipv6_header(s, d, nh, 0)
        return pk.transport_decap(header, nh, payload)

    def _bad_inner(self, route: _InRoute, nh: int, payload: bytes, now: float) -> None:
        if nh == 59:
            self.counters.dummy += 1
            return None
        self.counters.bad_inner += 1
        self._plane_drop("in", "bad inner packet", f"next header {nh}, {len(payload)} bytes", now, spi=route.sa.spi)
        return None

    # -- lifetimes ---------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Periodic work: lifetime checks and a pending :class:`EspStats` (call ~1/s)."""
        self._check_lifetimes(now)
        if self._stats_since is not None and now >= self._stats_due:
            self._emit_stats(now)

    def _check_lifetimes(self, now: float) -> None:
        for sa in self.sas():
            stage = sa.expiry(now)
            if stage is None or self._lifetime_stage.get((sa.spi, sa.direction)) == stage:
                continue
            self._lifetime_stage[(sa.spi, sa.direction)] = stage
            what = "soft" if stage == "soft" else "hard"
            verb = "rekey now" if stage == "soft" else "SA removed"
            self._emit(Info, now, sa=_label(sa), message=f"{what} lifetime reached ({sa.counters.packets} packets, {sa.counters.bytes} bytes, {now - sa.created:.0f} s): {verb}")
            if stage == "hard":
                self.remove(sa.spi)
            if self.on_lifetime is not None:
                self.on_lifetime(sa, stage)

    # -- events --------------------------------------------------------------------------

    def trace_next(self, n: int = 1) -> None:
        """Emit a full :class:`EspPacket` event for each of the next ``n`` packets (either way)."""
        self._trace_budget += n

    def drain_events(self) -> list[Event]:
        """Buffered events (when no ``sink`` was given), oldest first; empties the buffer."""
        out = list(self._events)
        self._events.clear()
        return out

    def flush_stats(self, now: float) -> None:
        """Emit the pending :class:`EspStats` now (if any packet passed since the last one)."""
        if self._stats_since is not None:
            self._emit_stats(now)

    def _emit(self, cls: type[Event], now: float, **fields: Any) -> None:
        if self.next_seq is not None:
            seq = self.next_seq()
        else:
            self._event_seq += 1
            seq = self._event_seq
        event = cls(peer=self.name, time=now, seq=seq, **fields)
        if self.sink is not None:
            self.sink(event)
        else:
            self._events.append(event)

    def _periodic(self, now: float) -> None:
        """Every ``min(stats_packets, lifetime_check_packets)`` packets, and when the
        statistics interval is over: lifetimes and a due :class:`EspStats`."""
        if self._countdown <= 0:
            self._countdown = self._period
            self._check_lifetimes(now)
        if self._stats_since is None:  # first packet: start the first interval
            self._stats_since, self._stats_due = now, now + self.stats_seconds
            return
        c, base = self.counters, self._stats_base
        if now >= self._stats_due or c.out_packets + c.in_packets - base[0] - base[1] >= self.stats_packets:
            self._emit_stats(now)

    def _emit_stats(self, now: float) -> None:
        c = self.counters
        base = self._stats_base
        current = (c.out_packets, c.in_packets, c.out_bytes, c.in_bytes)
        drops = {k: v for k, v in self._drop_totals().items() if v != self._stats_drops.get(k, 0)}
        delta_drops = {k: v - self._stats_drops.get(k, 0) for k, v in drops.items()}
        since = self._stats_since if self._stats_since is not None else now
        if current != base or delta_drops:
            self._emit(
                EspStats,
                now,
                interval=now - since,
                packets_out=current[0] - base[0],
                packets_in=current[1] - base[1],
                bytes_out=current[2] - base[2],
                bytes_in=current[3] - base[3],
                drops=delta_drops,
                sas=[
                    {"spi": f"{sa.spi:08x}", "direction": sa.direction, "name": sa.name, "packets": sa.counters.packets,
                     "bytes": sa.counters.bytes, "drops": sa.counters.drops}
                    for sa in self.sas()
                ],
            )
        self._stats_base = current
        self._stats_drops = self._drop_totals()
        self._stats_since, self._stats_due = now, now + self.stats_seconds

    def _drop_totals(self) -> dict[str, int]:
        c = self.counters
        totals = dict(c.sa_drops)
        for name in ("no_policy", "unknown_spi", "policy_mismatch", "bad_inner"):
            if getattr(c, name):
                totals[name.replace("_", " ")] = getattr(c, name)
        return totals

    def _packet_event(
        self, label: SaRef, sa: EspSa, direction: str, esp: bytes, payload: bytes, nh: int, wire: bytes, now: float,
        *, src: str = "", dst: str = "",
    ) -> None:
        from ipseclab.esp.inspect import esp_fields, inner_view, outer_view

        requested = sa.counters.packets > self.trace_first
        if requested:
            self._trace_budget -= 1
        fields = esp_fields(sa, esp, len(payload))
        if wire and wire is not esp:
            outer = outer_view(wire)
        else:  # only the ESP packet and its outer addresses are known
            outer = {"src": src, "dst": dst, "protocol": 17 if sa.udp_encap else 50}
            if sa.udp_encap:
                outer["udp"] = {"sport": sa.udp_encap[0], "dport": sa.udp_encap[1]}
        if direction == "out" and sa.udp_encap:
            outer = {"version": 4 if ":" not in sa.src else 6, "src": sa.src, "dst": sa.dst, "protocol": 17,
                     "protocol_name": "UDP", "udp": {"sport": sa.udp_encap[0], "dport": sa.udp_encap[1]}}
        summary, inner_fields = inner_view(payload, nh)
        self._emit(
            EspPacket,
            now,
            sa=label,
            direction=direction,
            spi=sa.spi,
            esp_seq=fields["seq"],
            mode=sa.mode + (" (UDP-encapsulated)" if sa.udp_encap else ""),
            outer=outer,
            esp=esp,
            iv=fields["iv"],
            ciphertext_len=fields["ciphertext_len"],
            icv=fields["icv"],
            pad_len=fields.get("pad_len", 0),
            next_header=nh,
            inner=payload,
            inner_summary=summary,
            inner_fields=inner_fields,
            inner_len=len(payload),
            # the whole IP packet on the wire (a UDP-encapsulated outbound ``wire`` is only the UDP payload)
            wire_len=len(wire) if wire and len(wire) > len(esp) else len(esp) + (28 if sa.udp_encap else 20),
            reason="requested" if requested else f"first {self.trace_first} packets of the SA",
        )

    # -- drops ---------------------------------------------------------------------------

    def _sa_drop(self, label: SaRef, direction: str, exc: EspDrop, now: float) -> None:
        drops = self.counters.sa_drops
        drops[exc.reason] = drops.get(exc.reason, 0) + 1
        sa = self.sa(exc.spi) if exc.spi is not None else None
        total = sa.counters.by_reason.get(exc.reason, 0) if sa is not None else drops[exc.reason]
        self._drop_event(label, direction, exc.reason, exc.detail, now, spi=exc.spi, seq=exc.seq, total=total)
        if exc.reason == "hard lifetime":
            self._check_lifetimes(now)

    def _plane_drop(self, direction: str, reason: str, detail: str, now: float, *, spi: int | None = None) -> None:
        if reason == "bad inner packet" and direction == "out":
            self.counters.bad_inner += 1
        total = self._drop_totals().get(reason, 0)
        self._drop_event(DATA_PLANE, direction, reason, detail, now, spi=spi, seq=None, total=total)

    def _drop_event(self, label: SaRef, direction: str, reason: str, detail: str, now: float, *,
                    spi: int | None, seq: int | None, total: int) -> None:
        """Rate-limited: the first drop of a kind is reported, then at most one per interval."""
        # keyed by SA label (bounded), not by SPI: random SPIs must not grow this table
        state = self._drop_limits.get((label, reason))
        if state is None:
            state = self._drop_limits[(label, reason)] = [float("-inf"), 0]
        if now - state[0] < self.drop_event_seconds:
            state[1] += 1
            return
        suppressed = int(state[1])
        state[0], state[1] = now, 0
        self._emit(EspDropped, now, sa=label, direction=direction, reason=reason, detail=detail, spi=spi,
                   esp_seq=seq, total=total, suppressed=suppressed)
