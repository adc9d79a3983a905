"""IKEv2 payload bodies other than SA, RFC 7296 §3.4-§3.16 and RFC 7383 §2.5.

Each payload is a dataclass with ``payload_type``, ``encode_body()`` (the body without
the 4-byte generic payload header of §3.2) and ``decode_body(body, offset)`` where
``offset`` is the absolute position of ``body``, used in every ParseError.

* KE (§3.4), IDi / IDr (§3.5), CERT (§3.6), CERTREQ (§3.7), AUTH (§3.8), Ni / Nr (§3.9),
  N (§3.10), D (§3.11), V (§3.12), TSi / TSr with traffic selectors (§3.13), SK (§3.14,
  kept opaque: IV, ciphertext, padding and ICV), CP with attributes (§3.15), EAP (§3.16),
  SKF (RFC 7383 §2.5, opaque like SK), and unknown payloads (§3.2, Critical bit kept).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import ClassVar, Self

from ipseclab.errors import ParseError
from ipseclab.wire.base import (
    CertBody,
    CertReqBody,
    DataPayload,
    PayloadBase,
    check_uint,
    encode_delete_fields,
    encode_notify_fields,
    read_delete_fields,
    read_notify_fields,
)
from ipseclab.wire.reader import Reader
from ipseclab.wire.v2.constants import IdType, PayloadType, TsType

__all__ = [
    "AuthPayload",
    "CPPayload",
    "CertPayload",
    "CertReqPayload",
    "ConfigAttribute",
    "DeletePayload",
    "EAPPayload",
    "EncryptedFragmentPayload",
    "EncryptedPayload",
    "IDiPayload",
    "IDrPayload",
    "KEPayload",
    "NONCE_MAX",
    "NONCE_MIN",
    "NoncePayload",
    "NotifyPayload",
    "TSiPayload",
    "TSrPayload",
    "TrafficSelector",
    "UnknownPayload",
    "UnknownSelector",
    "VendorIDPayload",
]

NONCE_MIN = 16  # RFC 7296 §3.9
NONCE_MAX = 256

Address = IPv4Address | IPv6Address


def _addr(ip: str | Address) -> Address:
    return ipaddress.ip_address(ip) if isinstance(ip, str) else ip


# -- Key Exchange -------------------------------------------------------------------


@dataclass
class KEPayload(PayloadBase):
    """Key Exchange payload, RFC 7296 §3.4: Key Exchange Method number and public value."""

    payload_type: ClassVar[int] = PayloadType.KE

    group: int
    data: bytes

    def encode_body(self) -> bytes:
        """Method number, RESERVED, key exchange data."""
        return (
            check_uint(self.group, 16, "KE method").to_bytes(2, "big") + b"\0\0" + bytes(self.data)
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode method number and data."""
        reader = Reader(body, offset)
        group = reader.u16("KE method")
        reader.take(2, "KE reserved")
        return cls(group, reader.rest(), raw=bytes(body))


# -- Identification -------------------------------------------------------------------

_ID_ADDR_LENGTHS = {IdType.IPV4_ADDR: 4, IdType.IPV6_ADDR: 16}


def id_value(id_type: int, data: bytes) -> Address | str | bytes:
    """Interpret identification data (RFC 7296 §3.5); ValueError if malformed."""
    want = _ID_ADDR_LENGTHS.get(id_type)
    if want is not None:
        if len(data) != want:
            raise ValueError(f"ID type {id_type} needs {want} bytes of data, got {len(data)}")
        return IPv4Address(data) if want == 4 else IPv6Address(data)
    if id_type in (IdType.FQDN, IdType.RFC822_ADDR):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"identity is not valid UTF-8: {exc.reason}") from None
    return bytes(data)


