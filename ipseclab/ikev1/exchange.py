"""What every IKEv1 exchange shares: its handler table, rejection and its owner.

An exchange is one ISAKMP exchange under one ISAKMP SA (identified by the cookies
and the message ID), run by one of the modules in this package — charon's "task"
idea.  It is *protocol only*: it builds payloads and processes decoded ones.  The
engine that owns it (:class:`~ipseclab.ikev1.task_manager.TaskManagerV1`) numbers,
encrypts and sends its messages, retransmits them, answers duplicates and decrypts
what arrives (RFC 2408 §5 leaves the retransmission policy local).

Each exchange declares the messages it handles in a table of :class:`Step` rows —
who receives the message, which message it is, the payloads it must carry, the
handler and the state the handler leaves the SA in — like libreswan's state
transition table.  Required payloads are checked once, before any handler runs;
a handler that refuses a message raises :class:`Reject`, caught in one place and
turned into the notification the RFC prescribes (as aioquic turns a protocol
error into ``close()`` in one place).

What an exchange may ask of its owner is spelled out in :class:`ExchangeOwner`:
nothing else of the peer is in reach, so a test can drive one exchange with a
fake owner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ipseclab.ikev1.explain import explain_peer_notify
from ipseclab.ikev1.notation import exchange_name, notify_name
from ipseclab.trace import ErrorEvent, SaRef
from ipseclab.wire.v1.constants import NotifyType
from ipseclab.wire.v1.isakmp import (
    HashPayload,
    IDPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SAPayload,
)

if TYPE_CHECKING:
    from ipseclab.config import PeerConfig
    from ipseclab.crypto.rng import Rng
    from ipseclab.ikev1.isakmp_sa import IsakmpSa
    from ipseclab.sa import IpsecSaPair
    from ipseclab.trace import Address, Event


class ExchangeOwner(Protocol):
    """Everything an IKEv1 exchange may ask of the engine running it."""

    config: PeerConfig
    rng: Rng

    @property
    def now(self) -> float: ...

    def emit(self, cls: type[Event], **fields: Any) -> None: ...

    def count(self, what: str) -> None: ...

    def set_state(self, obj: Any, new: str) -> None: ...

    def allocate_spi(self) -> int: ...

    def transmit(self, ex: Exchange, payloads: list[Payload], *, encrypt: bool, expect_reply: bool) -> None:
        """Number, encode (encrypt), queue and — if a reply is expected — retransmit."""

    def send_notify(
        self, sa: IsakmpSa, notify_type: int, *, protect: bool, protocol_id: int = ..., spi: bytes = b"", data: bytes = b""
    ) -> None: ...

    def phase1_established(self, sa: IsakmpSa) -> None: ...

    def child_established(self, sa: IsakmpSa, pair: IpsecSaPair, *, initiator: bool) -> None: ...

    def exchange_failed(self, ex: Exchange) -> None: ...

    def peer_notify(self, sa: IsakmpSa, notify: NotifyPayload) -> None: ...

    def peer_alive(self, sa: IsakmpSa, seq: int) -> None:
        """An authenticated R-U-THERE-ACK with this sequence number arrived."""

    def initial_contact(self, sa: IsakmpSa) -> None:
        """The peer, authenticated under ``sa``, says it has no other SA with us."""

    def has_contact(self, sa: IsakmpSa) -> bool:
        """Do we hold an established ISAKMP SA, other than ``sa``, with ``sa``'s peer?"""

    def suspect_key_mismatch(self, sa: IsakmpSa) -> None:
        """The peer sent something our phase-1 keys cannot decrypt: give phase 1 one
        retransmission timeout to go on, then conclude the keys differ."""

    def authenticated(self, sa: IsakmpSa, received: Received) -> None:
        """``received`` proved to come from the peer (its HASH or signature verified): only
        now may the SA follow it to a new address (RFC 3947 §7)."""

    def send_delete_ike(self, sa: IsakmpSa) -> None:
        """A protected Delete for ``sa`` (RFC 2408 §3.15)."""

    def remote_deleted_ike(self, sa: IsakmpSa) -> None: ...

    def remote_deleted_child(self, sa: IsakmpSa, spi: int) -> None: ...


class Reject(Exception):  # noqa: N818 - a verdict, not an error of ours
    """A message this exchange refuses: the notification to send and why, in plain words.

    ``code`` defaults to the notification's name; ``keys_differ`` marks a phase-1
    failure whose cause is a key mismatch (its notification goes in clear).
    """

    def __init__(self, notify_type: int, message: str, *, code: str | None = None, keys_differ: bool = False) -> None:
        super().__init__(message)
        self.notify_type = notify_type
        self.message = message
        self.code = code or notify_name(notify_type)
        self.keys_differ = keys_differ


@dataclass(frozen=True)
class Received:
    """One decoded message handed to a handler."""

    payloads: list[Payload]
    src: Address
    dst: Address
    plaintext: bytes | None

    def first(self, cls: type[Payload]) -> Any:
        return next((p for p in self.payloads if isinstance(p, cls)), None)


Handler = Callable[[Any, Received], None]

