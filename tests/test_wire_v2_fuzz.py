"""Hypothesis fuzzing of the IKEv2 decoder (RFC 7296 §3): only ParseError may escape.

Inputs are arbitrary bytes plus mutations (truncation, bit flips, length and count
tampering, insertions) of valid encodings, fed to :meth:`Message.decode`, to the
payload chain walker and to every payload decoder.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire_v2 import all_payloads, encrypted_payloads, sample_messages, scapy_built
from wire_support import mutated, mutated_message

from ipseclab.errors import ParseError
from ipseclab.wire.v2.constants import PayloadType
from ipseclab.wire.v2.message import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CPPayload,
    DeletePayload,
    EAPPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IDiPayload,
    IDrPayload,
    KEPayload,
    Message,
    NoncePayload,
    NotifyPayload,
    SAPayload,
    TSiPayload,
    TSrPayload,
    UnknownPayload,
    VendorIDPayload,
    decode_payloads,
    encode_payloads,
)

FUZZ = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_MESSAGES = [m.encode() for m in sample_messages()] + [scapy_built()]
PAYLOADS = all_payloads() + encrypted_payloads()
VALID_CHAINS = [encode_payloads([p]) for p in PAYLOADS] + [encode_payloads(all_payloads())]
PAYLOAD_CLASSES = [
    SAPayload,
    KEPayload,
    IDiPayload,
    IDrPayload,
    CertPayload,
    CertReqPayload,
    AuthPayload,
    NoncePayload,
    NotifyPayload,
    DeletePayload,
    VendorIDPayload,
    TSiPayload,
    TSrPayload,
    EncryptedPayload,
    CPPayload,
    EAPPayload,
    EncryptedFragmentPayload,
    UnknownPayload,
]
FIRST_TYPES = [int(t) for t in PayloadType] + [1, 2, 3, 54, 99, 200, 255]


def _message_decodes_or_parse_error(data: bytes) -> None:
    try:
        msg = Message.decode(data)
    except ParseError as exc:
        assert 0 <= exc.offset <= len(data)
        return
    # What decodes re-encodes to something that decodes to the same message.
    again = Message.decode(msg.encode())
    assert again == msg
    assert len(msg.encode()) == len(data)


@FUZZ
@given(st.binary(max_size=200))
def test_message_decode_arbitrary(data: bytes) -> None:
    _message_decodes_or_parse_error(data)


@FUZZ
@given(st.binary(max_size=160))
def test_message_decode_arbitrary_v2_header(tail: bytes) -> None:
    """Random payload chains behind a valid IKEv2 header with the right Length."""
    data = bytearray(bytes(16) + bytes([tail[0] if tail else 33, 0x20, 34, 8]) + bytes(8) + tail)
    data[24:28] = len(data).to_bytes(4, "big")
    _message_decodes_or_parse_error(bytes(data))


@FUZZ
@given(mutated_message(VALID_MESSAGES))
def test_message_decode_mutated(data: bytes) -> None:
    _message_decodes_or_parse_error(data)


@FUZZ
@given(
    st.sampled_from(FIRST_TYPES),
    st.one_of(st.binary(max_size=120), mutated([c for _, c in VALID_CHAINS])),
)
def test_decode_payloads(first: int, data: bytes) -> None:
    try:
        decode_payloads(first, data, 28)
    except ParseError as exc:
        assert 28 <= exc.offset <= 28 + len(data)


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.__name__)
def test_decode_body(cls: type) -> None:
    seeds = [p.encode_body() for p in PAYLOADS if isinstance(p, cls)] or [b""]

    @settings(max_examples=150, deadline=None)
    @given(st.one_of(st.binary(max_size=80), mutated(seeds)))
    def run(body: bytes) -> None:
        try:
            payload = cls.decode_body(body, 1000)
        except ParseError as exc:
            assert 1000 <= exc.offset <= 1000 + len(body)
            return
        assert payload.raw == body
        # RESERVED bytes are ignored on receipt and sent as zero: re-encoding may differ
        # from ``body`` there, but must decode to the same payload.
        assert cls.decode_body(payload.encode_body(), 0) == payload

    run()
