"""IKE_SA_INIT, RFC 7296 §1.2: the suite, the Diffie-Hellman exchange and the nonces.

::

    Initiator                               Responder
    HDR, SAi1, KEi, Ni,
      N(NAT_DETECTION_SOURCE_IP),
      N(NAT_DETECTION_DESTINATION_IP)  -->
                                       <--  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*)

Nothing is authenticated yet, so a responder keeps no state for a request it refuses
(NO_PROPOSAL_CHOSEN; INVALID_KE_PAYLOAD with the group it wants, §1.2; COOKIE when
too many IKE SAs are half open, §2.6) and the initiator retries with what it was
asked for.  Both sides then derive (§2.14)::

    SKEYSEED = prf(Ni | Nr, g^ir)
    {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)

NAT detection (§2.23): each side hashes ``SHA1(SPIi | SPIr | IP | port)`` of the
packet's source and destination as it sends them (SPIr zero in the request); a hash
that differs from what the receiver sees means a NAT changed that address, and the
initiator moves to UDP 4500 for everything after IKE_SA_INIT.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ipseclab.crypto import kdf_v2
from ipseclab.crypto.dh import dh_group
from ipseclab.crypto.registry import ike_hash
from ipseclab.crypto.registry_v2 import (
    ikev2_cipher,
    ikev2_integrity,
    ikev2_prf,
    wireshark_encryption,
    wireshark_integrity,
)
from ipseclab.crypto.signature_v2 import HASH_ALGORITHMS
from ipseclab.crypto.sk_cipher import SkCipher
from ipseclab.errors import CryptoError
from ipseclab.ikev2 import proposals
from ipseclab.ikev2.exchange import InitiatorExchange, Owner, Reject, Rx, notify_name
from ipseclab.ikev2.ike_sa import IkeSaV2, IkeState
from ipseclab.trace import Info, KeyDerived, NatDetected, PolicyDecision, PublicValue
from ipseclab.wire.v2.constants import ExchangeType, NotifyType
from ipseclab.wire.v2.message import KEPayload, NoncePayload, NotifyPayload, Payload, SAPayload

if TYPE_CHECKING:
    from ipseclab.trace import Address

NONCE_SIZE = 32
#: IKE_SA_INIT requests one IKE SA sends at most (cookie and INVALID_KE_PAYLOAD retries)
MAX_INIT_ATTEMPTS = 4


def nat_hash(spi_i: bytes, spi_r: bytes, address: Address) -> bytes:
    """``SHA1(SPIi | SPIr | IP | Port)`` (RFC 7296 §2.23)."""
    return ike_hash(2).hash(spi_i + spi_r + ipaddress.ip_address(address[0]).packed + address[1].to_bytes(2, "big"))


def nat_notifies(owner: Owner, sa: IkeSaV2, spi_r: bytes) -> list[Payload]:
    """NAT_DETECTION_SOURCE_IP and _DESTINATION_IP for the addresses we send from and to;
    with ``force_encapsulation`` the source hash is random, so the peer sees a NAT (as
    charon's ``encap = yes`` does)."""
    source = nat_hash(sa.spi_i, spi_r, sa.local)
    if sa.connection is not None and sa.connection.force_encapsulation:
        source = owner.rng.random_bytes(len(source))
    return [
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, data=source),
        NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, data=nat_hash(sa.spi_i, spi_r, sa.remote)),
    ]


def signature_hashes() -> NotifyPayload:
    """SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4): the hashes we can sign and verify with."""
    return NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, data=b"".join(h.to_bytes(2, "big") for h in HASH_ALGORITHMS))


