"""The post-quantum hybrid: IKE_INTERMEDIATE (RFC 9242) carrying additional key exchanges
(RFC 9370) — here ML-KEM (FIPS 203) after the classical Diffie-Hellman of IKE_SA_INIT.

::

    Initiator                               Responder
    HDR, SAi1, KEi, Ni,  (SA with ADDKE1 = ML-KEM-768)
      N(INTERMEDIATE_EXCHANGE_SUPPORTED) -->
                                       <--  HDR, SAr1, KEr, Nr, N(INTERMEDIATE_EXCHANGE_SUPPORTED)
    HDR, SK {KEi(1)}                   -->  (the ML-KEM encapsulation key, 1184 bytes)
                                       <--  HDR, SK {KEr(1)}   (the ciphertext, 1088 bytes)
    HDR, SK {IDi, AUTH, SAi2, TSi, TSr} -->  (IKE_AUTH with the updated keys)

Why: a recording of today's IKE_SA_INIT can be broken once a quantum computer solves
Diffie-Hellman ("harvest now, decrypt later"); the ML-KEM secret is mixed into every
key, so the recording stays useless as long as either method holds.

After round n (RFC 9370 §2.2.2)::

    SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
    {SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)

Exchange n is protected with the keys of round n-1.  Its messages are also bound into
the authentication (RFC 9242 §3.3.2), as strongSwan computes it::

    IntAuth_i(n) = prf(SK_pi(n-1), IntAuth_i(n-1) | A | P)     (requests)
    IntAuth_r(n) = prf(SK_pr(n-1), IntAuth_r(n-1) | A | P)     (responses)
    A = the IKE header and the SK payload header, their lengths as if SK held P only
    P = the inner payloads in clear
    IntAuth = IntAuth_i | IntAuth_r | Message ID of IKE_AUTH (4 bytes)

and IntAuth is appended to both sides' signed octets in IKE_AUTH.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipseclab.crypto import kdf_v2
from ipseclab.crypto.kem import KemInitiator, encapsulate, kem_name
from ipseclab.errors import CryptoError
from ipseclab.ikev2.exchange import InitiatorExchange, Owner, Reject, Rx, notify_name
from ipseclab.trace import Info, KeyDerived, PublicValue
from ipseclab.wire.header import HEADER_LENGTH, encode_header
from ipseclab.wire.v2.constants import VERSION, ExchangeType, NotifyType, PayloadType
from ipseclab.wire.v2.message import KEPayload, Payload

if TYPE_CHECKING:
    from ipseclab.ikev2.ike_sa import IkeSaV2


def pending_round(sa: IkeSaV2) -> int | None:
    """The additional key exchange still to run (its method), or None when all are done."""
    done = len(sa.int_rounds)
    methods = sa.choice.addke if sa.choice else ()
    return methods[done] if done < len(methods) else None


def absorb(owner: Owner, sa: IkeSaV2, *, flags: int, message_id: int, inner_first: int, plaintext: bytes, request: bool) -> None:
    """Fold one IKE_INTERMEDIATE message into IntAuth_i (requests) or IntAuth_r (responses),
    with the SK_p of the keys that protected it."""
    assert sa.prf is not None and sa.keys is not None
    header = encode_header(sa.spi_i, sa.spi_r, PayloadType.SK, VERSION, ExchangeType.IKE_INTERMEDIATE, flags, message_id,
                           HEADER_LENGTH + 4 + len(plaintext))
    a = header + bytes([inner_first, 0]) + (4 + len(plaintext)).to_bytes(2, "big")
    if request:
        sa.int_auth_i = sa.prf(sa.keys.sk_pi, sa.int_auth_i + a + plaintext)
    else:
        sa.int_auth_r = sa.prf(sa.keys.sk_pr, sa.int_auth_r + a + plaintext)


def int_auth(sa: IkeSaV2, auth_message_id: int) -> bytes:
    """``IntAuth_i | IntAuth_r | IKE_AUTH_MID``, or nothing when no IKE_INTERMEDIATE ran."""
    if not sa.int_rounds:
        return b""
    return sa.int_auth_i + sa.int_auth_r + auth_message_id.to_bytes(4, "big")


def update_keys(owner: Owner, sa: IkeSaV2, method: int, shared: bytes) -> None:
    """RFC 9370 §2.2.2: mix round n's secret into all seven keys."""
    assert sa.prf is not None and sa.keys is not None and sa.cipher is not None and sa.choice is not None
    n = len(sa.int_rounds) + 1
    seed = kdf_v2.skeyseed_additional(sa.prf, sa.keys.sk_d, shared, sa.ni, sa.nr)
    sa.keys = kdf_v2.ike_keys(sa.prf, seed, sa.ni, sa.nr, sa.spi_i, sa.spi_r,
                              integ_bytes=sa.cipher.integ_key_bytes, encr_bytes=sa.cipher.encr_key_bytes)
    sa.int_rounds.append(method)
    owner.emit(KeyDerived, sa=sa.ref, name=f"SK({n})", formula=f"{kem_name(method)} shared secret (FIPS 203)", value=shared,
               inputs=[f"KEi({n})", f"KEr({n})"])
    owner.emit(KeyDerived, sa=sa.ref, name=f"SKEYSEED({n})", formula=f"prf(SK_d({n - 1}), SK({n}) | Ni | Nr)", value=seed,
               inputs=[f"SK_d({n - 1})", f"SK({n})", "Ni", "Nr"])
    from ipseclab.ikev2.ike_sa_init import announce_keys

    announce_keys(owner, sa, f"SKEYSEED({n})")
    owner.emit(Info, sa=sa.ref, message=f"additional key exchange {n} ({kem_name(method)}) done: every key now depends on "
               f"the Diffie-Hellman secret and the {kem_name(method)} secret (RFC 9370 §2.2.2)")


