"""A sans-I/O IKE peer: configuration, SA database, timers, resource bounds and I/O.

In the spirit of aioquic's ``QuicConnection`` and h11's ``Connection``, a
:class:`Peer` never touches sockets, clocks or threads.  Its only inputs are API
calls with the current time, datagrams with their addresses, and timer expiry; its
outputs are datagrams to send, the next timer and trace events::

    peer.initiate("site", now)
    peer.receive_datagram(data, src, dst, now)
    for d in peer.datagrams_to_send(): ...
    peer.get_timer(); peer.handle_timer(now)
    while (event := peer.next_event()) is not None: ...

Everything else — the in-memory stepper, asyncio UDP sockets, TUN, widgets — is
an adapter around these calls.

The peer is version-neutral.  What happens on the wire is the business of one
engine per IKE version (:mod:`ipseclab.engines` picks it, as charon's
``task_manager_create()`` does): a connection's ``version`` chooses the engine that
initiates, the header's major version the one that receives.  The peer keeps what
every version shares: the IKE and child SA tables, SPI allocation, the NAT-T port
(RFC 3948 §2.2: four zero bytes, the non-ESP marker, before IKE on 4500; a single
0xFF byte is a keepalive, §2.3) and following a peer that moved, lifetimes, the bounds
on what an unauthenticated datagram may cost, deleting, ``terminate`` and the SA table.
When to negotiate and delete — start/close/DPD actions, acquires, INITIAL-CONTACT,
re-authentication, child rekeys — is :mod:`ipseclab.life_cycle`, mixed in.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Protocol

from ipseclab.config import Connection, PeerConfig
from ipseclab.crypto.rng import Rng, SystemRng
from ipseclab.engines import IkeEngine, create_engines
from ipseclab.errors import ConfigError
from ipseclab.life_cycle import SaLifeCycle
from ipseclab.pools import AddressPool, Leases, lease
from ipseclab.sa import (
    DELETED,
    RESPONDER_REAUTH_FRACTION,
    SOFT_FRACTION,
    ChildState,
    IkeSa,
    IpsecSaPair,
)
from ipseclab.trace import (
    NO_SA,
    Address,
    ErrorEvent,
    Event,
    IkeSaInfo,
    Info,
    NatKeepalive,
    PeerMoved,
    PortFloated,
    SaDeleted,
    SaEstablished,
    SaRef,
    StateChanged,
)
from ipseclab.wire.header import major_version

NON_ESP_MARKER = b"\x00\x00\x00\x00"
NATT_KEEPALIVE = b"\xff"


class Stateful(Protocol):
    """Anything with a state that events name: an SA, a pair of SAs, an exchange."""

    state: Any

    @property
    def ref(self) -> SaRef: ...


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram: the exact payload (with a non-ESP marker on 4500) and its addresses."""

    data: bytes
    src: Address
    dst: Address


