"""The IKEv1 task manager: exchanges, message IDs, transport and dispatch (charon's
``task_manager_v1.c``).

The version-neutral :class:`~ipseclab.peer.Peer` hands every datagram whose ISAKMP
header says version 1 to this manager, and asks it to start phase 1 or a Quick
Mode, to send the Delete that ends an SA, and for its timers.  The manager

* creates ISAKMP SAs (initiator and responder) and the exchanges that run under
  them, keyed by ``(initiator cookie, message ID)``; chooses fresh message IDs;
* routes each message to its exchange (an Informational is one-shot; a new
  Quick Mode gets a responder; one that arrives before phase 1 completed waits);
* is the exchanges' transport: it numbers, encodes and encrypts their messages
  (RFC 2409 App. B IV chaining lives in :class:`~ipseclab.ikev1.isakmp_sa.IsakmpSa`),
  retransmits a message that expects an answer after ``timeout * 2**attempt``
  seconds, answers a duplicate of the last message received with the last reply,
  and decrypts and decodes what arrives before the exchange sees it;
* routes error notifications to the exchanges they concern.

It is the :class:`~ipseclab.ikev1.exchange.ExchangeOwner` of every exchange: an
exchange reaches the peer only through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipseclab.engines import PeerServices
from ipseclab.errors import ConfigError, CryptoError, ParseError
from ipseclab.ikev1 import phase1, xauth
from ipseclab.ikev1.aggressive_mode import AggressiveModeInitiator, AggressiveModeResponder
from ipseclab.ikev1.exchange import Exchange, Received
from ipseclab.ikev1.informational import Informational
from ipseclab.ikev1.isakmp_sa import IsakmpSa
from ipseclab.ikev1.main_mode import MainModeInitiator, MainModeResponder, Phase1Exchange
from ipseclab.ikev1.notation import summarize
from ipseclab.ikev1.quick_mode import QuickMode, QuickModeInitiator, QuickModeResponder
from ipseclab.ikev1.states import first_state
from ipseclab.ikev1.transaction import Transaction
from ipseclab.trace import NO_SA, ErrorEvent, IkeSaInfo, Info, MessageEvent, Retransmitted
from ipseclab.wire.v1.constants import ExchangeType, HeaderFlag, NotifyType, ProtocolId
from ipseclab.wire.v1.isakmp import (
    DeletePayload,
    Message,
    NotifyPayload,
    Payload,
    decode_payloads,
    encode_payloads,
)

if TYPE_CHECKING:
    from ipseclab.config import Connection
    from ipseclab.peer import Datagram, Peer
    from ipseclab.sa import IpsecSaPair
    from ipseclab.trace import Address

Key = tuple[bytes, int]  # (initiator cookie, message ID)

#: Quick Mode messages held for an ISAKMP SA until phase 1 completes (charon sends QM1 right
#: behind AM3; one would do), in number and bytes
MAX_PENDING = 8
MAX_PENDING_BYTES = 64 * 1024


@dataclass
class Flight:
    """Transport state of one exchange: the last message each way and the retransmission timer.

    A registered flight (``seq`` set) keeps itself in its manager's ``armed`` table while its
    timer is set, so timers cost nothing for the many exchanges that wait for nothing.
    """

    last_sent: Datagram | None = None
    last_sent_fields: dict[str, Any] = field(default_factory=dict)
    last_received: bytes | None = None
    replied: bool = False  # was our last message sent after the last one received?
    sent_at: float | None = None  # when our last message last went out (first time or again)
    attempts: int = 0
    seq: int = -1  # registration order: timers that fire together fire in this order
    armed: dict[int, Flight] | None = field(default=None, repr=False)
    _timer: float | None = field(default=None, repr=False)

    @property
    def timer(self) -> float | None:
        return self._timer

    @timer.setter
    def timer(self, when: float | None) -> None:
        self._timer = when
        if self.armed is not None:
            if when is None:
                self.armed.pop(self.seq, None)
            else:
                self.armed[self.seq] = self


class TaskManagerV1(PeerServices):
    """IKEv1 for one :class:`~ipseclab.peer.Peer` (sans-I/O, like the peer)."""

    version = 1

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.exchanges: dict[Key, Exchange] = {}
        self.flights: dict[Key, Flight] = {}
        self._armed: dict[int, Flight] = {}  # flights whose timer is set, by registration seq
        self._keys: dict[int, Key] = {}
        self._by_sa: dict[bytes, dict[Key, None]] = {}  # each ISAKMP SA's exchanges
        self._registered = 0
        self._pending: dict[bytes, list[tuple[Message, bytes, Address, Address]]] = {}
        #: clients waiting for XAUTH / Mode Config after phase 1: the time by which it must be done
        self._config_deadlines: dict[bytes, float] = {}

    # -- what exchanges may ask (ExchangeOwner) ------------------------------------

    def allocate_spi(self) -> int:
        return self.peer.allocate_spi()

    def child_established(self, sa: IsakmpSa, pair: IpsecSaPair, *, initiator: bool) -> None:
        self.peer.child_established(sa, pair, initiator=initiator)

    def initial_contact(self, sa: IsakmpSa) -> None:
        self.peer.initial_contact(sa)

    def has_contact(self, sa: IsakmpSa) -> bool:
        return any(s is not sa and s.established and s.remote[0] == sa.remote[0] for s in self.peer.ike_sas.values())

    def suspect_key_mismatch(self, sa: IsakmpSa) -> None:
        flight = self.flights.get((sa.icookie, 0))
        if flight is not None and flight.timer is None and not sa.established:
            flight.timer = self.now + self.config.retransmit_timeout

    def authenticated(self, sa: IsakmpSa, received: Received) -> None:
        self.peer.follow_peer(sa, received.src, received.dst)

    def remote_deleted_ike(self, sa: IsakmpSa) -> None:
        self.peer.remote_deleted_ike(sa)

    def remote_deleted_child(self, sa: IsakmpSa, spi: int) -> None:
        self.peer.remote_deleted_child(sa, spi)

    # -- starting --------------------------------------------------------------------

    def initiate(self, conn: Connection) -> IsakmpSa:
        """Phase 1 as initiator: Main or Aggressive Mode per the connection."""
        # a connection whose remote port is the NAT-T port starts there (non-ESP marker on)
        on_natt = conn.remote_port == self.config.natt_port
        sa = IsakmpSa(
            icookie=self.peer.new_ike_spi(),
            rcookie=bytes(8),
            initiator=True,
            local=(self.config.address, self.config.natt_port if on_natt else self.config.port),
            remote=(conn.remote_address, conn.remote_port),
            connection=conn,
            mode=conn.mode,
            state=first_state(conn.mode),
            floated=on_natt,
        )
        self.peer.add_ike_sa(sa)
        ex = MainModeInitiator(self, sa, True) if conn.mode == "main" else AggressiveModeInitiator(self, sa, True)
        self._register(ex)
        self.emit(Info, sa=sa.ref, message=f"initiating connection {conn.name} ({conn.mode} mode) to {conn.remote_address}")
        ex.start()
        return sa

    def start_child(self, sa: IsakmpSa, child_name: str) -> int:
        """A Quick Mode for ``child_name`` under ``sa``; returns its message ID."""
        conn = sa.connection
        if conn is None:
            raise ConfigError("this ISAKMP SA has no connection to take children from")
        child = next((c for c in conn.children if c.name == child_name), None)
        if child is None:
            raise ConfigError(f"connection {conn.name} has no child {child_name!r}")
        qm = QuickModeInitiator(self, sa, self._new_message_id(sa), True)
        self._register(qm)
        qm.start(child)
        return qm.message_id

    def rekey_ike(self, sa: IsakmpSa) -> bool:
        """IKEv1 cannot rekey an ISAKMP SA: the peer re-authenticates instead."""
        return False

    def negotiating_child(self, child_name: str) -> bool:
        """Is a Quick Mode we started for this child still running?"""
        return any(
            isinstance(ex, QuickMode) and ex.initiator and not ex.done and ex.child is not None and ex.child.name == child_name
            for ex in self.exchanges.values()
        )

    def _register(self, ex: Exchange) -> None:
        key = (ex.sa.icookie, ex.message_id)
        self.exchanges[key] = ex
        self._registered += 1
        self.flights[key] = Flight(seq=self._registered, armed=self._armed)
        self._keys[self._registered] = key
        self._by_sa.setdefault(key[0], {})[key] = None

    def start_transaction(self, sa: IsakmpSa) -> Transaction:
        """A Transaction exchange of ours under ``sa`` (XAUTH, Mode Config), with a fresh message ID."""
        ex = Transaction(self, sa, self._new_message_id(sa), True)
        self._register(ex)
        return ex

    def _new_message_id(self, sa: IsakmpSa) -> int:
        while True:
            mid = int.from_bytes(self.rng.random_bytes(4), "big")
            if mid and sa.remember_message_id(mid):
                return mid

    # -- phase 1 outcome -------------------------------------------------------------

    def phase1_established(self, sa: IsakmpSa) -> None:
        assert sa.choice is not None
        info = IkeSaInfo(
            role="initiator" if sa.initiator else "responder",
            mode=sa.mode,
            peer=f"{sa.remote[0]}:{sa.remote[1]}",
            peer_id=sa.peer_identity,
            **sa.choice.as_dict(),
            nat_t=bool(sa.nat_t),
            nat_detected=sa.nat_detected,
        )
        xauth.prepare(sa)
        if sa.config_pending:
            self._config_deadlines[sa.icookie] = self.now + self.config.half_open_timeout
        self.peer.ike_established(sa, info, lifetime=sa.choice.lifetime)
        xauth.begin(self, sa)
        for msg, data, src, dst in self._pending.pop(sa.icookie, []):
            self.emit(Info, sa=sa.ref, message="processing a Quick Mode message that arrived before phase 1 completed")
            self._dispatch(sa, msg, data, src, dst)

    def exchange_failed(self, ex: Exchange) -> None:
        flight = self.flights.get((ex.sa.icookie, ex.message_id))
        if flight is not None:
            flight.timer = None
        if isinstance(ex, Phase1Exchange):
            self.peer.ike_failed(ex.sa)

    # -- notifies and deletes (the wire half) ------------------------------------------

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
        self._send_informational(sa, [NotifyPayload(notify_type, protocol_id, spi, data)], protect=protect)

    def send_delete_ike(self, sa: IsakmpSa) -> None:
        self._send_informational(sa, [DeletePayload(ProtocolId.ISAKMP, 16, [sa.icookie + sa.rcookie])], protect=True)

    def send_liveness_check(self, sa: IsakmpSa, seq: int) -> None:
        """RFC 3706 §5.4: R-U-THERE, protected, the sequence number as notification data."""
        self.send_notify(sa, NotifyType.R_U_THERE, protect=True, data=seq.to_bytes(4, "big"))

    def peer_alive(self, sa: IsakmpSa, seq: int) -> None:
        self.peer.peer_alive(sa, seq)

    def send_delete_child(self, sa: IsakmpSa, pair: IpsecSaPair) -> None:
        self._send_informational(sa, [DeletePayload(ProtocolId.IPSEC_ESP, 4, [pair.inbound.spi.to_bytes(4, "big")])], protect=True)

    def _send_informational(self, sa: IsakmpSa, payloads: list[Payload], *, protect: bool) -> None:
        info = Informational(self, sa, self._new_message_id(sa), True)
        if protect and sa.skeyid_a and sa.enc_key:
            info.send_protected(payloads)
        else:
            info.send_clear(payloads)

    def peer_notify(self, sa: IsakmpSa, notify: NotifyPayload) -> None:
        """Route an error notification to the exchange it concerns."""
        targets = [ex for key in self._by_sa.get(sa.icookie, {}) if not (ex := self.exchanges[key]).done]
        if notify.protocol_id == ProtocolId.IPSEC_ESP:
            targets = [ex for ex in targets if isinstance(ex, QuickMode)]
        elif not sa.established:
            targets = [ex for ex in targets if isinstance(ex, Phase1Exchange)]
        for ex in targets:
            ex.on_peer_notify(notify)

    def forget_exchange(self, ex: Exchange) -> None:
        self._drop((ex.sa.icookie, ex.message_id))

    def _drop(self, key: Key) -> None:
        self._by_sa.get(key[0], {}).pop(key, None)
        self.exchanges.pop(key, None)
        flight = self.flights.pop(key, None)
        if flight is not None:
            flight.timer = None
            self._keys.pop(flight.seq, None)

    def forget(self, sa: IsakmpSa) -> None:
        """The SA is gone: so are its exchanges and held messages."""
        for key in list(self._by_sa.pop(sa.icookie, {})):
            self._drop(key)
        self._pending.pop(sa.icookie, None)

    # -- transport: sending, retransmission ------------------------------------------------

    def transmit(self, ex: Exchange, payloads: list[Payload], *, encrypt: bool, expect_reply: bool) -> None:
        """Encode (and encrypt) the exchange's next message, queue it, arm the timer."""
        sa = ex.sa
        flight = self.flights.get((sa.icookie, ex.message_id)) or Flight()
        ex.index += 1
        msg = Message(icookie=sa.icookie, rcookie=sa.rcookie, exchange_type=ex.exchange_type, message_id=ex.message_id)
        plaintext = None
        if encrypt:
            first, chain = encode_payloads(payloads)
            plaintext, ciphertext = sa.encrypt(ex.message_id, chain)
            msg.flags |= HeaderFlag.ENCRYPTION
            msg.first_payload = first
            msg.encrypted_body = ciphertext
        else:
            msg.payloads = list(payloads)
        raw = msg.encode()
        dgram = self.peer.make_datagram(sa, raw)
        flight.last_sent = dgram
        flight.replied = flight.last_received is not None
        flight.sent_at = self.now
        self.peer.queue(dgram)
        flight.last_sent_fields = dict(
            direction="sent",
            exchange=ex.name,
            exchange_type=ex.exchange_type,
            index=ex.index,
            sender_role=ex.role,
            icookie=sa.icookie.hex(),
            rcookie=sa.rcookie.hex(),
            message_id=ex.message_id,
            src=dgram.src,
            dst=dgram.dst,
            raw=raw,
            summary=summarize(
                payloads, encrypted=encrypt, exchange_type=ex.exchange_type, from_initiator=ex.initiator, index=ex.index
            ),
            encrypted=encrypt,
            plaintext=xauth.redacted(plaintext, payloads) if ex.exchange_type == ExchangeType.TRANSACTION else plaintext,
            non_esp_marker=sa.floated,
        )
        self.emit(MessageEvent, **flight.last_sent_fields)
        flight.attempts = 0
        # A responder does not retransmit to a peer that has not authenticated yet: a spoofed
        # first message must not be answered five times (it is answered again only when the
        # initiator repeats it; the half-open timeout ends the SA).
        retransmit = expect_reply and (ex.initiator or ex.peer_authenticated)
        flight.timer = self.now + self.config.retransmit_timeout if retransmit else None

    def _resend(self, ex: Exchange, flight: Flight, reason: str) -> None:
        if flight.last_sent is None:
            return
        flight.attempts += 1
        flight.sent_at = self.now
        self.peer.queue(flight.last_sent)
        self.emit(Retransmitted, sa=ex.ref, exchange=ex.name, index=ex.index, attempt=flight.attempts, reason=reason)
        self.emit(MessageEvent, **{**flight.last_sent_fields, "retransmission": True})

    def timers(self) -> list[float]:
        return [f.timer for f in self._armed.values() if f.timer is not None] + list(self._config_deadlines.values())

    def _config_overdue(self, now: float) -> None:
        """A client whose gateway never finished XAUTH / Mode Config (``half_open_timeout`` after
        phase 1) gives up instead of holding an ISAKMP SA without children."""
        for icookie, when in list(self._config_deadlines.items()):
            sa = self.peer.ike_sas.get(icookie)
            if not isinstance(sa, IsakmpSa) or not sa.config_pending:
                del self._config_deadlines[icookie]
            elif when <= now:
                del self._config_deadlines[icookie]
                what = "asked us to log in (XAUTH)" if sa.user_auth == "pending" else "gave us an address (Mode Config)"
                self.emit(ErrorEvent, sa=sa.ref, code="TIMEOUT", message=f"the gateway never {what} within "
                          f"{self.config.half_open_timeout:g} s of phase 1: no child can come up, the ISAKMP SA is deleted")
                self.peer.delete_ike(sa, "XAUTH / Mode Config did not complete")

    def on_timer(self, now: float) -> None:
        self._config_overdue(now)
        for seq in sorted(s for s, f in self._armed.items() if f.timer is not None and f.timer <= now):
            key = self._keys.get(seq)
            ex = self.exchanges.get(key) if key is not None else None
            flight = self.flights.get(key) if key is not None else None
            if ex is None or flight is None or flight.timer is None or now < flight.timer:
                continue
            if ex.done:
                flight.timer = None
                continue
            if ex.on_timer(now):
                flight.timer = None
                continue
            if flight.attempts + 1 >= self.config.retransmit_tries:
                flight.timer = None
                ex.on_timeout(flight.attempts + 1)
                continue
            self._resend(ex, flight, "timeout")
            flight.timer = now + self.config.retransmit_timeout * (2**flight.attempts)

    # -- receiving ---------------------------------------------------------------------------

    def receive(self, data: bytes, src: Address, dst: Address) -> None:
        """One ISAKMP message (non-ESP marker removed) from ``src`` to our ``dst``."""
        try:
            msg = Message.decode(data)
        except ParseError as exc:
            self.count("malformed")
            self.emit(ErrorEvent, sa=NO_SA, code="MALFORMED", message=f"undecodable ISAKMP message from {src[0]}:{src[1]}: {exc}")
            return
        sa = self.peer.ike_sas.get(msg.icookie)
        if sa is None:
            self._new_responder(msg, data, src, dst)
            return
        if not isinstance(sa, IsakmpSa):
            self.count("wrong_version")
            return
        if not self._cookies_match(sa, msg):
            self.count("invalid_cookie")
            self.emit(ErrorEvent, sa=sa.ref, code="INVALID_COOKIE", message="responder cookie does not match this SA: dropped")
            return
        self._dispatch(sa, msg, data, src, dst)

    @staticmethod
    def _cookies_match(sa: IsakmpSa, msg: Message) -> bool:
        """RFC 2408 §2.5.3: the responder cookie names the SA, and an all-zero one matches
        nothing — except where the responder's cookie cannot be known yet: a repeat of the
        first phase-1 message (to a responder), or the responder's answer to it (to an
        initiator, which learns the cookie only from phase-1 messages)."""
        zero = bytes(8)
        first_phase1 = msg.message_id == 0 and msg.exchange_type in (ExchangeType.MAIN, ExchangeType.AGGRESSIVE)
        if sa.initiator and sa.rcookie == zero:
            if msg.rcookie != zero and first_phase1:
                sa.rcookie = msg.rcookie
                return True
            # the responder's error notify to our first message, with its cookie or none
            return msg.exchange_type == ExchangeType.INFORMATIONAL and not msg.flags & HeaderFlag.ENCRYPTION
        if msg.rcookie == zero:
            return not sa.initiator and first_phase1
        return msg.rcookie == sa.rcookie

    def _new_responder(self, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        if msg.rcookie != bytes(8) or msg.message_id != 0 or msg.exchange_type not in (ExchangeType.MAIN, ExchangeType.AGGRESSIVE):
            self.count("unknown_sa")
            self.emit(ErrorEvent, sa=NO_SA, code="INVALID_COOKIE", message=f"message for unknown cookies {msg.icookie.hex()}/{msg.rcookie.hex()} from {src[0]}: dropped")
            return
        if msg.flags & HeaderFlag.ENCRYPTION:
            self.count("malformed")
            return
        if not self.peer.admit_half_open(src[0]):
            return
        conn = self.config.connection_for(src[0])
        mode = "aggressive" if msg.exchange_type == ExchangeType.AGGRESSIVE else "main"
        sa = IsakmpSa(
            icookie=msg.icookie,
            rcookie=self.peer.new_ike_spi(),
            initiator=False,
            local=dst,
            remote=src,
            connection=conn,
            mode=mode,
            state=first_state(mode),
            # IKE that starts on 4500 (charon re-authenticating a floated SA, or configured so)
            # is answered there, with the non-ESP marker, from the first reply on
            floated=dst[1] == self.config.natt_port,
        )
        self.peer.add_ike_sa(sa)
        ex = AggressiveModeResponder(self, sa, False) if mode == "aggressive" else MainModeResponder(self, sa, False)
        self._register(ex)
        self._deliver(ex, msg, data, src, dst)

    def _dispatch(self, sa: IsakmpSa, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        key = (sa.icookie, msg.message_id)
        if msg.exchange_type == ExchangeType.INFORMATIONAL:
            self._deliver(Informational(self, sa, msg.message_id, False), msg, data, src, dst)
            return
        ex = self.exchanges.get(key)
        if ex is not None:
            if ex.exchange_type != msg.exchange_type:
                self.count("wrong_exchange_type")
                self.emit(ErrorEvent, sa=sa.ref, code="INVALID_EXCHANGE_TYPE", message=f"exchange type {msg.exchange_type} for a running {ex.name}: dropped")
                return
            self._deliver(ex, msg, data, src, dst)
            return
        if msg.exchange_type == ExchangeType.TRANSACTION and msg.message_id != 0 and sa.established:
            if msg.message_id in sa.used_message_ids:
                self.count("stale_message_id")
                return
            self._answer_new(Transaction(self, sa, msg.message_id, False), msg, data, src, dst)
            return
        if msg.exchange_type != ExchangeType.QUICK or msg.message_id == 0:
            self.count("unexpected")
            self.emit(ErrorEvent, sa=sa.ref, code="UNEXPECTED", message=f"unexpected exchange type {msg.exchange_type} with message ID {msg.message_id:08x}: dropped")
            return
        if not sa.established:
            if sa.failed:
                return
            held = self._pending.setdefault(sa.icookie, [])
            if len(held) >= MAX_PENDING or sum(len(h[1]) for h in held) + len(data) > MAX_PENDING_BYTES:
                self.count("pending_dropped")
                return
            held.append((msg, data, src, dst))
            self.emit(Info, sa=sa.ref, message="Quick Mode request before phase 1 completed: held until it does")
            return
        if msg.message_id in sa.used_message_ids:
            self.count("stale_message_id")
            return
        if sa.user_auth in ("pending", "failed") and phase1.xauth_server(sa):
            self.count("quick_mode_before_xauth")
            self.emit(ErrorEvent, sa=sa.ref, code="XAUTH_REQUIRED", message="a Quick Mode before the user logged in (XAUTH "
                      f"is {sa.user_auth}): dropped — no child SA for a device whose user has not proved who they are")
            return
        self._answer_new(QuickModeResponder(self, sa, msg.message_id, False), msg, data, src, dst)

    def _answer_new(self, ex: Exchange, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        """The peer's first message of a new exchange (Quick Mode, Transaction) under an established SA."""
        self._register(ex)
        self._deliver(ex, msg, data, src, dst)
        if ex.peer_authenticated:
            ex.sa.remember_message_id(msg.message_id)
        else:  # its HASH did not verify (or the message did not decrypt): keep nothing of it
            self.forget_exchange(ex)

    def _deliver(self, ex: Exchange, msg: Message, raw: bytes, src: Address, dst: Address) -> None:
        """Duplicate check, decryption, decoding and the trace; then the exchange's handler."""
        flight = self.flights.get((ex.sa.icookie, ex.message_id)) or Flight()
        if raw == flight.last_received:
            # Only a message we answered is answered again; resending on a duplicate of
            # a reply would make two peers ping-pong their last messages forever.  A duplicate
            # that crossed our answer on the way (sent again within half a retransmission
            # interval of it — both timers fired together) gets nothing more: one copy is enough.
            recent = flight.sent_at is not None and self.now - flight.sent_at < self.config.retransmit_timeout / 2
            if flight.last_sent is not None and flight.replied and not recent:
                self._resend(ex, flight, "duplicate of the last message received")
            else:
                self.count("duplicates_ignored")
            return
        if ex.done and not ex.accepts_after_done():
            return
        sa = ex.sa
        plaintext: bytes | None = None
        next_iv: bytes | None = None
        payloads: list[Payload] | None = None
        error: str | None = None
        encrypted = bool(msg.flags & HeaderFlag.ENCRYPTION)
        if encrypted:
            try:
                plaintext, next_iv = sa.decrypt(ex.message_id, msg.encrypted_body or b"")
                payloads = decode_payloads(msg.first_payload, plaintext, allow_trailing=True)
            except (CryptoError, ParseError) as exc:
                error = str(exc)
                if isinstance(ex, Informational) and not sa.established and sa.enc_key:
                    try:  # libreswan's error notify during phase 1 (its HASH(1) is checked next)
                        alt, alt_iv = sa.decrypt_phase1_notify_as_libreswan(ex.message_id, msg.encrypted_body or b"")
                        payloads = decode_payloads(msg.first_payload, alt, allow_trailing=True)
                    except (CryptoError, ParseError):
                        pass
                    else:
                        plaintext, next_iv, error = alt, alt_iv, None
                        self.emit(Info, sa=sa.ref, message="an encrypted notification during phase 1 decrypted with the IV "
                                  "libreswan uses there (the hash of the Message ID alone, not chained from phase 1)")
        else:
            payloads = msg.payloads
        index = ex.index + 1
        from_initiator = not ex.initiator
        summary = (
            summarize(payloads, encrypted=encrypted, exchange_type=ex.exchange_type, from_initiator=from_initiator, index=index)
            if payloads is not None
            else "HDR*, <undecryptable>"
        )
        self.emit(
            MessageEvent,
            direction="received",
            exchange=ex.name,
            exchange_type=ex.exchange_type,
            index=index,
            sender_role="initiator" if from_initiator else "responder",
            icookie=msg.icookie.hex(),
            rcookie=msg.rcookie.hex(),
            message_id=msg.message_id,
            src=src,
            dst=dst,
            raw=raw,
            summary=summary,
            encrypted=encrypted,
            plaintext=xauth.redacted(plaintext, payloads) if ex.exchange_type == ExchangeType.TRANSACTION else plaintext,
        )
        if payloads is None:
            ex.on_undecryptable(error or "decryption failed", index)
            return
        flight.last_received = raw
        flight.replied = False
        flight.timer = None
        ex.index = index
        if next_iv is not None:
            sa.commit_iv(ex.message_id, next_iv)
        ex.handle(Received(payloads, src, dst, plaintext))
