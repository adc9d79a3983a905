"""ISAKMP codec: round trips, hand-built RFC 2408 vectors and malformed input."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from ipseclab.errors import ParseError
from ipseclab.wire.v1.constants import (
    AuthMethod,
    CfgAttribute,
    CfgType,
    DhGroupId,
    EncapsulationMode,
    EspTransformId,
    ExchangeType,
    HeaderFlag,
    IdType,
    IkeAttribute,
    IkeEncryption,
    IkeHash,
    IpsecAttribute,
    IpsecAuthAlgorithm,
    LifeType,
    NotifyType,
    PayloadType,
    ProtocolId,
)
from ipseclab.wire.v1.isakmp import (
    HEADER_LENGTH,
    Attribute,
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
    Payload,
    Proposal,
    SAPayload,
    SigPayload,
    Transform,
    UnknownPayload,
    VendorIDPayload,
    decode_payloads,
    encode_payloads,
)

ICOOKIE = bytes.fromhex("0001020304050607")
RCOOKIE = bytes.fromhex("08090a0b0c0d0e0f")
RFC3947_VID = bytes.fromhex("4a131c81070358455c5728f20e95452f")


def ike_sa() -> SAPayload:
    """Phase-1 SA: AES-128/SHA1/PSK/MODP-2048, 86400 s (RFC 2409 App. A attributes)."""
    return SAPayload(
        [
            Proposal(
                1,
                ProtocolId.ISAKMP,
                b"",
                [
                    Transform(
                        1,
                        1,
                        [
                            Attribute(IkeAttribute.ENCRYPTION_ALGORITHM, IkeEncryption.AES_CBC),
                            Attribute(IkeAttribute.KEY_LENGTH, 128),
                            Attribute(IkeAttribute.HASH_ALGORITHM, IkeHash.SHA1),
                            Attribute(IkeAttribute.AUTHENTICATION_METHOD, AuthMethod.PSK),
                            Attribute(IkeAttribute.GROUP_DESCRIPTION, DhGroupId.MODP_2048),
                            Attribute(IkeAttribute.LIFE_TYPE, LifeType.SECONDS),
                            Attribute(IkeAttribute.LIFE_DURATION, 86400),
                        ],
                    )
                ],
            )
        ]
    )


def esp_sa() -> SAPayload:
    """Quick Mode SA with two ESP proposals carrying 4-byte SPIs (RFC 2407 §4.5)."""
    attrs = [
        Attribute(IpsecAttribute.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL),
        Attribute(IpsecAttribute.AUTHENTICATION_ALGORITHM, IpsecAuthAlgorithm.HMAC_SHA2_256),
        Attribute(IpsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
        Attribute(IpsecAttribute.SA_LIFE_DURATION, 3600, tlv=True),
    ]
    return SAPayload(
        [
            Proposal(
                1,
                ProtocolId.IPSEC_ESP,
                b"\xc0\x01\x02\x03",
                [
                    Transform(1, EspTransformId.AES_CBC, [*attrs, Attribute(6, 256)]),
                    Transform(2, EspTransformId.AES_CBC, [*attrs, Attribute(6, 128)]),
                ],
            ),
            Proposal(2, ProtocolId.IPSEC_ESP, b"\xc0\x01\x02\x04", [Transform(1, 3, attrs)]),
        ]
    )


def all_payloads() -> list[Payload]:
    """One instance of every payload class."""
    return [
        ike_sa(),
        KEPayload(bytes(range(256))),
        IDPayload.from_address("192.0.2.1", 17, 500),
        IDPayload.from_fqdn("vpn.example.org"),
        CertPayload(4, b"\x30\x82\x01\x00cert"),
        CertReqPayload(4, b"\x30\x10dn"),
        CertReqPayload(4),
        HashPayload(b"\x11" * 20),
        SigPayload(b"\x22" * 64),
        NoncePayload(b"\x33" * 16),
        NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, ICOOKIE + RCOOKIE),
        NotifyPayload(NotifyType.R_U_THERE, ProtocolId.ISAKMP, ICOOKIE + RCOOKIE, b"\0\0\0\7"),
        DeletePayload(ProtocolId.IPSEC_ESP, 4, [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"]),
        VendorIDPayload(RFC3947_VID),
        NatDPayload(b"\x44" * 20),
        NatDPayload(b"\x55" * 16, draft=True),
        NatOAPayload(IdType.IPV4_ADDR, bytes([10, 0, 0, 1])),
        NatOAPayload(IdType.IPV6_ADDR, IPv6Address("2001:db8::1").packed, draft=True),
        AttributePayload(CfgType.REPLY, 0x1234, [Attribute(CfgAttribute.INTERNAL_IP4_ADDRESS, bytes([10, 3, 0, 1])),
                                                Attribute(CfgAttribute.INTERNAL_IP4_DNS, b"", tlv=True),
                                                Attribute(CfgAttribute.XAUTH_STATUS, 1)]),
        UnknownPayload(200, b"opaque"),
    ]


def sample_messages() -> list[Message]:
    """A few complete messages covering every payload class."""
    return [
        Message(
            ICOOKIE, bytes(8), ExchangeType.MAIN, payloads=[ike_sa(), VendorIDPayload(RFC3947_VID)]
        ),
        Message(
            ICOOKIE,
            RCOOKIE,
            ExchangeType.AGGRESSIVE,
            payloads=[
                ike_sa(),
                KEPayload(b"\xab" * 256),
                NoncePayload(b"\xcd" * 32),
                IDPayload.from_fqdn("initiator.example"),
                VendorIDPayload(RFC3947_VID),
                NatDPayload(b"\x01" * 20),
                NatDPayload(b"\x02" * 20),
            ],
        ),
        Message(
            ICOOKIE,
            RCOOKIE,
            ExchangeType.QUICK,
            message_id=0x12345678,
            payloads=[
                HashPayload(b"\x99" * 20),
                esp_sa(),
                NoncePayload(b"\x77" * 16),
                IDPayload.from_subnet("10.1.0.0/16"),
                IDPayload.from_subnet("2001:db8::/32"),
                NatOAPayload(IdType.IPV4_ADDR, bytes([192, 168, 1, 2])),
            ],
        ),
        Message(
            ICOOKIE, RCOOKIE, ExchangeType.INFORMATIONAL, message_id=7, payloads=all_payloads()
        ),
        Message(
            ICOOKIE,
            RCOOKIE,
            ExchangeType.MAIN,
            flags=HeaderFlag.ENCRYPTION,
            encrypted_body=bytes(range(48)),
            first_payload=PayloadType.ID,
        ),
    ]


# -- round trips ----------------------------------------------------------------


@pytest.mark.parametrize("payload", all_payloads(), ids=lambda p: type(p).__name__)
def test_payload_body_round_trip(payload: Payload) -> None:
    body = payload.encode_body()
    if isinstance(payload, UnknownPayload):
        again = UnknownPayload.decode_body(body, 100, payload_type=payload.payload_type)
    elif isinstance(payload, NatDPayload | NatOAPayload):
        again = type(payload).decode_body(body, 100, draft=payload.draft)
    else:
        again = type(payload).decode_body(body, 100)
    assert again == payload
    assert again.raw == body
    assert again.encode_body() == body
    assert again.wire_body() == body
    assert again.payload_type == payload.payload_type


@pytest.mark.parametrize("payload", all_payloads(), ids=lambda p: type(p).__name__)
def test_single_payload_chain_round_trip(payload: Payload) -> None:
    first, chain = encode_payloads([payload])
    assert first == payload.payload_type
    assert chain[0] == 0 and int.from_bytes(chain[2:4], "big") == len(chain)
    assert decode_payloads(first, chain) == [payload]


@pytest.mark.parametrize("msg", sample_messages(), ids=lambda m: ExchangeType(m.exchange_type).name)
def test_message_round_trip(msg: Message) -> None:
    data = msg.encode()
    again = Message.decode(data)
    assert again == msg
    assert again.encode() == data
    assert int.from_bytes(data[24:28], "big") == len(data)


def test_bytes_beyond_header_length_are_ignored() -> None:
    msg = sample_messages()[0]
    assert Message.decode(msg.encode() + b"\0garbage") == msg


def test_encrypted_message_keeps_body() -> None:
    msg = Message.decode(sample_messages()[4].encode())
    assert msg.payloads == [] and msg.is_encrypted
    assert msg.encrypted_body == bytes(range(48)) and msg.first_payload == PayloadType.ID


def test_decrypted_body_with_padding() -> None:
    first, chain = encode_payloads([HashPayload(b"h" * 20), NoncePayload(b"n" * 8)])
    padded = chain + bytes(7) + b"\x07"
    assert decode_payloads(first, padded, allow_trailing=True) == [
        HashPayload(b"h" * 20),
        NoncePayload(b"n" * 8),
    ]
    with pytest.raises(ParseError) as exc:
        decode_payloads(first, padded)
    assert exc.value.offset == len(chain)


def test_empty_chain() -> None:
    assert encode_payloads([]) == (0, b"")
    assert decode_payloads(0, b"") == []
    assert decode_payloads(0, b"\0\0", allow_trailing=True) == []


# -- attributes -------------------------------------------------------------------


def test_attribute_forms() -> None:
    assert Attribute(1, 7).encode() == bytes.fromhex("80010007")
    assert Attribute(12, 86400).encode() == bytes.fromhex("000c000400015180")
    assert Attribute(12, 3600, tlv=True).encode() == bytes.fromhex("000c000400000e10")
    assert Attribute(12, 1 << 40).encode() == bytes.fromhex("000c0006010000000000")
    assert Attribute(6, b"\x01\x02\x03").encode() == bytes.fromhex(
        "0006000301 0203".replace(" ", "")
    )
    assert Attribute(12, 86400) == Attribute(12, b"\x00\x01\x51\x80", tlv=True)
    assert Attribute(12, 86400).int_value == 86400
    assert Attribute(12, b"\x00\x01\x51\x80").int_value == 86400
    assert Attribute(1, 7) != Attribute(1, 8)
    with pytest.raises(ValueError):
        Attribute(0x8001, 1).encode()
    with pytest.raises(ValueError):
        Attribute(1, -1).encode()


def test_transform_get() -> None:
    t = ike_sa().proposals[0].transforms[0]
    assert t.get(IkeAttribute.ENCRYPTION_ALGORITHM) == IkeEncryption.AES_CBC
    assert t.get(IkeAttribute.LIFE_DURATION) == 86400
    assert t.get(IkeAttribute.PRF) is None


# -- ID payload ---------------------------------------------------------------------


def test_id_payload_values() -> None:
    assert IDPayload.from_address("192.0.2.1").value == IPv4Address("192.0.2.1")
    assert IDPayload.from_address(IPv6Address("2001:db8::1")).id_type == IdType.IPV6_ADDR
    net = IDPayload.from_subnet("10.1.0.0/16")
    assert net.data == bytes([10, 1, 0, 0, 255, 255, 0, 0])
    assert net.value == IPv4Network("10.1.0.0/16")
    assert IDPayload.from_subnet(IPv6Network("2001:db8::/32")).value == IPv6Network("2001:db8::/32")
    rng = IDPayload.from_range("10.0.0.1", "10.0.0.9")
    assert rng.id_type == IdType.IPV4_ADDR_RANGE
    assert rng.value == (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.9"))
    assert IDPayload.from_fqdn("a.example").value == "a.example"
    assert IDPayload.from_user_fqdn("me@example.org").id_type == IdType.USER_FQDN
    assert IDPayload(IdType.KEY_ID, b"\x01\x02").value == b"\x01\x02"
    assert IDPayload(IdType.DER_ASN1_DN, b"\x30\x00").value == b"\x30\x00"
    assert IDPayload.from_address("192.0.2.1", 17, 500).encode_body() == bytes.fromhex(
        "011101f4c0000201"
    )
    with pytest.raises(ValueError):
        IDPayload.from_range("10.0.0.1", "::1")


@pytest.mark.parametrize(
    ("body", "offset"),
    [
        ("01000000c00002", 104),  # IPv4 address of 3 bytes
        ("05000000" + "00" * 15, 104),  # IPv6 address of 15 bytes
        ("040000000a000000ff00ff00", 104),  # non-contiguous netmask
        ("02000000ff", 104),  # FQDN that is not UTF-8
        ("0700", 102),  # truncated DOI-specific data
    ],
)
def test_id_payload_malformed(body: str, offset: int) -> None:
    with pytest.raises(ParseError) as exc:
        IDPayload.decode_body(bytes.fromhex(body), 100)
    assert exc.value.offset == offset


# -- hand-built vectors (RFC 2408 §3 layouts) ------------------------------------------

MAIN_MODE_1 = bytes.fromhex(
    # ISAKMP header (RFC 2408 §3.1)
    "0001020304050607"  # initiator cookie
    "0000000000000000"  # responder cookie
    "01"  # next payload: SA
    "10"  # version 1.0
    "02"  # exchange: identity protection (Main Mode)
    "00"  # flags
    "00000000"  # message id
    "0000006c"  # length 108
    # SA payload (§3.4)
    "0d00003c"  # next: VID, length 60
    "00000001"  # DOI: IPsec
    "00000001"  # situation: SIT_IDENTITY_ONLY
    # Proposal (§3.5)
    "00000030"  # last proposal, length 48
    "01010001"  # proposal 1, PROTO_ISAKMP, SPI size 0, 1 transform
    # Transform (§3.6)
    "00000028"  # last transform, length 40
    "01010000"  # transform 1, KEY_IKE, reserved
    "80010007"  # encryption AES-CBC
    "800e0080"  # key length 128
    "80020002"  # hash SHA
    "80030001"  # auth PSK
    "8004000e"  # group 14
    "800b0001"  # life type seconds
    "000c000400015180"  # life duration 86400 (TLV)
    # Vendor ID (§3.16)
    "00000014"
    "4a131c81070358455c5728f20e95452f"
)

INFORMATIONAL = bytes.fromhex(
    "0001020304050607"
    "08090a0b0c0d0e0f"
    "0b"  # next: N
    "10"
    "05"  # informational
    "00"
    "0000abcd"
    "0000004c"  # 28 + 28 + 20 = 76
    # Notification (§3.14): INITIAL-CONTACT with the cookies as SPI
    "0c00001c"  # next: D, length 28
    "00000001"  # DOI
    "01"  # protocol ISAKMP
    "10"  # SPI size 16
    "6002"  # INITIAL-CONTACT (24578)
    "000102030405060708090a0b0c0d0e0f"
    # Delete (§3.15): two ESP SPIs
    "00000014"
    "00000001"
    "03"
    "04"
    "0002"
    "c0010203"
    "c0010204"
)


def test_main_mode_vector() -> None:
    msg = Message(
        ICOOKIE, bytes(8), ExchangeType.MAIN, payloads=[ike_sa(), VendorIDPayload(RFC3947_VID)]
    )
    assert msg.encode() == MAIN_MODE_1
    decoded = Message.decode(MAIN_MODE_1)
    assert decoded == msg
    sa = decoded.payloads[0]
    assert isinstance(sa, SAPayload)
    assert sa.raw == MAIN_MODE_1[32:88]
    assert sa.proposals[0].transforms[0].attributes[-1].tlv is True


def test_informational_vector() -> None:
    msg = Message(
        ICOOKIE,
        RCOOKIE,
        ExchangeType.INFORMATIONAL,
        message_id=0xABCD,
        payloads=[
            NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, ICOOKIE + RCOOKIE),
            DeletePayload(ProtocolId.IPSEC_ESP, 4, [b"\xc0\x01\x02\x03", b"\xc0\x01\x02\x04"]),
        ],
    )
    assert msg.encode() == INFORMATIONAL
    assert Message.decode(INFORMATIONAL) == msg


def test_encrypted_vector() -> None:
    data = bytes.fromhex("000102030405060708090a0b0c0d0e0f05100201000000000000002c") + bytes(
        range(16)
    )
    msg = Message.decode(data)
    assert msg.first_payload == PayloadType.ID and msg.encrypted_body == bytes(range(16))
    assert msg.encode() == data


def test_nat_vectors() -> None:
    assert NatOAPayload(IdType.IPV4_ADDR, bytes([10, 0, 0, 1])).encode_body() == bytes.fromhex(
        "010000000a000001"
    )
    first, chain = encode_payloads(
        [NatDPayload(b"\x01" * 4, draft=True), NatOAPayload(1, bytes(4))]
    )
    assert first == 130
    assert chain == bytes.fromhex("15000008010101010000000c0100000000000000")


def test_critical_unknown_encoding() -> None:
    _, chain = encode_payloads([UnknownPayload(99, b"x", critical=True)])
    assert chain == bytes.fromhex("0080000578")


# -- malformed input --------------------------------------------------------------------


def _mutate(data: bytes, pos: int, new: str) -> bytes:
    raw = bytes.fromhex(new)
    return data[:pos] + raw + data[pos + len(raw) :]


@pytest.mark.parametrize(
    ("data", "offset", "reason"),
    [
        (MAIN_MODE_1[:27], 24, "truncated length"),
        (_mutate(MAIN_MODE_1, 24, "0000001b"), 24, "shorter than the header"),
        (_mutate(MAIN_MODE_1, 24, "0000006d"), 24, "exceeds"),
        (_mutate(MAIN_MODE_1, 30, "0003"), 30, "shorter than its header"),  # SA length 3
        (_mutate(MAIN_MODE_1, 30, "00ff"), 30, "past the end"),
        (_mutate(MAIN_MODE_1, 28, "00"), 88, "bytes after the last payload"),  # SA claims last
        (_mutate(MAIN_MODE_1, 28, "02"), 92, "outside an SA"),  # next says Proposal
        (_mutate(MAIN_MODE_1, 40, "03"), 40, "proposal next payload is 3"),
        (_mutate(MAIN_MODE_1, 47, "02"), 47, "announces 2 transforms"),
        (_mutate(MAIN_MODE_1, 46, "ff"), 46, "SPI size 255"),
        (_mutate(MAIN_MODE_1, 42, "0031"), 42, "past the end of its container"),
        (_mutate(MAIN_MODE_1, 48, "02"), 48, "transform next payload is 2"),
        (_mutate(MAIN_MODE_1, 50, "0027"), 84, "truncated attribute value"),
        (_mutate(MAIN_MODE_1, 50, "0026"), 84, "truncated attribute value"),
        (_mutate(MAIN_MODE_1, 36, "00000006"), 36, "labeled-domain"),
        (_mutate(MAIN_MODE_1, 88, "0d"), 108, "truncated generic payload header"),
        (_mutate(MAIN_MODE_1, 16, "02"), 32, "outside an SA"),
        (_mutate(INFORMATIONAL, 37, "11"), 40, "truncated notify SPI"),
        (_mutate(INFORMATIONAL, 66, "0003"), 66, "do not match"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_messages(data: bytes, offset: int, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        Message.decode(data)
    assert reason in exc.value.reason
    assert exc.value.offset == offset


def test_unknown_payloads() -> None:
    chain = bytes.fromhex("00000006abcd")
    assert decode_payloads(99, chain) == [UnknownPayload(99, b"\xab\xcd")]
    with pytest.raises(ParseError, match="unknown critical payload type 99") as exc:
        decode_payloads(99, bytes.fromhex("00800006abcd"), 28)
    assert exc.value.offset == 32


def test_too_many_payloads() -> None:
    first, chain = encode_payloads([VendorIDPayload(b"")] * 257)
    with pytest.raises(ParseError, match="more than 256 payloads"):
        decode_payloads(first, chain)
    first, chain = encode_payloads([VendorIDPayload(b"")] * 256)
    assert len(decode_payloads(first, chain)) == 256


def test_nat_oa_malformed() -> None:
    with pytest.raises(ParseError, match="not IPV4_ADDR"):
        NatOAPayload.decode_body(bytes.fromhex("0200000061"), 0)
    with pytest.raises(ParseError, match="expected 16") as exc:
        NatOAPayload.decode_body(bytes.fromhex("05000000") + bytes(4), 10)
    assert exc.value.offset == 14


def test_encode_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        Message(b"short", bytes(8), 2).encode()
    with pytest.raises(ValueError):
        DeletePayload(3, 4, [b"\x01"]).encode_body()
    with pytest.raises(ValueError):
        NotifyPayload(70000).encode_body()
    with pytest.raises(ValueError):
        encode_payloads([KEPayload(bytes(70000))])


def test_header_constant() -> None:
    assert HEADER_LENGTH == 28


def test_attribute_payload_padding_as_libreswan_sends_it() -> None:
    """libreswan pads the Attribute payload to four bytes after its last attribute (here a Cisco
    Unity split-include of 14 bytes): zeros after whole attributes are padding, kept in the raw
    bytes for HASH; any other tail is malformed, with its offset."""
    from ipseclab.errors import ParseError

    body = bytes.fromhex("02007c33" "000100040a030001" "00020004ffffffff" "7004000e0a020001ffffffff000000000000" "0000")
    p = AttributePayload.decode_body(body, 100)
    assert [a.type for a in p.attributes] == [CfgAttribute.INTERNAL_IP4_ADDRESS, CfgAttribute.INTERNAL_IP4_NETMASK,
                                              CfgAttribute.UNITY_SPLIT_INCLUDE]
    assert p.wire_body() == body
    with pytest.raises(ParseError) as exc:
        AttributePayload.decode_body(body[:-2] + b"\x00\x07", 100)
    assert exc.value.offset >= 100