@dataclass
class _IdPayload(PayloadBase):
    """Identification payload body, RFC 7296 §3.5: ID Type, RESERVED (3), data."""

    id_type: int
    data: bytes

    @classmethod
    def from_address(cls, ip: str | Address) -> Self:
        """ID_IPV4_ADDR / ID_IPV6_ADDR."""
        addr = _addr(ip)
        return cls(IdType.IPV4_ADDR if addr.version == 4 else IdType.IPV6_ADDR, addr.packed)

    @classmethod
    def from_fqdn(cls, name: str) -> Self:
        """ID_FQDN."""
        return cls(IdType.FQDN, name.encode("utf-8"))

    @classmethod
    def from_rfc822(cls, email: str) -> Self:
        """ID_RFC822_ADDR."""
        return cls(IdType.RFC822_ADDR, email.encode("utf-8"))

    @property
    def value(self) -> Address | str | bytes:
        """The identity as an address, a str (FQDN, RFC822) or bytes; ParseError if malformed."""
        try:
            return id_value(self.id_type, self.data)
        except ValueError as exc:
            raise ParseError(str(exc), 0) from None

    def encode_body(self) -> bytes:
        """ID type, RESERVED, identification data."""
        return bytes([check_uint(self.id_type, 8, "ID type"), 0, 0, 0]) + bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode and validate the identification data for its type."""
        reader = Reader(body, offset)
        id_type = reader.u8("ID type")
        reader.take(3, "ID reserved")
        data = reader.rest()
        try:
            id_value(id_type, data)
        except ValueError as exc:
            raise ParseError(str(exc), offset + 4) from None
        return cls(id_type, data, raw=bytes(body))


@dataclass
class IDiPayload(_IdPayload):
    """Identification - Initiator payload, RFC 7296 §3.5."""

    payload_type: ClassVar[int] = PayloadType.IDi


@dataclass
class IDrPayload(_IdPayload):
    """Identification - Responder payload, RFC 7296 §3.5."""

    payload_type: ClassVar[int] = PayloadType.IDr


# -- Certificates and authentication -------------------------------------------------


@dataclass
class CertPayload(CertBody):
    """Certificate payload, RFC 7296 §3.6."""

    payload_type: ClassVar[int] = PayloadType.CERT


@dataclass
class CertReqPayload(CertReqBody):
    """Certificate Request payload, RFC 7296 §3.7.

    For X.509 the Certification Authority field is a concatenation of 20-byte SHA-1
    hashes of CA public keys; :attr:`authorities` splits it.
    """

    payload_type: ClassVar[int] = PayloadType.CERTREQ

    @property
    def authorities(self) -> list[bytes]:
        """The authority field cut into 20-byte SHA-1 hashes (a short tail stays as is)."""
        return [self.authority[i : i + 20] for i in range(0, len(self.authority), 20)]


@dataclass
class AuthPayload(PayloadBase):
    """Authentication payload, RFC 7296 §3.8: Auth Method, RESERVED (3), data."""

    payload_type: ClassVar[int] = PayloadType.AUTH

    method: int
    data: bytes

    def encode_body(self) -> bytes:
        """Auth method, RESERVED, authentication data."""
        return bytes([check_uint(self.method, 8, "auth method"), 0, 0, 0]) + bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode method and data."""
        reader = Reader(body, offset)
        method = reader.u8("auth method")
        reader.take(3, "auth reserved")
        return cls(method, reader.rest(), raw=bytes(body))


@dataclass
class NoncePayload(PayloadBase):
    """Nonce payload (Ni / Nr), RFC 7296 §3.9: 16 to 256 bytes."""

    payload_type: ClassVar[int] = PayloadType.NONCE

    data: bytes

    def encode_body(self) -> bytes:
        """The nonce; ValueError outside 16..256 bytes."""
        if not NONCE_MIN <= len(self.data) <= NONCE_MAX:
            raise ValueError(f"nonce of {len(self.data)} bytes, RFC 7296 §3.9 wants 16..256")
        return bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Keep the nonce; ParseError outside 16..256 bytes."""
        if not NONCE_MIN <= len(body) <= NONCE_MAX:
            raise ParseError(f"nonce of {len(body)} bytes, RFC 7296 §3.9 wants 16..256", offset)
        return cls(bytes(body), raw=bytes(body))


# -- Notify / Delete / Vendor ID -------------------------------------------------------


@dataclass
class NotifyPayload(PayloadBase):
    """Notify payload, RFC 7296 §3.10."""

    payload_type: ClassVar[int] = PayloadType.N

    notify_type: int
    protocol_id: int = 0
    spi: bytes = b""
    data: bytes = b""

    def encode_body(self) -> bytes:
        """Protocol ID, SPI size, notify type, SPI, notification data."""
        return encode_notify_fields(self.protocol_id, self.spi, self.notify_type, self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the notification fields."""
        return cls(*read_notify_fields(Reader(body, offset)), raw=bytes(body))


