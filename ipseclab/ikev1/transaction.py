"""The Transaction exchange (ISAKMP exchange type 6), draft-dukes-ike-mode-cfg §3.1: one
request and its answer under a fresh Message ID, protected by the ISAKMP SA::

    HDR*, HASH, ATTR(REQUEST | SET)   -->
                                      <--   HDR*, HASH, ATTR(REPLY | ACK)

    HASH = prf(SKEYID_a, M-ID | ATTR)

encrypted with the IV ``hash(last phase-1 block | M-ID)`` like Quick Mode and
Informational (RFC 2409 Appendix B).  What the attributes mean — an XAUTH login, a
Mode Config address — is :mod:`ipseclab.ikev1.xauth`'s business; this module only
protects, checks and routes.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from ipseclab.ikev1.exchange import Exchange, Received
from ipseclab.trace import ErrorEvent
from ipseclab.wire.v1.constants import CfgType, ExchangeType, enum_name
from ipseclab.wire.v1.isakmp import AttributePayload, HashPayload, encode_payloads

if TYPE_CHECKING:
    from ipseclab.ikev1.exchange import ExchangeOwner
    from ipseclab.ikev1.isakmp_sa import IsakmpSa

#: the answer each request type expects
ANSWER = {CfgType.REQUEST: CfgType.REPLY, CfgType.SET: CfgType.ACK}


class Transaction(Exchange):
    """One Transaction exchange, either side: a request and its answer."""

    exchange_type = ExchangeType.TRANSACTION

    def __init__(self, owner: ExchangeOwner, sa: IsakmpSa, message_id: int, initiator: bool) -> None:
        super().__init__(owner, sa, message_id, initiator)
        self.finished = False
        self.request: AttributePayload | None = None  # what was asked (ours or the peer's)

    @property
    def done(self) -> bool:
        return self.finished

    def on_timeout(self, tries: int) -> None:
        """No answer to our request: the login or the address never completes, so the ISAKMP SA goes
        (a client that holds the group key but never logs in keeps nothing on the gateway)."""
        self.finished = True
        what = enum_name(CfgType, self.request.cfg_type).split(" ")[0] if self.request is not None else "request"
        self.owner.emit(ErrorEvent, sa=self.ref, code="TIMEOUT", message=f"no answer to our Transaction {what} after "
                        f"{tries} tries: XAUTH / Mode Config cannot complete, the ISAKMP SA is deleted")
        self.owner.peer.delete_ike(self.sa, "XAUTH / Mode Config did not complete")

    def on_peer_notify(self, notify) -> None:  # noqa: ANN001 - an error notify concerns phase 1 or a Quick Mode, not this
        return

    def hash_of(self, rest: bytes) -> bytes:
        return self.sa.hash.prf(self.sa.skeyid_a, self.message_id.to_bytes(4, "big") + rest)

    def send_attributes(self, attr: AttributePayload) -> None:
        """Send a request (we wait for its answer, retransmitting) or the answer to the peer's."""
        _, rest = encode_payloads([attr])
        is_request = attr.cfg_type in ANSWER
        if is_request:
            self.request = attr
        self.send([HashPayload(self.hash_of(rest)), attr], encrypt=True, expect_reply=is_request)
        if not is_request:
            self.finished = True

    def handle(self, received: Received) -> None:
        """Check HASH, then hand the attributes to the remote-access conversation."""
        from ipseclab.ikev1.quick_mode import payloads_after_hash
        from ipseclab.ikev1.xauth import on_attributes

        payloads, plaintext = received.payloads, received.plaintext
        if plaintext is None or not payloads or not isinstance(payloads[0], HashPayload):
            self.owner.count("transaction_without_hash")
            self.owner.emit(ErrorEvent, sa=self.ref, code="INVALID_HASH_INFORMATION",
                            message="a Transaction message that is not encrypted or has no HASH first: ignored")
            return
        if not hmac.compare_digest(payloads[0].data, self.hash_of(payloads_after_hash(plaintext, payloads))):
            self.owner.count("transaction_bad_hash")
            self.owner.emit(ErrorEvent, sa=self.ref, code="INVALID_HASH_INFORMATION",
                            message="a Transaction message whose HASH does not verify (prf(SKEYID_a, M-ID | ATTR)): ignored")
            return
        attr = next((p for p in payloads if isinstance(p, AttributePayload)), None)
        if attr is None:
            self.owner.emit(ErrorEvent, sa=self.ref, code="PAYLOAD_MALFORMED", message="a Transaction message without an ATTR payload: ignored")
            return
        self.authenticated(received)
        if attr.cfg_type in ANSWER:
            if self.request is not None:  # the peer's request on an exchange we started: nonsense
                self.owner.count("unexpected_message")
                return
            self.request = attr
        else:
            if self.request is None or ANSWER.get(self.request.cfg_type) != attr.cfg_type:
                self.owner.count("unexpected_message")
                return
            self.finished = True
        on_attributes(self.owner, self, attr)
