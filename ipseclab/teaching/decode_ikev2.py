"""Take apart an IKEv2 message in a capture (RFC 7296 §3) — the IKEv2 half of ``ipseclab decode``.

With Wireshark's ``ikev2_decryption_table`` (``<SPIi>,<SPIr>,<SK_ei>,<SK_er>,"<encryption>",
<SK_ai>,<SK_ar>,"<integrity>"`` — the rows our export and charon's log give) the SK
payload is opened as its receiver would: the original initiator's messages (I flag set)
with SK_ei/SK_ai, the responder's with SK_er/SK_ar; the integrity check or AEAD tag
covers the header, so a wrong row is said, not guessed at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ipseclab.crypto.registry_v2 import ikev2_cipher, ikev2_integrity, sk_cipher_named
from ipseclab.crypto.sk_cipher import SkCipher, SkOpenError
from ipseclab.errors import CryptoError, ParseError
from ipseclab.export import read_table
from ipseclab.ikev2.notation import summarize
from ipseclab.wire.v2.constants import ExchangeType, HeaderFlag
from ipseclab.wire.v2.message import (
    EncryptedFragmentPayload,
    EncryptedPayload,
    Message,
    decode_payloads,
)
from ipseclab.wire.v2.tree import message_tree


@dataclass(frozen=True)
class Ikev2Key:
    """One row of ``ikev2_decryption_table``: an IKE SA's SK_e/SK_a keys and algorithms."""

    cipher: SkCipher
    sk_ei: bytes = field(repr=False)
    sk_er: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)


def read_ikev2_table(directory: str | os.PathLike[str]) -> dict[tuple[bytes, bytes], list[Ikev2Key]]:
    """(SPIi, SPIr) → keys, from an ``ikev2_decryption_table`` file — several rows for one SA
    when its keys changed (IKE_INTERMEDIATE, RFC 9370); rows naming an algorithm we do not
    have, or with keys of the wrong length, are skipped."""
    table: dict[tuple[bytes, bytes], list[Ikev2Key]] = {}
    for parts in read_table(directory, "ikev2_decryption_table", 8):
        try:
            spi_i, spi_r, ei, er, ai, ar = (bytes.fromhex(parts[i]) for i in (0, 1, 2, 3, 5, 6))
            encr_id, bits, integ_id = sk_cipher_named(parts[4], parts[7])
            cipher = SkCipher(ikev2_cipher(encr_id, bits), ikev2_integrity(integ_id) if integ_id else None)
        except (ValueError, CryptoError):
            continue
        if len(ei) != cipher.encr_key_bytes or len(ai) != cipher.integ_key_bytes:
            continue
        table.setdefault((spi_i, spi_r), []).append(Ikev2Key(cipher, ei, er, ai, ar))
    return table


@dataclass
class Ikev2Decoded:
    """What the decoder fills into a packet: summary, tree, payload types, verdict."""

    exchange: str
    exchange_type: int
    message_id: int
    index: int  # 1: request, 2: response
    encrypted: bool
    decrypted: bool | None
    summary: str
    payload_types: list[int]
    tree: dict
    plaintext: bytes | None
    note: str = ""


#: fragments of one message seen so far in a capture: (SPIi, SPIr, M-ID, response) → number → piece
Fragments = dict[tuple[bytes, bytes, int, bool], dict[int, tuple[int, bytes]]]
MAX_CAPTURE_FRAGMENTS = 32


