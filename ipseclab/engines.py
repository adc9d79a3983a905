"""One engine per IKE version behind the version-neutral :class:`~ipseclab.peer.Peer`.

As charon's ``task_manager_create()`` picks the IKEv1 or IKEv2 task manager, the
peer asks :func:`create_engines` for one engine per version it speaks, and routes a
connection to ``engines[connection.version]`` and a datagram to
``engines[header major version]``.  :class:`IkeEngine` is what the peer may ask of
an engine; IKEv2 plugs in here beside IKEv1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ipseclab.config import Connection, PeerConfig
    from ipseclab.crypto.rng import Rng
    from ipseclab.peer import Peer
    from ipseclab.sa import IkeSa, IpsecSaPair
    from ipseclab.trace import Address, Event


class IkeEngine(Protocol):
    """The wire side of one IKE version for one peer (sans-I/O)."""

    version: int

    def initiate(self, conn: Connection) -> IkeSa:
        """Start the IKE SA of ``conn`` (the peer's clock is already set)."""

    def start_child(self, sa: IkeSa, child_name: str) -> int:
        """Negotiate a child SA under the established ``sa``; its message ID."""

    def rekey_ike(self, sa: IkeSa) -> bool:
        """Rekey the IKE SA in place (IKEv2 §2.18); False: the peer re-authenticates instead."""

    def negotiating_child(self, child_name: str) -> bool:
        """Is a negotiation we started for this child still running?"""

    def receive(self, data: bytes, src: Address, dst: Address) -> None:
        """One IKE message of this version (non-ESP marker removed)."""

    def timers(self) -> Iterable[float]:
        """When the engine next needs :meth:`on_timer` (retransmissions)."""

    def on_timer(self, now: float) -> None: ...

    def send_delete_ike(self, sa: IkeSa) -> None:
        """Tell the peer the IKE SA is gone."""

    def send_delete_child(self, sa: IkeSa, pair: IpsecSaPair) -> None:
        """Tell the peer a child SA is gone."""

    def send_liveness_check(self, sa: IkeSa, seq: int) -> None:
        """Ask the peer whether it is alive (IKEv1: DPD R-U-THERE, RFC 3706)."""

    def forget(self, sa: IkeSa) -> None:
        """Drop the running exchanges of a deleted IKE SA."""


class PeerServices:
    """What every engine passes on from its peer to its exchanges: configuration, randomness,
    the clock, the trace, counters and the one ``set_state``."""

    peer: Peer

    @property
    def config(self) -> PeerConfig:
        return self.peer.config

    @property
    def rng(self) -> Rng:
        return self.peer.rng

    @property
    def now(self) -> float:
        return self.peer.now

    def emit(self, cls: type[Event], **fields: Any) -> None:
        self.peer.emit(cls, **fields)

    def count(self, what: str) -> None:
        self.peer.count(what)

    def set_state(self, obj: Any, new: str) -> None:
        self.peer.set_state(obj, new)


def create_engines(peer: Peer) -> dict[int, IkeEngine]:
    """The engines of every IKE version ipseclab speaks, by major version."""
    from ipseclab.ikev1.task_manager import TaskManagerV1
    from ipseclab.ikev2.task_manager import TaskManagerV2

    return {1: TaskManagerV1(peer), 2: TaskManagerV2(peer)}
