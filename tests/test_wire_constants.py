"""Assigned numbers and naming helpers (ipseclab.wire.v1.constants)."""

from __future__ import annotations

import pytest

from ipseclab.wire.v1.constants import (
    AhTransformId,
    AuthMethod,
    DhGroupId,
    EncapsulationMode,
    EspTransformId,
    ExchangeType,
    HeaderFlag,
    IdType,
    IkeAttribute,
    IkeEncryption,
    IpsecAttribute,
    NotifyType,
    PayloadType,
    ProtocolId,
    attribute_names,
    enum_name,
)


def test_selected_assigned_numbers() -> None:
    assert PayloadType.NAT_D == 20 and PayloadType.NAT_OA_DRAFT == 131
    assert ExchangeType.MAIN == 2 and ExchangeType.QUICK == 32
    assert HeaderFlag.ENCRYPTION | HeaderFlag.COMMIT == 3
    assert ProtocolId.IPSEC_ESP == 3
    assert IkeAttribute.GROUP_ORDER == 16 and IpsecAttribute.ECN_TUNNEL == 10
    assert AuthMethod.XAUTH_INIT_PSK == 65001 and AuthMethod.HYBRID_RESP_RSA == 64222
    assert DhGroupId.MODP_2048 == 14 and DhGroupId.CURVE25519 == 31
    assert EspTransformId.AES_GCM_16 == 20 and EspTransformId.NULL_AUTH_AES_GMAC == 23
    assert AhTransformId.SHA2_256 == 5
    assert EncapsulationMode.UDP_TUNNEL_DRAFT == 61443
    assert IdType.KEY_ID == 11
    assert NotifyType.UNEQUAL_PAYLOAD_LENGTHS == 30 and NotifyType.INITIAL_CONTACT == 24578
    assert NotifyType.R_U_THERE_ACK == 36137
    assert [m.value for m in NotifyType][:30] == list(range(1, 31))


def test_enum_name() -> None:
    assert enum_name(IkeEncryption, 7) == "AES_CBC (7)"
    assert enum_name(IkeEncryption, 250) == "unknown (250)"
    assert enum_name(HeaderFlag, 0) == "none (0)"
    assert enum_name(HeaderFlag, 3) == "ENCRYPTION|COMMIT (3)"
    assert enum_name(HeaderFlag, 0x81) == "ENCRYPTION|0x80 (129)"


@pytest.mark.parametrize(
    ("proto", "attr", "value", "expected"),
    [
        (1, 1, 7, ("Encryption Algorithm", "AES-CBC (7)")),
        (1, 1, 5, ("Encryption Algorithm", "3DES-CBC (5)")),
        (1, 2, 2, ("Hash Algorithm", "SHA (2)")),
        (1, 3, 65001, ("Authentication Method", "XAUTH-INIT-PSK (65001)")),
        (1, 4, 14, ("Group Description", "MODP-2048 (14)")),
        (1, 11, 1, ("Life Type", "SECONDS (1)")),
        (1, 12, b"\x00\x01\x51\x80", ("Life Duration", "86400")),
        (1, 14, 256, ("Key Length", "256")),
        (1, 6, b"\x0f\xff", ("Group Prime/Irreducible Polynomial", "0x0fff")),
        (1, 99, 3, ("unknown (99)", "3")),
        (3, 4, 1, ("Encapsulation Mode", "TUNNEL (1)")),
        (3, 5, 2, ("Authentication Algorithm", "HMAC-SHA1 (2)")),
        (2, 2, 3600, ("SA Life Duration", "3600")),
        (3, 3, 999, ("Group Description", "unknown (999)")),
    ],
)
def test_attribute_names(proto: int, attr: int, value: int | bytes, expected: tuple) -> None:
    assert attribute_names(proto, attr, value) == expected
