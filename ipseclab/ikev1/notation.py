"""Textbook notation for IKEv1 messages (RFC 2409 §5): ``HDR*, IDii, HASH_I``.

The same payload type gets a different name depending on the exchange and on who
sent it (``Ni``/``Nr``, ``IDii``/``IDir``/``IDci``/``IDcr``, ``HASH_I``/``HASH(2)``),
which is exactly what students read in the RFC.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipseclab.wire.v1.constants import CfgType, ExchangeType, NotifyType, PayloadType
from ipseclab.wire.v1.isakmp import AttributePayload, NotifyPayload, Payload

EXCHANGE_NAMES = {
    ExchangeType.MAIN: "Main Mode",
    ExchangeType.AGGRESSIVE: "Aggressive Mode",
    ExchangeType.QUICK: "Quick Mode",
    ExchangeType.INFORMATIONAL: "Informational",
    ExchangeType.TRANSACTION: "Transaction",
}

_SIMPLE = {
    PayloadType.SA: "SA",
    PayloadType.KE: "KE",
    PayloadType.CERT: "CERT",
    PayloadType.CR: "CR",
    PayloadType.D: "D",
    PayloadType.VID: "VID",
    PayloadType.NAT_D: "NAT-D",
    PayloadType.NAT_D_DRAFT: "NAT-D",
}


def exchange_name(exchange_type: int) -> str:
    return EXCHANGE_NAMES.get(exchange_type, f"exchange {exchange_type}")


def notify_name(notify_type: int) -> str:
    try:
        return NotifyType(notify_type).name
    except ValueError:
        return str(notify_type)


def payload_labels(
    payloads: Sequence[Payload], *, exchange_type: int, from_initiator: bool, index: int
) -> list[str]:
    """Name each payload as RFC 2409 does for this exchange, sender and message index."""
    side = "i" if from_initiator else "r"
    labels: list[str] = []
    ids_seen = 0
    oas_seen = 0
    for p in payloads:
        t = p.payload_type
        if t in _SIMPLE:
            labels.append(_SIMPLE[t])
        elif t in (PayloadType.NAT_OA, PayloadType.NAT_OA_DRAFT):
            labels.append("NAT-OAi" if oas_seen == 0 else "NAT-OAr")  # RFC 3947 §5.2
            oas_seen += 1
        elif t == PayloadType.NONCE:
            labels.append(f"N{side}")
        elif t == PayloadType.ID:
            if exchange_type == ExchangeType.QUICK:
                labels.append("IDci" if ids_seen == 0 else "IDcr")
            else:
                labels.append(f"IDi{side}")
            ids_seen += 1
        elif t == PayloadType.ATTR and isinstance(p, AttributePayload):
            try:
                labels.append(f"ATTR({CfgType(p.cfg_type).name})")
            except ValueError:
                labels.append(f"ATTR({p.cfg_type})")
        elif t == PayloadType.HASH and exchange_type == ExchangeType.TRANSACTION:
            labels.append("HASH")
        elif t == PayloadType.HASH:
            if exchange_type in (ExchangeType.QUICK, ExchangeType.INFORMATIONAL):
                labels.append(f"HASH({index if exchange_type == ExchangeType.QUICK else 1})")
            else:
                labels.append(f"HASH_{side.upper()}")
        elif t == PayloadType.SIG:
            labels.append(f"SIG_{side.upper()}")
        elif t == PayloadType.N and isinstance(p, NotifyPayload):
            labels.append(f"N({notify_name(p.notify_type)})")
        else:
            labels.append(f"payload {t}")
    return labels


def summarize(
    payloads: Sequence[Payload], *, encrypted: bool, exchange_type: int, from_initiator: bool, index: int
) -> str:
    """``HDR*, IDii, HASH_I`` — the asterisk marks an encrypted message."""
    labels = payload_labels(payloads, exchange_type=exchange_type, from_initiator=from_initiator, index=index)
    return ", ".join(["HDR*" if encrypted else "HDR", *labels])
