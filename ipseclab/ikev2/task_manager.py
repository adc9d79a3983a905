"""The IKEv2 task manager: message IDs, the window, encryption, retransmission and
dispatch (charon's ``task_manager_v2.c``; RFC 7296 §2.1–§2.3).

The version-neutral :class:`~ipseclab.peer.Peer` hands it every datagram whose header
says version 2 and asks it to start an IKE SA or a child, to delete, and for its
timers.  The manager

* numbers our requests from 0 and keeps one outstanding at a time (window size 1,
  §2.3): later requests wait in a queue;
* retransmits an unanswered request after ``timeout * 2**attempt`` seconds (§2.1) —
  only the initiator of an exchange does; a responder answers a retransmitted
  request with the response it cached, and drops any other old or early message ID;
* seals and opens the SK payload (:mod:`ipseclab.ikev2.protection`) before an
  exchange sees a message — a message that does not open is dropped and counted,
  never answered (§2.21.2, nothing unauthenticated may change state);
* answers IKE_SA_INIT errors without keeping state (NO_PROPOSAL_CHOSEN,
  INVALID_KE_PAYLOAD) and asks for a COOKIE once ``cookie_threshold`` IKE SAs are
  half open (§2.6): the cookie is ``HMAC(secret, Ni | IPi | SPIi)``, which the
  initiator can only echo if it receives at its address.

It is the :class:`~ipseclab.ikev2.exchange.Owner` of every exchange.
"""

from __future__ import annotations

import hmac as _hmac  # compare_digest only
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipseclab.crypto.registry import ike_hash
from ipseclab.crypto.sk_cipher import SkOpenError
from ipseclab.engines import PeerServices
from ipseclab.errors import ConfigError, ParseError
from ipseclab.ikev2 import create_child_sa, ike_auth, ike_sa_init, informational, intermediate
from ipseclab.ikev2.create_child_sa import CreateChildInitiator
from ipseclab.ikev2.exchange import InitiatorExchange, Reject, Rx, notify_name
from ipseclab.ikev2.ike_auth import IkeAuthInitiator
from ipseclab.ikev2.ike_sa import IkeSaV2, IkeState
from ipseclab.ikev2.ike_sa_init import IkeSaInitInitiator
from ipseclab.ikev2.informational import InformationalInitiator
from ipseclab.ikev2.notation import summarize
from ipseclab.ikev2.protection import Reassembly, open_fragment, open_message, seal, seal_fragments
from ipseclab.ikev2.rekey_ike import RekeyIkeInitiator
from ipseclab.sa import ChildState
from ipseclab.trace import NO_SA, ErrorEvent, Info, MessageEvent, PortFloated, Retransmitted
from ipseclab.wire.v2.constants import ExchangeType, HeaderFlag, NotifyType, ProtocolId
from ipseclab.wire.v2.message import (
    DeletePayload,
    EncryptedFragmentPayload,
    Message,
    NotifyPayload,
    Payload,
    SAPayload,
    decode_payloads,
)

if TYPE_CHECKING:
    from ipseclab.config import Connection
    from ipseclab.peer import Datagram, Peer
    from ipseclab.sa import IpsecSaPair
    from ipseclab.trace import Address

ZERO_SPI = bytes(8)


def _inner_first(msg: Message, fragments: Reassembly) -> int:
    """The first inner payload (what IntAuth's A part names): the SK payload's Next Payload, or
    fragment 1's when the message came in fragments (RFC 9242 §3.3.2 hashes it as one SK)."""
    from ipseclab.wire.v2.message import EncryptedPayload

    sk = msg.payloads[-1] if msg.payloads else None
    if isinstance(sk, EncryptedFragmentPayload):
        return fragments.first_payload
    return sk.first_payload if isinstance(sk, EncryptedPayload) else 0
_RESPONDERS: dict[int, Callable[[Any, IkeSaV2, Rx], list[Payload]]] = {
    ExchangeType.IKE_INTERMEDIATE: intermediate.respond,
    ExchangeType.IKE_AUTH: ike_auth.respond,
    ExchangeType.CREATE_CHILD_SA: create_child_sa.respond,
    ExchangeType.INFORMATIONAL: informational.respond,
}
_NAMES = {t: t.name for t in ExchangeType}