def decode_ikev2(
    data: bytes, keys: dict[tuple[bytes, bytes], list[Ikev2Key]], fragments: Fragments | None = None
) -> Ikev2Decoded | str:
    """One IKEv2 datagram (non-ESP marker removed); a string says why it is not one.

    An SKF fragment (RFC 7383) is opened on its own; ``fragments`` collects the pieces across
    the capture, and the last one missing shows the reassembled message's payloads."""
    try:
        msg = Message.decode(data)
    except ParseError as exc:
        return f"not a valid IKEv2 message: {exc}"
    try:
        name = ExchangeType(msg.exchange_type).name
    except ValueError:
        name = f"exchange {msg.exchange_type}"
    from_initiator = bool(msg.flags & HeaderFlag.INITIATOR)
    response = bool(msg.flags & HeaderFlag.RESPONSE)
    last = msg.payloads[-1] if msg.payloads else None
    sk = last if isinstance(last, EncryptedPayload | EncryptedFragmentPayload) else None
    outer = [p.payload_type for p in msg.payloads]
    out = Ikev2Decoded(name, msg.exchange_type, msg.message_id, 2 if response else 1, sk is not None, None,
                       summarize(msg.payloads, exchange_type=msg.exchange_type, from_initiator=from_initiator, encrypted=False),
                       outer, message_tree(data), None)
    if sk is None:
        return out
    candidates = keys.get((msg.spi_i, msg.spi_r), [])
    if not candidates:
        out.summary = f"HDR, SK {{<{len(sk.data)} encrypted bytes>}}"
        out.note = "encrypted: no key for these SPIs (pass --keys DIR with an ikev2_decryption_table)"
        return out
    head = 8 if isinstance(sk, EncryptedFragmentPayload) else 4  # SKF adds its numbering to what is authenticated
    start = len(data) - len(sk.data) - head
    plaintext, why = None, ""
    for key in candidates:  # an SA after IKE_INTERMEDIATE has a row per key set
        ek, ak = (key.sk_ei, key.sk_ai) if from_initiator else (key.sk_er, key.sk_ar)
        try:
            plaintext = key.cipher.open(ek, ak, data[: start + head], sk.data)
            break
        except SkOpenError as exc:
            why = str(exc)
    if plaintext is None:
        out.decrypted, out.note = False, f"does not open with the table's keys: {why}"
        out.summary = f"HDR, SK {{<{len(sk.data)} encrypted bytes>}}"
        return out
    if isinstance(sk, EncryptedFragmentPayload):
        return _fragment(out, msg, sk, plaintext, data, fragments if fragments is not None else {}, from_initiator)
    try:
        inner = decode_payloads(sk.first_payload, plaintext)
    except ParseError as exc:
        out.decrypted, out.note = False, f"decrypted, but the payloads do not decode: {exc}"
        return out
    out.decrypted, out.plaintext = True, plaintext
    out.summary = summarize(inner, exchange_type=msg.exchange_type, from_initiator=from_initiator, encrypted=True)
    out.payload_types = outer + [p.payload_type for p in inner]
    out.tree = message_tree(data, plaintext)
    return out


def _fragment(
    out: Ikev2Decoded, msg: Message, skf: EncryptedFragmentPayload, piece: bytes, data: bytes, fragments: Fragments,
    from_initiator: bool,
) -> Ikev2Decoded:
    key = (msg.spi_i, msg.spi_r, msg.message_id, bool(msg.flags & HeaderFlag.RESPONSE))
    held = fragments.setdefault(key, {})
    if len(fragments) > MAX_CAPTURE_FRAGMENTS:  # a long capture: forget the oldest incomplete message
        fragments.pop(next(iter(fragments)))
    held[skf.fragment_number] = (skf.first_payload, piece)
    out.decrypted, out.plaintext = True, piece
    out.summary = f"HDR, SKF {{fragment {skf.fragment_number}/{skf.total_fragments}}}"
    out.tree = message_tree(data, piece)
    if len(held) == skf.total_fragments and set(held) == set(range(1, skf.total_fragments + 1)):
        first = held[1][0]
        chain = b"".join(held[n][1] for n in range(1, skf.total_fragments + 1))
        del fragments[key]
        try:
            inner = decode_payloads(first, chain)
        except ParseError as exc:
            out.note = f"reassembled, but the payloads do not decode: {exc}"
            return out
        whole = summarize(inner, exchange_type=msg.exchange_type, from_initiator=from_initiator, encrypted=True)
        out.summary += f", reassembled: {whole.removeprefix('HDR, ')}"
        out.payload_types = out.payload_types + [p.payload_type for p in inner]
        out.note = f"the last of {skf.total_fragments} fragments (RFC 7383): the message put back together"
    return out


#: what each IKEv2 payload is for, in a line (RFC 7296 §3)
PAYLOAD_WORDS = {
    33: "SA: the proposals (encryption, PRF, integrity, DH group / ESP transforms), §3.3",
    34: "KE: a Diffie-Hellman public value, §3.4",
    35: "IDi: who the initiator says it is, §3.5",
    36: "IDr: who the responder says it is (or the one the initiator wants), §3.5",
    37: "CERT: a certificate, §3.6",
    38: "CERTREQ: which CAs the sender trusts, §3.7",
    39: "AUTH: the proof of identity over the first message, the nonce and the ID, §3.8",
    40: "Nonce: fresh randomness for the keys, §3.9",
    41: "Notify: a status or an error, §3.10",
    42: "Delete: SAs the sender removed, §3.11",
    43: "Vendor ID, §3.12",
    44: "TSi: the initiator's side of the traffic to protect, §3.13",
    45: "TSr: the responder's side of the traffic to protect, §3.13",
    46: "SK: the encrypted and integrity-protected payloads, §3.14",
    47: "CP: configuration (a remote-access address), §3.15",
    48: "EAP, §3.16",
    53: "SKF: one fragment of an SK payload, RFC 7383",
}
