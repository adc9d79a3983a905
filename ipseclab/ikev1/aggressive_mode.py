"""Aggressive Mode, RFC 2409 §5 (three messages, pre-shared key)::

    Initiator                                   Responder
    HDR, SA, KE, Ni, IDii, VID             -->
                                           <--  HDR, SA, KE, Nr, IDir, HASH_R, VID, NAT-D, NAT-D
    HDR, HASH_I, NAT-D, NAT-D              -->

Half the messages of Main Mode, paid for with identity protection: the identities
travel in clear, and so does HASH_R — whose inputs are all on the wire except the
pre-shared key, which is why a captured Aggressive Mode exchange with a PSK can be
attacked offline with a dictionary.  The initiator's KE is sent with the first
message, so every transform it offers must use the same DH group.

The responder accepts a final message sent in clear (as most implementations do)
or encrypted (RFC 2409 allows either).
"""

from __future__ import annotations

from ipseclab.errors import CryptoError
from ipseclab.ikev1 import phase1
from ipseclab.ikev1.main_mode import NONCE_SIZE, Phase1Exchange, first
from ipseclab.ikev1.states import IsakmpState
from ipseclab.trace import Info
from ipseclab.wire.constants import ExchangeType, NotifyType
from ipseclab.wire.isakmp import (
    IDPayload,
    KEPayload,
    Message,
    NoncePayload,
    Payload,
    SAPayload,
)