#: how a missing payload is named in a rejection ("message 3 carries no nonce")
PAYLOAD_NOUNS: dict[type[Payload], str] = {
    SAPayload: "SA payload",
    KEPayload: "KE payload",
    NoncePayload: "nonce",
    IDPayload: "ID payload",
    HashPayload: "HASH payload",
}


@dataclass(frozen=True)
class Step:
    """One row of an exchange's table: a message, who receives it, what it needs.

    ``next_state`` is the state the handler leaves the SA (or Quick Mode) in when
    it accepts the message — the arrow a state diagram draws.
    """

    receiver: str  # "initiator" | "responder"
    index: int  # the message's 1-based number in the exchange
    handler: Handler
    next_state: str
    required: tuple[type[Payload], ...] = ()
    story: str = ""


class Exchange:
    """Base class of Main, Aggressive, Quick Mode and Informational exchanges."""

    exchange_type: ClassVar[int]
    #: the messages this exchange handles (see :class:`Step`)
    steps: ClassVar[tuple[Step, ...]] = ()
    #: states in which the exchange has ended
    final_states: ClassVar[frozenset[str]] = frozenset({"FAILED"})

    def __init__(self, owner: ExchangeOwner, sa: IsakmpSa, message_id: int, initiator: bool) -> None:
        self.owner = owner
        self.sa = sa
        self.message_id = message_id
        self.initiator = initiator
        self.index = 0  # number of the last message sent or received
        self.peer_authenticated = False  # has a message of the peer's verified yet?

    # -- naming ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return exchange_name(self.exchange_type)

    @property
    def ref(self) -> SaRef:
        return self.sa.ref

    @property
    def role(self) -> str:
        return "initiator" if self.initiator else "responder"

    # -- state -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The state of what this exchange negotiates (phase 1: the ISAKMP SA's)."""
        return self.sa.state

    def set_state(self, new: str) -> None:
        self.owner.set_state(self.sa, new)

    @property
    def done(self) -> bool:
        return self.state in self.final_states

    @property
    def failed(self) -> bool:
        return self.state == "FAILED"

    def fail(self, code: str, message: str, notify: int | None = None) -> None:
        """End the exchange with a plain-words error event; it moves to FAILED."""
        self.owner.emit(ErrorEvent, sa=self.ref, code=code, message=message, notify=notify)
        self.set_state("FAILED")
        self.owner.exchange_failed(self)

    def on_peer_notify(self, notify: NotifyPayload) -> None:
        """An error notification from the peer ends this exchange, with an explanation."""
        if notify.notify_type >= 8192 or self.done:
            return
        name = notify_name(notify.notify_type)
        self.fail(f"PEER_{name}", explain_peer_notify(notify.notify_type), notify.notify_type)

    def authenticated(self, received: Received) -> None:
        """``received``'s HASH or signature verified: it is the peer's."""
        self.peer_authenticated = True
        self.owner.authenticated(self.sa, received)

    def on_reject(self, reject: Reject) -> None:
        """Tell the peer (how depends on the exchange) and fail."""
        self.fail(reject.code, reject.message, reject.notify_type)

    # -- messages ----------------------------------------------------------------

    def send(self, payloads: list[Payload], *, encrypt: bool, expect_reply: bool) -> None:
        """Hand the next message of this exchange to the owner to send."""
        self.owner.transmit(self, payloads, encrypt=encrypt, expect_reply=expect_reply)

    def step_for(self, index: int) -> Step | None:
        return next((s for s in self.steps if s.receiver == self.role and s.index == index), None)

    def handle(self, received: Received) -> None:
        """Run the table's handler for the message just received (``self.index``).

        Missing required payloads are a PAYLOAD-MALFORMED rejection (RFC 2408 §5.1)
        before the handler runs; a :class:`Reject` from the handler ends here.
        """
        step = self.step_for(self.index)
        if step is None:
            self.owner.count("unexpected_message")
            return
        try:
            for cls in step.required:
                if received.first(cls) is None:
                    raise Reject(
                        NotifyType.PAYLOAD_MALFORMED,
                        f"message {self.index} carries no {PAYLOAD_NOUNS.get(cls, cls.__name__)}",
                    )
            step.handler(self, received)
        except Reject as reject:
            self.on_reject(reject)

    def accepts_after_done(self) -> bool:
        return False

    def on_undecryptable(self, reason: str, index: int) -> None:
        """Default: drop and say why; the SA's IV state is untouched."""
        self.owner.count("undecryptable")
        self.owner.emit(
            ErrorEvent,
            sa=self.ref,
            code="DECRYPTION_FAILED",
            message=f"{self.name} message {index} could not be decrypted or parsed ({reason}); dropped",
        )

    def on_timeout(self, tries: int) -> None:
        """The owner gave up retransmitting: no answer came after ``tries`` sends."""
        self.fail(
            "TIMEOUT",
            f"{self.name}: no answer to message {self.index} after {tries} tries — "
            "is the peer reachable and configured for this connection?",
        )

    def on_timer(self, now: float) -> bool:
        """A retransmission timer fired; return True when the exchange ended instead."""
        return False
