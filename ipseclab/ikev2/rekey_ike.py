"""Rekeying the IKE SA itself, RFC 7296 §1.3.2 and §2.18: a CREATE_CHILD_SA whose SA
payload proposes IKE, with new SPIs, nonces and a new Diffie-Hellman exchange.

::

    Initiator                               Responder
    HDR, SK {SA, Ni, KEi}              -->
                                       <--  HDR, SK {SA, Nr, KEr}

    SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
    {SK_d | SK_ai | ... | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)

The new IKE SA's SPIi is the one the rekey's initiator proposed, SPIr the responder's
answer; whoever started the rekey is the new SA's initiator.  The child SAs move to
the new IKE SA at once, and the rekey's initiator deletes the old one (§2.18) — no new
authentication, so nothing is said again about identities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipseclab.crypto import kdf_v2
from ipseclab.crypto.dh import dh_group
from ipseclab.crypto.registry_v2 import ikev2_cipher, ikev2_integrity, ikev2_prf
from ipseclab.crypto.sk_cipher import SkCipher
from ipseclab.errors import CryptoError
from ipseclab.ikev2 import proposals
from ipseclab.ikev2.exchange import InitiatorExchange, Owner, Reject, Rx, notify_name
from ipseclab.ikev2.ike_sa import IkeSaV2, IkeState
from ipseclab.ikev2.ike_sa_init import announce_keys
from ipseclab.trace import Info, KeyDerived, PolicyDecision
from ipseclab.wire.v2.constants import ExchangeType, NotifyType, ProtocolId
from ipseclab.wire.v2.message import KEPayload, NoncePayload, Payload, SAPayload

if TYPE_CHECKING:
    from ipseclab.crypto.dh import DHKeyPair

NONCE_SIZE = 32


def is_ike_rekey(rx: Rx) -> bool:
    sa_payload = rx.first(SAPayload)
    return sa_payload is not None and any(p.protocol_id == ProtocolId.IKE for p in sa_payload.proposals)


def _new_sa(owner: Owner, old: IkeSaV2, *, spi_i: bytes, spi_r: bytes, initiator: bool, choice: proposals.IkeChoice,
            ni: bytes, nr: bytes, gir: bytes) -> IkeSaV2:
    """The successor of ``old`` with its keys derived and announced (§2.18)."""
    assert old.prf is not None and old.keys is not None
    new = IkeSaV2(spi_i=spi_i, spi_r=spi_r, initiator=initiator, local=old.local, remote=old.remote,
                  connection=old.connection, state=IkeState.ESTABLISHED, choice=choice, ni=ni, nr=nr,
                  peer_identity=old.peer_identity, nat_t=old.nat_t, nat_local=old.nat_local, nat_remote=old.nat_remote,
                  floated=old.floated, peer_proven=True, virtual_ip=old.virtual_ip, lease=old.lease,
                  eap_identity=old.eap_identity)
    old.lease = None  # the successor holds the virtual IP now
    prf = ikev2_prf(choice.prf_id)
    cipher = SkCipher(ikev2_cipher(choice.encr_id, choice.key_bits), ikev2_integrity(choice.integ_id) if choice.integ_id else None)
    seed = kdf_v2.skeyseed_rekey(old.prf, old.keys.sk_d, gir, ni, nr)
    keys = kdf_v2.ike_keys(prf, seed, ni, nr, spi_i, spi_r, integ_bytes=cipher.integ_key_bytes, encr_bytes=cipher.encr_key_bytes)
    new.prf, new.cipher, new.keys = prf, cipher, keys
    owner.emit(KeyDerived, sa=new.ref, name="g^ir (new)", formula="Diffie-Hellman of the rekey's KEi and KEr", value=gir,
               inputs=["KEi", "KEr"])
    owner.emit(KeyDerived, sa=new.ref, name="SKEYSEED", formula="prf(SK_d (old), g^ir (new) | Ni | Nr)", value=seed,
               inputs=["SK_d (old)", "g^ir (new)", "Ni", "Nr"])
    announce_keys(owner, new, "SKEYSEED")
    return new


def _install(owner: Owner, old: IkeSaV2, new: IkeSaV2) -> None:
    from ipseclab.ikev2.ike_auth import established

    owner.emit(Info, sa=new.ref, message=f"{old.ref.label} rekeyed as {new.ref.label} (RFC 7296 §2.18): "
               f"{len(old.children)} child SA(s) move to it")
    owner.peer.add_ike_sa(new)
    new.replaces = old.spi_i if new.initiator else None
    established(owner, new)


class RekeyIkeInitiator(InitiatorExchange):
    exchange_type = ExchangeType.CREATE_CHILD_SA
    name = "CREATE_CHILD_SA"

    def __init__(self, owner: Owner, sa: IkeSaV2) -> None:
        super().__init__(owner, sa)
        self.spi = owner.peer.new_ike_spi()
        self.nonce = b""
        self.dh: DHKeyPair | None = None
        self.offer: SAPayload | None = None
        self.group = sa.choice.group if sa.choice else 14

    def build(self) -> list[Payload]:
        owner = self.owner
        self.nonce = owner.rng.random_bytes(NONCE_SIZE)
        self.dh = dh_group(self.group).generate(owner.rng)
        offer = proposals.ike_offer(owner.config.isakmp_policies)
        for p in offer.proposals:
            p.spi = self.spi
        self.offer = offer
        return [offer, NoncePayload(self.nonce), KEPayload(self.group, self.dh.public_bytes)]

    def process(self, rx: Rx) -> None:
        owner, old = self.owner, self.sa
        self.done = True
        errors = rx.errors()
        if errors:
            owner.emit(Info, sa=old.ref, message=f"the peer refused to rekey the IKE SA: {notify_name(errors[0].notify_type)}; "
                       "it is re-authenticated instead when its lifetime ends")
            return
        answer, nonce, ke = rx.first(SAPayload), rx.first(NoncePayload), rx.first(KEPayload)
        assert self.offer is not None and self.dh is not None
        if answer is None or nonce is None or ke is None or len(answer.proposals) != 1 or len(answer.proposals[0].spi) != 8:
            owner.emit(Info, sa=old.ref, message="the IKE SA rekey response lacks SA (with an 8-byte SPI), Nr or KEr")
            return
        choice = proposals.accept_ike_answer(self.offer, answer, owner.config.isakmp_policies)
        if isinstance(choice, str) or ke.group != self.group:
            owner.emit(Info, sa=old.ref, message=f"IKE SA rekey answer refused: {choice if isinstance(choice, str) else 'another DH group'}")
            return
        try:
            gir = self.dh.shared_secret(ke.data)
        except CryptoError as exc:
            owner.emit(Info, sa=old.ref, message=f"IKE SA rekey: unusable KEr: {exc}")
            return
        new = _new_sa(owner, old, spi_i=self.spi, spi_r=answer.proposals[0].spi, initiator=True, choice=choice,
                      ni=self.nonce, nr=nonce.data, gir=gir)
        _install(owner, old, new)


def respond(owner: Owner, old: IkeSaV2, rx: Rx) -> list[Payload]:
    """The responder's side of an IKE SA rekey: choose, answer, make the successor."""
    offer, nonce, ke = rx.first(SAPayload), rx.first(NoncePayload), rx.first(KEPayload)
    if offer is None or nonce is None or ke is None:
        raise Reject(NotifyType.INVALID_SYNTAX, "IKE SA rekey without SA, Ni or KEi", fatal=False)
    selection = proposals.select_ike(offer, owner.config.isakmp_policies, ke.group)
    owner.emit(PolicyDecision, phase=1, exchange="CREATE_CHILD_SA (IKE SA rekey)", accepted=selection.choice is not None,
               explanation=selection.explanation, checks=selection.checks,
               chosen={"suite": selection.choice.describe()} if selection.choice else None)
    if selection.choice is None:
        if selection.wanted_group is not None:
            raise Reject(NotifyType.INVALID_KE_PAYLOAD, selection.explanation[0], data=selection.wanted_group.to_bytes(2, "big"), fatal=False)
        raise Reject(NotifyType.NO_PROPOSAL_CHOSEN, ": ".join(selection.explanation[:2]), fatal=False)
    assert isinstance(selection.choice, proposals.IkeChoice)
    choice = selection.choice
    theirs = next(p for p in offer.proposals if p.number == choice.proposal)
    if len(theirs.spi) != 8:
        raise Reject(NotifyType.INVALID_SYNTAX, "an IKE SA rekey proposal needs the new 8-byte SPI", fatal=False)
    dh = dh_group(choice.group).generate(owner.rng)
    try:
        gir = dh.shared_secret(ke.data)
    except CryptoError as exc:
        raise Reject(NotifyType.INVALID_SYNTAX, f"unusable KEi: {exc}", fatal=False) from None
    nr, spi_r = owner.rng.random_bytes(NONCE_SIZE), owner.peer.new_ike_spi()
    new = _new_sa(owner, old, spi_i=theirs.spi, spi_r=spi_r, initiator=False, choice=choice, ni=nonce.data, nr=nr, gir=gir)
    owner.after_response(old, lambda: _install(owner, old, new))
    return [SAPayload([proposals.chosen_proposal(theirs, choice, spi_r)]), NoncePayload(nr), KEPayload(choice.group, dh.public_bytes)]