@dataclass
class DeletePayload(PayloadBase):
    """Delete payload, RFC 7296 §3.11 (IKE SA: SPI size 0 and no SPI)."""

    payload_type: ClassVar[int] = PayloadType.D

    protocol_id: int
    spi_size: int = 0
    spis: list[bytes] = field(default_factory=list)

    def encode_body(self) -> bytes:
        """Protocol ID, SPI size, number of SPIs, SPIs."""
        return encode_delete_fields(self.protocol_id, self.spi_size, self.spis)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the delete fields; the SPIs must fill the body exactly."""
        return cls(*read_delete_fields(Reader(body, offset)), raw=bytes(body))


@dataclass
class VendorIDPayload(DataPayload):
    """Vendor ID payload, RFC 7296 §3.12."""

    payload_type: ClassVar[int] = PayloadType.V


# -- Traffic selectors -----------------------------------------------------------------

_TS_HEADER = 4  # TS Type, IP Protocol ID (or RESERVED), Selector Length
_TS_ADDR_LENGTHS = {TsType.IPV4_ADDR_RANGE: 4, TsType.IPV6_ADDR_RANGE: 16}


@dataclass
class TrafficSelector:
    """An IPv4 or IPv6 address-range traffic selector, RFC 7296 §3.13.1.

    Ports 0..65535 mean any port; OPAQUE is start 65535, end 0 (RFC 4301).
    """

    start_address: Address
    end_address: Address
    ip_protocol: int = 0
    start_port: int = 0
    end_port: int = 0xFFFF

    @classmethod
    def from_network(
        cls, net: str | IPv4Network | IPv6Network, ip_protocol: int = 0, port: int | None = None
    ) -> Self:
        """The whole subnet; one port or all ports."""
        network = ipaddress.ip_network(net) if isinstance(net, str) else net
        lo, hi = (0, 0xFFFF) if port is None else (port, port)
        return cls(network.network_address, network.broadcast_address, ip_protocol, lo, hi)

    @property
    def ts_type(self) -> int:
        """TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE."""
        return TsType.IPV4_ADDR_RANGE if self.start_address.version == 4 else TsType.IPV6_ADDR_RANGE

    def encode(self) -> bytes:
        """TS type, IP protocol, length, ports, start and end address."""
        if self.start_address.version != self.end_address.version:
            raise ValueError("traffic selector ends must be of the same address family")
        addresses = self.start_address.packed + self.end_address.packed
        return (
            bytes([self.ts_type, check_uint(self.ip_protocol, 8, "IP protocol")])
            + (_TS_HEADER + 4 + len(addresses)).to_bytes(2, "big")
            + check_uint(self.start_port, 16, "start port").to_bytes(2, "big")
            + check_uint(self.end_port, 16, "end port").to_bytes(2, "big")
            + addresses
        )


@dataclass
class UnknownSelector:
    """A traffic selector of another type (e.g. TS_FC_ADDR_RANGE, TS_SECLABEL), kept opaque.

    ``second`` is the byte after TS Type (IP Protocol ID or RESERVED); ``data`` is what
    follows the Selector Length field.
    """

    ts_type: int
    data: bytes
    second: int = 0

    def encode(self) -> bytes:
        """TS type, second byte, length, data."""
        total = check_uint(_TS_HEADER + len(self.data), 16, "selector length")
        return (
            bytes([check_uint(self.ts_type, 8, "TS type"), check_uint(self.second, 8, "TS byte")])
            + total.to_bytes(2, "big")
            + bytes(self.data)
        )


Selector = TrafficSelector | UnknownSelector


def _decode_selector(reader: Reader) -> Selector:
    start = reader.pos
    ts_type = reader.u8("TS type")
    second = reader.u8("TS IP protocol")
    length = reader.u16("selector length")
    if length < _TS_HEADER or length - _TS_HEADER > reader.remaining:
        raise reader.fail(f"selector length {length} does not fit the payload", start + 2)
    body = Reader(reader.take(length - _TS_HEADER, "traffic selector"), reader.offset - length + 4)
    size = _TS_ADDR_LENGTHS.get(ts_type)
    if size is None:
        return UnknownSelector(ts_type, body.rest(), second)
    if length != _TS_HEADER + 4 + 2 * size:
        raise reader.fail(
            f"selector length {length} for TS type {ts_type}, expected {_TS_HEADER + 4 + 2 * size}",
            start + 2,
        )
    start_port = body.u16("start port")
    end_port = body.u16("end port")
    lo, hi = body.take(size, "start address"), body.take(size, "end address")
    cls_ = IPv4Address if size == 4 else IPv6Address
    return TrafficSelector(cls_(lo), cls_(hi), second, start_port, end_port)


@dataclass
class _TsPayload(PayloadBase):
    """Traffic Selector payload body, RFC 7296 §3.13: count, RESERVED (3), selectors."""

    selectors: list[Selector]

    def encode_body(self) -> bytes:
        """Number of TSs, RESERVED, the selectors."""
        count = check_uint(len(self.selectors), 8, "number of TSs")
        return bytes([count, 0, 0, 0]) + b"".join(s.encode() for s in self.selectors)

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the announced number of selectors, which must fill the body exactly."""
        reader = Reader(body, offset)
        count = reader.u8("number of TSs")
        reader.take(3, "TS reserved")
        selectors = [_decode_selector(reader) for _ in range(count)]
        if reader.remaining:
            raise reader.fail(f"{reader.remaining} bytes after the {count} traffic selectors")
        return cls(selectors, raw=bytes(body))


