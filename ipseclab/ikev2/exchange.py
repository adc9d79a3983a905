"""What every IKEv2 exchange shares: the owner it may ask things of, the received
message, the verdict that refuses a request, and the initiator's side of an exchange
(charon's ``task_t``: ``build`` a request, ``process`` the response).

An exchange never touches message IDs, encryption or retransmission: the task
manager (:mod:`ipseclab.ikev2.task_manager`) does.  A responder's side is a function
``respond(owner, sa, rx) -> payloads``; raising :class:`Reject` answers with one error
notification instead (RFC 7296 §2.21).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ipseclab.wire.v2.constants import NotifyType
from ipseclab.wire.v2.message import Message, NotifyPayload, Payload

if TYPE_CHECKING:
    from ipseclab.config import PeerConfig
    from ipseclab.crypto.rng import Rng
    from ipseclab.ikev2.ike_sa import IkeSaV2
    from ipseclab.peer import Peer
    from ipseclab.trace import Address, Event

P = TypeVar("P")


class Owner(Protocol):
    """What an exchange may ask of its task manager."""

    peer: Peer

    @property
    def config(self) -> PeerConfig: ...

    @property
    def rng(self) -> Rng: ...

    @property
    def now(self) -> float: ...

    def emit(self, cls: type[Event], **fields: Any) -> None: ...

    def count(self, what: str) -> None: ...

    def set_state(self, obj: Any, new: str) -> None: ...

    def request(self, sa: IkeSaV2, exchange: InitiatorExchange) -> None: ...

    def fail_ike(self, sa: IkeSaV2, code: str, message: str) -> None: ...

    def after_response(self, sa: IkeSaV2, action: Any) -> None: ...


class Reject(Exception):  # noqa: N818 - a verdict, not an error of ours
    """Refuse a request: answer with ``notify_type`` (and ``data``), say ``message``.

    ``fatal``: the IKE SA goes too (IKE_SA_INIT and authentication failures); a refused
    child leaves the IKE SA as it is (RFC 7296 §1.2, §2.21.2).
    """

    def __init__(self, notify_type: int, message: str, *, data: bytes = b"", fatal: bool = True) -> None:
        super().__init__(message)
        self.notify_type = notify_type
        self.message = message
        self.data = data
        self.fatal = fatal


@dataclass
class Rx:
    """A received message: its header, its (decrypted) payloads, where it came from."""

    message: Message
    payloads: list[Payload]
    raw: bytes
    src: Address
    dst: Address
    plaintext: bytes | None = None

    def first(self, cls: type[P]) -> P | None:
        return next((p for p in self.payloads if isinstance(p, cls)), None)

    def all(self, cls: type[P]) -> list[P]:
        return [p for p in self.payloads if isinstance(p, cls)]

    def notify(self, notify_type: int) -> NotifyPayload | None:
        return next((p for p in self.all(NotifyPayload) if p.notify_type == notify_type), None)

    def errors(self) -> list[NotifyPayload]:
        """Error notifications (types below 16384, RFC 7296 §3.10.1)."""
        return [p for p in self.all(NotifyPayload) if p.notify_type < 16384]


def notify_name(notify_type: int) -> str:
    try:
        return NotifyType(notify_type).name
    except ValueError:
        return f"notify {notify_type}"


class InitiatorExchange:
    """Our side of an exchange we start: ``build`` the request, ``process`` the response."""

    exchange_type: int
    name: str

    def __init__(self, owner: Owner, sa: IkeSaV2) -> None:
        self.owner = owner
        self.sa = sa
        self.done = False

    @property
    def encrypted(self) -> bool:
        return True

    def build(self) -> list[Payload]:  # pragma: no cover - overridden
        raise NotImplementedError

    def process(self, rx: Rx) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def on_timeout(self, tries: int) -> None:
        """The peer never answered: RFC 7296 §2.4 — it is dead, its SAs go."""
        self.owner.peer.delete_ike(
            self.sa, f"no answer to {self.name} after {tries} transmissions: the peer is considered dead (RFC 7296 §2.4)",
            notify_peer=False,
        )
