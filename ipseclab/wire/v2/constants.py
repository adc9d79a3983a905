"""Assigned numbers of IKEv2.

Sources: RFC 7296 §3 (header, payloads, transforms, notify, ID, auth, TS, CP), the IANA
"Internet Key Exchange Version 2 (IKEv2) Parameters" registries, RFC 9242
(IKE_INTERMEDIATE), RFC 9370 (additional key exchanges, IKE_FOLLOWUP_KE), RFC 7383
(fragmentation), RFC 7427 (digital signatures), RFC 7619 (NULL auth), RFC 4754 (ECDSA),
RFC 5282 / RFC 4106 (AEAD), RFC 7634 (ChaCha20-Poly1305), RFC 8031 (Curve25519/448),
RFC 9385 (GOST), draft-ietf-ipsecme-ikev2-mlkem (ML-KEM code points assigned by IANA).
Numbers were checked against strongSwan's headers (ike_header.h, payload.h,
notify_payload.h, transform.h, key_exchange.h, crypter.h, prf.h, signer.h,
authenticator.h, attributes.h, identification.h, traffic_selector.h).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

MAJOR_VERSION = 2
MINOR_VERSION = 0
VERSION = (MAJOR_VERSION << 4) | MINOR_VERSION  # 0x20, RFC 7296 §3.1


class ExchangeType(IntEnum):
    """Exchange Type, RFC 7296 §3.1; RFC 5723, RFC 9242, RFC 9370."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37
    IKE_SESSION_RESUME = 38  # RFC 5723
    IKE_INTERMEDIATE = 43  # RFC 9242
    IKE_FOLLOWUP_KE = 44  # RFC 9370


class HeaderFlag(IntFlag):
    """Header flags, RFC 7296 §3.1 (bits are counted from the left: I = bit 3, V = 4, R = 5)."""

    INITIATOR = 0x08
    VERSION = 0x10
    RESPONSE = 0x20


class PayloadType(IntEnum):
    """Next Payload values, RFC 7296 §3.2; RFC 6467 (GSPM), RFC 7383 (SKF)."""

    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    N = 41
    D = 42
    V = 43
    TSi = 44
    TSr = 45
    SK = 46
    CP = 47
    EAP = 48
    GSPM = 49  # RFC 6467
    IDg = 50  # RFC 6407-bis (G-IKEv2)
    GSA = 51
    KD = 52
    SKF = 53  # RFC 7383


class SubstructType(IntEnum):
    """The "Last Substruc" values of proposals and transforms, RFC 7296 §3.3.1, §3.3.2."""

    LAST = 0
    MORE_PROPOSALS = 2
    MORE_TRANSFORMS = 3


class ProtocolId(IntEnum):
    """Protocol ID of proposals, notifies and deletes, RFC 7296 §3.3.1."""

    IKE = 1
    AH = 2
    ESP = 3


