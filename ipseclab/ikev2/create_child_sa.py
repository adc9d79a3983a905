"""CREATE_CHILD_SA for another child SA, RFC 7296 §1.3.1 (with PFS: a KE payload each way).

::

    Initiator                               Responder
    HDR, SK {SA, Ni, [KEi,] TSi, TSr}  -->
                                       <--  HDR, SK {SA, Nr, [KEr,] TSi, TSr}

Either side may start one once the IKE SA is up.  Its keys come from fresh nonces —
``KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)`` — so each child has its own even
without PFS; with PFS a new Diffie-Hellman exchange makes them independent of the IKE
SA's keys too.  A rekey is a new child for the same selectors, after which the
initiator deletes the old one (make-before-break).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipseclab.crypto.dh import dh_group
from ipseclab.errors import CryptoError
from ipseclab.ikev2 import child as children
from ipseclab.ikev2.exchange import InitiatorExchange, Owner, Reject, Rx, notify_name
from ipseclab.trace import Info, PublicValue
from ipseclab.wire.v2.constants import ExchangeType, NotifyType, ProtocolId
from ipseclab.wire.v2.message import KEPayload, NoncePayload, NotifyPayload, Payload

if TYPE_CHECKING:
    from ipseclab.config import ChildConfig
    from ipseclab.crypto.dh import DHKeyPair
    from ipseclab.ikev2.ike_sa import IkeSaV2

NONCE_SIZE = 32


class CreateChildInitiator(InitiatorExchange):
    exchange_type = ExchangeType.CREATE_CHILD_SA
    name = "CREATE_CHILD_SA"

    def __init__(self, owner: Owner, sa: IkeSaV2, child: ChildConfig, *, rekey_spi: int | None = None) -> None:
        super().__init__(owner, sa)
        self.child = child
        self.rekey_spi = rekey_spi  # the inbound SPI of the pair this one replaces (REKEY_SA, §1.3.3)
        self.offer = children.make_offer(owner, child, with_ke=True)
        self.nonce = b""
        self.dh: DHKeyPair | None = None
        self.message_id = 0

    def build(self) -> list[Payload]:
        owner = self.owner
        self.nonce = owner.rng.random_bytes(NONCE_SIZE)
        payloads = self.offer.payloads()
        sa_at = next(i for i, p in enumerate(payloads) if p is self.offer.offer)
        extra: list[Payload] = [NoncePayload(self.nonce)]
        group = self.child.pfs_group
        if group:
            self.dh = dh_group(group).generate(owner.rng)
            extra.append(KEPayload(group, self.dh.public_bytes))
            owner.emit(PublicValue, sa=self.sa.ref, name="KEi (PFS)", value=self.dh.public_bytes, note=f"DH group {group}")
        rekey: list[Payload] = []
        if self.rekey_spi is not None:
            rekey = [NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, self.rekey_spi.to_bytes(4, "big"))]
        return rekey + payloads[: sa_at + 1] + extra + payloads[sa_at + 1 :]

    def process(self, rx: Rx) -> None:
        owner, sa = self.owner, self.sa
        self.done = True
        errors = rx.errors()
        if errors:
            owner.emit(Info, sa=sa.ref, message=f"the peer refused child {self.child.name}: {notify_name(errors[0].notify_type)}")
            return
        nonce, ke = rx.first(NoncePayload), rx.first(KEPayload)
        if nonce is None:
            owner.emit(Info, sa=sa.ref, message=f"child {self.child.name}: the response has no nonce")
            return
        gir = b""
        if self.dh is not None:
            if ke is None or ke.group != self.dh.group.number:
                owner.emit(Info, sa=sa.ref, message=f"child {self.child.name}: PFS asked, no KE of group {self.dh.group.number} in the answer")
                return
            try:
                gir = self.dh.shared_secret(ke.data)
            except CryptoError as exc:
                owner.emit(Info, sa=sa.ref, message=f"child {self.child.name}: unusable KEr: {exc}")
                return
        pair = children.complete(owner, sa, self.offer, rx, ni=self.nonce, nr=nonce.data, message_id=rx.message.message_id, gir=gir)
        if isinstance(pair, str):
            owner.emit(Info, sa=sa.ref, message=f"child {self.child.name} not established: {pair}")
            return
        children.announce(owner, sa, pair, initiator=True)


def respond(owner: Owner, sa: IkeSaV2, rx: Rx) -> list[Payload]:
    """A new child asked for by the peer, a child rekey (REKEY_SA) or an IKE SA rekey."""
    from ipseclab.ikev2 import rekey_ike

    if rekey_ike.is_ike_rekey(rx):
        return rekey_ike.respond(owner, sa, rx)
    nonce, ke = rx.first(NoncePayload), rx.first(KEPayload)
    if nonce is None:
        raise Reject(NotifyType.INVALID_SYNTAX, "CREATE_CHILD_SA request without a nonce", fatal=False)
    rekey = rx.notify(NotifyType.REKEY_SA)
    if rekey is not None:
        spi = int.from_bytes(rekey.spi, "big") if len(rekey.spi) == 4 else -1
        old = next((p for p in sa.children if p.outbound.spi == spi), None)
        if old is None:
            raise Reject(NotifyType.CHILD_SA_NOT_FOUND, f"REKEY_SA names SPI {spi:08x}, which is no child SA of ours", fatal=False)
        owner.emit(Info, sa=old.ref, message=f"the peer rekeys child {old.child} (REKEY_SA, RFC 7296 §1.3.3); it deletes "
                   "the old pair once the new one is up")
    nr = owner.rng.random_bytes(NONCE_SIZE)
    gir, extra = b"", []
    dh = None
    if ke is not None:
        try:
            dh = dh_group(ke.group).generate(owner.rng)
            gir = dh.shared_secret(ke.data)
        except CryptoError as exc:
            raise Reject(NotifyType.INVALID_KE_PAYLOAD, f"unusable KEi: {exc}", fatal=False) from None
    payloads, pair = children.respond(owner, sa, rx, ni=nonce.data, nr=nr, message_id=rx.message.message_id,
                                      exchange="CREATE_CHILD_SA", gir=gir, ke_group=ke.group if ke else None)
    if pair.pfs_group and dh is not None:
        extra.append(KEPayload(dh.group.number, dh.public_bytes))
    children.announce(owner, sa, pair, initiator=False)
    sa_at = next(i for i, p in enumerate(payloads) if p.payload_type == 33)
    return payloads[: sa_at + 1] + [NoncePayload(nr), *extra] + payloads[sa_at + 1 :]
