"""Main Mode (identity protection exchange), RFC 2409 §5 and RFC 2408 §4.5.

Six messages::

    Initiator                          Responder
    HDR, SA, VID                  -->
                                  <--  HDR, SA, VID
    HDR, KE, Ni, NAT-D, NAT-D     -->
                                  <--  HDR, KE, Nr, NAT-D, NAT-D
    HDR*, IDii, [CERT,] HASH_I    -->                      (SIG_I with RSA)
                                  <--  HDR*, IDir, [CERT,] HASH_R

Identities travel encrypted (messages 5 and 6).  With NAT-T vendor IDs exchanged
the NAT-D payloads (RFC 3947 §3.2) ride in messages 3 and 4, and a detected NAT
moves IKE to port 4500 from message 5 on (RFC 3947 §4).

States use the names common gateways print: initiator ``MM_NO_STATE`` →
``MM_SA_SENT`` → ``MM_KEY_EXCH_SENT`` → ``MM_AUTH_SENT`` → ``QM_IDLE``; responder
``MM_NO_STATE`` → ``MM_SA_REPLIED`` → ``MM_KEY_EXCH_REPLIED`` → ``QM_IDLE``.  The
:attr:`MainModeInitiator.steps` and :attr:`MainModeResponder.steps` tables say which
handler takes which message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipseclab.errors import CryptoError
from ipseclab.ikev1 import phase1
from ipseclab.ikev1.exchange import Exchange, Received, Reject, Step
from ipseclab.ikev1.explain import explain_peer_notify
from ipseclab.ikev1.notation import notify_name
from ipseclab.ikev1.states import IsakmpState
from ipseclab.trace import Info
from ipseclab.wire.v1.constants import ExchangeType, NotifyType
from ipseclab.wire.v1.isakmp import (
    IDPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SAPayload,
)

if TYPE_CHECKING:
    from ipseclab.ikev1.exchange import ExchangeOwner
    from ipseclab.ikev1.isakmp_sa import IsakmpSa

NONCE_SIZE = 32
S = IsakmpState


def first(payloads: list[Payload], cls: type) -> Payload | None:
    return next((p for p in payloads if isinstance(p, cls)), None)


class Phase1Exchange(Exchange):
    """Behaviour Main and Aggressive Mode share: failure notifies and completion."""

    final_states = frozenset({S.QM_IDLE, S.FAILED, S.DELETED})

    def __init__(self, owner: ExchangeOwner, sa: IsakmpSa, initiator: bool) -> None:
        super().__init__(owner, sa, 0, initiator)
        self.offered: SAPayload | None = None

    def on_reject(self, reject: Reject) -> None:
        """Tell the peer and fail.

        The notification is protected once both sides share keys (a peer like charon
        ignores unprotected ones by then); in clear before, or when our keys are the
        very thing that differs (a wrong PSK), since the peer could not decrypt it.
        An initiator refusing message 6 also deletes the ISAKMP SA the responder holds.
        """
        protect = bool(self.sa.enc_key) and not reject.keys_differ
        self.owner.send_notify(self.sa, reject.notify_type, protect=protect)
        if protect and self.initiator and self.sa.state == S.MM_AUTH_SENT:
            # the responder completed phase 1 when it sent message 6 (charon keeps such an SA
            # until DPD or its lifetime ends it): a Delete tells it the SA is gone
            self.owner.send_delete_ike(self.sa)
        self.fail(reject.code, reject.message, reject.notify_type)

    def on_timer(self, now: float) -> bool:
        if self.sa.key_mismatch_suspected:
            self.fail(
                "AUTHENTICATION_FAILED",
                "the peer answered with an encrypted notification that our keys cannot decrypt and "
                "never continued the exchange: the two sides derived different keys — most likely "
                "the pre-shared keys differ.",
            )
            return True
        return False

    def complete(self) -> None:
        self.sa.finish_phase1()
        self.set_state(S.QM_IDLE)
        self.owner.phase1_established(self.sa)
        if self.sa.initial_contact:
            self.owner.initial_contact(self.sa)

    def make_dh(self) -> bytes:
        assert self.sa.group is not None
        self.sa.dh = self.sa.group.generate(self.owner.rng)
        return self.sa.dh.public_bytes

    def check_ke(self, ke: KEPayload | None) -> KEPayload:
        assert self.sa.group is not None
        if ke is None or len(ke.data) != self.sa.group.public_size:
            got = "no KE payload" if ke is None else f"{len(ke.data)} bytes"
            raise Reject(
                NotifyType.INVALID_KEY_INFORMATION,
                f"the KE payload does not fit {self.sa.group.name} "
                f"({got}, expected {self.sa.group.public_size} bytes)",
            )
        return ke

    def derive(self, peer_public: bytes) -> None:
        if not phase1.uses_signatures(self.sa) and not phase1.psk_for(self.owner, self.sa):
            raise Reject(NotifyType.AUTHENTICATION_FAILED, phase1.no_psk_reason(self.sa), code="NO_PSK")
        try:
            phase1.derive_keys(self.owner, self.sa, peer_public)
        except CryptoError as exc:
            raise Reject(NotifyType.INVALID_KEY_INFORMATION, f"DH computation failed: {exc}") from None

    def own_identity(self) -> IDPayload:
        try:
            ident = phase1.own_identity(self.owner, self.sa)
        except CryptoError as exc:
            raise Reject(NotifyType.AUTHENTICATION_FAILED, str(exc), code="NO_CREDENTIALS") from None
        self.sa.own_id = ident
        return ident

    def check_remote_identity(self, ident: IDPayload | None) -> None:
        """The peer must be who the connection's ``remote_id`` names (``%any``: anyone)."""
        conn = self.sa.connection
        want = conn.remote_identity if conn is not None else None
        if want is None or ident is None:
            return
        cert = self.sa.peer_cert if phase1.uses_signatures(self.sa) else None
        why = phase1.identity_mismatch(want, ident, cert)
        if why is not None:
            raise Reject(
                NotifyType.INVALID_ID_INFORMATION,
                f"the peer identified itself as {phase1.describe_id(ident)}, but connection {conn.name} "
                f"expects remote_id {want.describe()} ({why})",
                code="ID_MISMATCH",
            )

    def on_peer_notify(self, notify: NotifyPayload) -> None:
        """A peer that cannot authenticate us has two likely reasons: say both."""
        auth_failures = (NotifyType.INVALID_HASH_INFORMATION, NotifyType.AUTHENTICATION_FAILED, NotifyType.INVALID_ID_INFORMATION)
        if notify.notify_type not in auth_failures or self.done:
            super().on_peer_notify(notify)
            return
        sent = phase1.describe_id(self.sa.own_id) if self.sa.own_id is not None else "(none sent yet)"
        if self.initiator and self.sa.state in (S.AG_INIT_SENT, S.MM_SA_SENT, S.MM_KEY_EXCH_SENT):
            # no HASH or signature of ours has reached the peer: neither can be the cause
            aggressive = self.sa.state == S.AG_INIT_SENT
            text = (
                f"The peer refused before we sent any proof of identity ({notify_name(notify.notify_type)} in answer to "
                f"our {'first Aggressive Mode message' if aggressive else 'Main Mode message'}): our key cannot be the cause. "
                + ("A responder refuses so when its connection does not allow Aggressive Mode (strongSwan and ipseclab "
                   "need aggressive = yes), or when it has no key or configuration for the identity we sent: "
                   f"{sent}." if aggressive else "It has no key or configuration for us (our address, or the identity to come).")
            )
        elif notify.notify_type == NotifyType.INVALID_ID_INFORMATION:
            text = (
                "The peer refused our identity (INVALID_ID_INFORMATION): most likely it has no "
                f"configuration for the identity we sent: {sent} (compare its remote_id); or the keys differ."
            )
        else:
            text = (
                f"{explain_peer_notify(notify.notify_type)} Either the pre-shared keys (or certificates) "
                f"differ, or the peer has no configuration for the identity we sent: {sent}."
            )
        self.fail(f"PEER_{notify_name(notify.notify_type)}", text, notify.notify_type)

    def verify_peer(self, m: Received, payloads: list[Payload] | None = None, *, keys_differ: bool | None = None) -> None:
        """Check the peer's HASH or signature (RFC 2409 §5.1) over ``payloads`` (default:
        the message's), or reject; once verified, the message counts as authenticated."""
        from_initiator = not self.initiator
        payloads = m.payloads if payloads is None else payloads
        ok, reason = phase1.verify_auth(self.owner, self.sa, payloads, from_initiator=from_initiator)
        if not ok:
            raise Reject(
                NotifyType.INVALID_HASH_INFORMATION,
                f"the {'initiator' if from_initiator else 'responder'} is not authenticated: {reason}",
                code="AUTHENTICATION_FAILED",
                keys_differ=not phase1.uses_signatures(self.sa) if keys_differ is None else keys_differ,
            )
        self.check_remote_identity(next((p for p in payloads if isinstance(p, IDPayload)), None))
        self.owner.emit(Info, sa=self.ref, message=reason)
        self.authenticated(m)
        if any(isinstance(p, NotifyPayload) and p.notify_type == NotifyType.INITIAL_CONTACT for p in m.payloads):
            self.sa.initial_contact = True  # acted on once the SA is up (RFC 2407 §4.6.3.3)

    def choose(self, offer: SAPayload) -> phase1.Phase1Choice:
        """Responder: pick a transform or reject with NO-PROPOSAL-CHOSEN — also when it
        would need a pre-shared key this peer has none for (as charon: no config)."""
        offered = sum(len(p.transforms) for p in offer.proposals)
        if offered > phase1.MAX_TRANSFORMS:
            raise Reject(
                NotifyType.NO_PROPOSAL_CHOSEN,
                f"the SA payload offers {offered} transforms; at most {phase1.MAX_TRANSFORMS} are considered",
                code="TOO_MANY_TRANSFORMS",
            )
        choice = phase1.select_proposal(self.owner, self.sa, offer, self.name)
        if choice is None:
            raise Reject(
                NotifyType.NO_PROPOSAL_CHOSEN,
                "no offered ISAKMP transform matches a local policy (see the policy decision for each attribute)",
            )
        phase1.apply_choice(self.sa, choice)
        if not phase1.uses_signatures(self.sa) and not phase1.psk_for(self.owner, self.sa):
            raise Reject(NotifyType.NO_PROPOSAL_CHOSEN, phase1.no_psk_reason(self.sa), code="NO_PSK")
        return choice

    def accept_answer(self, answer: SAPayload | None) -> phase1.Phase1Choice:
        """Initiator: the responder must return exactly one of our transforms."""
        assert self.offered is not None
        choice = phase1.accept_response(self.owner, self.sa, self.offered, answer, self.name) if answer else None
        if choice is None:
            raise Reject(
                NotifyType.BAD_PROPOSAL_SYNTAX,
                "the responder's SA payload does not hold exactly one of the transforms we offered",
            )
        return choice