class TransformType(IntEnum):
    """Transform Type, RFC 7296 §3.3.2; ADDKE1-7 from RFC 9370 §2.2.1."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    KE = 4  # "Diffie-Hellman Group" in RFC 7296, "Key Exchange Method" since RFC 9370
    ESN = 5
    ADDKE1 = 6
    ADDKE2 = 7
    ADDKE3 = 8
    ADDKE4 = 9
    ADDKE5 = 10
    ADDKE6 = 11
    ADDKE7 = 12


DH = TransformType.KE


class EncrId(IntEnum):
    """Transform Type 1 (Encryption Algorithm) IDs, RFC 7296 §3.3.2 and IANA."""

    DES_IV64 = 1
    DES = 2
    TRIPLE_DES = 3
    RC5 = 4
    IDEA = 5
    CAST = 6
    BLOWFISH = 7
    THREE_IDEA = 8
    DES_IV32 = 9
    NULL = 11
    AES_CBC = 12
    AES_CTR = 13
    AES_CCM_8 = 14
    AES_CCM_12 = 15
    AES_CCM_16 = 16
    AES_GCM_8 = 18
    AES_GCM_12 = 19
    AES_GCM_16 = 20
    NULL_AUTH_AES_GMAC = 21
    CAMELLIA_CBC = 23
    CAMELLIA_CTR = 24
    CAMELLIA_CCM_8 = 25
    CAMELLIA_CCM_12 = 26
    CAMELLIA_CCM_16 = 27
    CHACHA20_POLY1305 = 28


class PrfId(IntEnum):
    """Transform Type 2 (Pseudorandom Function) IDs, RFC 7296 §3.3.2, RFC 4615, RFC 4868."""

    HMAC_MD5 = 1
    HMAC_SHA1 = 2
    HMAC_TIGER = 3
    AES128_XCBC = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    AES128_CMAC = 8


class IntegId(IntEnum):
    """Transform Type 3 (Integrity Algorithm) IDs, RFC 7296 §3.3.2, RFC 4868, RFC 4543."""

    NONE = 0
    HMAC_MD5_96 = 1
    HMAC_SHA1_96 = 2
    DES_MAC = 3
    KPDK_MD5 = 4
    AES_XCBC_96 = 5
    HMAC_MD5_128 = 6
    HMAC_SHA1_160 = 7
    AES_CMAC_96 = 8
    AES_128_GMAC = 9
    AES_192_GMAC = 10
    AES_256_GMAC = 11
    HMAC_SHA2_256_128 = 12
    HMAC_SHA2_384_192 = 13
    HMAC_SHA2_512_256 = 14


class KeMethod(IntEnum):
    """Transform Type 4 (Key Exchange Method) IDs: RFC 7296 §3.3.2, RFC 3526, RFC 5114,
    RFC 5903, RFC 6954, RFC 8031, RFC 9385, draft-ietf-ipsecme-ikev2-mlkem."""

    NONE = 0
    MODP_768 = 1
    MODP_1024 = 2
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
    BRAINPOOL_P224 = 27
    BRAINPOOL_P256 = 28
    BRAINPOOL_P384 = 29
    BRAINPOOL_P512 = 30
    CURVE25519 = 31
    CURVE448 = 32
    GOST3410_2012_256 = 33
    GOST3410_2012_512 = 34
    ML_KEM_512 = 35
    ML_KEM_768 = 36
    ML_KEM_1024 = 37


class EsnId(IntEnum):
    """Transform Type 5 (Extended Sequence Numbers) IDs, RFC 7296 §3.3.2."""

    NO_ESN = 0
    ESN = 1


class TransformAttribute(IntEnum):
    """Transform attribute types, RFC 7296 §3.3.5 (Key Length is always TV)."""

    KEY_LENGTH = 14


class IdType(IntEnum):
    """Identification types of IDi / IDr, RFC 7296 §3.5."""

    IPV4_ADDR = 1
    FQDN = 2
    RFC822_ADDR = 3
    IPV6_ADDR = 5
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11


class CertEncoding(IntEnum):
    """Certificate encodings of CERT / CERTREQ, RFC 7296 §3.6; RFC 4806."""

    PKCS7_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    KERBEROS_TOKEN = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10
    RAW_RSA_KEY = 11
    HASH_URL_X509_CERT = 12
    HASH_URL_X509_BUNDLE = 13
    OCSP_CONTENT = 14  # RFC 4806


class AuthMethod(IntEnum):
    """Authentication methods of AUTH, RFC 7296 §3.8; RFC 4754, RFC 6467, RFC 7619, RFC 7427."""

    RSA_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DSS_SIGNATURE = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    GSPM = 12
    NULL = 13
    DIGITAL_SIGNATURE = 14


class NotifyType(IntEnum):
    """Notify Message Types, RFC 7296 §3.10.1 and IANA.

    Error types are below 16384 (RFC 7296 §3.10.1; 40-41 RFC 4555, 42 RFC 5026); status
    types are 16384 and above (RFC 7296, RFC 4555, RFC 5685, RFC 5723, RFC 7383, RFC 7427,
    RFC 8784, RFC 9242, RFC 9347, RFC 9370).
    """

    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    UNACCEPTABLE_ADDRESSES = 40
    UNEXPECTED_NAT_DETECTED = 41
    USE_ASSIGNED_HoA = 42
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44

    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396
    ADDITIONAL_IP4_ADDRESS = 16397
    ADDITIONAL_IP6_ADDRESS = 16398
    NO_ADDITIONAL_ADDRESSES = 16399
    UPDATE_SA_ADDRESSES = 16400
    COOKIE2 = 16401
    NO_NATS_ALLOWED = 16402
    AUTH_LIFETIME = 16403
    MULTIPLE_AUTH_SUPPORTED = 16404
    ANOTHER_AUTH_FOLLOWS = 16405
    REDIRECT_SUPPORTED = 16406
    REDIRECT = 16407
    REDIRECTED_FROM = 16408
    TICKET_LT_OPAQUE = 16409
    TICKET_REQUEST = 16410
    TICKET_ACK = 16411
    TICKET_NACK = 16412
    TICKET_OPAQUE = 16413
    LINK_ID = 16414
    USE_WESP_MODE = 16415
    ROHC_SUPPORTED = 16416
    EAP_ONLY_AUTHENTICATION = 16417
    CHILDLESS_IKEV2_SUPPORTED = 16418
    QUICK_CRASH_DETECTION = 16419
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421
    IKEV2_MESSAGE_ID_SYNC = 16422
    IPSEC_REPLAY_COUNTER_SYNC = 16423
    SECURE_PASSWORD_METHODS = 16424
    PSK_PERSIST = 16425
    PSK_CONFIRM = 16426
    ERX_SUPPORTED = 16427
    IFOM_CAPABILITY = 16428
    SENDER_REQUEST_ID = 16429
    IKEV2_FRAGMENTATION_SUPPORTED = 16430  # RFC 7383
    SIGNATURE_HASH_ALGORITHMS = 16431  # RFC 7427
    USE_PPK = 16435  # RFC 8784
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438  # RFC 9242
    ADDITIONAL_KEY_EXCHANGE = 16441  # RFC 9370
    USE_AGGFRAG = 16442  # RFC 9347

    @property
    def is_error(self) -> bool:
        """Error types are 0..16383, status types 16384..65535 (RFC 7296 §3.10.1)."""
        return self.value < 16384


class TsType(IntEnum):
    """Traffic selector types, RFC 7296 §3.13.1; RFC 4595, RFC 9478."""

    IPV4_ADDR_RANGE = 7
    IPV6_ADDR_RANGE = 8
    FC_ADDR_RANGE = 9  # RFC 4595
    SECLABEL = 10  # RFC 9478


class CfgType(IntEnum):
    """CFG Type of the Configuration payload, RFC 7296 §3.15."""

    CFG_REQUEST = 1
    CFG_REPLY = 2
    CFG_SET = 3
    CFG_ACK = 4


class CfgAttributeType(IntEnum):
    """Configuration attribute types, RFC 7296 §3.15.1; RFC 5026, RFC 5739, RFC 7651, RFC 8598."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    MIP6_HOME_PREFIX = 16  # RFC 5026
    INTERNAL_IP6_LINK = 17  # RFC 5739
    INTERNAL_IP6_PREFIX = 18  # RFC 5739
    HOME_AGENT_ADDRESS = 19
    P_CSCF_IP4_ADDRESS = 20  # RFC 7651
    P_CSCF_IP6_ADDRESS = 21
    INTERNAL_DNS_DOMAIN = 25  # RFC 8598
    INTERNAL_DNSSEC_TA = 26  # RFC 8598


class EapCode(IntEnum):
    """EAP packet codes carried in the EAP payload (RFC 7296 §3.16, RFC 3748 §4)."""

    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


def enum_name(enum_cls: type[IntEnum] | type[IntFlag], value: int) -> str:
    """``NAME (value)`` for a known value, ``unknown (value)`` otherwise."""
    try:
        member = enum_cls(value)
    except ValueError:
        return f"unknown ({value})"
    return f"{member.name} ({value})"