@dataclass
class Outstanding:
    """Our request waiting for its response (its datagrams: one, or its fragments), and its
    retransmission state."""

    exchange: InitiatorExchange
    message_id: int
    datagrams: list[Datagram]
    fields: list[dict[str, Any]]
    attempts: int = 0
    timer: float | None = None


@dataclass
class Answered:
    """The last request we answered, to answer its retransmissions the same way (§2.1; with
    fragments, on the request's first fragment, RFC 7383 §2.6.1)."""

    message_id: int
    request: bytes  # the request, or its first fragment
    datagrams: list[Datagram]
    fields: list[dict[str, Any]] = field(default_factory=list)


#: bounds on a message being reassembled (RFC 7383 §2.6): fragments and bytes
MAX_FRAGMENTS = 32
MAX_REASSEMBLY_BYTES = 64 * 1024
PENDING = object()  # a fragment stored, the message not complete yet


class TaskManagerV2(PeerServices):
    """IKEv2 for one :class:`~ipseclab.peer.Peer` (sans-I/O, like the peer)."""

    version = 2

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self._active: dict[bytes, Outstanding] = {}
        self._queued: dict[bytes, deque[InitiatorExchange]] = {}
        self._answered: dict[bytes, Answered] = {}
        self._after: dict[bytes, list[Callable[[], None]]] = {}
        self._reassembly: dict[tuple[bytes, bool, int], Reassembly] = {}
        self._processing: tuple[InitiatorExchange, ...] = ()  # the exchange whose response is being handled
        self._last_fragments = Reassembly(0)
        self._cookie_secret: bytes | None = None

    # -- what exchanges may ask (Owner) -------------------------------------------------

    def after_response(self, sa: IkeSaV2, action: Callable[[], None]) -> None:
        """Run ``action`` once the response being built has been sent (a deleted SA still answers)."""
        self._after.setdefault(sa.spi_i, []).append(action)

    def fail_ike(self, sa: IkeSaV2, code: str, message: str) -> None:
        """An IKE SA that will not come up: say why in words, then the peer's bookkeeping."""
        self.emit(ErrorEvent, sa=sa.ref, code=code, message=message)
        self._drop_requests(sa)
        if sa.established:
            self.peer.delete_ike(sa, message, notify_peer=False)
            return
        self.set_state(sa, IkeState.FAILED)
        self.peer.ike_failed(sa)

    # -- the IkeEngine interface ------------------------------------------------------------

    def initiate(self, conn: Connection) -> IkeSaV2:
        on_natt = conn.remote_port == self.config.natt_port
        sa = IkeSaV2(
            spi_i=self.peer.new_ike_spi(), spi_r=ZERO_SPI, initiator=True,
            local=(self.config.address, self.config.natt_port if on_natt else self.config.port),
            remote=(conn.remote_address, conn.remote_port), connection=conn, state=IkeState.CREATED, floated=on_natt,
        )
        self.peer.add_ike_sa(sa)
        self.set_state(sa, IkeState.CONNECTING)
        self.emit(Info, sa=sa.ref, message=f"initiating connection {conn.name} (IKEv2) to {conn.remote_address}")
        self.request(sa, IkeSaInitInitiator(self, sa))
        return sa

    def start_child(self, sa: IkeSaV2, child_name: str) -> int:  # type: ignore[override]
        conn = sa.connection
        if conn is None:
            raise ConfigError("this IKE SA has no connection to take children from")
        child = next((c for c in conn.children if c.name == child_name), None)
        if child is None:
            raise ConfigError(f"connection {conn.name} has no child {child_name!r}")
        predicted = sa.next_request_id + (1 if sa.spi_i in self._active else 0) + len(self._queued.get(sa.spi_i, ()))
        old = next((p for p in sa.children if p.child == child_name and p.state == ChildState.REKEYING), None)
        self.request(sa, CreateChildInitiator(self, sa, child, rekey_spi=old.inbound.spi if old else None))
        return predicted

    def rekey_ike(self, sa: IkeSaV2) -> bool:  # type: ignore[override]
        """Rekey the IKE SA in place (RFC 7296 §2.18) instead of authenticating anew."""
        if not sa.established:
            return False
        self.emit(Info, sa=sa.ref, message=f"rekeying {sa.ref.label}: soft lifetime reached")
        self.request(sa, RekeyIkeInitiator(self, sa))
        return True

    def negotiating_child(self, child_name: str) -> bool:
        running = [o.exchange for o in self._active.values()] + [ex for q in self._queued.values() for ex in q]
        for ex in running:
            if isinstance(ex, IkeAuthInitiator) and ex.child_name == child_name and not ex.done:
                return True
            if isinstance(ex, CreateChildInitiator) and ex.child.name == child_name and not ex.done:
                return True
        # IKE_AUTH is being processed (its child comes right after the IKE SA)
        return any(getattr(ex, "child_name", None) == child_name for ex in self._processing)

    def send_delete_ike(self, sa: IkeSaV2) -> None:  # type: ignore[override]
        """D(IKE), sent at once: the SA goes whether or not the peer answers."""
        self._drop_requests(sa)
        self._transmit(sa, InformationalInitiator(self, sa, [DeletePayload(ProtocolId.IKE)]), retransmit=False)

    def send_delete_child(self, sa: IkeSaV2, pair: IpsecSaPair) -> None:  # type: ignore[override]
        self.request(sa, InformationalInitiator(self, sa, [DeletePayload(ProtocolId.ESP, 4, [pair.inbound.spi.to_bytes(4, "big")])]))

    def send_liveness_check(self, sa: IkeSaV2, seq: int) -> None:  # type: ignore[override]
        self.request(sa, InformationalInitiator(self, sa, [], liveness_seq=seq))

    def forget(self, sa: IkeSaV2) -> None:  # type: ignore[override]
        """The IKE SA is gone, and with it every child SA negotiated under it (RFC 7296 §1.4.1)."""
        self._drop_requests(sa)
        for key in [k for k in self._reassembly if k[0] == sa.spi_i]:
            del self._reassembly[key]
        self._answered.pop(sa.spi_i, None)
        self._after.pop(sa.spi_i, None)
        for pair in list(sa.children):
            self.peer.delete_child(pair, f"its IKE SA {sa.ref.label} was deleted", notify_peer=False)

    def _drop_requests(self, sa: IkeSaV2) -> None:
        self._active.pop(sa.spi_i, None)
        self._queued.pop(sa.spi_i, None)

    # -- requests: the window, sending, retransmission --------------------------------------

    def request(self, sa: IkeSaV2, exchange: InitiatorExchange) -> None:
        """Send ``exchange``'s request now, or when the one outstanding is answered."""
        if sa.spi_i in self._active:
            self._queued.setdefault(sa.spi_i, deque()).append(exchange)
            return
        self._transmit(sa, exchange)

    def _next(self, sa: IkeSaV2) -> None:
        queue = self._queued.get(sa.spi_i)
        while queue and sa.spi_i not in self._active and self.peer.ike_sas.get(sa.spi_i) is sa:
            self._transmit(sa, queue.popleft())

    def float_to_natt(self, sa: IkeSaV2) -> None:
        """RFC 7296 §2.23: with a NAT between us, the initiator moves to UDP 4500 after IKE_SA_INIT."""
        if sa.floated:
            return
        old = sa.remote
        sa.local, sa.remote, sa.floated = (sa.local[0], self.config.natt_port), (sa.remote[0], self.config.natt_port), True
        self.emit(PortFloated, sa=sa.ref, old=old, new=sa.remote)

    def _transmit(self, sa: IkeSaV2, ex: InitiatorExchange, *, retransmit: bool = True) -> None:
        init = ex.exchange_type == ExchangeType.IKE_SA_INIT
        if init:
            sa.spi_r, message_id = ZERO_SPI, 0
        else:
            message_id = sa.next_request_id
            if isinstance(ex, IkeAuthInitiator) and not ex.rounds:  # the first IKE_AUTH's (RFC 9242 §3.3.2)
                sa.auth_message_id = message_id
            if ex.exchange_type in (ExchangeType.IKE_AUTH, ExchangeType.IKE_INTERMEDIATE) and (sa.nat_local or sa.nat_remote):
                self.float_to_natt(sa)
        try:
            payloads = ex.build()
        except Reject as reject:
            self.fail_ike(sa, notify_name(reject.notify_type), reject.message)
            return
        flags = HeaderFlag.INITIATOR if sa.initiator else 0
        raws, plaintext = self._encode(sa, ex.exchange_type, message_id, flags, payloads, encrypt=ex.encrypted)
        if init:
            sa.init_request = raws[0]
        if ex.exchange_type == ExchangeType.IKE_INTERMEDIATE and plaintext is not None:
            intermediate.absorb(self, sa, flags=flags, message_id=message_id, inner_first=payloads[0].payload_type,
                                plaintext=plaintext, request=True)
        sa.next_request_id = message_id + 1
        dgrams = [self.peer.make_datagram(sa, raw) for raw in raws]
        fields = self._sent_fields(sa, ex.exchange_type, message_id, dgrams, raws, plaintext, payloads, request=True,
                                   encrypted=ex.encrypted)
        for dgram, f in zip(dgrams, fields, strict=True):
            self.peer.queue(dgram)
            self.emit(MessageEvent, **f)
        timer = self.now + self.config.retransmit_timeout if retransmit else None
        if retransmit:
            self._active[sa.spi_i] = Outstanding(ex, message_id, dgrams, fields, 0, timer)

    def _max_message(self, sa: IkeSaV2) -> int:
        """The largest IKE message one datagram may carry: ``fragment_size`` (an IP datagram,
        charon's default 1280) less the IP and UDP headers and the non-ESP marker."""
        ip_header = 40 if ":" in sa.remote[0] else 20
        return self.config.fragment_size - ip_header - 8 - (4 if sa.floated else 0)

    def _encode(
        self, sa: IkeSaV2, exchange_type: int, message_id: int, flags: int, payloads: list[Payload], *, encrypt: bool
    ) -> tuple[list[bytes], bytes | None]:
        """The datagrams of one message — one, or its fragments when it is too large and both
        sides support RFC 7383 — and the inner chain they protect."""
        if not encrypt:
            msg = Message(sa.spi_i, sa.spi_r, exchange_type, flags, message_id, payloads)
            return [msg.encode()], None
        assert sa.cipher is not None
        cipher = sa.cipher
        raw, chain = seal(sa, exchange_type, message_id, flags, payloads, self.rng.random_bytes(cipher.iv_size))
        limit = self._max_message(sa)
        if not sa.fragmentation or len(raw) <= limit:
            return [raw], chain
        raws, chain = seal_fragments(sa, exchange_type, message_id, flags, payloads, limit,
                                     lambda: self.rng.random_bytes(cipher.iv_size))
        self.count("fragmented_messages")
        return raws, chain

    def _sent_fields(
        self, sa: IkeSaV2, exchange_type: int, message_id: int, dgrams: list[Any], raws: list[bytes], plaintext: bytes | None,
        payloads: list[Payload], *, request: bool, encrypted: bool,
    ) -> list[dict[str, Any]]:
        """The MessageEvent fields of each datagram of a message we send."""
        whole = self._message_fields(sa, "sent", exchange_type, message_id, dgrams[0], raws[0], plaintext, payloads,
                                     request=request, encrypted=encrypted)
        if len(raws) == 1:
            return [whole]
        out = []
        for n, (dgram, raw) in enumerate(zip(dgrams, raws, strict=True), 1):
            inner = whole["summary"].removeprefix("HDR, SK ") if n == 1 else ""
            out.append({**whole, "src": dgram.src, "dst": dgram.dst, "raw": raw, "plaintext": None,
                        "summary": f"HDR, SKF {{fragment {n}/{len(raws)}}}" + (f" of SK {inner}" if inner else "")})
        return out

    def _message_fields(
        self, sa: IkeSaV2, direction: str, exchange_type: int, message_id: int, dgram_or_src: Any, raw: bytes,
        plaintext: bytes | None, payloads: list[Payload], *, request: bool, encrypted: bool, dst: Address | None = None,
    ) -> dict[str, Any]:
        if dst is None:
            src, dst = dgram_or_src.src, dgram_or_src.dst
        else:
            src = dgram_or_src
        from_initiator = (sa.initiator if direction == "sent" else not sa.initiator)
        index = 1 if request else 2
        if exchange_type == ExchangeType.IKE_AUTH and message_id > sa.auth_message_id:  # EAP's rounds: AUTH3, AUTH4, …
            index += 2 * (message_id - sa.auth_message_id)
        return dict(
            direction=direction, exchange=_NAMES.get(exchange_type, f"exchange {exchange_type}"),
            exchange_type=exchange_type, index=index, sender_role="initiator" if request else "responder",
            icookie=sa.spi_i.hex(), rcookie=sa.spi_r.hex(), message_id=message_id, src=src, dst=dst, raw=raw,
            summary=summarize(payloads, exchange_type=exchange_type, from_initiator=from_initiator, encrypted=encrypted),
            encrypted=encrypted, plaintext=plaintext, non_esp_marker=sa.floated, ike_version=2,
        )

    def timers(self) -> list[float]:
        return [o.timer for o in self._active.values() if o.timer is not None]

    def on_timer(self, now: float) -> None:
        for spi, out in list(self._active.items()):
            if out.timer is None or out.timer > now or self._active.get(spi) is not out:
                continue
            if out.attempts + 1 >= self.config.retransmit_tries:
                self._active.pop(spi, None)
                out.exchange.on_timeout(out.attempts + 1)
                continue
            out.attempts += 1
            sa = out.exchange.sa
            self.emit(Retransmitted, sa=sa.ref, exchange=out.exchange.name, index=1, attempt=out.attempts, reason="timeout")
            self._send_again(out)
            out.timer = now + self.config.retransmit_timeout * (2**out.attempts)

    def _send_again(self, sent: Outstanding | Answered) -> None:
        """Queue a message's datagrams once more, each with its event marked a retransmission."""
        for dgram, f in zip(sent.datagrams, sent.fields, strict=True):
            self.peer.queue(dgram)
            self.emit(MessageEvent, **{**f, "retransmission": True})

    # -- receiving ------------------------------------------------------------------------

    def receive(self, data: bytes, src: Address, dst: Address) -> None:
        """One IKEv2 message (non-ESP marker removed) from ``src`` to our ``dst``."""
        try:
            msg = Message.decode(data)
        except ParseError as exc:
            self.count("malformed")
            self.emit(ErrorEvent, sa=NO_SA, code="INVALID_SYNTAX", message=f"undecodable IKEv2 message from {src[0]}:{src[1]}: {exc}")
            return
        response = bool(msg.flags & HeaderFlag.RESPONSE)
        from_initiator = bool(msg.flags & HeaderFlag.INITIATOR)
        sa = self.peer.ike_sas.get(msg.spi_i)
        if sa is not None and not isinstance(sa, IkeSaV2):
            self.count("wrong_version")
            return
        if sa is None or sa.initiator == from_initiator:
            first = msg.exchange_type == ExchangeType.IKE_SA_INIT and not response and msg.message_id == 0
            if sa is None and from_initiator and first and msg.spi_r == ZERO_SPI:
                self._new_responder(msg, data, src, dst)
                return
            self.count("unknown_sa")
            if response:  # the answer to a Delete that ended the SA, or to a request we gave up on
                return
            self.peer.limited_report("v2-unknown-spi", f"IKEv2 message for unknown SPIs {msg.spi_i.hex()}/{msg.spi_r.hex()} "
                                      f"from {src[0]}: dropped", code="INVALID_IKE_SPI")
            return
        if msg.spi_r != sa.spi_r:
            learning = sa.initiator and response and msg.exchange_type == ExchangeType.IKE_SA_INIT
            repeat = not sa.initiator and not response and msg.exchange_type == ExchangeType.IKE_SA_INIT and msg.spi_r == ZERO_SPI
            if not (learning or repeat):
                self.count("invalid_spi")
                return
        if response:
            self._on_response(sa, msg, data, src, dst)
        else:
            self._on_request(sa, msg, data, src, dst)

    def _open(self, sa: IkeSaV2, msg: Message, data: bytes, src: Address) -> Any:
        """(payloads, plaintext) of a message; :data:`PENDING` for a fragment of one not complete
        yet; None when it does not open (counted, reported at most once a second)."""
        if msg.exchange_type == ExchangeType.IKE_SA_INIT:
            return msg.payloads, None
        try:
            if msg.payloads and isinstance(msg.payloads[-1], EncryptedFragmentPayload):
                return self._fragment(sa, msg, data)
            return open_message(sa, msg, data)
        except SkOpenError as exc:
            self.count(f"sk_{exc.reason.replace(' ', '_')}")
            self.peer.limited_report(f"v2-sk-{sa.spi_i.hex()}", f"{_NAMES.get(msg.exchange_type, 'a message')} from "
                                      f"{src[0]}:{src[1]} does not open: {exc} — dropped (RFC 7296 §2.21.2)",
                                      code="INTEGRITY_CHECK_FAILED")
        except ParseError as exc:
            self.count("malformed")
            self.emit(ErrorEvent, sa=sa.ref, code="INVALID_SYNTAX", message=f"the decrypted payloads do not decode: {exc}")
        return None

    def _fragment(self, sa: IkeSaV2, msg: Message, data: bytes) -> Any:
        """Keep an authenticated fragment (RFC 7383 §2.6); the whole message when it is the last
        one missing.  Only fragments that open are kept, at most :data:`MAX_FRAGMENTS` and
        :data:`MAX_REASSEMBLY_BYTES` per message, one message per direction."""
        skf, piece = open_fragment(sa, msg, data)
        key = (sa.spi_i, bool(msg.flags & HeaderFlag.RESPONSE), msg.message_id)
        if skf.total_fragments > MAX_FRAGMENTS:
            self.count("fragments_over_limit")
            return None
        held = self._reassembly.get(key)
        if held is None or skf.total_fragments > held.total:  # a larger total replaces (RFC 7383 §2.6.1)
            for old in [k for k in self._reassembly if k[0] == sa.spi_i and k[1] == key[1]]:
                del self._reassembly[old]
            held = self._reassembly[key] = Reassembly(skf.total_fragments)
        elif skf.total_fragments < held.total:
            self.count("fragments_ignored")
            return None
        if skf.fragment_number in held.pieces:
            self.count("fragments_duplicate")
            return PENDING if skf.fragment_number != 1 else None
        if held.size + len(piece) > MAX_REASSEMBLY_BYTES:
            del self._reassembly[key]
            self.count("fragments_over_limit")
            return None
        held.pieces[skf.fragment_number] = piece
        held.raws[skf.fragment_number] = data
        if skf.fragment_number == 1:
            held.first_payload = skf.first_payload
        self.count("fragments_received")
        if not held.complete():
            return PENDING
        del self._reassembly[key]
        chain = held.chain()
        self._last_fragments = held
        return decode_payloads(held.first_payload, chain), chain

    def _on_response(self, sa: IkeSaV2, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        out = self._active.get(sa.spi_i)
        if out is None or msg.message_id != out.message_id or msg.exchange_type != out.exchange.exchange_type:
            self.count("unexpected_response")
            return
        if msg.exchange_type == ExchangeType.IKE_SA_INIT and msg.spi_r != ZERO_SPI and any(isinstance(p, SAPayload) for p in msg.payloads):
            sa.spi_r = msg.spi_r
        opened = self._open(sa, msg, data, src)
        if opened is None:
            return
        if opened is PENDING:
            self._fragment_event(sa, msg, data, src, dst, request=False)
            return
        payloads, plaintext = opened
        self.emit(MessageEvent, **self._message_fields(sa, "received", msg.exchange_type, msg.message_id, src, data, plaintext,
                                                        payloads, request=False, encrypted=plaintext is not None, dst=dst))
        del self._active[sa.spi_i]
        if msg.exchange_type == ExchangeType.IKE_INTERMEDIATE and plaintext is not None:
            intermediate.absorb(self, sa, flags=msg.flags, message_id=msg.message_id, inner_first=_inner_first(msg, self._last_fragments),
                                plaintext=plaintext, request=False)
        self._processing = (out.exchange,)
        try:
            out.exchange.process(Rx(msg, payloads, data, src, dst, plaintext))
        finally:
            self._processing = ()
        self._next(sa)

    def _on_request(self, sa: IkeSaV2, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        answered = self._answered.get(sa.spi_i)
        if answered is not None and msg.message_id == answered.message_id:
            if data == answered.request:
                self.emit(Retransmitted, sa=sa.ref, exchange=answered.fields[0]["exchange"], index=2, attempt=1,
                          reason="the peer repeated its request")
                self._send_again(answered)
            else:
                self.count("duplicates_ignored")
            return
        if msg.message_id != sa.expected_request_id or msg.exchange_type == ExchangeType.IKE_SA_INIT:
            self.count("invalid_message_id")
            return
        setup = (ExchangeType.IKE_AUTH, ExchangeType.IKE_INTERMEDIATE)
        if msg.exchange_type in setup and sa.state != IkeState.AUTHENTICATING:
            self.count("unexpected")
            return
        if msg.exchange_type not in setup and not sa.established:
            self.count("unexpected")
            return
        opened = self._open(sa, msg, data, src)
        if opened is None:
            return
        if opened is PENDING:
            self._fragment_event(sa, msg, data, src, dst, request=True)
            return
        payloads, plaintext = opened
        first_raw = data
        if msg.payloads and isinstance(msg.payloads[-1], EncryptedFragmentPayload):
            first_raw = self._last_fragments.raws[1]
        if msg.exchange_type in setup:
            sa.peer_proven = True
        if msg.exchange_type == ExchangeType.IKE_AUTH and sa.eap is None:  # the first IKE_AUTH (EAP's rounds follow)
            sa.auth_message_id = msg.message_id
        if msg.exchange_type == ExchangeType.IKE_INTERMEDIATE and plaintext is not None:
            intermediate.absorb(self, sa, flags=msg.flags, message_id=msg.message_id, inner_first=_inner_first(msg, self._last_fragments),
                                plaintext=plaintext, request=True)
        self.emit(MessageEvent, **self._message_fields(sa, "received", msg.exchange_type, msg.message_id, src, data, plaintext,
                                                        payloads, request=True, encrypted=True, dst=dst))
        sa.expected_request_id += 1
        rx = Rx(msg, payloads, data, src, dst, plaintext)
        fatal: Reject | None = None
        try:
            reply = _RESPONDERS[msg.exchange_type](self, sa, rx) if msg.exchange_type in _RESPONDERS else []
        except Reject as reject:
            self.emit(ErrorEvent, sa=sa.ref, code=notify_name(reject.notify_type), message=reject.message)
            reply = [NotifyPayload(reject.notify_type, data=reject.data)]
            fatal = reject if reject.fatal else None
        self._respond(sa, msg, first_raw, reply, src, dst)
        for action in self._after.pop(sa.spi_i, []):
            action()
        if fatal is not None and self.peer.ike_sas.get(sa.spi_i) is sa:
            self._drop_requests(sa)
            self.set_state(sa, IkeState.FAILED)
            self.peer.ike_failed(sa)

    def _respond(self, sa: IkeSaV2, msg: Message, request: bytes, payloads: list[Payload], src: Address, dst: Address) -> None:
        """Answer to where the request came from, from where it arrived (RFC 7296 §2.11)."""
        from ipseclab.peer import NON_ESP_MARKER, Datagram

        flags = HeaderFlag.RESPONSE | (HeaderFlag.INITIATOR if sa.initiator else 0)
        encrypt = msg.exchange_type != ExchangeType.IKE_SA_INIT
        raws, plaintext = self._encode(sa, msg.exchange_type, msg.message_id, flags, payloads, encrypt=encrypt)
        if not encrypt:
            sa.init_response = raws[0]
        if msg.exchange_type == ExchangeType.IKE_INTERMEDIATE and plaintext is not None and payloads:
            intermediate.absorb(self, sa, flags=flags, message_id=msg.message_id, inner_first=payloads[0].payload_type,
                                plaintext=plaintext, request=False)
        marker = NON_ESP_MARKER if dst[1] == self.config.natt_port else b""
        dgrams = [Datagram(marker + raw, dst, src) for raw in raws]
        fields = self._sent_fields(sa, msg.exchange_type, msg.message_id, dgrams, raws, plaintext, payloads, request=False,
                                   encrypted=encrypt)
        for dgram, f in zip(dgrams, fields, strict=True):
            self.peer.queue(dgram)
            self.emit(MessageEvent, **f)
        self._answered[sa.spi_i] = Answered(msg.message_id, request, dgrams, fields)

    def _fragment_event(self, sa: IkeSaV2, msg: Message, data: bytes, src: Address, dst: Address, *, request: bool) -> None:
        """A fragment kept for reassembly, in the trace (its payloads come with the last one)."""
        skf = msg.payloads[-1]
        assert isinstance(skf, EncryptedFragmentPayload)
        fields = self._message_fields(sa, "received", msg.exchange_type, msg.message_id, src, data, None, [], request=request,
                                      encrypted=True, dst=dst)
        fields["summary"] = f"HDR, SKF {{fragment {skf.fragment_number}/{skf.total_fragments}}}"
        self.emit(MessageEvent, **fields)

    # -- a new responder SA (IKE_SA_INIT) ------------------------------------------------------

    def _cookie(self, ni: bytes, src: Address, spi_i: bytes) -> bytes:
        """§2.6: ``<VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)`` — HMAC-SHA2-256 keyed by our secret."""
        if self._cookie_secret is None:
            self._cookie_secret = self.rng.random_bytes(32)
        return b"\x00\x01" + ike_hash(4).prf(self._cookie_secret, ni + ipaddress.ip_address(src[0]).packed + spi_i)

    def _stateless_reply(self, msg: Message, src: Address, dst: Address, notify: NotifyPayload) -> None:
        from ipseclab.peer import NON_ESP_MARKER, Datagram

        reply = Message(msg.spi_i, ZERO_SPI, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE, 0, [notify]).encode()
        marker = NON_ESP_MARKER if dst[1] == self.config.natt_port else b""
        self.peer.queue(Datagram(marker + reply, dst, src))
        self.emit(MessageEvent, direction="sent", exchange="IKE_SA_INIT", exchange_type=ExchangeType.IKE_SA_INIT, index=2,
                  sender_role="responder", icookie=msg.spi_i.hex(), rcookie=ZERO_SPI.hex(), message_id=0, src=dst, dst=src,
                  raw=reply, summary=f"HDR, N({notify_name(notify.notify_type)})", non_esp_marker=bool(marker), ike_version=2)

    def _new_responder(self, msg: Message, data: bytes, src: Address, dst: Address) -> None:
        from ipseclab.wire.v2.message import NoncePayload

        nonce = next((p for p in msg.payloads if isinstance(p, NoncePayload)), None)
        if self.peer.half_open_count >= self.config.cookie_threshold:
            want = self._cookie(nonce.data if nonce else b"", src, msg.spi_i)
            got = msg.payloads[0] if msg.payloads else None
            if not (isinstance(got, NotifyPayload) and got.notify_type == NotifyType.COOKIE and _hmac.compare_digest(got.data, want)):
                self.count("cookies_sent")
                self.peer.limited_report("v2-cookie", f"{self.peer.half_open_count} IKE SAs half open (cookie_threshold = "
                                          f"{self.config.cookie_threshold}): new initiators are asked for a cookie first "
                                          "(RFC 7296 §2.6) — no state until they echo it", code="COOKIE")
                self._stateless_reply(msg, src, dst, NotifyPayload(NotifyType.COOKIE, data=want))
                return
            self.count("cookies_verified")
        if not self.peer.admit_half_open(src[0]):
            return
        sa = IkeSaV2(spi_i=msg.spi_i, spi_r=self.peer.new_ike_spi(), initiator=False, local=dst, remote=src,
                     connection=self.config.connection_for(src[0]), state=IkeState.CREATED,
                     floated=dst[1] == self.config.natt_port)
        self.emit(MessageEvent, **self._message_fields(sa, "received", msg.exchange_type, 0, src, data, None, msg.payloads,
                                                        request=True, encrypted=False, dst=dst))
        rx = Rx(msg, msg.payloads, data, src, dst)
        try:
            reply = ike_sa_init.respond(self, sa, rx)
        except Reject as reject:
            self.count(f"refused_{notify_name(reject.notify_type).lower()}")
            self.emit(ErrorEvent, sa=sa.ref, code=notify_name(reject.notify_type), message=reject.message)
            self._stateless_reply(msg, src, dst, NotifyPayload(reject.notify_type, data=reject.data))
            return
        self.peer.add_ike_sa(sa)
        sa.expected_request_id = 1
        self._respond(sa, msg, data, reply, src, dst)
