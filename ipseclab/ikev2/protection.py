"""Sealing and opening whole IKEv2 messages (RFC 7296 §3.14): the SK payload is the last
one, its Next Payload names the first inner payload, and the integrity check (or AEAD
tag) covers the message from the IKE header up to the ICV.  A message too large for the
path goes as fragments (RFC 7383): SKF payloads, each sealed on its own.

Each direction has its keys: the original initiator sends with SK_ei/SK_ai and the
responder with SK_er/SK_ar — whoever starts the exchange (§2.14).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ipseclab.crypto.sk_cipher import SkOpenError
from ipseclab.errors import ParseError
from ipseclab.ikev2.ike_sa import IkeSaV2
from ipseclab.wire.header import HEADER_LENGTH, encode_header
from ipseclab.wire.v2.constants import VERSION, PayloadType
from ipseclab.wire.v2.message import (
    EncryptedFragmentPayload,
    EncryptedPayload,
    Message,
    Payload,
    decode_payloads,
    encode_payloads,
)

SK_HEADER = 4


def _keys(sa: IkeSaV2, *, sending: bool) -> tuple[bytes, bytes]:
    assert sa.keys is not None
    from_initiator = sa.initiator if sending else not sa.initiator
    keys = sa.keys
    return (keys.sk_ei, keys.sk_ai) if from_initiator else (keys.sk_er, keys.sk_ar)


def seal(sa: IkeSaV2, exchange_type: int, message_id: int, flags: int, payloads: list[Payload], iv: bytes) -> tuple[bytes, bytes]:
    """The datagram ``HDR, SK {payloads}`` and the inner chain it protects."""
    assert sa.cipher is not None
    first, chain = encode_payloads(payloads)
    body_len = sa.cipher.sealed_length(len(chain))
    total = HEADER_LENGTH + SK_HEADER + body_len
    header = encode_header(sa.spi_i, sa.spi_r, PayloadType.SK, VERSION, exchange_type, flags, message_id, total)
    aad = header + bytes([first, 0]) + (SK_HEADER + body_len).to_bytes(2, "big")
    enc_key, integ_key = _keys(sa, sending=True)
    return aad + sa.cipher.seal(enc_key, integ_key, iv, aad, chain), chain


def open_message(sa: IkeSaV2, msg: Message, raw: bytes) -> tuple[list[Payload], bytes]:
    """The inner payloads of a received ``HDR, SK {...}`` and their plaintext chain.

    :class:`SkOpenError` when the SK payload does not open (no keys yet, wrong keys, a
    changed byte), :class:`ParseError` when what it holds does not decode; a message
    without an SK payload as its last payload is a ParseError too.
    """
    sk = msg.payloads[-1] if msg.payloads else None
    if not isinstance(sk, EncryptedPayload):
        raise ParseError("this exchange needs an Encrypted (SK) payload as the last payload (RFC 7296 §3.14)", HEADER_LENGTH)
    plaintext = _open_last(sa, raw, sk.data, "message")
    return decode_payloads(sk.first_payload, plaintext), plaintext


def _open_last(sa: IkeSaV2, raw: bytes, sealed: bytes, what: str) -> bytes:
    """Decrypt ``sealed``, the body of the last (SK or SKF) payload of ``raw``: everything
    before it — the IKE header and that payload's own header — is the authenticated part."""
    if sa.keys is None or sa.cipher is None:
        raise SkOpenError("no keys", f"an encrypted {what} before this IKE SA has keys")
    enc_key, integ_key = _keys(sa, sending=False)
    return sa.cipher.open(enc_key, integ_key, raw[: len(raw) - len(sealed)], sealed)


# -- fragments (RFC 7383) ----------------------------------------------------------------------

SKF_HEADER = 8  # generic header, Fragment Number, Total Fragments


def seal_fragments(
    sa: IkeSaV2, exchange_type: int, message_id: int, flags: int, payloads: list[Payload], max_message: int,
    new_iv: Callable[[], bytes],
) -> tuple[list[bytes], bytes]:
    """``HDR, SKF {...}`` datagrams, each at most ``max_message`` bytes, and the whole inner chain
    (RFC 7383 §2.5): the chain is cut into pieces, each sealed on its own with the fragment's
    header and SKF header (numbering included) as the authenticated part; the first fragment
    names the first inner payload, the others 0."""
    assert sa.cipher is not None
    first, chain = encode_payloads(payloads)
    cipher = sa.cipher
    room = max_message - HEADER_LENGTH - SKF_HEADER - cipher.overhead()
    if room < 1:
        raise ValueError(f"a fragment of {max_message} bytes has no room for data")
    pieces = [chain[i : i + room] for i in range(0, len(chain), room)] or [b""]
    enc_key, integ_key = _keys(sa, sending=True)
    out = []
    for number, piece in enumerate(pieces, 1):
        body_len = cipher.sealed_length(len(piece))
        total = HEADER_LENGTH + SKF_HEADER + body_len
        header = encode_header(sa.spi_i, sa.spi_r, PayloadType.SKF, VERSION, exchange_type, flags, message_id, total)
        aad = (header + bytes([first if number == 1 else 0, 0]) + (SKF_HEADER + body_len).to_bytes(2, "big")
               + number.to_bytes(2, "big") + len(pieces).to_bytes(2, "big"))
        out.append(aad + cipher.seal(enc_key, integ_key, new_iv(), aad, piece))
    return out, chain


def open_fragment(sa: IkeSaV2, msg: Message, raw: bytes) -> tuple[EncryptedFragmentPayload, bytes]:
    """The SKF payload of a received fragment and its decrypted piece of the inner chain."""
    skf = msg.payloads[-1] if msg.payloads else None
    if not isinstance(skf, EncryptedFragmentPayload):
        raise ParseError("a fragment needs an SKF payload as the last payload (RFC 7383 §2.5)", HEADER_LENGTH)
    return skf, _open_last(sa, raw, skf.data, "fragment")


@dataclass
class Reassembly:
    """The fragments of one message received so far (RFC 7383 §2.6), bounded."""

    total: int
    first_payload: int = 0
    pieces: dict[int, bytes] = field(default_factory=dict)
    raws: dict[int, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.pieces.values())

    def complete(self) -> bool:
        return len(self.pieces) == self.total

    def chain(self) -> bytes:
        return b"".join(self.pieces[n] for n in range(1, self.total + 1))
