"""What every IKEv1 exchange shares: sending, receiving, retransmission, duplicates.

An exchange is one ISAKMP exchange under one ISAKMP SA (identified by the cookies
and the message ID), run by one of the modules in this package (charon's "task"
idea).  It never touches sockets or clocks: the :class:`~ipseclab.peer.Peer`
hands it decoded messages and the current time, and it queues datagrams and emits
trace events through the peer.

Retransmission (RFC 2408 §5 leaves the policy local): a message that expects an
answer is resent after ``timeout * 2**attempt`` seconds, up to the configured
number of tries; a duplicate of the last message received makes the exchange resend
its last reply instead of processing it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ipseclab.errors import CryptoError, ParseError
from ipseclab.ikev1.explain import explain_peer_notify
from ipseclab.ikev1.notation import exchange_name, notify_name, summarize
from ipseclab.trace import ErrorEvent, MessageEvent, Retransmitted, SaRef
from ipseclab.wire.constants import HeaderFlag
from ipseclab.wire.isakmp import Message, NotifyPayload, Payload, decode_payloads, encode_payloads
from ipseclab.wire.tree import message_tree

if TYPE_CHECKING:
    from ipseclab.ikev1.isakmp_sa import IsakmpSa
    from ipseclab.peer import Datagram, Peer


class Exchange:
    """Base class of Main, Aggressive, Quick Mode and Informational exchanges."""

    exchange_type: ClassVar[int]
    #: indices of messages this exchange's *initiator* sends (1-based)
    initiator_indices: ClassVar[frozenset[int]] = frozenset({1, 3, 5})

    def __init__(self, peer: Peer, sa: IsakmpSa, message_id: int, initiator: bool) -> None:
        self.peer = peer
        self.sa = sa
        self.message_id = message_id
        self.initiator = initiator
        self.index = 0
        self.last_sent: Datagram | None = None
        self.last_received: bytes | None = None
        self.last_sent_fields: dict = {}
        self.replied = False  # was our last message sent after the last one received?
        self.timer: float | None = None
        self.attempts = 0

    # -- naming ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return exchange_name(self.exchange_type)

    @property
    def ref(self) -> SaRef:
        return self.sa.ref

    # -- state -------------------------------------------------------------------

    #: states in which the exchange has ended
    final_states: ClassVar[frozenset[str]] = frozenset({"FAILED"})

    @property
    def state(self) -> str:
        """The state of what this exchange negotiates (phase 1: the ISAKMP SA's)."""
        return self.sa.state

    def set_state(self, new: str) -> None:
        self.peer.set_state(self.sa, new)

    @property
    def done(self) -> bool:
        return self.state in self.final_states

    @property
    def failed(self) -> bool:
        return self.state == "FAILED"

    def fail(self, code: str, message: str, notify: int | None = None) -> None:
        """End the exchange with a plain-words error event; it moves to FAILED."""
        self.timer = None
        self.peer.emit(ErrorEvent, sa=self.ref, code=code, message=message, notify=notify)
        self.set_state("FAILED")
        self.peer.exchange_failed(self)

    def on_peer_notify(self, notify: NotifyPayload) -> None:
        """An error notification from the peer ends this exchange, with an explanation."""
        if notify.notify_type >= 8192 or self.done:
            return
        name = notify_name(notify.notify_type)
        self.fail(f"PEER_{name}", explain_peer_notify(notify.notify_type), notify.notify_type)

    # -- sending -----------------------------------------------------------------

    def send(self, payloads: list[Payload], *, encrypt: bool, expect_reply: bool) -> None:
        """Encode (and encrypt) the next message of this exchange and queue it."""
        self.index += 1
        msg = Message(
            icookie=self.sa.icookie,
            rcookie=self.sa.rcookie,
            exchange_type=self.exchange_type,
            message_id=self.message_id,
        )
        plaintext = None
        if encrypt:
            first, chain = encode_payloads(payloads)
            plaintext, ciphertext = self.sa.encrypt(self.message_id, chain)
            msg.flags |= HeaderFlag.ENCRYPTION
            msg.first_payload = first
            msg.encrypted_body = ciphertext
        else:
            msg.payloads = list(payloads)
        raw = msg.encode()
        dgram = self.peer.make_datagram(self.sa, raw)
        self.last_sent = dgram
        self.replied = self.last_received is not None
        self.peer.queue(dgram)
        self.last_sent_fields = dict(
            direction="sent",
            exchange=self.name,
            exchange_type=self.exchange_type,
            index=self.index,
            sender_role="initiator" if self.initiator else "responder",
            icookie=self.sa.icookie.hex(),
            rcookie=self.sa.rcookie.hex(),
            message_id=self.message_id,
            src=dgram.src,
            dst=dgram.dst,
            raw=raw,
            summary=summarize(
                payloads,
                encrypted=encrypt,
                exchange_type=self.exchange_type,
                from_initiator=self.initiator,
                index=self.index,
            ),
            encrypted=encrypt,
            plaintext=plaintext,
            tree=message_tree(raw, plaintext),
            non_esp_marker=self.sa.floated,
        )
        self.peer.emit(MessageEvent, **self.last_sent_fields)
        self.attempts = 0
        self.timer = self.peer.now + self.peer.config.retransmit_timeout if expect_reply else None

    def resend(self, reason: str) -> None:
        """Send the last message again (timer expiry or duplicate request)."""
        if self.last_sent is None:
            return
        self.attempts += 1
        self.peer.queue(self.last_sent)
        self.peer.emit(
            Retransmitted, sa=self.ref, exchange=self.name, index=self.index, attempt=self.attempts, reason=reason
        )
        self.peer.emit(MessageEvent, **{**self.last_sent_fields, "retransmission": True})

    def on_timer(self, now: float) -> None:
        if self.timer is None or now < self.timer:
            return
        if self.attempts + 1 >= self.peer.config.retransmit_tries:
            self.fail(
                "TIMEOUT",
                f"{self.name}: no answer to message {self.index} after {self.attempts + 1} tries — "
                "is the peer reachable and configured for this connection?",
            )
            return
        self.resend("timeout")
        self.timer = now + self.peer.config.retransmit_timeout * (2**self.attempts)

    # -- receiving ---------------------------------------------------------------

    def receive(self, msg: Message, raw: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        """Entry point from the peer: duplicate check, decryption, decoding, trace."""
        if raw == self.last_received:
            # Only a message we answered is answered again; resending on a duplicate of
            # a reply would make two peers ping-pong their last messages forever.
            if self.last_sent is not None and self.replied:
                self.resend("duplicate of the last message received")
            else:
                self.peer.count("duplicates_ignored")
            return
        if self.done and not self.accepts_after_done():
            return
        plaintext: bytes | None = None
        next_iv: bytes | None = None
        payloads: list[Payload] | None = None
        error: str | None = None
        encrypted = bool(msg.flags & HeaderFlag.ENCRYPTION)
        if encrypted:
            try:
                plaintext, next_iv = self.sa.decrypt(self.message_id, msg.encrypted_body or b"")
                payloads = decode_payloads(msg.first_payload, plaintext, allow_trailing=True)
            except (CryptoError, ParseError) as exc:
                error = str(exc)
                payloads = None
        else:
            payloads = msg.payloads
        index = self.index + 1
        from_initiator = not self.initiator
        summary = (
            summarize(payloads, encrypted=encrypted, exchange_type=self.exchange_type, from_initiator=from_initiator, index=index)
            if payloads is not None
            else "HDR*, <undecryptable>"
        )
        self.peer.emit(
            MessageEvent,
            direction="received",
            exchange=self.name,
            exchange_type=self.exchange_type,
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
            plaintext=plaintext,
            tree=message_tree(raw, plaintext),
        )
        if payloads is None:
            self.on_undecryptable(error or "decryption failed", index)
            return
        self.peer.follow_peer(self.sa, src, dst, encrypted=encrypted)
        self.last_received = raw
        self.replied = False
        self.index = index
        self.timer = None
        if next_iv is not None:
            self.sa.commit_iv(self.message_id, next_iv)
        self.handle(payloads, msg, src, dst, plaintext)

    def accepts_after_done(self) -> bool:
        return False

    def on_undecryptable(self, reason: str, index: int) -> None:
        """Default: drop and say why; the SA's IV state is untouched."""
        self.peer.count("undecryptable")
        self.peer.emit(
            ErrorEvent,
            sa=self.ref,
            code="DECRYPTION_FAILED",
            message=f"{self.name} message {index} could not be decrypted or parsed ({reason}); dropped",
        )

    def handle(
        self, payloads: list[Payload], msg: Message, src: tuple[str, int], dst: tuple[str, int], plaintext: bytes | None
    ) -> None:
        raise NotImplementedError
