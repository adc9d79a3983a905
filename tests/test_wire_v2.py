"""IKEv2 codec (RFC 7296 §3): round trips, hand-written RFC layouts, malformed input,
and a cross-check against scapy's independent IKEv2 dissector (scapy.contrib.ikev2)."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from ipseclab.errors import ParseError
from ipseclab.wire.header import major_version
from ipseclab.wire.v2.constants import (
    VERSION,
    AuthMethod,
    CertEncoding,
    CfgType,
    EapCode,
    EncrId,
    EsnId,
    ExchangeType,
    HeaderFlag,
    IdType,
    IntegId,
    KeMethod,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
    TsType,
    enum_name,
)
from ipseclab.wire.v2.constants import (
    CfgAttributeType as CfgAttr,
)
from ipseclab.wire.v2.message import (
    HEADER_LENGTH,
    MAX_PAYLOADS,
    Attribute,
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigAttribute,
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
    Payload,
    Proposal,
    SAPayload,
    TrafficSelector,
    Transform,
    TSiPayload,
    TSrPayload,
    UnknownPayload,
    UnknownSelector,
    VendorIDPayload,
    decode_payload_body,
    decode_payloads,
    encode_payloads,
    iter_payloads,
)

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.contrib import ikev2 as sc  # noqa: E402

SPI_I = bytes.fromhex("0001020304050607")
SPI_R = bytes.fromhex("08090a0b0c0d0e0f")
NONCE = bytes(range(32))


def ike_sa() -> SAPayload:
    """IKE SA proposals: AES-CBC-256/SHA2-256/ECP-256, and AES-GCM-16-128/X25519/ML-KEM-768."""
    return SAPayload(
        [
            Proposal(
                1,
                ProtocolId.IKE,
                b"",
                [
                    Transform.with_key_length(TransformType.ENCR, EncrId.AES_CBC, 256),
                    Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
                    Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
                    Transform(TransformType.KE, KeMethod.ECP_256),
                    Transform(TransformType.KE, KeMethod.MODP_2048),
                ],
            ),
            Proposal(
                2,
                ProtocolId.IKE,
                b"",
                [
                    Transform.with_key_length(TransformType.ENCR, EncrId.AES_GCM_16, 128),
                    Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
                    Transform(TransformType.KE, KeMethod.CURVE25519),
                    Transform(TransformType.ADDKE1, KeMethod.ML_KEM_768),
                ],
            ),
        ]
    )


def esp_sa() -> SAPayload:
    """A Child SA proposal for ESP with a 4-byte SPI and ESN."""
    return SAPayload(
        [
            Proposal(
                1,
                ProtocolId.ESP,
                b"\xc0\x01\x02\x03",
                [
                    Transform.with_key_length(TransformType.ENCR, EncrId.AES_CBC, 128),
                    Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
                    Transform(TransformType.ESN, EsnId.NO_ESN),
                ],
            )
        ]
    )


def all_payloads() -> list[Payload]:
    """One or more instance of every payload class (SK / SKF excluded: they end chains)."""
    return [
        ike_sa(),
        esp_sa(),
        KEPayload(KeMethod.ECP_256, bytes(range(64))),
        IDiPayload.from_address("192.0.2.1"),
        IDiPayload.from_address("2001:db8::1"),
        IDrPayload.from_fqdn("gw.example.org"),
        IDiPayload.from_rfc822("alice@example.org"),
        IDrPayload(IdType.DER_ASN1_DN, b"\x30\x00"),
        IDiPayload(IdType.KEY_ID, b"\x01\x02"),
        CertPayload(CertEncoding.X509_SIGNATURE, b"\x30\x82\x01\x00cert"),
        CertReqPayload(CertEncoding.X509_SIGNATURE, bytes(20) + b"\x11" * 20),
        CertReqPayload(CertEncoding.X509_SIGNATURE),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, b"\xaa" * 32),
        AuthPayload(AuthMethod.DIGITAL_SIGNATURE, b"\x0a" + b"sig"),
        NoncePayload(NONCE),
        NoncePayload(b"\x01" * 256),
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, data=b"\x5a" * 20),
        NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, b"\x01\x02\x03\x04"),
        NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, data=b"\x00\x13"),
        NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, data=b"\x00\x02\x00\x03"),
        DeletePayload(ProtocolId.IKE),
        DeletePayload(ProtocolId.ESP, 4, [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"]),
        VendorIDPayload(b"strongSwan"),
        TSiPayload([TrafficSelector.from_network("10.1.0.0/16")]),
        TSrPayload(
            [
                TrafficSelector.from_network("10.2.0.0/24", 6, 443),
                TrafficSelector.from_network("2001:db8::/64"),
                UnknownSelector(TsType.SECLABEL, b"label\0"),
            ]
        ),
        TSiPayload([]),
        CPPayload(
            CfgType.CFG_REQUEST,
            [
                ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),
                ConfigAttribute(CfgAttr.INTERNAL_IP4_DNS),
            ],
        ),
        CPPayload(
            CfgType.CFG_REPLY,
            [
                ConfigAttribute.address(CfgAttr.INTERNAL_IP4_ADDRESS, "10.3.0.1"),
                ConfigAttribute.address(CfgAttr.INTERNAL_IP6_DNS, "2001:db8::53"),
                ConfigAttribute(CfgAttr.APPLICATION_VERSION, b"ipseclab"),
            ],
        ),
        EAPPayload(EapCode.REQUEST, 7, b"\x01"),  # EAP-Identity request
        EAPPayload(EapCode.SUCCESS, 8),
        UnknownPayload(49, b"gspm"),
        UnknownPayload(200, b"crit", critical=True),
    ]


def encrypted_payloads() -> list[Payload]:
    return [
        EncryptedPayload(PayloadType.IDi, bytes(16) + b"\xee" * 48 + bytes(16)),
        EncryptedFragmentPayload(1, 3, b"\xef" * 40, PayloadType.IDi),
        EncryptedFragmentPayload(3, 3, b"\xef" * 8),
    ]


def ike_sa_init() -> Message:
    return Message(
        SPI_I,
        bytes(8),
        ExchangeType.IKE_SA_INIT,
        HeaderFlag.INITIATOR,
        0,
        [
            ike_sa(),
            KEPayload(KeMethod.ECP_256, bytes(range(64))),
            NoncePayload(NONCE),
            NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, data=b"\x01" * 20),
            NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, data=b"\x02" * 20),
            NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
            NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, data=b"\x00\x02"),
            VendorIDPayload(b"ipseclab"),
        ],
    )


def sample_messages() -> list[Message]:
    """Messages of every exchange type, cleartext and protected."""
    return [
        ike_sa_init(),
        Message(
            SPI_I,
            SPI_R,
            ExchangeType.IKE_SA_INIT,
            HeaderFlag.RESPONSE,
            0,
            [NotifyPayload(NotifyType.COOKIE, data=b"\xc0" * 16)],
        ),
        Message(
            SPI_I,
            SPI_R,
            ExchangeType.IKE_AUTH,
            HeaderFlag.INITIATOR,
            1,
            [EncryptedPayload(PayloadType.IDi, bytes(16) + b"\xee" * 160 + bytes(16))],
        ),
        Message(
            SPI_I,
            SPI_R,
            ExchangeType.IKE_AUTH,
            HeaderFlag.INITIATOR,
            1,
            [EncryptedFragmentPayload(1, 2, b"\xef" * 64, PayloadType.IDi)],
        ),
        Message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, HeaderFlag.RESPONSE, 1, all_payloads()),
        Message(
            SPI_I,
            SPI_R,
            ExchangeType.CREATE_CHILD_SA,
            HeaderFlag.INITIATOR,
            2,
            [EncryptedPayload(PayloadType.SA, b"\x00" * 48)],
        ),
        Message(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, HeaderFlag.RESPONSE, 0xFFFFFFFF, []),
        Message(
            SPI_I,
            SPI_R,
            ExchangeType.IKE_INTERMEDIATE,
            HeaderFlag.INITIATOR,
            1,
            [EncryptedPayload(PayloadType.KE, b"\x00" * 32)],
        ),
    ]


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", all_payloads() + encrypted_payloads(), ids=repr)
def test_payload_body_round_trip(payload: Payload) -> None:
    body = payload.encode_body()
    first = getattr(payload, "first_payload", 0)
    decoded = decode_payload_body(
        payload.payload_type, body, 100, first, 0x80 if getattr(payload, "critical", False) else 0
    )
    assert decoded == payload
    assert type(decoded) is type(payload)
    assert decoded.raw == body
    assert decoded.wire_body() == body
    assert decoded.encode_body() == body


@pytest.mark.parametrize("payload", all_payloads() + encrypted_payloads(), ids=repr)
def test_single_payload_chain_round_trip(payload: Payload) -> None:
    first, chain = encode_payloads([payload])
    assert first == payload.payload_type
    assert decode_payloads(first, chain, 28) == [payload]


@pytest.mark.parametrize(
    "msg", sample_messages(), ids=lambda m: enum_name(ExchangeType, m.exchange_type)
)
def test_message_round_trip(msg: Message) -> None:
    data = msg.encode()
    assert major_version(data) == 2
    decoded = Message.decode(data)
    assert decoded == msg
    assert decoded.encode() == data


def test_message_accessors() -> None:
    init = Message.decode(ike_sa_init().encode())
    assert init.is_initiator and not init.is_response
    assert init.encrypted is None
    assert init.find(NoncePayload) == [NoncePayload(NONCE)]
    auth = Message.decode(sample_messages()[2].encode())
    assert isinstance(auth.encrypted, EncryptedPayload)
    assert auth.encrypted.first_payload == PayloadType.IDi
    assert auth.is_initiator and not auth.is_response
    sa = init.find(SAPayload)[0]
    assert isinstance(sa, SAPayload)
    assert sa.proposals[0].of_type(TransformType.KE) == [
        Transform(TransformType.KE, KeMethod.ECP_256),
        Transform(TransformType.KE, KeMethod.MODP_2048),
    ]
    assert sa.proposals[0].transforms[0].key_length == 256
    assert sa.proposals[0].transforms[1].key_length is None


def test_payload_values() -> None:
    assert IDiPayload.from_address("192.0.2.1").value == IPv4Address("192.0.2.1")
    assert IDrPayload.from_address("2001:db8::1").value == IPv6Address("2001:db8::1")
    assert IDrPayload.from_fqdn("gw.example.org").value == "gw.example.org"
    assert IDiPayload(IdType.KEY_ID, b"\x01").value == b"\x01"
    with pytest.raises(ParseError):
        _ = IDiPayload(IdType.IPV4_ADDR, b"\x01").value
    assert CertReqPayload(4, bytes(20) + b"\x11" * 20).authorities == [bytes(20), b"\x11" * 20]
    cp = CPPayload(CfgType.CFG_REPLY, [ConfigAttribute.address(1, "10.0.0.1")])
    assert cp.get(1) == [IPv4Address("10.0.0.1").packed]
    assert EAPPayload(EapCode.REQUEST, 1, b"\x01").eap_type == 1
    assert EAPPayload(EapCode.SUCCESS, 1).eap_type is None
    ts = TrafficSelector.from_network("10.0.0.0/8")
    assert (ts.ts_type, str(ts.start_address), str(ts.end_address)) == (
        7,
        "10.0.0.0",
        "10.255.255.255",
    )
    assert TrafficSelector.from_network("::/0").ts_type == TsType.IPV6_ADDR_RANGE


def test_constants() -> None:
    assert VERSION == 0x20
    assert (ExchangeType.IKE_SA_INIT, ExchangeType.IKE_FOLLOWUP_KE) == (34, 44)
    assert (PayloadType.SA, PayloadType.SK, PayloadType.SKF) == (33, 46, 53)
    assert (TransformType.ESN, TransformType.ADDKE1, TransformType.ADDKE7) == (5, 6, 12)
    assert (KeMethod.MODP_2048, KeMethod.CURVE25519, KeMethod.ML_KEM_768) == (14, 31, 36)
    assert NotifyType.TEMPORARY_FAILURE.is_error and not NotifyType.COOKIE.is_error
    assert NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED == 16438
    assert enum_name(NotifyType, 16390) == "COOKIE (16390)"
    assert enum_name(NotifyType, 9999) == "unknown (9999)"
    # the numbers agree with scapy's independent tables wherever scapy has them
    aliases = {"NOTIFY": "N", "DELETE": "D", "VENDORID": "V", "ENCRYPTED": "SK"}
    aliases["ENCRYPTED_FRAGMENT"] = "SKF"
    for enum_cls, table in (
        (PayloadType, sc.IKEv2PayloadTypes),
        (ExchangeType, sc.IKEv2ExchangeTypes),
        (NotifyType, sc.IKEv2NotifyMessageTypes),
        (CfgAttr, sc.IKEv2ConfigurationAttributeTypes),
        (TsType, sc.IKEv2TrafficSelectorTypes),
    ):
        for member in enum_cls:
            if member.value not in table:
                continue
            name = table[member.value].upper()
            name = name.removeprefix("IV2_NOTIFY_")
            if enum_cls is TsType:
                name = name.removeprefix("TS_")
            assert aliases.get(name, name) == member.name.upper(), (member, table[member.value])


# -- RFC byte layouts written by hand ------------------------------------------------------


def test_header_layout() -> None:
    msg = Message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, HeaderFlag.INITIATOR, 1, [])
    assert msg.encode() == bytes.fromhex(
        "0001020304050607"  # IKE SA Initiator's SPI
        "08090a0b0c0d0e0f"  # IKE SA Responder's SPI
        "00"  # Next Payload: none
        "20"  # MjVer 2, MnVer 0
        "23"  # Exchange Type 35 IKE_AUTH
        "08"  # Flags: Initiator
        "00000001"  # Message ID
        "0000001c"  # Length 28
    )
    assert len(msg.encode()) == HEADER_LENGTH


def test_sa_layout() -> None:
    sa = SAPayload(
        [
            Proposal(
                1,
                ProtocolId.ESP,
                b"\x11\x22\x33\x44",
                [
                    Transform.with_key_length(TransformType.ENCR, EncrId.AES_CBC, 128),
                    Transform(TransformType.ESN, EsnId.NO_ESN),
                ],
            )
        ]
    )
    first, chain = encode_payloads([sa])
    assert first == 33
    assert (
        chain
        == bytes.fromhex(
            "00000024"  # generic header: last, not critical, length 36
            "00 00 0020 01 03 04 02 11223344"  # proposal: last, len 32, #1, ESP, SPI size 4, 2 transforms
            "03 00 000c 01 00 000c 800e0080"  # transform: more, len 12, ENCR, AES-CBC, Key Length 128 (TV)
            "00 00 0008 05 00 0000"  # transform: last, len 8, ESN, no ESN
        )
    )


def test_payload_layouts() -> None:
    cases: list[tuple[Payload, str]] = [
        (KEPayload(19, b"\xab\xcd"), "0013 0000 abcd"),
        (IDiPayload.from_address("192.0.2.1"), "01 000000 c0000201"),
        (AuthPayload(AuthMethod.SHARED_KEY_MIC, b"\x01"), "02 000000 01"),
        (NotifyPayload(NotifyType.REKEY_SA, 3, b"\x01\x02\x03\x04"), "03 04 4009 01020304"),
        (NotifyPayload(NotifyType.COOKIE, data=b"\xcc"), "00 00 4006 cc"),
        (DeletePayload(ProtocolId.ESP, 4, [b"\x01\x02\x03\x04"]), "03 04 0001 01020304"),
        (DeletePayload(ProtocolId.IKE), "01 00 0000"),
        (
            TSiPayload([TrafficSelector.from_network("10.0.0.0/24", 17, 500)]),
            "01 000000 07 11 0010 01f4 01f4 0a000000 0a0000ff",
        ),
        (CPPayload(CfgType.CFG_REQUEST, [ConfigAttribute(1)]), "01 000000 0001 0000"),
        (EAPPayload(EapCode.RESPONSE, 5, b"\x01ab"), "02 05 0007 016162"),
        (EncryptedFragmentPayload(2, 5, b"\xee"), "0002 0005 ee"),
    ]
    for payload, hexstr in cases:
        assert payload.encode_body() == bytes.fromhex(hexstr), payload


def test_sk_next_payload_names_inner_payload() -> None:
    first, chain = encode_payloads([NotifyPayload(16430), EncryptedPayload(35, b"\x99" * 4)])
    assert first == 41
    assert chain == bytes.fromhex(
        "2e000008 0000402e"  # N (IKEV2_FRAGMENTATION_SUPPORTED), next payload SK
        "23000008 99999999"  # SK whose next payload is IDi (35), the first inner payload
    )


def test_critical_unknown_payload() -> None:
    _, chain = encode_payloads([UnknownPayload(200, b"x", critical=True), NoncePayload(NONCE)])
    assert chain[:4] == bytes.fromhex("28800005")
    msg = Message(
        SPI_I, SPI_R, 37, 0, 3, [UnknownPayload(200, b"x", critical=True), UnknownPayload(201, b"")]
    )
    decoded = Message.decode(msg.encode())
    assert decoded.unsupported_critical == [200]
    assert decoded.payloads[1] == UnknownPayload(201, b"", False)
    slots = list(iter_payloads(200, msg.encode()[28:], 28))
    assert [(s.offset, s.length, s.flags) for s in slots] == [(28, 5, 0x80), (33, 4, 0)]


def test_known_payload_critical_bit_is_ignored() -> None:
    data = bytearray(Message(SPI_I, SPI_R, 37, 0, 0, [VendorIDPayload(b"v")]).encode())
    data[29] = 0x80
    assert Message.decode(bytes(data)).payloads == [VendorIDPayload(b"v")]


# -- malformed input: ParseError, never another exception -----------------------------------


def _parse_error(data: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        Message.decode(data)
    assert 0 <= info.value.offset <= len(data)
    return info.value


@pytest.mark.parametrize(
    "msg", sample_messages(), ids=lambda m: enum_name(ExchangeType, m.exchange_type)
)
def test_every_prefix_and_extension_fails(msg: Message) -> None:
    data = msg.encode()
    for end in range(len(data)):
        _parse_error(data[:end])
    _parse_error(data + b"\x00")
    # prefixes with the header's Length fixed up reach the payload parsers
    for end in range(HEADER_LENGTH, len(data)):
        cut = bytearray(data[:end])
        cut[24:28] = end.to_bytes(4, "big")
        if end == HEADER_LENGTH:
            continue  # an empty chain announcing a first payload
        _parse_error(bytes(cut))


def test_every_payload_length_tampering_fails() -> None:
    data = ike_sa_init().encode()
    for slot in iter_payloads(data[16], data[28:], 28):
        for delta in (-5, -1, 1, 4, 0x7FFF):
            bad = bytearray(data)
            length = (slot.length + delta) % 0x10000
            bad[slot.offset + 2 : slot.offset + 4] = length.to_bytes(2, "big")
            error = _parse_error(bytes(bad))
            assert error.offset >= slot.offset


def _mutate(data: bytes, pos: int, new: str) -> bytes:
    raw = bytes.fromhex(new)
    return data[:pos] + raw + data[pos + len(raw) :]


INIT = ike_sa_init().encode()
_SA_BODY = 32  # offset of the SA body in INIT
_PROP = _SA_BODY  # first proposal header


@pytest.mark.parametrize(
    ("data", "offset", "reason"),
    [
        (INIT[:27], 24, "truncated"),
        (_mutate(INIT, 17, "10"), 17, "major version 1"),
        (_mutate(INIT, 17, "30"), 17, "major version 3"),
        (_mutate(INIT, 24, "0000001b"), 24, "shorter than the header"),
        (_mutate(INIT, 24, "ffffffff"), 24, "datagram has"),
        (_mutate(INIT, 30, "0003"), 30, "shorter than its header"),
        (_mutate(INIT, _PROP, "05"), _PROP, "Last Substruc is 5"),
        (_mutate(INIT, _PROP + 2, "0003"), _PROP + 2, "shorter than its header"),
        (_mutate(INIT, _PROP + 7, "09"), _PROP + 7, "announces 9 transforms"),
        (_mutate(INIT, _PROP + 8, "02"), _PROP + 8, "Last Substruc is 2"),
        (_mutate(INIT, _PROP + 6, "ff"), _PROP + 6, "SPI size 255"),
    ],
)
def test_malformed_messages(data: bytes, offset: int, reason: str) -> None:
    error = _parse_error(data)
    assert reason in error.reason
    assert error.offset == offset


@pytest.mark.parametrize(
    ("cls", "body", "offset", "reason"),
    [
        (NoncePayload, "00" * 15, 0, "nonce of 15 bytes"),
        (NoncePayload, "00" * 257, 0, "nonce of 257 bytes"),
        (KEPayload, "0013 00", 2, "truncated"),
        (IDiPayload, "01 000000 c00002", 4, "needs 4 bytes"),
        (IDrPayload, "05 000000 c0000201", 4, "needs 16 bytes"),
        (IDiPayload, "02 000000 ff", 4, "UTF-8"),
        (IDiPayload, "01 0000", 1, "truncated"),
        (AuthPayload, "02 00", 1, "truncated"),
        (CertPayload, "", 0, "truncated"),
        (NotifyPayload, "03 04 4009 0102", 4, "notify SPI"),
        (DeletePayload, "03 04 0002 01020304", 2, "do not match"),
        (TSiPayload, "02 000000 07000010 0000ffff 0a000000 0a0000ff", 20, "truncated"),
        (TSiPayload, "01 000000 0700000f 0000ffff 0a000000 0a0000", 6, "selector length 15"),
        (TSiPayload, "01 000000 08000010 0000ffff 0a000000 0a0000ff", 6, "expected 40"),
        (TSiPayload, "01 000000 07000010 0000ffff 0a000000 0a0000ff 00", 20, "bytes after"),
        (TSrPayload, "01 000000 0a000003", 6, "selector length 3"),
        (CPPayload, "01 000000 0001 0004 0a00", 8, "attribute value"),
        (EAPPayload, "01 01 0009 01", 2, "EAP length 9"),
        (EncryptedFragmentPayload, "0000 0001", 0, "fragment number 0"),
        (EncryptedFragmentPayload, "0003 0002", 2, "fragment 3 of only 2"),
        (SAPayload, "", 0, "no proposal"),
        (SAPayload, "02 00 0008 01010000", 8, "past the SA payload"),
        (SAPayload, "00 00 0008 01010000 00", 8, "bytes after the last proposal"),
        (SAPayload, "00 00 0010 01010001 03 00 0008 01000000", 16, "past the proposal"),
    ],
)
def test_malformed_payloads(cls: Any, body: str, offset: int, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        cls.decode_body(bytes.fromhex(body), 0)
    assert reason in info.value.reason
    assert info.value.offset == offset


def test_chain_after_sk_fails() -> None:
    data = sample_messages()[2].encode()
    bad = bytearray(data + b"\x00\x00\x00\x04")
    bad[24:28] = len(bad).to_bytes(4, "big")
    error = _parse_error(bytes(bad))
    assert "after the last payload" in error.reason and error.offset == len(data)
    with pytest.raises(ValueError, match="last payload"):
        encode_payloads([EncryptedPayload(35, b""), NoncePayload(NONCE)])


def test_too_many_payloads() -> None:
    ok = Message(SPI_I, SPI_R, 37, 0, 0, [VendorIDPayload(b"")] * MAX_PAYLOADS)
    assert len(Message.decode(ok.encode()).payloads) == MAX_PAYLOADS
    too_many = Message(SPI_I, SPI_R, 37, 0, 0, [VendorIDPayload(b"")] * (MAX_PAYLOADS + 1))
    assert "more than" in _parse_error(too_many.encode()).reason


def test_encode_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        Message(b"short", SPI_R, 34).encode()
    with pytest.raises(ValueError):
        Message(SPI_I, SPI_R, 256).encode()
    with pytest.raises(ValueError):
        NoncePayload(b"\x00" * 15).encode_body()
    with pytest.raises(ValueError):
        DeletePayload(3, 4, [b"\x01"]).encode_body()
    with pytest.raises(ValueError):
        Transform(1, 0x10000).encode()
    with pytest.raises(ValueError):
        TrafficSelector(IPv4Address("10.0.0.1"), IPv6Address("::1")).encode()
    with pytest.raises(ValueError):
        ConfigAttribute(0x8000).encode()
    with pytest.raises(ValueError):
        encode_payloads([VendorIDPayload(b"\x00" * 0xFFFC)])
    assert Attribute(14, 128).encode() == bytes.fromhex("800e0080")


# -- scapy's independent dissector -------------------------------------------------------------

_SCAPY_ENCRYPTED = (46, 53)


def _scapy_chain(pkt: Any) -> list[tuple[int, int]]:
    chain: list[tuple[int, int]] = []
    layer, ptype = pkt.payload, pkt.next_payload
    while ptype and hasattr(layer, "next_payload"):
        chain.append((ptype, layer.length))
        if ptype in _SCAPY_ENCRYPTED:
            break
        layer, ptype = layer.payload, layer.next_payload
    return chain


def _scapy_layers(pkt: Any, cls: type) -> list[Any]:
    out = []
    layer = pkt.payload
    while hasattr(layer, "next_payload"):
        if isinstance(layer, cls):
            out.append(layer)
        if isinstance(layer, sc.IKEv2_Encrypted | sc.IKEv2_Encrypted_Fragment):
            break
        layer = layer.payload
    return out


def _scapy_proposals(sa: Any) -> list[tuple[Any, ...]]:
    out = []
    prop = sa.prop
    while isinstance(prop, sc.IKEv2_Proposal):
        transforms = []
        t = prop.trans
        while isinstance(t, sc.IKEv2_Transform):
            transforms.append((t.transform_type, t.transform_id, t.key_length))
            t = t.payload
        out.append((prop.proposal, prop.proto, bytes(prop.SPI or b""), prop.trans_nb, transforms))
        prop = prop.payload
    return out


def _our_proposals(sa: SAPayload) -> list[tuple[Any, ...]]:
    return [
        (
            p.number,
            p.protocol_id,
            p.spi,
            len(p.transforms),
            [(t.transform_type, t.transform_id, t.key_length) for t in p.transforms],
        )
        for p in sa.proposals
    ]


def assert_scapy_agrees(data: bytes) -> None:
    """scapy and Message.decode read ``data`` the same way (header, chain, SAs, KE, N, SK)."""
    ours = Message.decode(data)
    pkt = sc.IKEv2(data)
    assert (bytes(pkt.init_SPI), bytes(pkt.resp_SPI)) == (ours.spi_i, ours.spi_r)
    assert (pkt.version, pkt.exch_type, int(pkt.flags), pkt.id, pkt.length) == (
        ours.version,
        ours.exchange_type,
        int(ours.flags),
        ours.message_id,
        len(data),
    )
    ours_chain = [(int(p.payload_type), 4 + len(p.encode_body())) for p in ours.payloads]
    assert _scapy_chain(pkt) == ours_chain
    for mine, theirs in zip(ours.find(SAPayload), _scapy_layers(pkt, sc.IKEv2_SA), strict=True):
        assert _our_proposals(mine) == _scapy_proposals(theirs)  # type: ignore[arg-type]
    for mine, theirs in zip(ours.find(KEPayload), _scapy_layers(pkt, sc.IKEv2_KE), strict=True):
        assert (mine.group, mine.data) == (theirs.group, bytes(theirs.ke))  # type: ignore[union-attr]
    for mine, theirs in zip(
        ours.find(NotifyPayload), _scapy_layers(pkt, sc.IKEv2_Notify), strict=True
    ):
        assert (mine.notify_type, mine.protocol_id, mine.spi) == (  # type: ignore[union-attr]
            theirs.type,
            theirs.proto,
            bytes(theirs.SPI or b""),
        )
    enc = ours.encrypted
    if isinstance(enc, EncryptedPayload):
        (theirs,) = _scapy_layers(pkt, sc.IKEv2_Encrypted)
        assert bytes(theirs.load) == enc.data
    elif isinstance(enc, EncryptedFragmentPayload):
        (theirs,) = _scapy_layers(pkt, sc.IKEv2_Encrypted_Fragment)
        assert (theirs.frag_number, theirs.frag_total, bytes(theirs.load)) == (
            enc.fragment_number,
            enc.total_fragments,
            enc.data,
        )


@pytest.mark.parametrize(
    "msg",
    [
        m
        for m in sample_messages()
        if not any(
            isinstance(p, UnknownPayload | CPPayload | EAPPayload | TSiPayload | TSrPayload)
            for p in m.payloads
        )
    ],
    ids=lambda m: enum_name(ExchangeType, m.exchange_type),
)
def test_scapy_dissects_what_we_encode(msg: Message) -> None:
    assert_scapy_agrees(msg.encode())


def test_scapy_dissects_every_payload_type() -> None:
    msg = sample_messages()[4]
    pkt = sc.IKEv2(msg.encode())
    ours = [(int(p.payload_type), 4 + len(p.encode_body())) for p in msg.payloads]
    assert _scapy_chain(pkt) == ours
    scapy_ts = _scapy_layers(pkt, sc.IKEv2_TSi)[0].traffic_selector[0]
    assert (scapy_ts.starting_address_v4, scapy_ts.ending_address_v4) == (
        "10.1.0.0",
        "10.1.255.255",
    )


def scapy_built() -> bytes:
    """An IKE_SA_INIT-like message built with scapy, every length and count explicit."""
    transforms = (
        sc.IKEv2_Transform(transform_type=1, transform_id=12, length=12, key_length=128)
        / sc.IKEv2_Transform(transform_type=2, transform_id=5)
        / sc.IKEv2_Transform(transform_type=3, transform_id=12)
        / sc.IKEv2_Transform(transform_type=4, transform_id=14)
    )
    pkt = (
        sc.IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=34, flags="Initiator", id=7)
        / sc.IKEv2_SA(prop=sc.IKEv2_Proposal(proposal=1, proto=1, trans_nb=4, trans=transforms))
        / sc.IKEv2_KE(group=14, ke=b"k" * 256)
        / sc.IKEv2_Nonce(nonce=b"n" * 32)
        / sc.IKEv2_Notify(type=16388, notify=b"h" * 20)
        / sc.IKEv2_TSi(
            number_of_TSs=1,
            traffic_selector=[
                sc.IPv4TrafficSelector(
                    starting_address_v4="10.0.0.0", ending_address_v4="10.0.0.255"
                )
            ],
        )
        / sc.IKEv2_Delete(proto=3, SPIsize=4, SPInum=1, SPI=[b"\x01\x02\x03\x04"])
        / sc.IKEv2_IDi(IDtype=2, ID=b"a.example")
        / sc.IKEv2_AUTH(auth_type=2, load=b"a" * 32)
        / sc.IKEv2_CP(CFGType=1, attributes=[sc.ConfigurationAttribute(type=1)])
        / sc.IKEv2_VendorID(vendorID=b"scapy")
        / sc.IKEv2_Encrypted_Fragment(next_payload=35, frag_number=1, frag_total=2, load=b"e" * 20)
    )
    return bytes(pkt)


def test_we_decode_what_scapy_builds() -> None:
    data = scapy_built()
    msg = Message.decode(data)
    assert (msg.spi_i, msg.spi_r, msg.exchange_type, msg.flags, msg.message_id) == (
        SPI_I,
        SPI_R,
        34,
        HeaderFlag.INITIATOR,
        7,
    )
    assert msg.payloads == [
        SAPayload(
            [
                Proposal(
                    1,
                    ProtocolId.IKE,
                    b"",
                    [
                        Transform.with_key_length(1, 12, 128),
                        Transform(2, 5),
                        Transform(3, 12),
                        Transform(4, 14),
                    ],
                )
            ]
        ),
        KEPayload(14, b"k" * 256),
        NoncePayload(b"n" * 32),
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, data=b"h" * 20),
        TSiPayload([TrafficSelector.from_network("10.0.0.0/24")]),
        DeletePayload(ProtocolId.ESP, 4, [b"\x01\x02\x03\x04"]),
        IDiPayload.from_fqdn("a.example"),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, b"a" * 32),
        CPPayload(CfgType.CFG_REQUEST, [ConfigAttribute(CfgAttr.INTERNAL_IP4_ADDRESS)]),
        VendorIDPayload(b"scapy"),
        EncryptedFragmentPayload(1, 2, b"e" * 20, PayloadType.IDi),
    ]
    assert msg.encode() == data
    assert_scapy_agrees(data)
