"""Our decoder against scapy's ISAKMP dissector (tests/scapy_check.py)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy_check import assert_scapy_agrees
from test_wire_isakmp import INFORMATIONAL, MAIN_MODE_1, esp_sa, ike_sa, sample_messages

from ipseclab.wire.v1.isakmp import (
    Attribute,
    IDPayload,
    Message,
    Proposal,
    SAPayload,
    Transform,
    VendorIDPayload,
)


@pytest.mark.parametrize("msg", sample_messages(), ids=lambda m: str(m.exchange_type))
def test_scapy_agrees_on_samples(msg: Message) -> None:
    assert_scapy_agrees(msg.encode())


def test_scapy_agrees_on_vectors() -> None:
    assert_scapy_agrees(MAIN_MODE_1)
    assert_scapy_agrees(INFORMATIONAL)


def _altered(data: bytes, change: str) -> Message:
    msg = copy.deepcopy(Message.decode(data))
    sa = next(p for p in msg.payloads if isinstance(p, SAPayload))
    transform = sa.proposals[0].transforms[0]
    if change == "attribute value":
        transform.attributes[0] = Attribute(transform.attributes[0].type, 99)
    elif change == "attribute type":
        transform.attributes[0] = Attribute(77, transform.attributes[0].int_value)
    elif change == "transform id":
        transform.transform_id ^= 1
    elif change == "proposal spi":
        sa.proposals[0].spi = b"\xff" * len(sa.proposals[0].spi)
    elif change == "payload order":
        msg.payloads.reverse()
    elif change == "message id":
        msg.message_id ^= 1
    return msg


@pytest.mark.parametrize(
    "change",
    ["attribute value", "attribute type", "transform id", "payload order", "message id"],
)
def test_scapy_check_detects_disagreement(change: str) -> None:
    with pytest.raises(AssertionError):
        assert_scapy_agrees(MAIN_MODE_1, decoded=_altered(MAIN_MODE_1, change))


def test_scapy_check_detects_spi_disagreement() -> None:
    quick = sample_messages()[2].encode()
    assert_scapy_agrees(quick)
    with pytest.raises(AssertionError):
        assert_scapy_agrees(quick, decoded=_altered(quick, "proposal spi"))


def test_scapy_check_encrypted_compares_header_only() -> None:
    data = sample_messages()[4].encode()
    assert_scapy_agrees(data)
    wrong = Message.decode(data)
    wrong.encrypted_body = b"\0" * len(wrong.encrypted_body or b"")  # same length, other bytes
    assert_scapy_agrees(data, decoded=wrong)
    wrong.first_payload ^= 1
    with pytest.raises(AssertionError):
        assert_scapy_agrees(data, decoded=wrong)


_attr = st.builds(
    Attribute,
    st.integers(1, 0x7FFF),
    st.one_of(st.integers(0, 2**40), st.binary(max_size=9)),
    st.booleans(),
)
_transform = st.builds(
    Transform, st.integers(0, 255), st.integers(0, 255), st.lists(_attr, max_size=4)
)
_proposal = st.builds(
    Proposal,
    st.integers(0, 255),
    st.sampled_from([1, 2, 3, 4]),
    st.sampled_from([b"", b"\x01\x02\x03\x04"]),
    st.lists(_transform, min_size=1, max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_proposal, min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_scapy_agrees_on_random_sas(proposals: list[Proposal], message_id: int) -> None:
    msg = Message(
        b"\x01" * 8,
        b"\x02" * 8,
        32,
        message_id=message_id,
        payloads=[SAPayload(proposals), IDPayload.from_address("10.0.0.1"), VendorIDPayload(b"v")],
    )
    assert_scapy_agrees(msg.encode())


def test_helpers_build_valid_sas() -> None:
    assert ike_sa().proposals[0].protocol_id == 1
    assert len(esp_sa().proposals) == 2
