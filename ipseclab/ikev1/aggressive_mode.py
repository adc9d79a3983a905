"""Aggressive Mode, RFC 2409 §5 (three messages, pre-shared key)::

    Initiator                                   Responder
    HDR, SA, KE, Ni, IDii, VID             -->
                                           <--  HDR, SA, KE, Nr, IDir, HASH_R, VID, NAT-D, NAT-D
    HDR*, HASH_I, NAT-D, NAT-D             -->

Half the messages of Main Mode, paid for with identity protection: the identities
travel in clear, and so does HASH_R — whose inputs are all on the wire except the
pre-shared key, which is why a captured Aggressive Mode exchange with a PSK can be
attacked offline with a dictionary.  The initiator's KE is sent with the first
message, so every transform it offers must use the same DH group.

The third message goes encrypted (under the keys the first two derived, with the
phase-1 IV of Appendix B), as libreswan and most gateways send and expect it; its last
ciphertext block then seeds every phase-2 IV. As responder both forms are accepted
(RFC 2409 allows either): a third message in clear leaves the phase-1 IV as the seed.
"""

from __future__ import annotations

from ipseclab.crypto.dh import dh_group
from ipseclab.ikev1 import phase1
from ipseclab.ikev1.exchange import Received, Reject, Step
from ipseclab.ikev1.main_mode import NONCE_SIZE, Phase1Exchange
from ipseclab.ikev1.states import IsakmpState
from ipseclab.wire.v1.constants import ExchangeType, NotifyType
from ipseclab.wire.v1.isakmp import (
    IDPayload,
    KEPayload,
    NoncePayload,
    SAPayload,
)

S = IsakmpState


class AggressiveModeInitiator(Phase1Exchange):
    """Aggressive Mode as initiator: messages 1 and 3."""

    exchange_type = ExchangeType.AGGRESSIVE

    def start(self) -> None:
        policies = sorted(self.owner.config.isakmp_policies, key=lambda p: p.priority)
        group = policies[0].group
        self.sa.group = dh_group(group)
        self.offered = phase1.offered_sa(self.owner, group=group, xauth=phase1.xauth_client(self.sa))
        self.sa.sai_b = self.offered.encode_body()
        self.sa.gxi = self.make_dh()
        self.sa.ni = self.owner.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.owner, self.sa, "g^xi", self.sa.gxi, f"initiator's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.owner, self.sa, "Ni", self.sa.ni, "initiator's nonce")
        assert self.owner.config.identity is not None
        ident = self.ident = self.sa.own_id = phase1.own_identity(self.owner, self.sa)
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
        self.set_state(S.AG_INIT_SENT)

    def _on_am2(self, m: Received) -> None:
        choice = self.accept_answer(m.first(SAPayload))
        dh = self.sa.dh
        phase1.apply_choice(self.sa, choice)
        self.sa.dh = dh
        conn = self.sa.connection
        self.sa.nat_t = phase1.nat_t_type(m.payloads) if conn is None or conn.nat_traversal else 0
        ke = self.check_ke(m.first(KEPayload))
        nonce = m.first(NoncePayload)
        if nonce is None:
            raise Reject(NotifyType.PAYLOAD_MALFORMED, "message 2 carries no nonce")
        self.sa.gxr, self.sa.nr = ke.data, nonce.data
        phase1.emit_public(self.owner, self.sa, "g^xr", ke.data, "responder's DH public value")
        phase1.emit_public(self.owner, self.sa, "Nr", nonce.data, "responder's nonce")
        self.derive(ke.data)
        self.verify_peer(m, keys_differ=True)
        phase1.check_nat_d(self.owner, self.sa, m.payloads, m.src, m.dst)
        phase1.float_ports(self.owner, self.sa)
        ident = self.ident  # HASH_I covers the IDii sent in message 1
        self.send(
            [
                *phase1.auth_payloads(self.owner, self.sa, ident, initiator=True),
                *phase1.nat_d_payloads(self.owner, self.sa),
                *phase1.initial_contact(self.owner, self.sa),
            ],
            encrypt=True,
            expect_reply=False,
        )
        self.complete()

    steps = (
        Step("initiator", 2, _on_am2, S.QM_IDLE, story="the responder chose, keyed and proved itself: send HASH_I"),
    )