class MainModeInitiator(Phase1Exchange):
    """Main Mode as initiator: messages 1, 3 and 5."""

    exchange_type = ExchangeType.MAIN

    def start(self) -> None:
        conn = self.sa.connection
        self.offered = phase1.offered_sa(self.owner, xauth=phase1.xauth_client(self.sa))
        self.sa.sai_b = self.offered.encode_body()
        self.send([self.offered, *phase1.initiator_vendor_ids(conn is None or conn.nat_traversal)], encrypt=False, expect_reply=True)
        self.set_state(S.MM_SA_SENT)

    def _on_mm2(self, m: Received) -> None:
        choice = self.accept_answer(m.first(SAPayload))
        phase1.apply_choice(self.sa, choice)
        conn = self.sa.connection
        self.sa.nat_t = phase1.nat_t_type(m.payloads) if conn is None or conn.nat_traversal else 0
        gxi = self.make_dh()
        self.sa.gxi = gxi
        self.sa.ni = self.owner.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.owner, self.sa, "g^xi", gxi, f"initiator's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.owner, self.sa, "Ni", self.sa.ni, "initiator's nonce")
        extra = phase1.cert_request(self.owner) if phase1.uses_signatures(self.sa) else []
        self.send(
            [KEPayload(gxi), NoncePayload(self.sa.ni), *extra, *phase1.nat_d_payloads(self.owner, self.sa)],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(S.MM_KEY_EXCH_SENT)

    def _on_mm4(self, m: Received) -> None:
        ke = self.check_ke(m.first(KEPayload))
        nonce = m.first(NoncePayload)
        if nonce is None:
            raise Reject(NotifyType.PAYLOAD_MALFORMED, "message 4 carries no nonce")
        self.sa.gxr, self.sa.nr = ke.data, nonce.data
        phase1.emit_public(self.owner, self.sa, "g^xr", ke.data, "responder's DH public value")
        phase1.emit_public(self.owner, self.sa, "Nr", nonce.data, "responder's nonce")
        self.derive(ke.data)
        phase1.check_nat_d(self.owner, self.sa, m.payloads, m.src, m.dst)
        phase1.float_ports(self.owner, self.sa)
        ident = self.own_identity()
        auth = phase1.auth_payloads(self.owner, self.sa, ident, initiator=True)
        self.send([ident, *auth, *phase1.initial_contact(self.owner, self.sa)], encrypt=True, expect_reply=True)
        self.set_state(S.MM_AUTH_SENT)

    def _on_mm6(self, m: Received) -> None:
        self.verify_peer(m)
        self.complete()

    steps = (
        Step("initiator", 2, _on_mm2, S.MM_KEY_EXCH_SENT, story="the responder chose a transform: send our DH value and nonce"),
        Step("initiator", 4, _on_mm4, S.MM_AUTH_SENT, story="keys derived: send our identity and proof, encrypted"),
        Step("initiator", 6, _on_mm6, S.QM_IDLE, story="the responder is authenticated: phase 1 done"),
    )


class MainModeResponder(Phase1Exchange):
    """Main Mode as responder: messages 2, 4 and 6."""

    exchange_type = ExchangeType.MAIN

    def _on_mm1(self, m: Received) -> None:
        offer = m.first(SAPayload)
        choice = self.choose(offer)
        self.sa.sai_b = offer.wire_body()
        self.sa.nat_t = phase1.nat_t_type(m.payloads)
        answer = phase1.chosen_sa(offer, choice)
        self.send([answer, *phase1.responder_vendor_ids(self.sa.nat_t)], encrypt=False, expect_reply=True)
        self.set_state(S.MM_SA_REPLIED)

    def _on_mm3(self, m: Received) -> None:
        ke = self.check_ke(m.first(KEPayload))
        nonce = m.first(NoncePayload)
        if nonce is None:
            raise Reject(NotifyType.PAYLOAD_MALFORMED, "message 3 carries no nonce")
        self.sa.gxi, self.sa.ni = ke.data, nonce.data
        phase1.emit_public(self.owner, self.sa, "g^xi", ke.data, "initiator's DH public value")
        phase1.emit_public(self.owner, self.sa, "Ni", nonce.data, "initiator's nonce")
        self.sa.gxr = self.make_dh()
        self.sa.nr = self.owner.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.owner, self.sa, "g^xr", self.sa.gxr, f"responder's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.owner, self.sa, "Nr", self.sa.nr, "responder's nonce")
        self.derive(ke.data)
        phase1.check_nat_d(self.owner, self.sa, m.payloads, m.src, m.dst)
        extra = phase1.cert_request(self.owner) if phase1.uses_signatures(self.sa) else []
        self.send(
            [KEPayload(self.sa.gxr), NoncePayload(self.sa.nr), *extra, *phase1.nat_d_payloads(self.owner, self.sa)],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(S.MM_KEY_EXCH_REPLIED)

    def on_undecryptable(self, reason: str, index: int) -> None:
        if index == 5 and not self.done:
            self.on_reject(Reject(
                NotifyType.INVALID_HASH_INFORMATION,
                f"message 5 did not decrypt to valid payloads ({reason}). Both sides derive the "
                "encryption key from SKEYID, which comes from the pre-shared key: most likely the "
                "pre-shared keys differ.",
                code="AUTHENTICATION_FAILED",
                keys_differ=True,
            ))
            return
        super().on_undecryptable(reason, index)

    def _on_mm5(self, m: Received) -> None:
        self.verify_peer(m)
        ident = self.own_identity()
        self.send([ident, *phase1.auth_payloads(self.owner, self.sa, ident, initiator=False)], encrypt=True, expect_reply=False)
        self.complete()

    steps = (
        Step("responder", 1, _on_mm1, S.MM_SA_REPLIED, required=(SAPayload,), story="choose one offered transform and return it"),
        Step("responder", 3, _on_mm3, S.MM_KEY_EXCH_REPLIED, story="send our DH value and nonce; derive the keys"),
        Step("responder", 5, _on_mm5, S.QM_IDLE, story="the initiator is authenticated: send our identity and proof"),
    )