class Peer(SaLifeCycle):
    """One IKE peer, sans-I/O: any IKE version its connections name."""

    def __init__(self, config: PeerConfig, *, rng: Rng | None = None) -> None:
        self.config = config
        self.name = config.name
        self.rng: Rng = rng or SystemRng()
        self.now = 0.0
        self.ike_sas: dict[bytes, IkeSa] = {}  # by initiator SPI (IKEv1: initiator cookie)
        self.child_sas: list[IpsecSaPair] = []
        self.counters: dict[str, int] = {}
        self._out: deque[Datagram] = deque()
        self._events: deque[Event] = deque()
        self._seq = 0
        self._spis: set[int] = set()
        # responder IKE SAs not established yet, oldest first, and how many per address
        self._half_open: dict[bytes, IkeSa] = {}
        self._half_open_by_address: Counter[str] = Counter()
        self._failed: dict[bytes, float] = {}  # failed IKE SAs: when they leave the table
        self._limit_reports: dict[str, list[float]] = {}  # rate-limited events: [last, suppressed]
        self._timers: list[tuple[float, int, str, Any]] = []  # see _schedule
        self._superseded: dict[bytes, bytes] = {}  # an IKE SA the peer re-authenticated → its successor
        self._trapped: set[str] = set()  # connections armed for acquires (start/close/dpd_action = trap)
        self._last_acquire: dict[str, float] = {}
        self._timer_ticks = itertools.count()
        self.leases = Leases()  # a remote-access gateway's virtual IPs handed out (ipseclab.pools)
        self.engines: dict[int, IkeEngine] = create_engines(self)

    def __repr__(self) -> str:
        return f"<Peer {self.name} {self.config.address} ike={len(self.ike_sas)} child={len(self.child_sas)}>"

    def engine(self, version: int) -> IkeEngine:
        try:
            return self.engines[version]
        except KeyError:
            raise ConfigError(f"IKEv{version} is not implemented") from None

    def _engine_of(self, sa: IkeSa) -> IkeEngine:
        return self.engine(sa.ref.version)

    # -- outputs -----------------------------------------------------------------

    def emit(self, cls: type[Event], **fields: Any) -> None:
        self._seq += 1
        self._events.append(cls(peer=self.name, time=self.now, seq=self._seq, **fields))

    def set_state(self, obj: Stateful, new: str) -> None:
        """The one place any SA or exchange changes state; every change is an event."""
        old = obj.state
        if old != new:
            obj.state = new
            self.emit(StateChanged, sa=obj.ref, old=str(old), new=str(new))

    def next_seq(self) -> int:
        """Take the next trace sequence number, for events another component (the ESP
        data plane) emits in this peer's name: one strictly increasing ``seq`` per peer."""
        self._seq += 1
        return self._seq

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Datagram]:
        out = list(self._out)
        self._out.clear()
        return out

    def queue(self, dgram: Datagram) -> None:
        self._out.append(dgram)

    def count(self, what: str, n: int = 1) -> None:
        self.counters[what] = self.counters.get(what, 0) + n

    def make_datagram(self, sa: IkeSa, raw: bytes) -> Datagram:
        data = NON_ESP_MARKER + raw if sa.floated else raw
        return Datagram(data, sa.local, sa.remote)

    # -- identifiers -----------------------------------------------------------------

    def allocate_spi(self) -> int:
        """A fresh inbound SPI for a child SA (never 0-255, RFC 4303 §2.1)."""
        while True:
            spi = int.from_bytes(self.rng.random_bytes(4), "big")
            if spi >= 256 and spi not in self._spis:
                self._spis.add(spi)
                return spi

    def new_ike_spi(self) -> bytes:
        """A fresh, non-zero IKE SPI (IKEv1 cookie) no SA of ours uses."""
        while True:
            spi = self.rng.random_bytes(8)
            if spi != bytes(8) and spi not in self.ike_sas:
                return spi

    def add_ike_sa(self, sa: IkeSa) -> None:
        self.ike_sas[sa.spi_i] = sa
        sa.created_at = self.now
        if not sa.initiator:
            self._half_open[sa.spi_i] = sa
            self._half_open_by_address[sa.remote[0]] += 1

    @property
    def half_open_count(self) -> int:
        """Responder IKE SAs whose first message came but which are not established yet."""
        return len(self._half_open)

    def _no_longer_half_open(self, sa: IkeSa) -> None:
        if self._half_open.pop(sa.spi_i, None) is not None:
            self._half_open_by_address[sa.remote[0]] -= 1
            if self._half_open_by_address[sa.remote[0]] <= 0:
                del self._half_open_by_address[sa.remote[0]]

    # -- resource bounds ---------------------------------------------------------------

    def admit_half_open(self, address: str) -> bool:
        """May a new responder IKE SA for ``address`` be created?

        Nothing is authenticated at an IKE SA's first message, so its state is bounded:
        at most ``max_half_open_per_address`` per source and ``max_half_open`` in total.
        When the total is reached, the oldest half-open SA whose initiator has not yet
        shown that it receives at its address (IKEv1: it never echoed our cookie in a
        third message) makes room — a flood from spoofed sources evicts only itself.
        Refusals are counted and reported at most once a second.
        """
        cfg = self.config
        if self._half_open_by_address[address] >= cfg.max_half_open_per_address:
            self.count("half_open_per_address_limit")
            self.limited_report(
                "per-address", f"{address} already has {cfg.max_half_open_per_address} half-open IKE SAs "
                "(max_half_open_per_address): its new first messages are dropped"
            )
            return False
        if len(self._half_open) >= cfg.max_half_open:
            victim = next((sa for sa in self._half_open.values() if not sa.address_proven), None)
            if victim is None:
                self.count("half_open_limit")
                self.limited_report(
                    "total", f"{cfg.max_half_open} half-open IKE SAs (max_half_open), all from peers that "
                    "answered our second message: new first messages are dropped"
                )
                return False
            self.count("half_open_evicted")
            self.limited_report(
                "evict", f"{cfg.max_half_open} half-open IKE SAs (max_half_open): the oldest that never "
                "answered our reply are dropped to make room — a flood of first messages?"
            )
            self._forget_ike(victim)
        return True

    def limited_report(self, key: str, message: str, code: str = "LIMIT") -> None:
        """An ErrorEvent at most once a second per kind, saying how many were suppressed."""
        state = self._limit_reports.setdefault(key, [float("-inf"), 0])
        if self.now - state[0] < 1.0:
            state[1] += 1
            return
        more = f" ({int(state[1])} more since the last report)" if state[1] else ""
        state[0], state[1] = self.now, 0
        self.emit(ErrorEvent, sa=NO_SA, code=code, message=message + more)

    def _forget_ike(self, sa: IkeSa) -> None:
        """Drop an IKE SA that never came up, without a word to the peer and without an event
        per SA (a flood would flood the trace too)."""
        self.ike_sas.pop(sa.spi_i, None)
        self._no_longer_half_open(sa)
        self._failed.pop(sa.spi_i, None)
        self._release_lease(sa)
        self._engine_of(sa).forget(sa)

    def _expire_half_open(self, now: float) -> None:
        timeout = self.config.half_open_timeout
        for sa in list(self._half_open.values()):  # oldest first
            if sa.created_at + timeout > now:
                break
            self.count("half_open_expired")
            self.delete_ike(sa, f"half-open for {timeout:.0f} s: the initiator never completed phase 1", notify_peer=False)
        for spi in [spi for spi, when in self._failed.items() if when <= now]:
            sa = self.ike_sas.get(spi)
            self._failed.pop(spi, None)
            if sa is not None:
                self._forget_ike(sa)

    # -- timers ------------------------------------------------------------------

    # SA lifetimes, rekeys and keepalives wait in one heap (pushed when set, checked against the
    # SA when they come up: an entry whose SA moved on or went is stale and dropped), so a
    # datagram costs O(log n) in timers, not a scan of every SA.

    def _schedule(self, kind: str, obj: Any) -> None:
        when = self._timer_value(kind, obj)
        if when is not None:
            heapq.heappush(self._timers, (when, next(self._timer_ticks), kind, obj))

    def _timer_value(self, kind: str, obj: Any) -> float | None:
        if kind in ("ike_expiry", "ike_rekey", "keepalive", "dpd"):
            if self.ike_sas.get(obj.spi_i) is not obj:
                return None
            return {"ike_expiry": obj.expires_at, "ike_rekey": obj.rekey_at, "keepalive": obj.next_keepalive, "dpd": obj.dpd_at}[kind]
        if kind == "restart":
            return None if obj.done else obj.at
        if obj.state == ChildState.DELETED:
            return None
        return obj.expires_at if kind == "child_expiry" else obj.rekey_at

    def _next_sa_timer(self) -> float | None:
        while self._timers:
            when, _, kind, obj = self._timers[0]
            if self._timer_value(kind, obj) == when:
                return when
            heapq.heappop(self._timers)
        return None

    def _due(self, now: float) -> dict[str, list[Any]]:
        due: dict[str, list[Any]] = {
            "keepalive": [], "dpd": [], "ike_expiry": [], "ike_rekey": [], "child_expiry": [], "child_rekey": [], "restart": [],
        }
        while self._timers and self._timers[0][0] <= now:
            when, _, kind, obj = heapq.heappop(self._timers)
            if self._timer_value(kind, obj) == when:
                due[kind].append(obj)
        return due

    def get_timer(self) -> float | None:
        times = [t for engine in self.engines.values() for t in engine.timers()]
        if (sa_timer := self._next_sa_timer()) is not None:
            times.append(sa_timer)
        if self._half_open:  # oldest first
            times.append(next(iter(self._half_open.values())).created_at + self.config.half_open_timeout)
        if self._failed:
            times.append(min(self._failed.values()))
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self.now = now
        for engine in self.engines.values():
            engine.on_timer(now)
        self._expire_half_open(now)
        due = self._due(now)
        for sa in due["keepalive"]:
            self._keepalive(sa)
        for sa in due["dpd"]:
            self._dead_peer_detection(sa)
        # IKE SAs first: a child SA expiring at the same moment is then renewed under
        # the new IKE SA (ike_established starts children without SAs) instead of
        # under the dying one.
        for sa in due["ike_rekey"]:
            if self._timer_value("ike_rekey", sa) is not None:
                self._reauthenticate(sa)
        for sa in due["ike_expiry"]:
            if self._timer_value("ike_expiry", sa) is not None:
                self._expire_ike(sa)
        for pair in due["child_expiry"]:
            if pair.state != ChildState.DELETED:
                self._expire_child(pair)
        for pair in due["child_rekey"]:
            if pair.rekey_at is not None and pair.state != ChildState.DELETED:
                self.rekey_child(pair, now, f"soft lifetime of {now - pair.established_at:.0f} s of {pair.lifetime} s reached")
        for restart in due["restart"]:
            if not restart.done:
                self._restart(restart)

    # -- initiating ----------------------------------------------------------------

    def initiate(self, connection_name: str, now: float) -> IkeSa:
        """Start the IKE SA of a connection (IKEv1: Main or Aggressive Mode); children follow."""
        self.now = now
        conn = self.config.connection_named(connection_name)
        if conn.accepts_any:
            raise ConfigError(f"connection {conn.name} accepts any peer ({conn.remote_address}): it can only respond")
        return self._start_ike(conn)

    def _start_ike(self, conn: Connection) -> IkeSa:
        return self.engine(conn.version).initiate(conn)

    def start_child(self, sa: IkeSa, child_name: str, now: float) -> int:
        """Negotiate child ``child_name`` under the established ``sa`` (IKEv1: a Quick Mode).

        Returns the exchange's message ID.
        """
        self.now = now
        return self._engine_of(sa).start_child(sa, child_name)

    def follow_peer(self, sa: IkeSa, src: Address, dst: Address) -> None:
        """Move the SA to where an authenticated message came from on the NAT-T port
        (RFC 3947 §4, §7).

        Called by an engine only after the message's HASH or signature verified, and
        before it answers: a spoofed datagram carrying the SA's cookies (cleartext in
        every header) moves nothing.  The first time this is the float to 4500; later it
        follows a NAT that gave the peer a new mapping — never by the peer that is itself
        behind the NAT (its idea of the other end does not change).
        """
        if dst[1] != self.config.natt_port or not sa.nat_t or (src == sa.remote and dst == sa.local):
            return
        old = sa.remote
        if not sa.floated:
            sa.local, sa.remote, sa.floated = dst, src, True
            self.emit(PortFloated, sa=sa.ref, old=old, new=src)
        elif not sa.nat_local:
            sa.local, sa.remote = dst, src
            self.emit(PeerMoved, sa=sa.ref, old=old, new=src)
        else:
            self.count("peer_address_change_ignored")

    def _keepalive(self, sa: IkeSa) -> None:
        """RFC 3948 §2.3: the peer behind a NAT sends 0xFF to keep its mapping alive."""
        self.queue(Datagram(NATT_KEEPALIVE, sa.local, sa.remote))
        self.emit(NatKeepalive, sa=sa.ref, src=sa.local, dst=sa.remote)
        sa.next_keepalive = self.now + self.config.natt_keepalive
        self._schedule("keepalive", sa)

    # -- what engines report -----------------------------------------------------------

    def ike_established(self, sa: IkeSa, info: IkeSaInfo, *, lifetime: int) -> None:
        """An engine completed an IKE SA: lifetimes, keepalives, the event, then its children."""
        self._no_longer_half_open(sa)
        sa.established_at = self.now
        sa.expires_at = self.now + lifetime
        self._schedule("ike_expiry", sa)
        conn = sa.connection
        if conn is not None and not conn.accepts_any:
            # either side re-authenticates (charon does); the connection's initiator first
            sa.rekey_at = self.now + lifetime * (SOFT_FRACTION if sa.initiator else RESPONDER_REAUTH_FRACTION)
            self._schedule("ike_rekey", sa)
        if sa.floated and sa.nat_local and self.config.natt_keepalive > 0:
            sa.next_keepalive = self.now + self.config.natt_keepalive
            self._schedule("keepalive", sa)
        self.emit(SaEstablished, sa=sa.ref, ike=info)
        if sa.connection is not None and sa.connection.dpd_delay > 0:
            sa.dpd_seq = int.from_bytes(self.rng.random_bytes(4), "big") >> 1  # RFC 3706 §7: a random start
            sa.dpd_at = self.now + sa.connection.dpd_delay
            self._schedule("dpd", sa)
        old = self.ike_sas.get(sa.replaces) if sa.replaces is not None else None
        if old is not None:
            self._hand_over(old, sa, f"re-authenticated: replaced by {sa.ref.label}")
        elif not sa.initiator and not sa.initial_contact:
            self._peer_reauthenticated(sa)
        if not getattr(sa, "config_pending", False):  # IKEv1 XAUTH / Mode Config first
            self.start_children(sa)

    def start_children(self, sa: IkeSa) -> None:
        """As the connection's initiator: a child for each of its children not up or on the way."""
        if sa.initiator and sa.connection is not None:
            live = {p.child for p in self.child_sas}
            engine = self._engine_of(sa)
            for child in sa.connection.children:
                if child.name not in live and not engine.negotiating_child(child.name):
                    engine.start_child(sa, child.name)

    def ike_failed(self, sa: IkeSa) -> None:
        """An engine gave up on an IKE SA that never came up: it stays visible (``list_sas``)
        for ``failed_sa_grace`` seconds, then leaves the table."""
        sa.expires_at = None
        self._no_longer_half_open(sa)
        self._failed[sa.spi_i] = self.now + self.config.failed_sa_grace
        self.emit(SaDeleted, sa=sa.ref, reason="phase 1 failed")

    def child_established(self, sa: IkeSa, pair: IpsecSaPair, *, initiator: bool) -> None:
        sa.children.append(pair)
        self.child_sas.append(pair)
        self._schedule("child_expiry", pair)
        self._schedule("child_rekey", pair)
        # make-before-break: the pairs this negotiation replaces go now (RFC 4301 §4.4.2.1)
        if initiator:
            for old in [p for p in self.child_sas if p.child == pair.child and p.state == ChildState.REKEYING]:
                self.delete_child(old, f"rekeyed: replaced by SPIs {pair.inbound.spi:08x}/{pair.outbound.spi:08x}")
            return
        # the peer rekeyed: its older pairs for this child carry packets still in flight
        # until it deletes them (charon keeps them until they expire)
        for old in [p for p in self.child_sas if p is not pair and p.child == pair.child
                    and p.state == ChildState.ESTABLISHED and self._same_peer(sa, p)]:
            self.set_state(old, ChildState.REKEYED)
            self.emit(Info, sa=old.ref, message=f"child {pair.child} rekeyed by the peer: SPIs {old.inbound.spi:08x}/"
                      f"{old.outbound.spi:08x} superseded by {pair.inbound.spi:08x}/{pair.outbound.spi:08x}")

    # -- remote access: virtual IPs ---------------------------------------------

    def lease_virtual_ip(self, sa: IkeSa, how: str = "") -> AddressPool:
        """A gateway's IKE SA leases its client an address from the connection's pools — the
        one the client's identity held before, if any (:func:`ipseclab.pools.lease`;
        :class:`~ipseclab.pools.NoAddress` in words when there is none) — for IKEv2's CP
        (RFC 7296 §3.15) and IKEv1's Mode Config alike; ``how`` opens the event's words."""
        conn = sa.connection
        assert conn is not None
        identity = sa.eap_identity or sa.peer_identity or sa.remote[0]
        pool, address = lease(self.leases, [self.config.pool_named(n) for n in conn.pools], identity, self.config.groups)
        sa.virtual_ip, sa.lease = address, (pool.name, identity)
        self.emit(Info, sa=sa.ref, message=f"{how}virtual IP {address} from pool {pool.name} ({pool.addrs}) leased to {identity}"
                  + (f", DNS {', '.join(pool.dns)}" if pool.dns else "") + f"; traffic to {address} now goes into this tunnel")
        return pool

    def _release_lease(self, sa: IkeSa) -> None:
        """The IKE SA goes: its virtual IP goes back to the pool (kept for the identity's return)."""
        if sa.lease is not None:
            self.leases.release(*sa.lease)
            self.emit(Info, sa=sa.ref, message=f"virtual IP {sa.virtual_ip} back in pool {sa.lease[0]}")
            sa.lease = None

    # -- deleting and expiry -----------------------------------------------------

    def delete_ike(self, sa: IkeSa, reason: str, *, notify_peer: bool = True) -> None:
        engine = self._engine_of(sa)
        if notify_peer and sa.established:
            engine.send_delete_ike(sa)
        self.ike_sas.pop(sa.spi_i, None)
        self._no_longer_half_open(sa)
        self._failed.pop(sa.spi_i, None)
        self._superseded.pop(sa.spi_i, None)
        self._release_lease(sa)
        engine.forget(sa)
        self.set_state(sa, DELETED)
        sa.expires_at = None
        self.emit(SaDeleted, sa=sa.ref, reason=reason)

    def delete_child(self, pair: IpsecSaPair, reason: str, *, notify_peer: bool = True) -> None:
        sa = next((s for s in self.ike_sas.values() if pair in s.children), None)
        if notify_peer and sa is not None and sa.established:
            self._engine_of(sa).send_delete_child(sa, pair)
        if pair in self.child_sas:
            self.child_sas.remove(pair)
        if sa is not None and pair in sa.children:
            sa.children.remove(pair)
        self.set_state(pair, ChildState.DELETED)
        self.emit(SaDeleted, sa=pair.ref, reason=reason)

    def terminate(self, now: float) -> None:
        """Delete every SA, telling the peer (IKEv1: Informational Delete)."""
        self.now = now
        for pair in list(self.child_sas):
            self.delete_child(pair, "terminated")
        for sa in list(self.ike_sas.values()):
            self.delete_ike(sa, "terminated", notify_peer=sa.established)

    # -- receiving ---------------------------------------------------------------

    def receive_batch(self, datagrams: list[tuple[bytes, Address, Address]], now: float) -> None:
        """Feed the datagrams a runner read at once (``(data, src, dst)`` each), shedding load.

        A flood of first messages from spoofed addresses must not starve the peers we have
        configured, and nothing in a first message can be verified. So the batch is handled
        in two passes: everything else first — messages of existing SAs (an initiator's
        third message included), first messages from addresses a connection names, NAT-T
        keepalives — then first messages from strangers (addresses only a ``%any``
        connection or the default key would accept), at most ``max_strangers_per_batch``
        of them; the rest are dropped, counted (``shed_first_messages``) and reported at
        most once a second. A runner that keeps up reads one or two datagrams at a time
        and never sheds; one that falls behind reads full batches and sheds most of a flood
        cheaply, from the header alone.
        """
        named = {c.remote_address for c in self.config.connections}
        strangers: list[tuple[bytes, Address, Address]] = []
        for item in datagrams:
            if self._first_from_stranger(item[0], item[1], item[2], named):
                strangers.append(item)
            else:
                self.receive_datagram(item[0], item[1], item[2], now)
        budget = self.config.max_strangers_per_batch
        for item in strangers[:budget]:
            self.receive_datagram(item[0], item[1], item[2], now)
        if len(strangers) > budget:
            self.now = now
            shed = len(strangers) - budget
            self.count("shed_first_messages", shed)
            self.limited_report(
                "shed", f"{len(datagrams)} datagrams waited at once, {len(strangers)} of them first messages from "
                f"addresses no connection names: {shed} dropped unread (max_strangers_per_batch = {budget}) "
                "so that configured peers and running exchanges are served first — a flood?",
            )

    def _first_from_stranger(self, data: bytes, src: Address, dst: Address, named: set[str]) -> bool:
        """From the header alone: the first message of a new IKE SA from an unnamed address."""
        offset = 4 if dst[1] == self.config.natt_port and dst[1] != self.config.port else 0
        if len(data) < offset + 28 or (offset and data[:4] != NON_ESP_MARKER):
            return False
        if data[offset + 8 : offset + 16] != bytes(8) or data[offset : offset + 8] in self.ike_sas:
            return False
        return src[0] not in named

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        """Feed one UDP payload received from ``src`` on local address ``dst``."""
        self.now = now
        if dst[1] == self.config.natt_port:
            if data == NATT_KEEPALIVE:
                self.count("natt_keepalives")
                return
            if len(data) < 4:
                self.count("natt_truncated")
                self.emit(ErrorEvent, sa=NO_SA, code="TRUNCATED", message=f"{len(data)}-byte datagram on the NAT-T port: dropped")
                return
            if data[:4] != NON_ESP_MARKER:
                self.count("esp_without_data_plane")
                looks_like_ike = major_version(data) is not None and data[17] >> 4 in self.engines
                self.limited_report(
                    "no-marker",
                    f"a datagram from {src[0]}:{src[1]} on the NAT-T port without the non-ESP marker: "
                    + ("it looks like an IKE message sent without the four zero bytes RFC 3948 §2.2 requires"
                       if looks_like_ike else "ESP in UDP, and no data plane runs here")
                    + " — dropped",
                    code="NO_NON_ESP_MARKER",
                )
                return
            data = data[4:]
        version = major_version(data)
        engine = self.engines.get(version if version is not None else 1)  # too short: the codec says why
        if engine is None:
            self.count("bad_version")
            self.emit(ErrorEvent, sa=NO_SA, code="INVALID_MAJOR_VERSION", message=f"IKE version {data[17] >> 4}.{data[17] & 15}: this peer speaks IKEv1 and IKEv2 only — dropped")
            return
        engine.receive(data, src, dst)

    # -- views -------------------------------------------------------------------

    def sa_table(self) -> dict[str, Any]:
        """The SA database as plain data (no keys)."""
        return {
            "isakmp": [
                {
                    "cookies": f"{sa.ref.spi_i}/{sa.ref.spi_r}",
                    "role": "initiator" if sa.initiator else "responder",
                    "state": str(sa.state),
                    "local": f"{sa.local[0]}:{sa.local[1]}",
                    "remote": f"{sa.remote[0]}:{sa.remote[1]}",
                    "suite": sa.suite,
                    "expires_at": sa.expires_at,
                    **({"virtual_ip": vip} if (vip := getattr(sa, "virtual_ip", None)) else {}),
                    **({"eap_id": eap_id} if (eap_id := getattr(sa, "eap_identity", "")) else {}),
                }
                for sa in self.ike_sas.values()
            ],
            **({"leases": self.leases.table()} if self.config.pools else {}),
            "ipsec": [p.summary() for p in self.child_sas],
            "counters": dict(self.counters),
        }
