"""Assigned numbers of ISAKMP / IKEv1 and the IPsec DOI.

Sources: RFC 2408 (ISAKMP) §3 and Appendix A, RFC 2409 (IKE) Appendix A,
RFC 2407 (IPsec DOI) §4, RFC 3947 (NAT-T), RFC 3706 (DPD) and the IANA
"Internet Security Association and Key Management Protocol (ISAKMP)
Identifiers" and "Internet Key Exchange (IKE) Attributes" registries.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class PayloadType(IntEnum):
    """Next Payload values, RFC 2408 §3.1; NAT-T additions from RFC 3947 §3/§4."""

    NONE = 0
    SA = 1
    P = 2
    T = 3
    KE = 4
    ID = 5
    CERT = 6
    CR = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    N = 11
    D = 12
    VID = 13
    ATTR = 14  # Attribute payload (draft-dukes-ike-mode-cfg §3.2): Mode Config and XAUTH
    NAT_D = 20
    NAT_OA = 21
    NAT_D_DRAFT = 130
    NAT_OA_DRAFT = 131


class ExchangeType(IntEnum):
    """Exchange Type values, RFC 2408 §3.1 / §4 and RFC 2409 §5 (Quick, New Group)."""

    BASE = 1
    MAIN = 2  # identity protection exchange
    AUTH_ONLY = 3
    AGGRESSIVE = 4
    INFORMATIONAL = 5
    TRANSACTION = 6  # draft-ietf-ipsec-isakmp-mode-cfg (IANA)
    QUICK = 32
    NEW_GROUP = 33


class HeaderFlag(IntFlag):
    """ISAKMP header flags, RFC 2408 §3.1."""

    ENCRYPTION = 1
    COMMIT = 2
    AUTH_ONLY = 4


class ProtocolId(IntEnum):
    """Protocol-Id of proposals / notifications / deletes, RFC 2407 §4.4.1."""

    ISAKMP = 1
    IPSEC_AH = 2
    IPSEC_ESP = 3
    IPCOMP = 4


class IkeAttribute(IntEnum):
    """Phase-1 SA attribute classes, RFC 2409 Appendix A."""

    ENCRYPTION_ALGORITHM = 1
    HASH_ALGORITHM = 2
    AUTHENTICATION_METHOD = 3
    GROUP_DESCRIPTION = 4
    GROUP_TYPE = 5
    GROUP_PRIME = 6
    GROUP_GENERATOR_ONE = 7
    GROUP_GENERATOR_TWO = 8
    GROUP_CURVE_A = 9
    GROUP_CURVE_B = 10
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    PRF = 13
    KEY_LENGTH = 14
    FIELD_SIZE = 15
    GROUP_ORDER = 16


class IpsecAttribute(IntEnum):
    """IPsec DOI SA attribute types, RFC 2407 §4.5 (ECN Tunnel: RFC 3168 §9.2)."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTHENTICATION_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICTIONARY_SIZE = 8
    COMPRESS_PRIVATE_ALGORITHM = 9
    ECN_TUNNEL = 10


class IkeEncryption(IntEnum):
    """Phase-1 Encryption Algorithm values, RFC 2409 Appendix A (+ IANA: AES, Camellia)."""

    DES_CBC = 1
    IDEA_CBC = 2
    BLOWFISH_CBC = 3
    RC5_R16_B64_CBC = 4
    TRIPLE_DES_CBC = 5
    CAST_CBC = 6
    AES_CBC = 7
    CAMELLIA_CBC = 8


class IkeHash(IntEnum):
    """Phase-1 Hash Algorithm values, RFC 2409 Appendix A (+ IANA: SHA-2)."""

    MD5 = 1
    SHA1 = 2
    TIGER = 3
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class AuthMethod(IntEnum):
    """Authentication Method values, RFC 2409 Appendix A, RFC 4754 (ECDSA), XAUTH/hybrid drafts."""

    PSK = 1
    DSS_SIG = 2
    RSA_SIG = 3
    RSA_ENC = 4
    RSA_ENC_REV = 5
    ECDSA_P256 = 9
    ECDSA_P384 = 10
    ECDSA_P521 = 11
    HYBRID_INIT_RSA = 64221
    HYBRID_RESP_RSA = 64222
    XAUTH_INIT_PSK = 65001
    XAUTH_RESP_PSK = 65002
    XAUTH_INIT_RSA = 65005
    XAUTH_RESP_RSA = 65006


