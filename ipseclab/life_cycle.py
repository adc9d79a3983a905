"""What an SA's life does on a gateway, beyond the exchanges: the policies of a connection.

:class:`SaLifeCycle` is the part of :class:`~ipseclab.peer.Peer` that decides *when* to negotiate
and delete, version-neutrally (the engines carry it out): swanctl's ``start_action``,
``close_action`` and ``dpd_action`` (trap policies and acquires included), Dead Peer Detection
(RFC 3706), INITIAL-CONTACT (RFC 2407 §4.6.3.3), the peer's Deletes, re-authentication of the
ISAKMP SA (make before break, by either side) and the rekeys and renewals of child SAs
(RFC 4301 §4.4.2.1). It reads and changes the peer's SA tables and timers, nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ipseclab.config import CLOSE_ACTION_DELAY, Connection
from ipseclab.errors import ConfigError
from ipseclab.sa import ChildState, IkeSa, IpsecSaPair
from ipseclab.trace import NO_SA, ErrorEvent, Info

if TYPE_CHECKING:
    from ipseclab.config import PeerConfig
    from ipseclab.engines import IkeEngine

#: seconds between two negotiations an acquire starts for one connection (a peer that is down
#: would otherwise be asked again by every packet)
ACQUIRE_HOLDOFF = 1.0
#: seconds a peer's re-authenticated ISAKMP SA stays after the new one is up, for its Delete
REAUTH_GRACE = 10.0


@dataclass(eq=False)
class PendingRestart:
    """A ``close_action = start`` waiting its turn: the connection, the child (None: the
    whole connection) and when."""

    connection: str
    child: str | None
    at: float
    done: bool = False


class SaLifeCycle:
    """Mixed into :class:`~ipseclab.peer.Peer`: the connection policies over its SA tables."""

    config: PeerConfig
    now: float
    ike_sas: dict[bytes, IkeSa]
    child_sas: list[IpsecSaPair]
    engines: dict[int, IkeEngine]
    _trapped: set[str]
    _last_acquire: dict[str, float]
    _superseded: dict[bytes, bytes]

    # what the peer provides (see Peer)
    def emit(self, cls: Any, **fields: Any) -> None: ...
    def count(self, what: str, n: int = 1) -> None: ...
    def set_state(self, obj: Any, new: str) -> None: ...
    def _engine_of(self, sa: IkeSa) -> IkeEngine: ...
    def _schedule(self, kind: str, obj: Any) -> None: ...
    def _start_ike(self, conn: Connection) -> IkeSa: ...
    def delete_ike(self, sa: IkeSa, reason: str, *, notify_peer: bool = True) -> None: ...
    def delete_child(self, pair: IpsecSaPair, reason: str, *, notify_peer: bool = True) -> None: ...

    # -- starting on demand: start_action, trap and acquires (RFC 4301 §5.2) -------------------

    def start_connections(self, now: float) -> list[IkeSa]:
        """swanctl's ``start_action`` when a configuration is loaded: ``start`` initiates the
        connection, ``trap`` arms it for :meth:`acquire`; the others wait for ``initiate`` or
        the peer."""
        self.now = now
        for conn in self.config.connections:
            if conn.start_action == "trap":
                self._arm_trap(conn, "start_action = trap")
        return [self._start_ike(c) for c in self.config.connections if c.start_action == "start" and not c.accepts_any]

    def _ike_sas_of(self, conn: Connection) -> list[IkeSa]:
        """The IKE SAs of connection ``conn``, in any state."""
        return [s for s in self.ike_sas.values() if s.connection is not None and s.connection.name == conn.name]

    def _arm_trap(self, conn: Connection, why: str) -> None:
        self._trapped.add(conn.name)
        nets = ", ".join(f"{c.local_ts} <-> {c.remote_ts}" for c in conn.children)
        self.emit(Info, sa=NO_SA, message=f"{why}: connection {conn.name} is negotiated when traffic needs it ({nets})")

    def acquire(self, src: str, dst: str, now: float) -> bool:
        """A packet from ``src`` to ``dst`` found no IPsec SA (RFC 4301 §5.2: an acquire). If it
        falls under a child of a trapped connection, negotiate that child — under the
        connection's established ISAKMP SA, else with a new one — unless that is under way
        already. Returns whether a trapped connection covers it."""
        self.now = now
        if not self._trapped:
            return False
        try:
            s_ip, d_ip = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        except ValueError:
            return False
        for conn in self.config.connections:
            if conn.name not in self._trapped:
                continue
            child = next((c for c in conn.children if s_ip in c.local_net and d_ip in c.remote_net), None)
            if child is None:
                continue
            if any(p.child == child.name and p.state == ChildState.ESTABLISHED for p in self.child_sas):
                return True
            if any(engine.negotiating_child(child.name) for engine in self.engines.values()):
                return True
            sas = [s for s in self._ike_sas_of(conn) if not s.failed]
            up = next((s for s in sas if s.established), None)
            if up is None and sas:
                return True  # phase 1 under way: its children follow
            if now - self._last_acquire.get(conn.name, float("-inf")) < ACQUIRE_HOLDOFF:
                return True
            self._last_acquire[conn.name] = now
            self.count("acquires")
            self.emit(Info, sa=up.ref if up else NO_SA, message=f"acquire: {src} -> {dst} has no SA and matches child "
                      f"{child.name} of connection {conn.name} (trapped): negotiating it")
            if up is not None:
                self._engine_of(up).start_child(up, child.name)
            else:
                self._start_ike(conn)
            return True
        return False

    # -- Dead Peer Detection (RFC 3706) --------------------------------------------------------

    def _dead_peer_detection(self, sa: IkeSa) -> None:
        """Every ``dpd_delay``: an R-U-THERE; no ACK for ``dpd_timeout``: the peer is dead."""
        conn = sa.connection
        if conn is None or not sa.established:
            return
        if sa.dpd_unacked_since is not None and self.now - sa.dpd_unacked_since >= conn.dpd_timeout:
            self._peer_dead(sa, conn)
            return
        sa.dpd_seq = (sa.dpd_seq + 1) % (1 << 32)
        if sa.dpd_unacked_since is None:
            sa.dpd_unacked_since = self.now
        self._engine_of(sa).send_liveness_check(sa, sa.dpd_seq)
        self.emit(Info, sa=sa.ref, message=f"DPD: R-U-THERE #{sa.dpd_seq} (dpd_delay {conn.dpd_delay:g} s)")
        sa.dpd_at = min(self.now + conn.dpd_delay, sa.dpd_unacked_since + conn.dpd_timeout)
        self._schedule("dpd", sa)

    def peer_alive(self, sa: IkeSa, seq: int) -> None:
        """An authenticated R-U-THERE-ACK: the peer lives (only the sequence numbers we sent count)."""
        if sa.dpd_unacked_since is None or not 0 <= (sa.dpd_seq - seq) % (1 << 32) < 16:
            self.count("dpd_ack_unexpected")
            return
        sa.dpd_unacked_since = None
        self.emit(Info, sa=sa.ref, message=f"DPD: R-U-THERE-ACK #{seq}: the peer is alive")

    def _peer_dead(self, sa: IkeSa, conn: Connection) -> None:
        action = conn.dpd_action
        self.count("dpd_dead_peers")
        self.emit(
            ErrorEvent, sa=sa.ref, code="DPD_DEAD",
            message=f"no R-U-THERE-ACK from {sa.remote[0]} for {conn.dpd_timeout:g} s (dpd_timeout): the peer is "
            f"considered dead — dpd_action = {action}"
            + {"clear": ": its SAs are deleted", "restart": ": its SAs are deleted and the connection negotiated anew",
               "none": ": nothing is done", "trap": ": its SAs are deleted and traffic will negotiate anew"}[action],
        )
        if action == "none":
            sa.dpd_unacked_since = None
            return
        for pair in [p for p in self.child_sas if self._same_peer(sa, p)]:
            self.delete_child(pair, "dead peer (DPD)", notify_peer=False)
        self.delete_ike(sa, "dead peer (DPD)", notify_peer=False)
        if action == "restart" and not conn.accepts_any:
            self._start_ike(conn)
        elif action == "trap":
            self._arm_trap(conn, "dead peer, dpd_action = trap")

    # -- the peer's word: INITIAL-CONTACT, Deletes and close_action ----------------------------

    def initial_contact(self, sa: IkeSa) -> None:
        """INITIAL-CONTACT (RFC 2407 §4.6.3.3), received authenticated under ``sa``: the peer
        restarted and holds no other SA with us — ours with it are dead; delete them (without
        telling it: it has nothing to delete)."""
        # established ones only: an IKE SA still being negotiated with the same peer is a parallel
        # negotiation (several connections, or a burst of them), not a leftover of before the restart
        older = [s for s in self.ike_sas.values() if s is not sa and s.remote[0] == sa.remote[0] and s.established]
        pairs = [p for p in self.child_sas if p not in sa.children and self._same_peer(sa, p)]
        if not older and not pairs:
            return
        self.emit(
            Info, sa=sa.ref,
            message=f"INITIAL-CONTACT from {sa.remote[0]}: it restarted — deleting {len(older)} older ISAKMP "
            f"SA(s) and {len(pairs)} IPsec SA pair(s) with it",
        )
        for pair in pairs:
            self.delete_child(pair, "INITIAL-CONTACT: the peer restarted", notify_peer=False)
        for old in older:
            self.delete_ike(old, "INITIAL-CONTACT: the peer restarted", notify_peer=False)

    def remote_deleted_ike(self, sa: IkeSa) -> None:
        """The peer deleted ``sa``. If it holds a newer established one with us, it
        re-authenticated: the IPsec SAs stay and move to that one; else ``close_action``."""
        successor = self._successor(sa)
        if successor is not None:
            self._hand_over(sa, successor, f"deleted by the peer: re-authenticated as {successor.ref.label}", notify_peer=False)
            return
        self.delete_ike(sa, "deleted by the peer", notify_peer=False)
        self._close_action(sa, None)

    def remote_deleted_child(self, sa: IkeSa, spi: int) -> None:
        """The peer deleted the child SA it receives on ``spi`` (our outbound SPI), in a
        message authenticated under ``sa``: only pairs negotiated with that same peer go."""
        # the peer names the SPI it receives on (our outbound); a Delete naming our inbound
        # SPI (charon after a failed install) means the same pair
        pairs = [p for p in self.child_sas if spi in (p.outbound.spi, p.inbound.spi) and self._same_peer(sa, p)]
        if not pairs:
            self.count("delete_unknown_spi")
            self.emit(Info, sa=sa.ref, message=f"the peer deleted SPI {spi:08x}, which names no IPsec SA we hold with it: nothing to do")
        for pair in pairs:
            self.delete_child(pair, "deleted by the peer", notify_peer=False)
            # the end of the peer's rekey (a newer pair carries the child) is not a close
            if not any(p.child == pair.child and p.state == ChildState.ESTABLISHED and self._same_peer(sa, p) for p in self.child_sas):
                self._close_action(sa, pair.child)

    def _close_action(self, sa: IkeSa, child: str | None) -> None:
        """The peer deleted ``sa`` (``child`` None) or one of its children: swanctl's
        ``close_action``. ``none``/``clear`` stay down — the peer's administrator took the
        tunnel down, and it is not ours to put it back; ``start`` negotiates again after
        :data:`~ipseclab.config.CLOSE_ACTION_DELAY`, once the peer's other Deletes are in."""
        conn = sa.connection
        if conn is None:
            return
        kind = "ISAKMP SA" if sa.ref.version == 1 else "IKE SA"
        what = f"child {child}" if child else f"the {kind} of connection {conn.name}"
        if conn.close_action == "trap":
            self._arm_trap(conn, f"the peer deleted {what}; close_action = trap")
            return
        if conn.close_action != "start" or conn.accepts_any:
            self.emit(Info, sa=sa.ref, message=f"the peer deleted {what}; close_action = {conn.close_action}: it stays down")
            return
        restart = PendingRestart(conn.name, child, self.now + CLOSE_ACTION_DELAY)
        self.emit(Info, sa=sa.ref, message=f"the peer deleted {what}; close_action = start: negotiating again in {CLOSE_ACTION_DELAY:g} s")
        self._schedule("restart", restart)

    def _restart(self, restart: PendingRestart) -> None:
        """A close action falls due: the child under an established ISAKMP SA of the
        connection, else the whole connection (its children follow)."""
        restart.done = True
        try:
            conn = self.config.connection_named(restart.connection)
        except ConfigError:
            return  # the configuration was replaced meanwhile
        sas = self._ike_sas_of(conn)
        if restart.child is not None and any(p.child == restart.child for p in self.child_sas):
            return
        up = next((s for s in sas if s.established), None)
        if up is not None and restart.child is not None:
            if not any(engine.negotiating_child(restart.child) for engine in self.engines.values()):
                self.emit(Info, sa=up.ref, message=f"close_action = start: negotiating child {restart.child} again")
                self._engine_of(up).start_child(up, restart.child)
        elif not [s for s in sas if not s.failed]:
            self.emit(Info, sa=NO_SA, message=f"close_action = start: negotiating connection {conn.name} again")
            self._start_ike(conn)

    def _same_peer(self, sa: IkeSa, pair: IpsecSaPair) -> bool:
        """Was ``pair`` negotiated with the peer of ``sa``? The cheap tests first: the scan for
        the pair's own IKE SA (whose peer may have moved) runs only when they fail."""
        if pair in sa.children or pair.outbound.dst == sa.remote[0]:
            return True
        owner = next((s for s in self.ike_sas.values() if pair in s.children), None)
        return owner is not None and owner.remote[0] == sa.remote[0]

    # -- ISAKMP SA re-authentication, make before break ----------------------------------------

    def _successor(self, sa: IkeSa) -> IkeSa | None:
        """The newest established IKE SA, other than ``sa``, with the same peer."""
        newer = [s for s in self.ike_sas.values() if s is not sa and s.established and s.remote[0] == sa.remote[0]]
        return max(newer, key=lambda s: s.established_at or 0.0, default=None)

    def _hand_over(self, old: IkeSa, new: IkeSa, reason: str, *, notify_peer: bool = True) -> None:
        """Make-before-break re-authentication: ``old``'s IPsec SA pairs carry on under
        ``new`` (in IKEv1 they never depended on it), then ``old`` is deleted."""
        moved = self._move_children(old, new)
        if moved:  # (none left when the peer's re-authentication moved them already)
            self.emit(Info, sa=new.ref, message=f"{old.ref.label} re-authenticated as {new.ref.label}: "
                      f"{moved} IPsec SA pair(s) kept")
        self.delete_ike(old, reason, notify_peer=notify_peer)

    def _peer_reauthenticated(self, sa: IkeSa) -> None:
        """The peer set up a new ISAKMP SA for a connection that has one with it already:
        a re-authentication. The IPsec SAs move to the new SA now; the old one is left
        :data:`REAUTH_GRACE` seconds for the peer's Delete (ours sends one; charon drops
        its old SA silently), then deleted."""
        conn = sa.connection
        older = [s for s in self._ike_sas_of(conn) if s is not sa and s.established and s.remote[0] == sa.remote[0]] if conn else []
        for old in older:
            moved = self._move_children(old, sa)
            self.emit(Info, sa=sa.ref, message=f"the peer re-authenticated {old.ref.label} as {sa.ref.label}: "
                      f"{moved} IPsec SA pair(s) kept; the old SA goes in {REAUTH_GRACE:g} s unless the peer deletes it first")
            old.rekey_at = None
            self._superseded[old.spi_i] = sa.spi_i
            if old.expires_at is None or old.expires_at > self.now + REAUTH_GRACE:
                old.expires_at = self.now + REAUTH_GRACE
                self._schedule("ike_expiry", old)

    @staticmethod
    def _move_children(old: IkeSa, new: IkeSa) -> int:
        """``old``'s IPsec SA pairs now belong to ``new``; how many moved."""
        moved = [p for p in old.children if p not in new.children]
        new.children.extend(moved)
        old.children.clear()
        return len(moved)

    def _reauthenticate(self, sa: IkeSa) -> None:
        """The soft lifetime of an ISAKMP SA: a new Main/Aggressive Mode to the same peer,
        the old SA kept until the new one is up (make-before-break). No INITIAL-CONTACT on
        the new one: the old one is still established."""
        conn = sa.connection
        sa.rekey_at = None
        if conn is None or not sa.established or self._successor(sa) is not None:
            return
        if any(s.replaces == sa.spi_i for s in self.ike_sas.values()):
            return  # one already under way
        if self._engine_of(sa).rekey_ike(sa):
            return
        self.emit(Info, sa=sa.ref, message=f"re-authenticating {sa.ref.label}: soft lifetime of "
                  f"{self.now - (sa.established_at or 0.0):.0f} s of {sa.lifetime} s reached")
        new = self._start_ike(conn)
        new.replaces = sa.spi_i

    def _expire_ike(self, sa: IkeSa) -> None:
        conn = sa.connection
        successor = self.ike_sas.get(self._superseded.pop(sa.spi_i, b""))
        if successor is not None and successor.established:
            self._hand_over(sa, successor, f"re-authenticated by the peer: replaced by {successor.ref.label}")
            return
        self.delete_ike(sa, f"lifetime of {sa.lifetime if sa.lifetime is not None else '?'} s expired")
        if any(s.replaces == sa.spi_i for s in self.ike_sas.values()):
            return  # its re-authentication is under way
        if sa.initiator and conn is not None:
            self.emit(Info, sa=sa.ref, message=f"re-negotiating connection {conn.name}: new ISAKMP SA")
            self._start_ike(conn)

    # -- child SA rekeys and renewals (RFC 4301 §4.4.2.1) --------------------------------------

    def _initiating_sa(self) -> IkeSa | None:
        return next((s for s in self.ike_sas.values() if s.established and s.initiator and s.connection), None)

    def rekey_child(self, pair: IpsecSaPair, now: float, reason: str = "soft lifetime reached") -> bool:
        """Negotiate a replacement for ``pair`` before it expires (RFC 4301 §4.4.2.1).

        Only the peer that initiated the connection starts the new negotiation (RFC 2409
        §5.5), and only under an established IKE SA; the old pair is deleted (with a
        Delete, RFC 2408 §4.8) once the new one is up, or at its hard limit.  ``reason``
        says why (``"bytes limit reached"``, ...).  Returns whether a negotiation started.
        """
        self.now = now
        pair.rekey_at = None  # once per pair, whatever happens
        if pair.state != ChildState.ESTABLISHED or pair not in self.child_sas:
            return False
        sa = self._initiating_sa()
        if sa is None or sa.connection is None or not any(c.name == pair.child for c in sa.connection.children):
            return False
        self.set_state(pair, ChildState.REKEYING)
        self.emit(Info, sa=sa.ref, message=f"rekeying child {pair.child} (SPIs {pair.inbound.spi:08x}/{pair.outbound.spi:08x}): {reason}")
        self._engine_of(sa).start_child(sa, pair.child)
        return True

    def _expire_child(self, pair: IpsecSaPair, reason: str | None = None) -> None:
        self.delete_child(pair, reason or f"lifetime of {pair.lifetime} s expired")
        # a rekey may still be under way, or a newer pair carries on: no second one
        newer = any(p.child == pair.child and p.state == ChildState.ESTABLISHED for p in self.child_sas)
        if not newer and not any(engine.negotiating_child(pair.child) for engine in self.engines.values()):
            self._renew_child(pair)

    def sa_lifetime_reached(self, spi: int, stage: str, now: float, reason: str = "") -> IpsecSaPair | None:
        """The data plane's lifetime hook (RFC 4301 §4.4.2.1): the pair with this SPI
        (either direction) reached a ``"soft"`` limit — rekey it — or a ``"hard"`` one —
        delete it.  Returns the pair, or ``None`` if no live pair has that SPI."""
        pair = next((p for p in self.child_sas if spi in (p.inbound.spi, p.outbound.spi)), None)
        if pair is None:
            return None
        if stage == "soft":
            self.rekey_child(pair, now, reason or "soft lifetime reached")
        else:
            self.expire_child(pair, now, reason or "hard lifetime reached")
        return pair

    def expire_child(self, pair: IpsecSaPair, now: float, reason: str) -> None:
        """A hard limit (bytes, packets) was reached in the data plane: delete the pair
        (telling the peer) and, as the connection's initiator, negotiate a new one."""
        self.now = now
        if pair in self.child_sas:
            self._expire_child(pair, reason)

    def _renew_child(self, pair: IpsecSaPair) -> None:
        """The peer that initiates the connection negotiates replacement child SAs."""
        sa = self._initiating_sa()
        if sa is None or sa.connection is None:
            return
        if any(c.name == pair.child for c in sa.connection.children):
            self.emit(Info, sa=sa.ref, message=f"negotiating new IPsec SAs for child {pair.child}")
            self._engine_of(sa).start_child(sa, pair.child)
