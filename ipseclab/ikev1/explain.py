"""One sentence per IKEv1 message and per payload: what it is for (RFC 2409 §5).

Used by ``ipseclab decode`` and the teaching views so a capture explains itself
instead of merely listing payloads.
"""

from __future__ import annotations

from ipseclab.ikev1.notation import notify_name
from ipseclab.wire.v1.constants import ExchangeType, NotifyType, PayloadType

_MESSAGES: dict[tuple[int, int], str] = {
    (ExchangeType.MAIN, 1): "The initiator proposes its ISAKMP transforms (one per policy) and announces what it supports in Vendor IDs (NAT-T, DPD).",
    (ExchangeType.MAIN, 2): "The responder picks exactly one of the offered transforms and returns it; the two cookies now name the ISAKMP SA.",
    (ExchangeType.MAIN, 3): "The initiator sends its Diffie-Hellman public value g^xi and its nonce; NAT-D hashes let the responder detect a NAT.",
    (ExchangeType.MAIN, 4): "The responder sends g^xr and its nonce; both sides can now compute g^xy, SKEYID and the encryption key.",
    (ExchangeType.MAIN, 5): "Encrypted: the initiator reveals its identity and proves it knows the shared secret (HASH_I, or a signature).",
    (ExchangeType.MAIN, 6): "Encrypted: the responder's identity and proof (HASH_R). Phase 1 is complete: the ISAKMP SA exists.",
    (ExchangeType.AGGRESSIVE, 1): "Everything at once: transforms (all with the same DH group), g^xi, nonce and the initiator's identity — in clear.",
    (ExchangeType.AGGRESSIVE, 2): "The responder's choice, g^xr, nonce, identity and HASH_R, in clear: everything an offline PSK guesser needs.",
    (ExchangeType.AGGRESSIVE, 3): "The initiator's proof HASH_I. Phase 1 is complete after three messages.",
    (ExchangeType.QUICK, 1): "Phase 2 under the ISAKMP SA's protection: ESP proposals with the initiator's inbound SPI, a fresh nonce, optional PFS KE and the traffic selectors (IDci/IDcr); HASH(1) authenticates it all.",
    (ExchangeType.QUICK, 2): "The responder's chosen ESP transform with its inbound SPI, its nonce (and KE with PFS); HASH(2) also covers the initiator's nonce.",
    (ExchangeType.QUICK, 3): "HASH(3) proves liveness; both sides now derive KEYMAT and install a pair of IPsec SAs (one per direction).",
    (ExchangeType.INFORMATIONAL, 1): "A one-way notification or delete, protected by HASH(1) once the ISAKMP SA has keys.",
}

_PAYLOADS: dict[int, str] = {
    PayloadType.SA: "Security Association: proposals, each with transforms and their attributes",
    PayloadType.KE: "Key Exchange: a Diffie-Hellman public value",
    PayloadType.ID: "Identification: who is speaking (phase 1) or which traffic is protected (Quick Mode)",
    PayloadType.CERT: "Certificate: the sender's X.509 certificate",
    PayloadType.CR: "Certificate Request: please send your certificate",
    PayloadType.HASH: "Hash: a prf over the exchange, proving knowledge of the keys",
    PayloadType.SIG: "Signature: the sender's RSA signature over its HASH",
    PayloadType.NONCE: "Nonce: fresh randomness that enters every key",
    PayloadType.N: "Notification: an error or status message",
    PayloadType.D: "Delete: the sender has removed these SAs",
    PayloadType.VID: "Vendor ID: announces an extension (NAT-T, DPD, ...)",
    PayloadType.ATTR: "Attribute: Mode Config / XAUTH attributes (an address, a user name, a login's status)",
    PayloadType.NAT_D: "NAT-D: hash of cookies, IP and port; a mismatch reveals a NAT",
    PayloadType.NAT_D_DRAFT: "NAT-D (draft numbering): hash of cookies, IP and port",
    PayloadType.NAT_OA: "NAT-OA: the original address before NAT",
    PayloadType.NAT_OA_DRAFT: "NAT-OA (draft numbering): the original address before NAT",
}


def explain_message(exchange_type: int, index: int) -> str:
    """What message ``index`` of this exchange does, or an empty string."""
    if exchange_type == ExchangeType.INFORMATIONAL:
        index = 1
    return _MESSAGES.get((exchange_type, index), "")


def explain_payload(payload_type: int) -> str:
    return _PAYLOADS.get(payload_type, f"payload type {payload_type}")


def explain_peer_notify(notify_type: int) -> str:
    """Plain words for an error notification received from the peer."""
    name = notify_name(notify_type)
    if notify_type == NotifyType.NO_PROPOSAL_CHOSEN:
        return (
            "The peer rejected every transform we offered (NO_PROPOSAL_CHOSEN). Compare our policies "
            "with the peer's: encryption, hash, authentication and DH group (phase 1) or ESP "
            "encryption, integrity, mode and PFS group (phase 2) must agree in at least one."
        )
    if notify_type in (NotifyType.INVALID_HASH_INFORMATION, NotifyType.AUTHENTICATION_FAILED, NotifyType.PAYLOAD_MALFORMED):
        return (
            f"The peer could not authenticate us ({name}): our HASH did not verify on its side. "
            "Most likely the pre-shared keys differ (each side derives SKEYID from its own key)."
        )
    if notify_type == NotifyType.INVALID_ID_INFORMATION:
        return (
            "The peer has no policy for the identities we proposed (INVALID_ID_INFORMATION): "
            "check that the proxy identities / traffic selectors mirror each other."
        )
    if notify_type == NotifyType.INVALID_KEY_INFORMATION:
        return "The peer could not use our KE payload (INVALID_KEY_INFORMATION): do the DH groups agree?"
    return f"The peer reported {name}."
