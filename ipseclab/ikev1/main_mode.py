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
``MM_NO_STATE`` → ``MM_SA_REPLIED`` → ``MM_KEY_EXCH_REPLIED`` → ``QM_IDLE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipseclab.errors import CryptoError
from ipseclab.ikev1 import phase1
from ipseclab.ikev1.exchange import Exchange
from ipseclab.ikev1.states import IsakmpState
from ipseclab.trace import Info
from ipseclab.wire.constants import ExchangeType, NotifyType
from ipseclab.wire.isakmp import (
    KEPayload,
    Message,
    NoncePayload,
    Payload,
    SAPayload,
)

if TYPE_CHECKING:
    from ipseclab.ikev1.isakmp_sa import IsakmpSa
    from ipseclab.peer import Peer

NONCE_SIZE = 32


def first(payloads: list[Payload], cls: type) -> Payload | None:
    return next((p for p in payloads if isinstance(p, cls)), None)


class Phase1Exchange(Exchange):
    """Behaviour Main and Aggressive Mode share: failure notifies and completion."""

    final_states = frozenset({IsakmpState.QM_IDLE, IsakmpState.FAILED, IsakmpState.DELETED})

    def __init__(self, peer: Peer, sa: IsakmpSa, initiator: bool) -> None:
        super().__init__(peer, sa, 0, initiator)
        self.offered: SAPayload | None = None

    def reject(self, notify_type: int, code: str, message: str, *, keys_differ: bool = False) -> None:
        """Tell the peer and fail.

        The notification is protected once both sides share keys (a peer like charon
        ignores unprotected ones by then); in clear before, or when our keys are the
        very thing that differs (a wrong PSK), since the peer could not decrypt it.
        """
        self.peer.send_notify(self.sa, notify_type, protect=bool(self.sa.enc_key) and not keys_differ)
        self.fail(code, message, notify_type)

    def on_timer(self, now: float) -> None:
        if self.timer is not None and now >= self.timer and self.sa.key_mismatch_suspected and not self.done:
            self.fail(
                "AUTHENTICATION_FAILED",
                "the peer answered with an encrypted notification that our keys cannot decrypt and "
                "never continued the exchange: the two sides derived different keys — most likely "
                "the pre-shared keys differ.",
            )
            return
        super().on_timer(now)

    def complete(self) -> None:
        self.sa.finish_phase1()
        self.timer = None
        self.set_state(IsakmpState.QM_IDLE)
        self.peer.phase1_established(self.sa)

    def make_dh(self) -> bytes:
        assert self.sa.group is not None
        self.sa.dh = self.sa.group.generate(self.peer.rng)
        return self.sa.dh.public_bytes

    def check_ke(self, ke: KEPayload | None) -> bool:
        assert self.sa.group is not None
        if ke is None or len(ke.data) != self.sa.group.public_size:
            got = "no KE payload" if ke is None else f"{len(ke.data)} bytes"
            self.reject(
                NotifyType.INVALID_KEY_INFORMATION,
                "INVALID_KEY_INFORMATION",
                f"the KE payload does not fit {self.sa.group.name} "
                f"({got}, expected {self.sa.group.public_size} bytes)",
            )
            return False
        return True

    def derive(self, peer_public: bytes) -> bool:
        try:
            phase1.derive_keys(self.peer, self.sa, peer_public)
        except CryptoError as exc:
            self.reject(NotifyType.INVALID_KEY_INFORMATION, "INVALID_KEY_INFORMATION", f"DH computation failed: {exc}")
            return False
        return True