class AggressiveModeInitiator(Phase1Exchange):
    """Aggressive Mode as initiator: messages 1 and 3."""

    exchange_type = ExchangeType.AGGRESSIVE

    def start(self) -> None:
        from ipseclab.crypto.dh import dh_group

        policies = sorted(self.peer.config.isakmp_policies, key=lambda p: p.priority)
        group = policies[0].group
        self.sa.group = dh_group(group)
        self.offered = phase1.offered_sa(self.peer, group=group)
        self.sa.sai_b = self.offered.encode_body()
        self.sa.gxi = self.make_dh()
        self.sa.ni = self.peer.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.peer, self.sa, "g^xi", self.sa.gxi, f"initiator's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.peer, self.sa, "Ni", self.sa.ni, "initiator's nonce")
        assert self.peer.config.identity is not None
        ident = self.ident = phase1.own_identity(self.peer, self.sa)
        conn = self.sa.connection
        self.send(
            [
                self.offered,
                KEPayload(self.sa.gxi),
                NoncePayload(self.sa.ni),
                ident,
                *phase1.initiator_vendor_ids(conn is None or conn.nat_traversal),
            ],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(IsakmpState.AG_INIT_SENT)

    def handle(self, payloads, msg: Message, src, dst, plaintext) -> None:  # noqa: ANN001
        if self.index != 2:
            return
        answer = first(payloads, SAPayload)
        assert self.offered is not None
        choice = phase1.accept_response(self.peer, self.sa, self.offered, answer, self.name) if answer else None
        if choice is None:
            self.reject(
                NotifyType.BAD_PROPOSAL_SYNTAX,
                "BAD_PROPOSAL_SYNTAX",
                "the responder's SA payload does not hold exactly one of the transforms we offered",
            )
            return
        dh = self.sa.dh
        phase1.apply_choice(self.sa, choice)
        self.sa.dh = dh
        conn = self.sa.connection
        self.sa.nat_t = phase1.nat_t_type(payloads) if conn is None or conn.nat_traversal else 0
        ke = first(payloads, KEPayload)
        nonce = first(payloads, NoncePayload)
        if not self.check_ke(ke):
            return
        if nonce is None:
            self.reject(NotifyType.PAYLOAD_MALFORMED, "PAYLOAD_MALFORMED", "message 2 carries no nonce")
            return
        self.sa.gxr, self.sa.nr = ke.data, nonce.data
        phase1.emit_public(self.peer, self.sa, "g^xr", ke.data, "responder's DH public value")
        phase1.emit_public(self.peer, self.sa, "Nr", nonce.data, "responder's nonce")
        if not self.derive(ke.data):
            return
        ok, reason = phase1.verify_auth(self.peer, self.sa, payloads, from_initiator=False)
        if not ok:
            self.reject(
                NotifyType.INVALID_HASH_INFORMATION,
                "AUTHENTICATION_FAILED",
                f"the responder is not authenticated: {reason}",
                keys_differ=True,
            )
            return
        self.peer.emit(Info, sa=self.ref, message=reason)
        phase1.check_nat_d(self.peer, self.sa, payloads, src, dst)
        phase1.float_ports(self.peer, self.sa)
        ident = self.ident  # HASH_I covers the IDii sent in message 1
        self.send(
            [*phase1.auth_payloads(self.peer, self.sa, ident, initiator=True), *phase1.nat_d_payloads(self.peer, self.sa)],
            encrypt=False,
            expect_reply=False,
        )
        self.complete()


class AggressiveModeResponder(Phase1Exchange):
    """Aggressive Mode as responder: message 2."""

    exchange_type = ExchangeType.AGGRESSIVE

    def handle(self, payloads, msg: Message, src, dst, plaintext) -> None:  # noqa: ANN001
        if self.index == 1:
            self._on_am1(payloads)
        elif self.index == 3:
            self._on_am3(payloads, src, dst)

    def _on_am1(self, payloads: list[Payload]) -> None:
        offer = first(payloads, SAPayload)
        ident = first(payloads, IDPayload)
        if offer is None or ident is None:
            self.reject(NotifyType.PAYLOAD_MALFORMED, "PAYLOAD_MALFORMED", "message 1 needs SA, KE, Ni and ID payloads")
            return
        choice = phase1.select_proposal(self.peer, self.sa, offer, self.name)
        if choice is None:
            self.reject(
                NotifyType.NO_PROPOSAL_CHOSEN,
                "NO_PROPOSAL_CHOSEN",
                "no offered ISAKMP transform matches a local policy (see the policy decision for each attribute)",
            )
            return
        phase1.apply_choice(self.sa, choice)
        ke = first(payloads, KEPayload)
        nonce = first(payloads, NoncePayload)
        if not self.check_ke(ke):
            return
        if nonce is None:
            self.reject(NotifyType.PAYLOAD_MALFORMED, "PAYLOAD_MALFORMED", "message 1 carries no nonce")
            return
        self.sa.sai_b = offer.wire_body()
        self.sa.nat_t = phase1.nat_t_type(payloads)
        self.sa.gxi, self.sa.ni = ke.data, nonce.data
        phase1.emit_public(self.peer, self.sa, "g^xi", ke.data, "initiator's DH public value")
        phase1.emit_public(self.peer, self.sa, "Ni", nonce.data, "initiator's nonce")
        self.sa.gxr = self.make_dh()
        self.sa.nr = self.peer.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.peer, self.sa, "g^xr", self.sa.gxr, f"responder's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.peer, self.sa, "Nr", self.sa.nr, "responder's nonce")
        if not self.derive(ke.data):
            return
        self.sa.peer_identity = str(ident.value) if ident.id_type != 9 else ident.data.hex()
        try:
            own = phase1.own_identity(self.peer, self.sa)
        except CryptoError as exc:
            self.reject(NotifyType.AUTHENTICATION_FAILED, "NO_CREDENTIALS", str(exc))
            return
        answer = phase1.chosen_sa(offer, choice)
        self.send(
            [
                answer,
                KEPayload(self.sa.gxr),
                NoncePayload(self.sa.nr),
                own,
                *phase1.auth_payloads(self.peer, self.sa, own, initiator=False),
                *phase1.responder_vendor_ids(self.sa.nat_t),
                *phase1.nat_d_payloads(self.peer, self.sa),
            ],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(IsakmpState.AG_REPLY_SENT)
        self._am1_ident = ident

    def on_undecryptable(self, reason: str, index: int) -> None:
        if index == 3 and not self.done:
            self.reject(
                NotifyType.INVALID_HASH_INFORMATION,
                "AUTHENTICATION_FAILED",
                f"message 3 did not decrypt to valid payloads ({reason}): most likely the pre-shared keys differ.",
                keys_differ=True,
            )
            return
        super().on_undecryptable(reason, index)

    def _on_am3(self, payloads: list[Payload], src, dst) -> None:  # noqa: ANN001
        # HASH_I covers the ID payload the initiator sent in message 1.
        ok, reason = phase1.verify_auth(self.peer, self.sa, [self._am1_ident, *payloads], from_initiator=True)
        if not ok:
            self.reject(
                NotifyType.INVALID_HASH_INFORMATION,
                "AUTHENTICATION_FAILED",
                f"the initiator is not authenticated: {reason}",
                keys_differ=True,
            )
            return
        self.peer.emit(Info, sa=self.ref, message=reason)
        phase1.check_nat_d(self.peer, self.sa, payloads, src, dst)
        self.complete()