class IntermediateInitiator(InitiatorExchange):
    """One IKE_INTERMEDIATE round: our encapsulation key out, the peer's ciphertext back."""

    exchange_type = ExchangeType.IKE_INTERMEDIATE
    name = "IKE_INTERMEDIATE"

    def __init__(self, owner: Owner, sa: IkeSaV2, method: int) -> None:
        super().__init__(owner, sa)
        self.method = method
        self.kem: KemInitiator | None = None

    def build(self) -> list[Payload]:
        self.kem = KemInitiator.generate(self.method, self.owner.rng)
        n = len(self.sa.int_rounds) + 1
        self.owner.emit(PublicValue, sa=self.sa.ref, name=f"KEi({n})", value=self.kem.public_bytes,
                        note=f"{kem_name(self.method)} encapsulation key, {len(self.kem.public_bytes)} bytes")
        return [KEPayload(self.method, self.kem.public_bytes)]

    def process(self, rx: Rx) -> None:
        owner, sa = self.owner, self.sa
        self.done = True
        errors = rx.errors()
        if errors:
            owner.fail_ike(sa, notify_name(errors[0].notify_type), f"the responder refused the additional key exchange: "
                           f"{notify_name(errors[0].notify_type)}")
            return
        ke = rx.first(KEPayload)
        assert self.kem is not None
        if ke is None or ke.group != self.method:
            owner.fail_ike(sa, "INVALID_SYNTAX", f"the IKE_INTERMEDIATE response lacks a {kem_name(self.method)} KE payload")
            return
        n = len(sa.int_rounds) + 1
        owner.emit(PublicValue, sa=sa.ref, name=f"KEr({n})", value=ke.data,
                   note=f"{kem_name(self.method)} ciphertext, {len(ke.data)} bytes")
        try:
            shared = self.kem.shared_secret(ke.data)
        except CryptoError as exc:
            owner.fail_ike(sa, "INVALID_SYNTAX", f"the responder's {kem_name(self.method)} ciphertext is unusable: {exc}")
            return
        update_keys(owner, sa, self.method, shared)
        start_next(owner, sa)

    def on_timeout(self, tries: int) -> None:
        self.owner.fail_ike(self.sa, "TIMEOUT", f"no answer to IKE_INTERMEDIATE after {tries} transmissions")


def start_next(owner: Owner, sa: IkeSaV2) -> None:
    """After IKE_SA_INIT or a round: the next additional key exchange, or IKE_AUTH."""
    method = pending_round(sa)
    if method is not None:
        owner.request(sa, IntermediateInitiator(owner, sa, method))
        return
    from ipseclab.ikev2.ike_auth import IkeAuthInitiator

    owner.request(sa, IkeAuthInitiator(owner, sa))


def respond(owner: Owner, sa: IkeSaV2, rx: Rx) -> list[Payload]:
    """The responder's round: encapsulate to the initiator's key; keys update after the answer."""
    method = pending_round(sa)
    ke = rx.first(KEPayload)
    if method is None:
        raise Reject(NotifyType.INVALID_SYNTAX, "an IKE_INTERMEDIATE request, but no additional key exchange was agreed")
    if ke is None or ke.group != method:
        raise Reject(NotifyType.INVALID_KE_PAYLOAD, f"IKE_INTERMEDIATE round {len(sa.int_rounds) + 1} needs a {kem_name(method)} KE payload",
                     data=method.to_bytes(2, "big"))
    n = len(sa.int_rounds) + 1
    owner.emit(PublicValue, sa=sa.ref, name=f"KEi({n})", value=ke.data, note=f"{kem_name(method)} encapsulation key, {len(ke.data)} bytes")
    try:
        ciphertext, shared = encapsulate(method, ke.data)
    except CryptoError as exc:
        raise Reject(NotifyType.INVALID_SYNTAX, str(exc)) from None
    owner.emit(PublicValue, sa=sa.ref, name=f"KEr({n})", value=ciphertext, note=f"{kem_name(method)} ciphertext, {len(ciphertext)} bytes")
    owner.after_response(sa, lambda: update_keys(owner, sa, method, shared))
    return [KEPayload(method, ciphertext)]