class AggressiveModeResponder(Phase1Exchange):
    """Aggressive Mode as responder: message 2."""

    exchange_type = ExchangeType.AGGRESSIVE

    def _on_am1(self, m: Received) -> None:
        offer = m.first(SAPayload)
        ident = m.first(IDPayload)
        if offer is None or ident is None:
            raise Reject(NotifyType.PAYLOAD_MALFORMED, "message 1 needs SA, KE, Ni and ID payloads")
        conn = self.sa.connection = phase1.connection_for(self.owner.config, self.sa.remote[0], ident)
        if conn is None or conn.mode != "aggressive":
            raise Reject(
                NotifyType.AUTHENTICATION_FAILED,
                "Aggressive Mode refused: "
                + (f"connection {conn.name} is configured for Main Mode" if conn else f"no connection matches {self.sa.remote[0]}")
                + " — set aggressive = true to allow it. Aggressive Mode sends HASH_R in clear, which an "
                "eavesdropper can attack offline to find a pre-shared key (strongSwan refuses it too unless asked).",
                code="AGGRESSIVE_MODE_REFUSED",
            )
        self.check_remote_identity(ident)  # before HASH_R goes out to someone we do not expect
        choice = self.choose(offer)
        ke = self.check_ke(m.first(KEPayload))
        nonce = m.first(NoncePayload)
        if nonce is None:
            raise Reject(NotifyType.PAYLOAD_MALFORMED, "message 1 carries no nonce")
        self.sa.sai_b = offer.wire_body()
        self.sa.nat_t = phase1.nat_t_type(m.payloads)
        self.sa.gxi, self.sa.ni = ke.data, nonce.data
        phase1.emit_public(self.owner, self.sa, "g^xi", ke.data, "initiator's DH public value")
        phase1.emit_public(self.owner, self.sa, "Ni", nonce.data, "initiator's nonce")
        self.sa.gxr = self.make_dh()
        self.sa.nr = self.owner.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.owner, self.sa, "g^xr", self.sa.gxr, f"responder's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.owner, self.sa, "Nr", self.sa.nr, "responder's nonce")
        self.derive(ke.data)
        self.sa.peer_identity = str(ident.value) if ident.id_type != 9 else ident.data.hex()
        own = self.own_identity()
        answer = phase1.chosen_sa(offer, choice)
        self.send(
            [
                answer,
                KEPayload(self.sa.gxr),
                NoncePayload(self.sa.nr),
                own,
                *phase1.auth_payloads(self.owner, self.sa, own, initiator=False),
                *phase1.responder_vendor_ids(self.sa.nat_t),
                *phase1.nat_d_payloads(self.owner, self.sa),
            ],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(S.AG_REPLY_SENT)
        self._am1_ident = ident

    def on_undecryptable(self, reason: str, index: int) -> None:
        if index == 3 and not self.done:
            self.on_reject(Reject(
                NotifyType.INVALID_HASH_INFORMATION,
                f"message 3 did not decrypt to valid payloads ({reason}): most likely the pre-shared keys differ.",
                code="AUTHENTICATION_FAILED",
                keys_differ=True,
            ))
            return
        super().on_undecryptable(reason, index)

    def _on_am3(self, m: Received) -> None:
        # HASH_I covers the ID payload the initiator sent in message 1.
        self.verify_peer(m, [self._am1_ident, *m.payloads], keys_differ=True)
        phase1.check_nat_d(self.owner, self.sa, m.payloads, m.src, m.dst)
        self.complete()

    steps = (
        Step("responder", 1, _on_am1, S.AG_REPLY_SENT, story="choose, key and prove ourselves in one reply"),
        Step("responder", 3, _on_am3, S.QM_IDLE, story="the initiator is authenticated: phase 1 done"),
    )
