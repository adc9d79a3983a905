"""Hypothesis fuzzing of the ISAKMP decoder: only ParseError may escape.

Inputs are arbitrary bytes plus mutations (truncation, bit flips, length and
count tampering, insertions) of valid encodings.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire_isakmp import all_payloads, sample_messages
from wire_support import check_tree, mutated, mutated_message

from ipseclab.errors import ParseError
from ipseclab.wire.v1.constants import HeaderFlag, PayloadType
from ipseclab.wire.v1.isakmp import (
    AttributePayload,
    CertPayload,
    CertReqPayload,
    DeletePayload,
    HashPayload,
    IDPayload,
    KEPayload,
    Message,
    NatDPayload,
    NatOAPayload,
    NoncePayload,
    NotifyPayload,
    SAPayload,
    SigPayload,
    UnknownPayload,
    VendorIDPayload,
    decode_payloads,
    encode_payloads,
)
from ipseclab.wire.v1.tree import message_tree

FUZZ = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_MESSAGES = [m.encode() for m in sample_messages()]
VALID_CHAINS = [encode_payloads([p]) for p in all_payloads()] + [encode_payloads(all_payloads())]
PAYLOAD_CLASSES = [
    SAPayload,
    KEPayload,
    IDPayload,
    CertPayload,
    CertReqPayload,
    HashPayload,
    SigPayload,
    NoncePayload,
    NotifyPayload,
    DeletePayload,
    VendorIDPayload,
    NatDPayload,
    NatOAPayload,
    AttributePayload,
    UnknownPayload,
]
FIRST_TYPES = [int(t) for t in PayloadType] + [14, 99, 200, 255]


def _message_decodes_or_parse_error(data: bytes) -> None:
    try:
        msg = Message.decode(data)
    except ParseError as exc:
        assert 0 <= exc.offset <= len(data)
        return
    if not msg.flags & HeaderFlag.ENCRYPTION:
        # What decodes must re-encode to something that decodes to the same message.
        assert Message.decode(msg.encode()) == msg


@FUZZ
@given(st.binary(max_size=200))
def test_message_decode_arbitrary(data: bytes) -> None:
    _message_decodes_or_parse_error(data)


@FUZZ
@given(mutated_message(VALID_MESSAGES))
def test_message_decode_mutated(data: bytes) -> None:
    _message_decodes_or_parse_error(data)


@FUZZ
@given(
    st.sampled_from(FIRST_TYPES),
    st.one_of(st.binary(max_size=120), mutated([c for _, c in VALID_CHAINS])),
    st.booleans(),
)
def test_decode_payloads(first: int, data: bytes, allow_trailing: bool) -> None:
    try:
        decode_payloads(first, data, 28, allow_trailing=allow_trailing)
    except ParseError as exc:
        assert 28 <= exc.offset <= 28 + len(data)


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.__name__)
def test_decode_body(cls: type) -> None:
    seeds = [p.encode_body() for p in all_payloads() if isinstance(p, cls)] or [b""]

    @settings(max_examples=150, deadline=None)
    @given(st.one_of(st.binary(max_size=80), mutated(seeds)))
    def run(body: bytes) -> None:
        try:
            payload = cls.decode_body(body, 1000)
        except ParseError as exc:
            assert 1000 <= exc.offset <= 1000 + len(body)
            return
        assert payload.raw == body

    run()


def _tree_ok(data: bytes, plaintext: bytes | None = None) -> None:
    tree = message_tree(data, plaintext)
    check_tree(tree, data, plaintext)


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutated_message(VALID_MESSAGES)))
def test_message_tree_never_raises(data: bytes) -> None:
    _tree_ok(data)


@FUZZ
@given(mutated([c for _, c in VALID_CHAINS]), st.sampled_from(FIRST_TYPES))
def test_message_tree_plaintext_never_raises(plaintext: bytes, first: int) -> None:
    header = Message(
        b"i" * 8, b"r" * 8, 2, flags=1, encrypted_body=bytes(16), first_payload=first
    ).encode()
    _tree_ok(header, plaintext)