def check_nat(owner: Owner, sa: IkeSaV2, rx: Rx, spi_r: bytes) -> None:
    """Compare the peer's NAT_DETECTION hashes with the addresses of the packet we got."""
    sources = [n.data for n in rx.all(NotifyPayload) if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dest = rx.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
    if not sources or dest is None:
        return
    sa.nat_t = 1
    sa.nat_remote = nat_hash(sa.spi_i, spi_r, rx.src) not in sources
    sa.nat_local = dest.data != nat_hash(sa.spi_i, spi_r, rx.dst)
    forced = sa.connection is not None and sa.connection.force_encapsulation
    if sa.nat_local or sa.nat_remote or forced:
        owner.emit(NatDetected, sa=sa.ref, local_behind_nat=sa.nat_local, remote_behind_nat=sa.nat_remote, forced=forced)


def derive_keys(owner: Owner, sa: IkeSaV2, peer_public: bytes) -> None:
    """g^ir, SKEYSEED and the seven SK_* keys, each a KeyDerived event with its formula."""
    assert sa.dh is not None and sa.choice is not None
    choice = sa.choice
    prf = ikev2_prf(choice.prf_id)
    cipher = SkCipher(ikev2_cipher(choice.encr_id, choice.key_bits), ikev2_integrity(choice.integ_id) if choice.integ_id else None)
    gir = sa.dh.shared_secret(peer_public)
    seed = kdf_v2.skeyseed(prf, sa.ni, sa.nr, gir)
    keys = kdf_v2.ike_keys(prf, seed, sa.ni, sa.nr, sa.spi_i, sa.spi_r,
                           integ_bytes=cipher.integ_key_bytes, encr_bytes=cipher.encr_key_bytes)
    sa.prf, sa.cipher, sa.keys = prf, cipher, keys
    emit = owner.emit
    emit(KeyDerived, sa=sa.ref, name="g^ir", formula="Diffie-Hellman shared secret of KEi and KEr", value=gir,
         inputs=["KEi", "KEr"])
    emit(KeyDerived, sa=sa.ref, name="SKEYSEED", formula="prf(Ni | Nr, g^ir)", value=seed, inputs=["Ni", "Nr", "g^ir"])
    announce_keys(owner, sa, "SKEYSEED")


def announce_keys(owner: Owner, sa: IkeSaV2, seed: str) -> None:
    """A KeyDerived event for each of the seven SK_* keys (SK_e and SK_a with the algorithm as
    Wireshark names it, for the key export); ``seed`` names the SKEYSEED they came from."""
    assert sa.keys is not None and sa.choice is not None and sa.cipher is not None
    choice = sa.choice
    algorithms = {"SK_e": wireshark_encryption(choice.encr_id, choice.key_bits, sa.cipher.icv_size),
                  "SK_a": wireshark_integrity(choice.integ_id)}
    for name, value in sa.keys.items():
        owner.emit(KeyDerived, sa=sa.ref, name=name, formula=f"prf+({seed}, Ni | Nr | SPIi | SPIr)", value=value,
                   inputs=[seed, "Ni", "Nr", "SPIi", "SPIr"], algorithm=algorithms.get(name[:4], ""))


def _policy_decision(owner: Owner, sa_ref: object, selection: proposals.Selection, accepted: bool, exchange: str, phase: int) -> None:
    owner.emit(PolicyDecision, phase=phase, exchange=exchange, accepted=accepted,
               explanation=selection.explanation, checks=selection.checks,
               chosen={"suite": selection.choice.describe()} if selection.choice else None)


class IkeSaInitInitiator(InitiatorExchange):
    """Our IKE_SA_INIT request, and what we do with the answer (or a retry request)."""

    exchange_type = ExchangeType.IKE_SA_INIT
    name = "IKE_SA_INIT"

    def __init__(self, owner: Owner, sa: IkeSaV2, group: int | None = None) -> None:
        super().__init__(owner, sa)
        usable = [p for p in owner.config.isakmp_policies if proposals.ikev2_capable(p)]
        if not usable:
            raise CryptoError("no ISAKMP policy can be offered in IKEv2 (DES and MD5 cannot)")
        self.group = group or sorted(usable, key=lambda p: p.priority)[0].group
        self.offer: SAPayload | None = None

    @property
    def encrypted(self) -> bool:
        return False

    def build(self) -> list[Payload]:
        owner, sa = self.owner, self.sa
        if sa.dh is None or sa.dh.group.number != self.group:  # a cookie retry keeps KEi and Ni (§2.6)
            sa.dh = dh_group(self.group).generate(owner.rng)
            sa.ni = owner.rng.random_bytes(NONCE_SIZE)
        sa.ke_i = sa.dh.public_bytes
        self.offer = proposals.ike_offer(owner.config.isakmp_policies)
        owner.emit(PublicValue, sa=sa.ref, name="KEi", value=sa.ke_i, note=f"g^i, DH group {self.group}")
        owner.emit(PublicValue, sa=sa.ref, name="Ni", value=sa.ni)
        sa.init_attempts += 1
        out: list[Payload] = [NotifyPayload(NotifyType.COOKIE, data=sa.cookie)] if sa.cookie else []
        out += [self.offer, KEPayload(self.group, sa.ke_i), NoncePayload(sa.ni)]
        if sa.connection is None or sa.connection.nat_traversal:
            out += nat_notifies(owner, sa, bytes(8))
        out.append(signature_hashes())
        if owner.config.ike_fragmentation:
            out.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        if any(p.addke for p in owner.config.isakmp_policies if proposals.ikev2_capable(p)):
            out.append(NotifyPayload(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))
        return out

    def process(self, rx: Rx) -> None:
        owner, sa = self.owner, self.sa
        cookie = rx.notify(NotifyType.COOKIE)
        if cookie is not None:
            if sa.cookie == cookie.data or sa.init_attempts >= MAX_INIT_ATTEMPTS:
                owner.fail_ike(sa, "COOKIE", "the responder keeps asking for a cookie although we echo it: giving up")
                return
            sa.cookie = cookie.data
            owner.emit(Info, sa=sa.ref, message="the responder is busy and asks for a cookie (RFC 7296 §2.6): "
                       "sending IKE_SA_INIT again with N(COOKIE) first, to show we receive at our address")
            owner.request(sa, IkeSaInitInitiator(owner, sa, self.group))
            return
        invalid_ke = rx.notify(NotifyType.INVALID_KE_PAYLOAD)
        if invalid_ke is not None:
            wanted = int.from_bytes(invalid_ke.data[:2], "big") if len(invalid_ke.data) >= 2 else 0
            ours = {p.group for p in owner.config.isakmp_policies if proposals.ikev2_capable(p)}
            if wanted == self.group or wanted not in ours or sa.init_attempts >= MAX_INIT_ATTEMPTS:
                owner.fail_ike(sa, "INVALID_KE_PAYLOAD",
                               f"the responder wants DH group {wanted}, which none of our policies offers (we have {sorted(ours)})")
                return
            owner.emit(Info, sa=sa.ref, message=f"INVALID_KE_PAYLOAD: the responder wants DH group {wanted}, not "
                       f"{self.group} — sending IKE_SA_INIT again with a group {wanted} key (RFC 7296 §1.2)")
            owner.request(sa, IkeSaInitInitiator(owner, sa, wanted))
            return
        for err in rx.errors():
            owner.fail_ike(sa, notify_name(err.notify_type), _refusal_words(err.notify_type))
            return
        sa_payload, ke, nonce = rx.first(SAPayload), rx.first(KEPayload), rx.first(NoncePayload)
        if sa_payload is None or ke is None or nonce is None or self.offer is None:
            owner.fail_ike(sa, "INVALID_SYNTAX", "the IKE_SA_INIT response lacks SAr1, KEr or Nr")
            return
        choice = proposals.accept_ike_answer(self.offer, sa_payload, owner.config.isakmp_policies)
        if isinstance(choice, str):
            owner.fail_ike(sa, "NO_PROPOSAL_CHOSEN", choice)
            return
        if ke.group != self.group or choice.group != self.group:
            owner.fail_ike(sa, "INVALID_KE_PAYLOAD", f"the responder's KE is group {ke.group}, we sent group {self.group}")
            return
        if choice.addke and rx.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is None:
            owner.fail_ike(sa, "NO_PROPOSAL_CHOSEN", "the responder accepted the additional key exchange but does not "
                           "announce IKE_INTERMEDIATE (RFC 9242 §3): it cannot carry it")
            return
        sa.choice = choice
        sa.fragmentation = owner.config.ike_fragmentation and rx.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
        sa.nr, sa.ke_r = nonce.data, ke.data
        owner.emit(PublicValue, sa=sa.ref, name="KEr", value=sa.ke_r, note=f"g^r, DH group {ke.group}")
        owner.emit(PublicValue, sa=sa.ref, name="Nr", value=sa.nr)
        try:
            derive_keys(owner, sa, ke.data)
        except CryptoError as exc:
            owner.fail_ike(sa, "INVALID_KE_PAYLOAD", f"the responder's public value is unusable: {exc}")
            return
        sa.init_response = rx.raw
        check_nat(owner, sa, rx, sa.spi_r)
        self.done = True
        owner.set_state(sa, IkeState.AUTHENTICATING)
        from ipseclab.ikev2.intermediate import start_next

        start_next(owner, sa)

    def on_timeout(self, tries: int) -> None:
        self.owner.fail_ike(self.sa, "TIMEOUT", f"no answer to IKE_SA_INIT after {tries} transmissions")


def _refusal_words(notify_type: int) -> str:
    return {
        NotifyType.NO_PROPOSAL_CHOSEN: "the responder accepts none of our IKE proposals (NO_PROPOSAL_CHOSEN): "
        "compare the encryption, PRF, integrity and DH group of both sides' policies",
        NotifyType.INVALID_SYNTAX: "the responder could not parse our IKE_SA_INIT (INVALID_SYNTAX)",
    }.get(notify_type, f"the responder refused IKE_SA_INIT with {notify_name(notify_type)}")


def respond(owner: Owner, sa: IkeSaV2, rx: Rx) -> list[Payload]:
    """The responder's IKE_SA_INIT: choose, answer with our KE and nonce, derive the keys.

    Raises :class:`Reject` (no SA is kept: the task manager answers statelessly).
    """
    sa_payload, ke, nonce = rx.first(SAPayload), rx.first(KEPayload), rx.first(NoncePayload)
    if sa_payload is None or ke is None or nonce is None:
        missing = [n for n, p in (("SAi1", sa_payload), ("KEi", ke), ("Ni", nonce)) if p is None]
        raise Reject(NotifyType.INVALID_SYNTAX, f"IKE_SA_INIT request without {', '.join(missing)}")
    selection = proposals.select_ike(sa_payload, owner.config.isakmp_policies, ke.group)
    if selection.choice is None:
        _policy_decision(owner, sa.ref, selection, False, "IKE_SA_INIT", 1)
        if selection.wanted_group is not None:
            raise Reject(NotifyType.INVALID_KE_PAYLOAD, selection.explanation[0],
                         data=selection.wanted_group.to_bytes(2, "big"))
        raise Reject(NotifyType.NO_PROPOSAL_CHOSEN, ": ".join(selection.explanation[:2]))
    assert isinstance(selection.choice, proposals.IkeChoice)
    if selection.choice.addke and rx.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is None:
        raise Reject(NotifyType.NO_PROPOSAL_CHOSEN, "the proposal we would take has an additional key exchange, but the "
                     "initiator does not announce IKE_INTERMEDIATE (RFC 9242 §3) to carry it")
    _policy_decision(owner, sa.ref, selection, True, "IKE_SA_INIT", 1)
    choice = selection.choice
    sa.choice = choice
    sa.ni, sa.ke_i = nonce.data, ke.data
    sa.dh = dh_group(choice.group).generate(owner.rng)
    sa.nr, sa.ke_r = owner.rng.random_bytes(NONCE_SIZE), sa.dh.public_bytes
    try:
        derive_keys(owner, sa, ke.data)
    except CryptoError as exc:
        raise Reject(NotifyType.INVALID_SYNTAX, f"the initiator's public value is unusable: {exc}") from None
    owner.emit(PublicValue, sa=sa.ref, name="KEi", value=sa.ke_i, note=f"g^i, DH group {ke.group}")
    owner.emit(PublicValue, sa=sa.ref, name="Ni", value=sa.ni)
    owner.emit(PublicValue, sa=sa.ref, name="KEr", value=sa.ke_r, note=f"g^r, DH group {choice.group}")
    owner.emit(PublicValue, sa=sa.ref, name="Nr", value=sa.nr)
    sa.init_request = rx.raw
    check_nat(owner, sa, rx, bytes(8))
    offered = next(p for p in sa_payload.proposals if p.number == choice.proposal)
    answer = proposals.chosen_proposal(offered, choice, b"")
    out: list[Payload] = [SAPayload([answer]), KEPayload(choice.group, sa.ke_r), NoncePayload(sa.nr)]
    if sa.nat_t:
        out += nat_notifies(owner, sa, sa.spi_r)
    if rx.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS) is not None:
        out.append(signature_hashes())
    if owner.config.ike_fragmentation and rx.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None:
        sa.fragmentation = True
        out.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    if choice.addke:
        out.append(NotifyPayload(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))
    from ipseclab.ikev2.ike_auth import cert_request

    out += cert_request(owner, sa)  # with certificates: ask for the initiator's (charon sends it only if asked)
    owner.set_state(sa, IkeState.AUTHENTICATING)
    return out