@dataclass
class TSiPayload(_TsPayload):
    """Traffic Selector - Initiator payload, RFC 7296 §3.13."""

    payload_type: ClassVar[int] = PayloadType.TSi


@dataclass
class TSrPayload(_TsPayload):
    """Traffic Selector - Responder payload, RFC 7296 §3.13."""

    payload_type: ClassVar[int] = PayloadType.TSr


# -- Encrypted and fragments ------------------------------------------------------------


@dataclass
class EncryptedPayload(PayloadBase):
    """Encrypted and Authenticated payload (SK), RFC 7296 §3.14.

    ``data`` is IV, ciphertext (padded) and ICV as received; ``first_payload`` is the
    generic header's Next Payload, which names the first payload inside the ciphertext.
    """

    payload_type: ClassVar[int] = PayloadType.SK

    first_payload: int
    data: bytes

    def encode_body(self) -> bytes:
        """The opaque IV, ciphertext and ICV."""
        return bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int, first_payload: int = 0) -> Self:
        """Keep the body opaque (no crypto here)."""
        return cls(first_payload, bytes(body), raw=bytes(body))


@dataclass
class EncryptedFragmentPayload(PayloadBase):
    """Encrypted and Authenticated Fragment payload (SKF), RFC 7383 §2.5.

    Fragment Number (from 1), Total Fragments (at least the number), then IV,
    ciphertext and ICV kept opaque. ``first_payload`` (the generic Next Payload) is the
    first inner payload in fragment 1 and 0 in the others.
    """

    payload_type: ClassVar[int] = PayloadType.SKF

    fragment_number: int
    total_fragments: int
    data: bytes
    first_payload: int = 0

    def encode_body(self) -> bytes:
        """Fragment number, total fragments, the opaque encrypted content."""
        return (
            check_uint(self.fragment_number, 16, "fragment number").to_bytes(2, "big")
            + check_uint(self.total_fragments, 16, "total fragments").to_bytes(2, "big")
            + bytes(self.data)
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int, first_payload: int = 0) -> Self:
        """Decode the numbering; ParseError for fragment 0 or a number above the total."""
        reader = Reader(body, offset)
        number = reader.u16("fragment number")
        total = reader.u16("total fragments")
        if number == 0:
            raise reader.fail("fragment number 0 (RFC 7383 §2.5 numbers from 1)", 0)
        if total < number:
            raise reader.fail(f"fragment {number} of only {total}", 2)
        return cls(number, total, reader.rest(), first_payload, raw=bytes(body))


# -- Configuration / EAP -------------------------------------------------------------------