class DhGroupId(IntEnum):
    """Group Description values, RFC 2409 §6 / App. A, RFC 3526, RFC 5114, RFC 5903, RFC 6932, RFC 8031 (IANA)."""

    MODP_768 = 1
    MODP_1024 = 2
    EC2N_155 = 3
    EC2N_185 = 4
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    MODP_1024_160 = 22
    MODP_2048_224 = 23
    MODP_2048_256 = 24
    ECP_192 = 25
    ECP_224 = 26
    BRAINPOOL_P224R1 = 27
    BRAINPOOL_P256R1 = 28
    BRAINPOOL_P384R1 = 29
    BRAINPOOL_P512R1 = 30
    CURVE25519 = 31
    CURVE448 = 32


class GroupType(IntEnum):
    """Group Type values, RFC 2409 Appendix A."""

    MODP = 1
    ECP = 2
    EC2N = 3


class LifeType(IntEnum):
    """Life Type values, RFC 2409 Appendix A and RFC 2407 §4.5."""

    SECONDS = 1
    KILOBYTES = 2


class IkeTransformId(IntEnum):
    """ISAKMP transform identifiers, RFC 2407 §4.4.2."""

    KEY_IKE = 1


class EspTransformId(IntEnum):
    """IPsec ESP transform identifiers, RFC 2407 §4.4.4 + IANA "IPSEC ESP Transform Identifiers".

    The IKEv1 registry stops at 23; ChaCha20-Poly1305 has no IKEv1 number.
    """

    DES_IV64 = 1
    DES = 2
    TRIPLE_DES = 3
    RC5 = 4
    IDEA = 5
    CAST = 6
    BLOWFISH = 7
    THREEIDEA = 8
    DES_IV32 = 9
    RC4 = 10
    NULL = 11
    AES_CBC = 12
    AES_CTR = 13
    AES_CCM_8 = 14
    AES_CCM_12 = 15
    AES_CCM_16 = 16
    AES_GCM_8 = 18
    AES_GCM_12 = 19
    AES_GCM_16 = 20
    SEED_CBC = 21
    CAMELLIA = 22
    NULL_AUTH_AES_GMAC = 23


class AhTransformId(IntEnum):
    """IPsec AH transform identifiers, RFC 2407 §4.4.3 + IANA (SHA-2: RFC 4868)."""

    MD5 = 2
    SHA = 3
    DES = 4
    SHA2_256 = 5
    SHA2_384 = 6
    SHA2_512 = 7


class IpsecAuthAlgorithm(IntEnum):
    """Authentication Algorithm attribute values, RFC 2407 §4.5 + IANA."""

    HMAC_MD5 = 1
    HMAC_SHA1 = 2
    DES_MAC = 3
    KPDK = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    HMAC_RIPEMD = 8
    AES_XCBC_MAC = 9
    SIG_RSA = 10
    AES_128_GMAC = 11
    AES_192_GMAC = 12
    AES_256_GMAC = 13


class EncapsulationMode(IntEnum):
    """Encapsulation Mode values, RFC 2407 §4.5 and RFC 3947 §5.1 (+ draft values)."""

    TUNNEL = 1
    TRANSPORT = 2
    UDP_TUNNEL = 3
    UDP_TRANSPORT = 4
    UDP_TUNNEL_DRAFT = 61443
    UDP_TRANSPORT_DRAFT = 61444


class IdType(IntEnum):
    """Identification types of the IPsec DOI, RFC 2407 §4.6.2.1."""

    IPV4_ADDR = 1
    FQDN = 2
    USER_FQDN = 3
    IPV4_ADDR_SUBNET = 4
    IPV6_ADDR = 5
    IPV6_ADDR_SUBNET = 6
    IPV4_ADDR_RANGE = 7
    IPV6_ADDR_RANGE = 8
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11


