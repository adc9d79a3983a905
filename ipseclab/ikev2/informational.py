"""INFORMATIONAL, RFC 7296 §1.4: deleting SAs and checking that the peer is alive.

::

    Initiator                               Responder
    HDR, SK {[N,] [D,] [CP,] ...}      -->
                                       <--  HDR, SK {[N,] [D,] [CP], ...}

Deleting the IKE SA is ``D(IKE)`` (no SPI: the header names it) and the answer is
empty; deleting a child names the SPI we receive on, and the answer names the
other direction's SPI (§1.4.1).  An empty request is a liveness check (§2.4), our
dead peer detection.  Every request is protected by the IKE SA's keys, so no
unauthenticated datagram can delete anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipseclab.ikev2.exchange import InitiatorExchange, Owner, Rx
from ipseclab.ikev2.ike_sa import IkeState
from ipseclab.trace import Info
from ipseclab.wire.v2.constants import ExchangeType, ProtocolId
from ipseclab.wire.v2.message import DeletePayload, Payload

if TYPE_CHECKING:
    from ipseclab.ikev2.ike_sa import IkeSaV2


class InformationalInitiator(InitiatorExchange):
    exchange_type = ExchangeType.INFORMATIONAL
    name = "INFORMATIONAL"

    def __init__(self, owner: Owner, sa: IkeSaV2, payloads: list[Payload], *, liveness_seq: int | None = None) -> None:
        super().__init__(owner, sa)
        self.payloads = payloads
        self.liveness_seq = liveness_seq

    def build(self) -> list[Payload]:
        return list(self.payloads)

    def process(self, rx: Rx) -> None:
        self.done = True
        if self.liveness_seq is not None:
            self.owner.peer.peer_alive(self.sa, self.liveness_seq)

    def on_timeout(self, tries: int) -> None:
        if any(isinstance(p, DeletePayload) and p.protocol_id == ProtocolId.IKE for p in self.payloads):
            return  # we were deleting it anyway
        super().on_timeout(tries)


def respond(owner: Owner, sa: IkeSaV2, rx: Rx) -> list[Payload]:
    """Answer the peer's INFORMATIONAL request; deletes take effect after the answer is built."""
    out: list[Payload] = []
    peer = owner.peer
    for d in rx.all(DeletePayload):
        if d.protocol_id == ProtocolId.IKE:
            owner.set_state(sa, IkeState.DELETING)
            owner.after_response(sa, lambda: peer.remote_deleted_ike(sa))
            return []
        if d.protocol_id != ProtocolId.ESP or d.spi_size != 4:
            continue
        ours = []
        for spi_bytes in d.spis:
            spi = int.from_bytes(spi_bytes, "big")
            pair = next((p for p in sa.children if p.outbound.spi == spi), None)
            if pair is not None:
                ours.append(pair.inbound.spi.to_bytes(4, "big"))
            peer.remote_deleted_child(sa, spi)
        if ours:
            out.append(DeletePayload(ProtocolId.ESP, 4, ours))
    if not rx.payloads:
        owner.emit(Info, sa=sa.ref, message="an empty INFORMATIONAL request: the peer checks that we are alive (RFC 7296 §2.4)")
    return out
