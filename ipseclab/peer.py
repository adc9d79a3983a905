"""A sans-I/O IKEv1 peer: configuration, SA database and running exchanges.

In the spirit of aioquic's ``QuicConnection`` and h11's ``Connection``, a
:class:`Peer` never touches sockets, clocks or threads.  It is fed datagrams with
their addresses and the current time, and it is polled for datagrams to send, the
next timer and trace events::

    peer.initiate("site", now)
    peer.receive_datagram(data, src, dst, now)
    for d in peer.datagrams_to_send(): ...
    peer.get_timer(); peer.handle_timer(now)
    while (event := peer.next_event()) is not None: ...

Everything else — the in-memory stepper, asyncio UDP sockets, TUN, widgets — is
an adapter around these calls.

Datagrams on the NAT-T port carry a four-byte zero non-ESP marker before IKE
(RFC 3948 §2.2); a single 0xFF byte is a NAT keepalive (RFC 3948 §2.3).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from ipseclab.config import Connection, PeerConfig
from ipseclab.crypto.rng import Rng, SystemRng
from ipseclab.errors import ConfigError, ParseError
from ipseclab.ikev1.aggressive_mode import AggressiveModeInitiator, AggressiveModeResponder
from ipseclab.ikev1.exchange import Exchange
from ipseclab.ikev1.informational import Informational
from ipseclab.ikev1.isakmp_sa import IsakmpSa
from ipseclab.ikev1.main_mode import MainModeInitiator, MainModeResponder, Phase1Exchange
from ipseclab.ikev1.quick_mode import QuickMode, QuickModeInitiator, QuickModeResponder
from ipseclab.ikev1.states import IsakmpState, first_state
from ipseclab.sa import ChildState, IpsecSaPair
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
from ipseclab.wire.constants import ExchangeType, HeaderFlag, ProtocolId
from ipseclab.wire.isakmp import DeletePayload, Message, NotifyPayload

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


class Peer:
    """One IKEv1 peer, sans-I/O."""

    def __init__(self, config: PeerConfig, *, rng: Rng | None = None) -> None:
        self.config = config
        self.name = config.name
        self.rng: Rng = rng or SystemRng()
        self.now = 0.0
        self.ike_sas: dict[bytes, IsakmpSa] = {}
        self.exchanges: dict[tuple[bytes, int], Exchange] = {}
        self.child_sas: list[IpsecSaPair] = []
        self.counters: dict[str, int] = {}
        self._out: deque[Datagram] = deque()
        self._events: deque[Event] = deque()
        self._seq = 0
        self._spis: set[int] = set()
        self._pending: dict[bytes, list[tuple[Message, bytes, Address, Address]]] = {}

    def __repr__(self) -> str:
        return f"<Peer {self.name} {self.config.address} sas={len(self.ike_sas)} ipsec={len(self.child_sas)}>"

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

    def count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    def make_datagram(self, sa: IsakmpSa, raw: bytes) -> Datagram:
        data = NON_ESP_MARKER + raw if sa.floated else raw
        return Datagram(data, sa.local, sa.remote)

    def allocate_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.rng.random_bytes(4), "big")
            if spi >= 256 and spi not in self._spis:
                self._spis.add(spi)
                return spi

    # -- timers ------------------------------------------------------------------

    def get_timer(self) -> float | None:
        times = [e.timer for e in self.exchanges.values() if e.timer is not None]
        times += [sa.expires_at for sa in self.ike_sas.values() if sa.expires_at is not None]
        times += [p.expires_at for p in self.child_sas]
        times += [p.rekey_at for p in self.child_sas if p.rekey_at is not None]
        times += [sa.next_keepalive for sa in self.ike_sas.values() if sa.next_keepalive is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self.now = now
        for ex in list(self.exchanges.values()):
            ex.on_timer(now)
        for sa in self.ike_sas.values():
            if sa.next_keepalive is not None and sa.next_keepalive <= now:
                self._keepalive(sa)
        # ISAKMP SAs first: an IPsec SA expiring at the same moment is then renewed under
        # the new ISAKMP SA (phase1_established starts Quick Modes for children without SAs)
        # instead of under the dying one.
        for sa in [s for s in self.ike_sas.values() if s.expires_at is not None and s.expires_at <= now]:
            self._expire_isakmp(sa)
        for pair in [p for p in self.child_sas if p.expires_at <= now]:
            self._expire_ipsec(pair)
        for pair in [p for p in self.child_sas if p.rekey_at is not None and p.rekey_at <= now]:
            self.rekey_child(pair, now, f"soft lifetime of {now - pair.established_at:.0f} s of {pair.lifetime} s reached")

    # -- initiating ----------------------------------------------------------------

    def initiate(self, connection_name: str, now: float) -> IsakmpSa:
        """Start phase 1 (Main or Aggressive Mode) for a connection; Quick Modes follow."""
        self.now = now
        conn = self.config.connection_named(connection_name)
        if conn.accepts_any:
            raise ConfigError(f"connection {conn.name} accepts any peer ({conn.remote_address}): it can only respond")
        return self._start_phase1(conn)

    def _start_phase1(self, conn: Connection) -> IsakmpSa:
        icookie = self._new_cookie()
        sa = IsakmpSa(
            icookie=icookie,
            rcookie=bytes(8),
            initiator=True,
            local=(self.config.address, self.config.port),
            remote=(conn.remote_address, conn.remote_port),
            connection=conn,
            mode=conn.mode,
            state=first_state(conn.mode),
        )
        self.ike_sas[icookie] = sa
        ex: MainModeInitiator | AggressiveModeInitiator
        ex = MainModeInitiator(self, sa, True) if conn.mode == "main" else AggressiveModeInitiator(self, sa, True)
        self.exchanges[(icookie, 0)] = ex
        self.emit(Info, sa=sa.ref, message=f"initiating connection {conn.name} ({conn.mode} mode) to {conn.remote_address}")
        ex.start()
        return sa

    def _new_cookie(self) -> bytes:
        while True:
            cookie = self.rng.random_bytes(8)
            if cookie != bytes(8) and cookie not in self.ike_sas:
                return cookie

    def start_quick_mode(self, sa: IsakmpSa, child_name: str) -> QuickModeInitiator:
        conn = sa.connection
        if conn is None:
            raise ConfigError("this ISAKMP SA has no connection to take children from")
        child = next((c for c in conn.children if c.name == child_name), None)
        if child is None:
            raise ConfigError(f"connection {conn.name} has no child {child_name!r}")
        mid = self._new_message_id(sa)
        qm = QuickModeInitiator(self, sa, mid, True)
        self.exchanges[(sa.icookie, mid)] = qm
        qm.start(child)
        return qm

    def _new_message_id(self, sa: IsakmpSa) -> int:
        while True:
            mid = int.from_bytes(self.rng.random_bytes(4), "big")
            if mid and mid not in sa.used_message_ids:
                sa.used_message_ids.add(mid)
                return mid

    def follow_peer(self, sa: IsakmpSa, src: Address, dst: Address, *, encrypted: bool) -> None:
        """Move the SA to where a valid message came from on the NAT-T port (RFC 3947 §4, §7).

        Called by an exchange only after the message decrypted and parsed, and before it
        answers.  The first time this is the float to 4500; later it follows a NAT that
        gave the peer a new mapping — but only on an encrypted message, and never by the
        peer that is itself behind the NAT (its idea of the other end does not change).
        """
        if dst[1] != self.config.natt_port or not sa.nat_t or (src == sa.remote and dst == sa.local):
            return
        old = sa.remote
        if not sa.floated:
            sa.local, sa.remote, sa.floated = dst, src, True
            self.emit(PortFloated, sa=sa.ref, old=old, new=src)
        elif encrypted and not sa.nat_local:
            sa.local, sa.remote = dst, src
            self.emit(PeerMoved, sa=sa.ref, old=old, new=src)
        else:
            self.count("peer_address_change_ignored")

    def _keepalive(self, sa: IsakmpSa) -> None:
        """RFC 3948 §2.3: the peer behind a NAT sends 0xFF to keep its mapping alive."""
        self.queue(Datagram(NATT_KEEPALIVE, sa.local, sa.remote))
        self.emit(NatKeepalive, sa=sa.ref, src=sa.local, dst=sa.remote)
        sa.next_keepalive = self.now + self.config.natt_keepalive

    # -- callbacks from exchanges ------------------------------------------------

    def phase1_established(self, sa: IsakmpSa) -> None:
        assert sa.choice is not None
        sa.established_at = self.now
        sa.expires_at = self.now + sa.choice.lifetime
        if sa.floated and sa.nat_local and self.config.natt_keepalive > 0:
            sa.next_keepalive = self.now + self.config.natt_keepalive
        info = IkeSaInfo(
            role="initiator" if sa.initiator else "responder",
            mode=sa.mode,
            peer=f"{sa.remote[0]}:{sa.remote[1]}",
            peer_id=sa.peer_identity,
            **sa.choice.as_dict(),
            nat_t=bool(sa.nat_t),
            nat_detected=sa.nat_detected,
        )
        self.emit(SaEstablished, sa=sa.ref, ike=info)
        if sa.initiator and sa.connection is not None:
            live = {p.child for p in self.child_sas}
            for child in sa.connection.children:
                if child.name not in live:
                    self.start_quick_mode(sa, child.name)
        for msg, data, src, dst in self._pending.pop(sa.icookie, []):
            self.emit(Info, sa=sa.ref, message="processing a Quick Mode message that arrived before phase 1 completed")
            self._dispatch(sa, msg, data, src, dst)

    def ipsec_established(self, sa: IsakmpSa, pair: IpsecSaPair, *, initiator: bool) -> None:
        sa.children.append(pair)
        self.child_sas.append(pair)
        # make-before-break: the pairs this Quick Mode replaces go now (RFC 4301 §4.4.2.1)
        if initiator:
            for old in [p for p in self.child_sas if p.child == pair.child and p.state == ChildState.REKEYING]:
                self.delete_ipsec(old, f"rekeyed: replaced by SPIs {pair.inbound.spi:08x}/{pair.outbound.spi:08x}")

    def rekey_child(self, pair: IpsecSaPair, now: float, reason: str = "soft lifetime reached") -> bool:
        """Negotiate a replacement for ``pair`` before it expires (RFC 4301 §4.4.2.1).

        Only the peer that initiated the connection starts the new Quick Mode (RFC 2409
        §5.5), and only under an established ISAKMP SA; the old pair is deleted (with a
        Delete, RFC 2408 §4.8) once the new one is up, or at its hard limit.  ``reason``
        says why (``"bytes limit reached"``, ...).  Returns whether a Quick Mode started.
        """
        self.now = now
        pair.rekey_at = None  # once per pair, whatever happens
        if pair.state != ChildState.ESTABLISHED or pair not in self.child_sas:
            return False
        sa = next((s for s in self.ike_sas.values() if s.established and s.initiator and s.connection), None)
        if sa is None or sa.connection is None or not any(c.name == pair.child for c in sa.connection.children):
            return False
        self.set_state(pair, ChildState.REKEYING)
        self.emit(Info, sa=sa.ref, message=f"rekeying child {pair.child} (SPIs {pair.inbound.spi:08x}/{pair.outbound.spi:08x}): {reason}")
        self.start_quick_mode(sa, pair.child)
        return True

    def exchange_failed(self, ex: Exchange) -> None:
        if isinstance(ex, Phase1Exchange):
            ex.sa.expires_at = None
            self.emit(SaDeleted, sa=ex.sa.ref, reason="phase 1 failed")

    def send_notify(
        self,
        sa: IsakmpSa,
        notify_type: int,
        *,
        protect: bool,
        protocol_id: int = ProtocolId.ISAKMP,
        spi: bytes = b"",
        data: bytes = b"",
    ) -> None:
        """Send one notification in an Informational exchange (protected once keys exist)."""
        if protocol_id == ProtocolId.ISAKMP and not spi:
            spi = sa.icookie + sa.rcookie
        payload = NotifyPayload(notify_type, protocol_id, spi, data)
        self._send_informational(sa, [payload], protect=protect)

    def _send_informational(self, sa: IsakmpSa, payloads: list, *, protect: bool) -> None:
        mid = self._new_message_id(sa)
        info = Informational(self, sa, mid, True)
        if protect and sa.skeyid_a and sa.enc_key:
            info.send_protected(payloads)
        else:
            info.send_clear(payloads)

    def peer_notify(self, sa: IsakmpSa, notify: NotifyPayload) -> None:
        """Route an error notification to the exchange it concerns."""
        targets = [ex for (cookie, _), ex in self.exchanges.items() if cookie == sa.icookie and not ex.done]
        if notify.protocol_id == ProtocolId.IPSEC_ESP:
            targets = [ex for ex in targets if isinstance(ex, QuickMode)]
        elif not sa.established:
            targets = [ex for ex in targets if isinstance(ex, Phase1Exchange)]
        for ex in targets:
            ex.on_peer_notify(notify)

    # -- deleting and expiry -----------------------------------------------------

    def delete_isakmp(self, sa: IsakmpSa, reason: str, *, notify_peer: bool = True) -> None:
        if notify_peer and sa.established:
            self._send_informational(sa, [DeletePayload(ProtocolId.ISAKMP, 16, [sa.icookie + sa.rcookie])], protect=True)
        self.ike_sas.pop(sa.icookie, None)
        for key in [k for k in self.exchanges if k[0] == sa.icookie]:
            del self.exchanges[key]
        self.set_state(sa, IsakmpState.DELETED)
        sa.expires_at = None
        self.emit(SaDeleted, sa=sa.ref, reason=reason)

    def delete_ipsec(self, pair: IpsecSaPair, reason: str, *, notify_peer: bool = True) -> None:
        sa = next((s for s in self.ike_sas.values() if pair in s.children), None)
        if notify_peer and sa is not None and sa.established:
            self._send_informational(sa, [DeletePayload(ProtocolId.IPSEC_ESP, 4, [pair.inbound.spi.to_bytes(4, "big")])], protect=True)
        if pair in self.child_sas:
            self.child_sas.remove(pair)
        if sa is not None and pair in sa.children:
            sa.children.remove(pair)
        self.set_state(pair, ChildState.DELETED)
        self.emit(SaDeleted, sa=pair.ref, reason=reason)

    def _expire_isakmp(self, sa: IsakmpSa) -> None:
        conn = sa.connection
        self.delete_isakmp(sa, f"lifetime of {sa.choice.lifetime if sa.choice else '?'} s expired")
        if sa.initiator and conn is not None and conn.keep_up:
            self.emit(Info, sa=sa.ref, message=f"re-negotiating connection {conn.name}: new ISAKMP SA")
            self._start_phase1(conn)

    def _expire_ipsec(self, pair: IpsecSaPair, reason: str | None = None) -> None:
        self.delete_ipsec(pair, reason or f"lifetime of {pair.lifetime} s expired")
        # a rekey's Quick Mode may still be under way: no second one (if it failed, renew)
        if not any(
            isinstance(ex, QuickMode) and ex.initiator and not ex.done and ex.child is not None and ex.child.name == pair.child
            for ex in self.exchanges.values()
        ):
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
            self._expire_ipsec(pair, reason)

    def _renew_child(self, pair: IpsecSaPair) -> None:
        """The peer that initiates the connection negotiates replacement IPsec SAs."""
        sa = next((s for s in self.ike_sas.values() if s.established and s.initiator and s.connection), None)
        if sa is None or sa.connection is None or not sa.connection.keep_up:
            return
        if any(c.name == pair.child for c in sa.connection.children):
            self.emit(Info, sa=sa.ref, message=f"negotiating new IPsec SAs for child {pair.child}")
            self.start_quick_mode(sa, pair.child)

    def remote_deleted_isakmp(self, sa: IsakmpSa) -> None:
        conn = sa.connection
        self.delete_isakmp(sa, "deleted by the peer", notify_peer=False)
        if sa.initiator and conn is not None and conn.keep_up:
            self.emit(Info, sa=sa.ref, message=f"re-negotiating connection {conn.name}: new ISAKMP SA")
            self._start_phase1(conn)

    def remote_deleted_ipsec(self, sa: IsakmpSa, spi: int) -> None:
        for pair in [p for p in self.child_sas if p.outbound.spi == spi]:
            self.delete_ipsec(pair, "deleted by the peer", notify_peer=False)
            self._renew_child(pair)

    def terminate(self, now: float) -> None:
        """Delete every SA, telling the peer (Informational Delete)."""
        self.now = now
        for pair in list(self.child_sas):
            self.delete_ipsec(pair, "terminated")
        for sa in list(self.ike_sas.values()):
            self.delete_isakmp(sa, "terminated", notify_peer=sa.established)

    # -- receiving ---------------------------------------------------------------

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
                return
            data = data[4:]
        try:
            msg = Message.decode(data)
        except ParseError as exc:
            self.count("malformed")
            self.emit(ErrorEvent, sa=NO_SA, code="MALFORMED", message=f"undecodable ISAKMP message from {src[0]}:{src[1]}: {exc}")
            return
        if msg.version >> 4 != 1:
            self.count("bad_version")
            self.emit(ErrorEvent, sa=NO_SA, code="INVALID_MAJOR_VERSION", message=f"ISAKMP version {msg.version >> 4}.{msg.version & 15} is not IKEv1: dropped")
            return
        sa = self.ike_sas.get(msg.icookie)
        if sa is None:
            self._new_responder(msg, data, src, dst)
            return
        if sa.rcookie == bytes(8) and sa.initiator and msg.rcookie != bytes(8):
            sa.rcookie = msg.rcookie
        elif msg.rcookie not in (sa.rcookie, bytes(8)):
            self.count("invalid_cookie")
            self.emit(ErrorEvent, sa=sa.ref, code="INVALID_COOKIE", message="responder cookie does not match this SA: dropped")
            return
        self._dispatch(sa, msg, data, src, dst)

    def _new_responder(self, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        if msg.rcookie != bytes(8) or msg.message_id != 0 or msg.exchange_type not in (ExchangeType.MAIN, ExchangeType.AGGRESSIVE):
            self.count("unknown_sa")
            self.emit(ErrorEvent, sa=NO_SA, code="INVALID_COOKIE", message=f"message for unknown cookies {msg.icookie.hex()}/{msg.rcookie.hex()} from {src[0]}: dropped")
            return
        if msg.flags & HeaderFlag.ENCRYPTION:
            self.count("malformed")
            return
        conn = self.config.connection_for(src[0])
        aggressive = msg.exchange_type == ExchangeType.AGGRESSIVE
        sa = IsakmpSa(
            icookie=msg.icookie,
            rcookie=self._new_cookie(),
            initiator=False,
            local=dst,
            remote=src,
            connection=conn,
            mode="aggressive" if aggressive else "main",
            state=first_state("aggressive" if aggressive else "main"),
        )
        self.ike_sas[sa.icookie] = sa
        ex = AggressiveModeResponder(self, sa, False) if aggressive else MainModeResponder(self, sa, False)
        self.exchanges[(sa.icookie, 0)] = ex
        ex.receive(msg, data, src, dst)

    def _dispatch(self, sa: IsakmpSa, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        key = (sa.icookie, msg.message_id)
        if msg.exchange_type == ExchangeType.INFORMATIONAL:
            Informational(self, sa, msg.message_id, False).receive(msg, data, src, dst)
            return
        ex = self.exchanges.get(key)
        if ex is not None:
            if ex.exchange_type != msg.exchange_type:
                self.count("wrong_exchange_type")
                self.emit(ErrorEvent, sa=sa.ref, code="INVALID_EXCHANGE_TYPE", message=f"exchange type {msg.exchange_type} for a running {ex.name}: dropped")
                return
            ex.receive(msg, data, src, dst)
            return
        if msg.exchange_type != ExchangeType.QUICK or msg.message_id == 0:
            self.count("unexpected")
            self.emit(ErrorEvent, sa=sa.ref, code="UNEXPECTED", message=f"unexpected exchange type {msg.exchange_type} with message ID {msg.message_id:08x}: dropped")
            return
        if not sa.established:
            if sa.failed:
                return
            self._pending.setdefault(sa.icookie, []).append((msg, data, src, dst))
            self.emit(Info, sa=sa.ref, message="Quick Mode request before phase 1 completed: held until it does")
            return
        if msg.message_id in sa.used_message_ids:
            self.count("stale_message_id")
            return
        sa.used_message_ids.add(msg.message_id)
        qm = QuickModeResponder(self, sa, msg.message_id, False)
        self.exchanges[key] = qm
        qm.receive(msg, data, src, dst)

    # -- views -------------------------------------------------------------------

    def sa_table(self) -> dict[str, Any]:
        """The SA database as plain data (no keys)."""
        return {
            "isakmp": [
                {
                    "cookies": f"{sa.icookie.hex()}/{sa.rcookie.hex()}",
                    "role": "initiator" if sa.initiator else "responder",
                    "state": sa.state,
                    "local": f"{sa.local[0]}:{sa.local[1]}",
                    "remote": f"{sa.remote[0]}:{sa.remote[1]}",
                    "suite": sa.choice.describe() if sa.choice else None,
                    "expires_at": sa.expires_at,
                }
                for sa in self.ike_sas.values()
            ],
            "ipsec": [p.summary() for p in self.child_sas],
            "counters": dict(self.counters),
        }