class NotifyType(IntEnum):
    """Notify Message Types, RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5 (DPD)."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137


class CertEncoding(IntEnum):
    """Certificate encodings, RFC 2408 §3.9."""

    PKCS7 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    X509_KEY_EXCHANGE = 5
    KERBEROS = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10


class Doi(IntEnum):
    """Domain of Interpretation, RFC 2408 §3.4 / RFC 2407 §4.2."""

    ISAKMP = 0
    IPSEC = 1


class Situation(IntFlag):
    """IPsec DOI situation bitmap, RFC 2407 §4.2."""

    IDENTITY_ONLY = 1
    SECRECY = 2
    INTEGRITY = 4


def enum_name(enum_cls: type[IntEnum] | type[IntFlag], value: int) -> str:
    """Name a number through ``enum_cls``: ``"AES_CBC (7)"`` or ``"unknown (250)"``.

    For an :class:`IntFlag` class the set flags are joined with ``|``
    (``"ENCRYPTION|COMMIT (3)"``, ``"none (0)"``).
    """
    value = int(value)
    if issubclass(enum_cls, IntFlag):
        names = [m.name for m in enum_cls if m.value and (value & m.value) == m.value]
        rest = value & ~sum(m.value for m in enum_cls)
        if rest:
            names.append(f"0x{rest:x}")
        return f"{'|'.join(n for n in names if n) or 'none'} ({value})"
    try:
        return f"{enum_cls(value).name} ({value})"
    except ValueError:
        return f"unknown ({value})"


# Display names of attribute types: RFC 2409 App. A and RFC 2407 §4.5 spelling.
_IKE_ATTR_NAMES: dict[int, str] = {
    IkeAttribute.ENCRYPTION_ALGORITHM: "Encryption Algorithm",
    IkeAttribute.HASH_ALGORITHM: "Hash Algorithm",
    IkeAttribute.AUTHENTICATION_METHOD: "Authentication Method",
    IkeAttribute.GROUP_DESCRIPTION: "Group Description",
    IkeAttribute.GROUP_TYPE: "Group Type",
    IkeAttribute.GROUP_PRIME: "Group Prime/Irreducible Polynomial",
    IkeAttribute.GROUP_GENERATOR_ONE: "Group Generator One",
    IkeAttribute.GROUP_GENERATOR_TWO: "Group Generator Two",
    IkeAttribute.GROUP_CURVE_A: "Group Curve A",
    IkeAttribute.GROUP_CURVE_B: "Group Curve B",
    IkeAttribute.LIFE_TYPE: "Life Type",
    IkeAttribute.LIFE_DURATION: "Life Duration",
    IkeAttribute.PRF: "PRF",
    IkeAttribute.KEY_LENGTH: "Key Length",
    IkeAttribute.FIELD_SIZE: "Field Size",
    IkeAttribute.GROUP_ORDER: "Group Order",
}

_IPSEC_ATTR_NAMES: dict[int, str] = {
    IpsecAttribute.SA_LIFE_TYPE: "SA Life Type",
    IpsecAttribute.SA_LIFE_DURATION: "SA Life Duration",
    IpsecAttribute.GROUP_DESCRIPTION: "Group Description",
    IpsecAttribute.ENCAPSULATION_MODE: "Encapsulation Mode",
    IpsecAttribute.AUTHENTICATION_ALGORITHM: "Authentication Algorithm",
    IpsecAttribute.KEY_LENGTH: "Key Length",
    IpsecAttribute.KEY_ROUNDS: "Key Rounds",
    IpsecAttribute.COMPRESS_DICTIONARY_SIZE: "Compress Dictionary Size",
    IpsecAttribute.COMPRESS_PRIVATE_ALGORITHM: "Compress Private Algorithm",
    IpsecAttribute.ECN_TUNNEL: "ECN Tunnel",
}

_IKE_ATTR_VALUES: dict[int, type[IntEnum]] = {
    IkeAttribute.ENCRYPTION_ALGORITHM: IkeEncryption,
    IkeAttribute.HASH_ALGORITHM: IkeHash,
    IkeAttribute.AUTHENTICATION_METHOD: AuthMethod,
    IkeAttribute.GROUP_DESCRIPTION: DhGroupId,
    IkeAttribute.GROUP_TYPE: GroupType,
    IkeAttribute.LIFE_TYPE: LifeType,
}

_IPSEC_ATTR_VALUES: dict[int, type[IntEnum]] = {
    IpsecAttribute.SA_LIFE_TYPE: LifeType,
    IpsecAttribute.GROUP_DESCRIPTION: DhGroupId,
    IpsecAttribute.ENCAPSULATION_MODE: EncapsulationMode,
    IpsecAttribute.AUTHENTICATION_ALGORITHM: IpsecAuthAlgorithm,
}

# Variable-length attributes that carry big numbers (shown in hex, not decimal).
_IKE_BIGNUM_ATTRS = frozenset(
    {
        IkeAttribute.GROUP_PRIME,
        IkeAttribute.GROUP_GENERATOR_ONE,
        IkeAttribute.GROUP_GENERATOR_TWO,
        IkeAttribute.GROUP_CURVE_A,
        IkeAttribute.GROUP_CURVE_B,
        IkeAttribute.GROUP_ORDER,
    }
)

_VALUE_SPELLING: dict[str, str] = {"TRIPLE_DES_CBC": "3DES-CBC", "SHA1": "SHA"}


def _value_display(enum_cls: type[IntEnum], value: int) -> str:
    try:
        name = enum_cls(value).name
    except ValueError:
        return f"unknown ({value})"
    return f"{_VALUE_SPELLING.get(name, name.replace('_', '-'))} ({value})"


def attribute_names(protocol_id: int, attr_type: int, value: int | bytes) -> tuple[str, str]:
    """Human readable (type name, value name) of an SA attribute.

    Phase-1 attributes (``protocol_id`` ISAKMP) are named after RFC 2409
    Appendix A, all others after the IPsec DOI, RFC 2407 §4.5. Example:
    ``attribute_names(1, 1, 7) == ("Encryption Algorithm", "AES-CBC (7)")``.
    """
    num = int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)
    if protocol_id == ProtocolId.ISAKMP:
        type_name = _IKE_ATTR_NAMES.get(attr_type, f"unknown ({attr_type})")
        value_enum = _IKE_ATTR_VALUES.get(attr_type)
        bignum = attr_type in _IKE_BIGNUM_ATTRS
    else:
        type_name = _IPSEC_ATTR_NAMES.get(attr_type, f"unknown ({attr_type})")
        value_enum = _IPSEC_ATTR_VALUES.get(attr_type)
        bignum = attr_type == IpsecAttribute.COMPRESS_PRIVATE_ALGORITHM
    if value_enum is not None:
        return type_name, _value_display(value_enum, num)
    if bignum and isinstance(value, bytes):
        return type_name, "0x" + value.hex() if value else "0x0"
    return type_name, str(num)


class CfgType(IntEnum):
    """Attribute payload types, draft-dukes-ike-mode-cfg §3.2 (``ISAKMP_CFG_*``)."""

    REQUEST = 1
    REPLY = 2
    SET = 3
    ACK = 4


class CfgAttribute(IntEnum):
    """Mode Config attributes (draft-dukes-ike-mode-cfg §3.3) and XAUTH attributes
    (draft-beaulieu-ike-xauth §4.2, IANA "IKE Configuration Attributes")."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_ADDRESS_EXPIRY = 5
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_NETMASK = 9
    INTERNAL_IP6_DNS = 10
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP4_SUBNET = 13
    XAUTH_TYPE = 16520
    XAUTH_USER_NAME = 16521
    XAUTH_USER_PASSWORD = 16522
    XAUTH_PASSCODE = 16523
    XAUTH_MESSAGE = 16524
    XAUTH_CHALLENGE = 16525
    XAUTH_DOMAIN = 16526
    XAUTH_STATUS = 16527
    #: Cisco Unity (strongSwan's ``unity`` plugin, libreswan's split tunnelling): 28672 …
    UNITY_BANNER = 28672
    UNITY_SAVE_PASSWD = 28673
    UNITY_DEF_DOMAIN = 28674
    UNITY_SPLITDNS_NAME = 28675
    UNITY_SPLIT_INCLUDE = 28676
    UNITY_NATT_PORT = 28677
    UNITY_LOCAL_LAN = 28678
    UNITY_PFS = 28679
    UNITY_FW_TYPE = 28680
    UNITY_BACKUP_SERVERS = 28681
    UNITY_DDNS_HOSTNAME = 28682