@dataclass
class ConfigAttribute:
    """One configuration attribute, RFC 7296 §3.15.1: R bit, 15-bit type, length, value.

    The R bit is sent as zero and ignored on receipt.
    """

    type: int
    value: bytes = b""

    @classmethod
    def address(cls, attr_type: int, ip: str | Address) -> Self:
        """An attribute whose value is one address (e.g. INTERNAL_IP4_ADDRESS, INTERNAL_IP4_DNS)."""
        return cls(attr_type, _addr(ip).packed)

    def encode(self) -> bytes:
        """Type, length, value."""
        return (
            check_uint(self.type, 15, "attribute type").to_bytes(2, "big")
            + check_uint(len(self.value), 16, "attribute length").to_bytes(2, "big")
            + bytes(self.value)
        )

    @classmethod
    def decode(cls, reader: Reader) -> Self:
        """Read one attribute from ``reader``."""
        attr_type = reader.u16("attribute type") & 0x7FFF
        length = reader.u16("attribute length")
        return cls(attr_type, reader.take(length, "attribute value"))


@dataclass
class CPPayload(PayloadBase):
    """Configuration payload, RFC 7296 §3.15: CFG Type, RESERVED (3), attributes."""

    payload_type: ClassVar[int] = PayloadType.CP

    cfg_type: int
    attributes: list[ConfigAttribute] = field(default_factory=list)

    def get(self, attr_type: int) -> list[bytes]:
        """The values of every attribute of ``attr_type``."""
        return [a.value for a in self.attributes if a.type == attr_type]

    def encode_body(self) -> bytes:
        """CFG type, RESERVED, attributes."""
        return bytes([check_uint(self.cfg_type, 8, "CFG type"), 0, 0, 0]) + b"".join(
            a.encode() for a in self.attributes
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the CFG type and the attributes filling the body."""
        reader = Reader(body, offset)
        cfg_type = reader.u8("CFG type")
        reader.take(3, "CP reserved")
        attributes: list[ConfigAttribute] = []
        while reader.remaining:
            attributes.append(ConfigAttribute.decode(reader))
        return cls(cfg_type, attributes, raw=bytes(body))


@dataclass
class EAPPayload(PayloadBase):
    """EAP payload, RFC 7296 §3.16: one EAP packet (RFC 3748 §4).

    ``data`` is what follows the EAP Length field (Type and Type-Data for Request and
    Response); the EAP Length must equal the payload body length.
    """

    payload_type: ClassVar[int] = PayloadType.EAP

    code: int
    identifier: int
    data: bytes = b""

    @property
    def eap_type(self) -> int | None:
        """The EAP Type of a Request / Response, or None."""
        return self.data[0] if self.data else None

    def encode_body(self) -> bytes:
        """Code, identifier, length, data."""
        length = check_uint(4 + len(self.data), 16, "EAP length")
        return (
            bytes([check_uint(self.code, 8, "EAP code"), check_uint(self.identifier, 8, "EAP id")])
            + length.to_bytes(2, "big")
            + bytes(self.data)
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the EAP header; its Length must match the body."""
        reader = Reader(body, offset)
        code = reader.u8("EAP code")
        identifier = reader.u8("EAP identifier")
        length = reader.u16("EAP length")
        if length != len(body):
            raise reader.fail(f"EAP length {length} but the payload holds {len(body)} bytes", 2)
        return cls(code, identifier, reader.rest(), raw=bytes(body))


# -- Anything else ----------------------------------------------------------------------


@dataclass
class UnknownPayload(PayloadBase):
    """A payload type this codec does not know, kept opaque (RFC 7296 §3.2).

    ``critical`` is the Critical bit of its generic header: a receiver must reject the
    message with UNSUPPORTED_CRITICAL_PAYLOAD (see :attr:`Message.unsupported_critical`).
    """

    payload_type: int
    data: bytes
    critical: bool = False

    def encode_body(self) -> bytes:
        """The opaque data."""
        return bytes(self.data)

    @classmethod
    def decode_body(
        cls, body: bytes, offset: int, payload_type: int = 0, critical: bool = False
    ) -> Self:
        """Keep the body opaque (``offset`` unused)."""
        return cls(payload_type, bytes(body), critical, raw=bytes(body))
