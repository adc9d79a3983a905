"""Informational exchange, RFC 2409 §5.7 and RFC 2408 §4.8: Notify and Delete.

Once the ISAKMP SA has keys, an Informational message is protected::

    HDR*, HASH(1), N/D        HASH(1) = prf(SKEYID_a, M-ID | N/D)

encrypted with its own IV ``hash(last phase-1 block | M-ID)``.  Before that (an
error during phase 1, e.g. NO_PROPOSAL_CHOSEN) the notification goes in clear.
Also handled here: Dead Peer Detection R-U-THERE / R-U-THERE-ACK (RFC 3706).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from ipseclab.ikev1.exchange import Exchange, Received
from ipseclab.ikev1.notation import notify_name
from ipseclab.trace import ErrorEvent, Info
from ipseclab.wire.v1.constants import ExchangeType, NotifyType, ProtocolId
from ipseclab.wire.v1.isakmp import (
    DeletePayload,
    HashPayload,
    NotifyPayload,
    Payload,
    encode_payloads,
)

if TYPE_CHECKING:
    from ipseclab.ikev1.exchange import ExchangeOwner
    from ipseclab.ikev1.isakmp_sa import IsakmpSa


class Informational(Exchange):
    """One Informational message, sent or received."""

    exchange_type = ExchangeType.INFORMATIONAL

    def __init__(self, owner: ExchangeOwner, sa: IsakmpSa, message_id: int, initiator: bool) -> None:
        super().__init__(owner, sa, message_id, initiator)
        self.finished = False  # one message each way at most: no state of its own

    @property
    def done(self) -> bool:
        return self.finished

    def on_undecryptable(self, reason: str, index: int) -> None:
        if not self.sa.established and self.sa.enc_key:
            self.sa.key_mismatch_suspected = True
            self.owner.suspect_key_mismatch(self.sa)
            self.owner.count("undecryptable")
            self.owner.emit(
                ErrorEvent,
                sa=self.ref,
                code="UNDECRYPTABLE_NOTIFY",
                message=(
                    "the peer sent an encrypted Informational message that does not decrypt with our "
                    "phase-1 keys. While phase 1 is still running this almost always means the peer "
                    "derived different keys — most likely the pre-shared keys differ, and the peer is "
                    f"reporting an authentication failure ({reason})."
                ),
            )
            return
        super().on_undecryptable(reason, index)

    def hash1(self, rest: bytes) -> bytes:
        return self.sa.hash.prf(self.sa.skeyid_a, self.message_id.to_bytes(4, "big") + rest)

    def send_protected(self, payloads: list[Payload]) -> None:
        _, rest = encode_payloads(payloads)
        self.send([HashPayload(self.hash1(rest)), *payloads], encrypt=True, expect_reply=False)
        self.finished = True
        self.sa.phase2_ivs.pop(self.message_id, None)

    def send_clear(self, payloads: list[Payload]) -> None:
        self.send(payloads, encrypt=False, expect_reply=False)
        self.finished = True

    def handle(self, received: Received) -> None:
        """One message, whatever its number: verify HASH(1) if protected, then act on it.

        What may act (RFC 2409 §5.7, RFC 2408 §4.8): a protected message whose HASH(1)
        verifies — a Delete only under an established ISAKMP SA.  An unprotected one is
        shown, never acted on, except an error notification that ends our own phase 1
        while it is still running (how a responder says NO-PROPOSAL-CHOSEN, or
        INVALID-HASH-INFORMATION when the PSKs differ and it cannot encrypt for us); it
        can end only that half-open SA, never touch an established one.
        """
        self.finished = True
        self.sa.phase2_ivs.pop(self.message_id, None)
        payloads, plaintext = received.payloads, received.plaintext
        if plaintext is None:
            self._unprotected(payloads)
            return
        from ipseclab.ikev1.quick_mode import payloads_after_hash

        if not payloads or not isinstance(payloads[0], HashPayload):
            self.owner.count("informational_without_hash")
            self.owner.emit(ErrorEvent, sa=self.ref, code="INVALID_HASH_INFORMATION", message="protected Informational without HASH(1): ignored")
            return
        if not hmac.compare_digest(payloads[0].data, self.hash1(payloads_after_hash(plaintext, payloads))):
            self.owner.count("informational_bad_hash")
            self.owner.emit(ErrorEvent, sa=self.ref, code="INVALID_HASH_INFORMATION", message="Informational HASH(1) does not verify: ignored")
            return
        if not self.sa.remember_message_id(self.message_id):
            self._ignored(f"a replayed Informational (message ID {self.message_id:08x} was seen before)")
            return
        self.authenticated(received)
        for p in payloads[1:]:
            if isinstance(p, NotifyPayload):
                self._on_notify(p)
            elif isinstance(p, DeletePayload):
                if self.sa.established:
                    self._on_delete(p)
                else:
                    self._ignored("a Delete before the ISAKMP SA is established")

    def _unprotected(self, payloads: list[Payload]) -> None:
        half_open = not self.sa.established
        for p in payloads:
            if isinstance(p, NotifyPayload) and half_open and p.notify_type < 8192:
                self._on_notify(p)  # an error ending our own phase 1, e.g. NO-PROPOSAL-CHOSEN
            elif isinstance(p, NotifyPayload):
                self.owner.emit(Info, sa=self.ref, message=f"peer says (unauthenticated): {notify_name(p.notify_type)}")
                self._ignored("an unprotected notification " + ("on an established SA" if self.sa.established else "that is not an error"))
            elif isinstance(p, DeletePayload):
                self._ignored("an unprotected Delete (RFC 2409 §5.7: only a Delete protected by HASH(1) counts)")

    def _ignored(self, what: str) -> None:
        self.owner.count("informational_ignored")
        self.owner.emit(Info, sa=self.ref, message=f"ignored {what}: shown, not acted on")

    def _on_notify(self, n: NotifyPayload) -> None:
        name = notify_name(n.notify_type)
        if n.notify_type == NotifyType.R_U_THERE:
            self.owner.emit(Info, sa=self.ref, message="DPD R-U-THERE received: answering R-U-THERE-ACK")
            self.owner.send_notify(self.sa, NotifyType.R_U_THERE_ACK, protect=True, spi=n.spi, data=n.data)
            return
        if n.notify_type == NotifyType.R_U_THERE_ACK:
            self.owner.peer_alive(self.sa, int.from_bytes(n.data[:4], "big") if len(n.data) >= 4 else -1)
            return
        self.owner.emit(Info, sa=self.ref, message=f"notification received: {name}")
        if n.notify_type == NotifyType.INITIAL_CONTACT and self.sa.established:
            self.owner.initial_contact(self.sa)
            return
        self.owner.peer_notify(self.sa, n)

    def _on_delete(self, d: DeletePayload) -> None:
        if d.protocol_id == ProtocolId.ISAKMP:
            if any(spi[:8] == self.sa.icookie for spi in d.spis):
                self.owner.remote_deleted_ike(self.sa)
            else:
                self._ignored(f"a Delete for ISAKMP SA {', '.join(s.hex() for s in d.spis)}, not the one it came under")
        elif d.protocol_id == ProtocolId.IPSEC_ESP:
            for spi in d.spis:
                self.owner.remote_deleted_child(self.sa, int.from_bytes(spi, "big"))