class MainModeInitiator(Phase1Exchange):
    """Main Mode as initiator: messages 1, 3 and 5."""

    exchange_type = ExchangeType.MAIN

    def start(self) -> None:
        conn = self.sa.connection
        self.offered = phase1.offered_sa(self.peer)
        self.sa.sai_b = self.offered.encode_body()
        self.send([self.offered, *phase1.initiator_vendor_ids(conn is None or conn.nat_traversal)], encrypt=False, expect_reply=True)
        self.set_state(IsakmpState.MM_SA_SENT)

    def handle(self, payloads, msg: Message, src, dst, plaintext) -> None:  # noqa: ANN001
        if self.index == 2:
            self._on_mm2(payloads, msg)
        elif self.index == 4:
            self._on_mm4(payloads, src, dst)
        elif self.index == 6:
            self._on_mm6(payloads)

    def _on_mm2(self, payloads: list[Payload], msg: Message) -> None:
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
        phase1.apply_choice(self.sa, choice)
        conn = self.sa.connection
        self.sa.nat_t = phase1.nat_t_type(payloads) if conn is None or conn.nat_traversal else 0
        gxi = self.make_dh()
        self.sa.gxi = gxi
        self.sa.ni = self.peer.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.peer, self.sa, "g^xi", gxi, f"initiator's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.peer, self.sa, "Ni", self.sa.ni, "initiator's nonce")
        extra = phase1.cert_request(self.peer) if phase1.uses_signatures(self.sa) else []
        self.send(
            [KEPayload(gxi), NoncePayload(self.sa.ni), *extra, *phase1.nat_d_payloads(self.peer, self.sa)],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(IsakmpState.MM_KEY_EXCH_SENT)

    def _on_mm4(self, payloads: list[Payload], src, dst) -> None:  # noqa: ANN001
        ke = first(payloads, KEPayload)
        nonce = first(payloads, NoncePayload)
        if not self.check_ke(ke):
            return
        if nonce is None:
            self.reject(NotifyType.PAYLOAD_MALFORMED, "PAYLOAD_MALFORMED", "message 4 carries no nonce")
            return
        self.sa.gxr, self.sa.nr = ke.data, nonce.data
        phase1.emit_public(self.peer, self.sa, "g^xr", ke.data, "responder's DH public value")
        phase1.emit_public(self.peer, self.sa, "Nr", nonce.data, "responder's nonce")
        if not self.derive(ke.data):
            return
        phase1.check_nat_d(self.peer, self.sa, payloads, src, dst)
        phase1.float_ports(self.peer, self.sa)
        try:
            ident = phase1.own_identity(self.peer, self.sa)
        except CryptoError as exc:
            self.reject(NotifyType.AUTHENTICATION_FAILED, "NO_CREDENTIALS", str(exc))
            return
        self.send([ident, *phase1.auth_payloads(self.peer, self.sa, ident, initiator=True)], encrypt=True, expect_reply=True)
        self.set_state(IsakmpState.MM_AUTH_SENT)

    def _on_mm6(self, payloads: list[Payload]) -> None:
        ok, reason = phase1.verify_auth(self.peer, self.sa, payloads, from_initiator=False)
        if not ok:
            self.reject(
                NotifyType.INVALID_HASH_INFORMATION,
                "AUTHENTICATION_FAILED",
                f"the responder is not authenticated: {reason}",
                keys_differ=not phase1.uses_signatures(self.sa),
            )
            return
        self.peer.emit(Info, sa=self.ref, message=reason)
        self.complete()


class MainModeResponder(Phase1Exchange):
    """Main Mode as responder: messages 2, 4 and 6."""

    exchange_type = ExchangeType.MAIN

    def handle(self, payloads, msg: Message, src, dst, plaintext) -> None:  # noqa: ANN001
        if self.index == 1:
            self._on_mm1(payloads)
        elif self.index == 3:
            self._on_mm3(payloads, src, dst)
        elif self.index == 5:
            self._on_mm5(payloads)

    def _on_mm1(self, payloads: list[Payload]) -> None:
        offer = first(payloads, SAPayload)
        if offer is None:
            self.reject(NotifyType.PAYLOAD_MALFORMED, "PAYLOAD_MALFORMED", "message 1 carries no SA payload")
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
        self.sa.sai_b = offer.wire_body()
        self.sa.nat_t = phase1.nat_t_type(payloads)
        answer = phase1.chosen_sa(offer, choice)
        self.send([answer, *phase1.responder_vendor_ids(self.sa.nat_t)], encrypt=False, expect_reply=True)
        self.set_state(IsakmpState.MM_SA_REPLIED)

    def _on_mm3(self, payloads: list[Payload], src, dst) -> None:  # noqa: ANN001
        ke = first(payloads, KEPayload)
        nonce = first(payloads, NoncePayload)
        if not self.check_ke(ke):
            return
        if nonce is None:
            self.reject(NotifyType.PAYLOAD_MALFORMED, "PAYLOAD_MALFORMED", "message 3 carries no nonce")
            return
        self.sa.gxi, self.sa.ni = ke.data, nonce.data
        phase1.emit_public(self.peer, self.sa, "g^xi", ke.data, "initiator's DH public value")
        phase1.emit_public(self.peer, self.sa, "Ni", nonce.data, "initiator's nonce")
        self.sa.gxr = self.make_dh()
        self.sa.nr = self.peer.rng.random_bytes(NONCE_SIZE)
        phase1.emit_public(self.peer, self.sa, "g^xr", self.sa.gxr, f"responder's DH public value ({self.sa.group.name})")
        phase1.emit_public(self.peer, self.sa, "Nr", self.sa.nr, "responder's nonce")
        if not self.derive(ke.data):
            return
        phase1.check_nat_d(self.peer, self.sa, payloads, src, dst)
        extra = phase1.cert_request(self.peer) if phase1.uses_signatures(self.sa) else []
        self.send(
            [KEPayload(self.sa.gxr), NoncePayload(self.sa.nr), *extra, *phase1.nat_d_payloads(self.peer, self.sa)],
            encrypt=False,
            expect_reply=True,
        )
        self.set_state(IsakmpState.MM_KEY_EXCH_REPLIED)

    def on_undecryptable(self, reason: str, index: int) -> None:
        if index == 5 and not self.done:
            self.reject(
                NotifyType.INVALID_HASH_INFORMATION,
                "AUTHENTICATION_FAILED",
                f"message 5 did not decrypt to valid payloads ({reason}). Both sides derive the "
                "encryption key from SKEYID, which comes from the pre-shared key: most likely the "
                "pre-shared keys differ.",
                keys_differ=True,
            )
            return
        super().on_undecryptable(reason, index)

    def _on_mm5(self, payloads: list[Payload]) -> None:
        ok, reason = phase1.verify_auth(self.peer, self.sa, payloads, from_initiator=True)
        if not ok:
            self.reject(
                NotifyType.INVALID_HASH_INFORMATION,
                "AUTHENTICATION_FAILED",
                f"the initiator is not authenticated: {reason}",
                keys_differ=not phase1.uses_signatures(self.sa),
            )
            return
        self.peer.emit(Info, sa=self.ref, message=reason)
        try:
            ident = phase1.own_identity(self.peer, self.sa)
        except CryptoError as exc:
            self.reject(NotifyType.AUTHENTICATION_FAILED, "NO_CREDENTIALS", str(exc))
            return
        self.send([ident, *phase1.auth_payloads(self.peer, self.sa, ident, initiator=False)], encrypt=True, expect_reply=False)
        self.complete()
