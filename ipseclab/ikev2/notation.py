"""RFC 7296 §1.2 notation of a message: ``HDR, SAi1, KEi, Ni`` and ``HDR, SK {IDi, AUTH, SAi2, TSi, TSr}``.

The names are the RFC's: SAi1/SAr1 in IKE_SA_INIT, SAi2/SAr2 in IKE_AUTH, KEi/KEr,
Ni/Nr, IDi/IDr, N(NOTIFY_TYPE), D, CP(CFG_REQUEST).
"""

from __future__ import annotations

from collections.abc import Sequence

from ipseclab.ikev2 import eap
from ipseclab.ikev2.exchange import notify_name
from ipseclab.wire.v2.constants import CfgType, ExchangeType
from ipseclab.wire.v2.message import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CPPayload,
    DeletePayload,
    EAPPayload,
    EncryptedFragmentPayload,
    IDiPayload,
    IDrPayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SAPayload,
    TSiPayload,
    TSrPayload,
    VendorIDPayload,
)


def payload_name(p: Payload, exchange_type: int, from_initiator: bool) -> str:
    side = "i" if from_initiator else "r"
    if isinstance(p, SAPayload):
        number = {ExchangeType.IKE_SA_INIT: "1", ExchangeType.IKE_AUTH: "2"}.get(exchange_type, "")
        return f"SA{side}{number}"
    if isinstance(p, KEPayload):
        return f"KE{side}"
    if isinstance(p, NoncePayload):
        return f"N{side}"
    if isinstance(p, NotifyPayload):
        return f"N({notify_name(p.notify_type)})"
    if isinstance(p, EAPPayload):
        return f"EAP({eap.describe(p)})"
    if isinstance(p, CPPayload):
        try:
            return f"CP({CfgType(p.cfg_type).name})"
        except ValueError:
            return f"CP({p.cfg_type})"
    named: list[tuple[type, str]] = [
        (IDiPayload, "IDi"), (IDrPayload, "IDr"), (AuthPayload, "AUTH"), (TSiPayload, "TSi"), (TSrPayload, "TSr"),
        (CertPayload, "CERT"), (CertReqPayload, "CERTREQ"), (DeletePayload, "D"), (VendorIDPayload, "V"),
        (CPPayload, "CP"), (EAPPayload, "EAP"), (EncryptedFragmentPayload, "SKF"),
    ]
    for cls, name in named:
        if isinstance(p, cls):
            return name
    return f"payload {p.payload_type}"


def summarize(payloads: Sequence[Payload], *, exchange_type: int, from_initiator: bool, encrypted: bool) -> str:
    names = ", ".join(payload_name(p, exchange_type, from_initiator) for p in payloads)
    if encrypted:
        return f"HDR, SK {{{names}}}"
    return f"HDR, {names}" if names else "HDR"
