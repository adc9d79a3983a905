"""ISAKMP payload bodies other than SA, RFC 2408 §3.7-§3.16, RFC 2407 §4.6, RFC 3947 §3-§5.

Each payload is a dataclass with ``payload_type``, ``encode_body()`` (the body
without the 4-byte generic header) and ``decode_body(body, offset)`` where
``offset`` is the absolute position of ``body`` used in ParseError.
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
from ipseclab.wire.v1.constants import Doi, IdType, PayloadType, ProtocolId

IdValue = (
    IPv4Address
    | IPv6Address
    | IPv4Network
    | IPv6Network
    | tuple[IPv4Address, IPv4Address]
    | tuple[IPv6Address, IPv6Address]
    | str
    | bytes
)


@dataclass
class KEPayload(DataPayload):
    """Key Exchange payload, RFC 2408 §3.7: the DH public value."""

    payload_type: ClassVar[int] = PayloadType.KE


@dataclass
class HashPayload(DataPayload):
    """Hash payload, RFC 2408 §3.11."""

    payload_type: ClassVar[int] = PayloadType.HASH


@dataclass
class SigPayload(DataPayload):
    """Signature payload, RFC 2408 §3.12."""

    payload_type: ClassVar[int] = PayloadType.SIG


@dataclass
class NoncePayload(DataPayload):
    """Nonce payload, RFC 2408 §3.13."""

    payload_type: ClassVar[int] = PayloadType.NONCE


@dataclass
class VendorIDPayload(DataPayload):
    """Vendor ID payload, RFC 2408 §3.16."""

    payload_type: ClassVar[int] = PayloadType.VID


# -- Identification -----------------------------------------------------------

_ADDR_LENGTHS: dict[int, int] = {
    IdType.IPV4_ADDR: 4,
    IdType.IPV6_ADDR: 16,
    IdType.IPV4_ADDR_SUBNET: 8,
    IdType.IPV6_ADDR_SUBNET: 32,
    IdType.IPV4_ADDR_RANGE: 8,
    IdType.IPV6_ADDR_RANGE: 32,
}


def _address(raw: bytes) -> IPv4Address | IPv6Address:
    return IPv4Address(raw) if len(raw) == 4 else IPv6Address(raw)


def _prefix_from_mask(mask: bytes) -> int:
    bits = len(mask) * 8
    value = int.from_bytes(mask, "big")
    prefix = bin(value).count("1")
    if value != ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1):
        raise ValueError(f"non-contiguous netmask {mask.hex()}")
    return prefix


def id_value(id_type: int, data: bytes) -> IdValue:
    """Interpret identification data per RFC 2407 §4.6.2.1; ValueError if malformed."""
    want = _ADDR_LENGTHS.get(id_type)
    if want is not None and len(data) != want:
        raise ValueError(f"ID type {id_type} needs {want} bytes of data, got {len(data)}")
    if id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        return _address(data)
    half = len(data) // 2
    if id_type in (IdType.IPV4_ADDR_SUBNET, IdType.IPV6_ADDR_SUBNET):
        prefix = _prefix_from_mask(data[half:])
        net = ipaddress.ip_network((int.from_bytes(data[:half], "big"), prefix), strict=False)
        if half == 4:
            return IPv4Network(net)
        return IPv6Network(net)
    if id_type in (IdType.IPV4_ADDR_RANGE, IdType.IPV6_ADDR_RANGE):
        return (_address(data[:half]), _address(data[half:]))  # type: ignore[return-value]
    if id_type in (IdType.FQDN, IdType.USER_FQDN):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"identity is not valid UTF-8: {exc.reason}") from None
    return bytes(data)


def _as_address(ip: str | IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    return ipaddress.ip_address(ip) if isinstance(ip, str) else ip


@dataclass
class IDPayload(PayloadBase):
    """Identification payload, RFC 2408 §3.8 with the IPsec DOI layout of RFC 2407 §4.6.2.

    ``protocol_id`` / ``port`` are the IPsec DOI "DOI specific ID data".
    """

    payload_type: ClassVar[int] = PayloadType.ID

    id_type: int
    data: bytes
    protocol_id: int = 0
    port: int = 0

    @classmethod
    def from_address(
        cls, ip: str | IPv4Address | IPv6Address, protocol_id: int = 0, port: int = 0
    ) -> Self:
        """ID_IPV4_ADDR / ID_IPV6_ADDR (RFC 2407 §4.6.2.2, §4.6.2.6)."""
        addr = _as_address(ip)
        id_type = IdType.IPV4_ADDR if addr.version == 4 else IdType.IPV6_ADDR
        return cls(id_type, addr.packed, protocol_id, port)

    @classmethod
    def from_subnet(
        cls, net: str | IPv4Network | IPv6Network, protocol_id: int = 0, port: int = 0
    ) -> Self:
        """ID_IPV4_ADDR_SUBNET / ID_IPV6_ADDR_SUBNET: address then netmask (RFC 2407 §4.6.2.5, .7)."""
        network = ipaddress.ip_network(net) if isinstance(net, str) else net
        id_type = IdType.IPV4_ADDR_SUBNET if network.version == 4 else IdType.IPV6_ADDR_SUBNET
        data = network.network_address.packed + network.netmask.packed
        return cls(id_type, data, protocol_id, port)

    @classmethod
    def from_range(
        cls,
        first: str | IPv4Address | IPv6Address,
        last: str | IPv4Address | IPv6Address,
        protocol_id: int = 0,
        port: int = 0,
    ) -> Self:
        """ID_IPV4_ADDR_RANGE / ID_IPV6_ADDR_RANGE (RFC 2407 §4.6.2.9, .10)."""
        lo, hi = _as_address(first), _as_address(last)
        if lo.version != hi.version:
            raise ValueError("range ends must be of the same address family")
        id_type = IdType.IPV4_ADDR_RANGE if lo.version == 4 else IdType.IPV6_ADDR_RANGE
        return cls(id_type, lo.packed + hi.packed, protocol_id, port)

    @classmethod
    def from_fqdn(cls, name: str, protocol_id: int = 0, port: int = 0) -> Self:
        """ID_FQDN (RFC 2407 §4.6.2.3)."""
        return cls(IdType.FQDN, name.encode("utf-8"), protocol_id, port)

    @classmethod
    def from_user_fqdn(cls, email: str, protocol_id: int = 0, port: int = 0) -> Self:
        """ID_USER_FQDN (RFC 2407 §4.6.2.4)."""
        return cls(IdType.USER_FQDN, email.encode("utf-8"), protocol_id, port)

    @property
    def value(self) -> IdValue:
        """The identity as a Python object (address, network, (first, last), str or bytes).

        Raises ParseError (offset 0) for data that does not fit ``id_type``;
        decoded payloads have already been validated.
        """
        try:
            return id_value(self.id_type, self.data)
        except ValueError as exc:
            raise ParseError(str(exc), 0) from None

    def encode_body(self) -> bytes:
        """ID type, protocol id, port, identification data."""
        return (
            bytes(
                [
                    check_uint(self.id_type, 8, "ID type"),
                    check_uint(self.protocol_id, 8, "ID protocol"),
                ]
            )
            + check_uint(self.port, 16, "ID port").to_bytes(2, "big")
            + bytes(self.data)
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode and validate the identification data for its type."""
        reader = Reader(body, offset)
        id_type = reader.u8("ID type")
        protocol_id = reader.u8("ID protocol")
        port = reader.u16("ID port")
        data = reader.rest()
        try:
            id_value(id_type, data)
        except ValueError as exc:
            raise ParseError(str(exc), offset + 4) from None
        return cls(id_type, data, protocol_id, port, raw=bytes(body))


# -- Certificates ---------------------------------------------------------------


@dataclass
class CertPayload(CertBody):
    """Certificate payload, RFC 2408 §3.9."""

    payload_type: ClassVar[int] = PayloadType.CERT


@dataclass
class CertReqPayload(CertReqBody):
    """Certificate Request payload, RFC 2408 §3.10."""

    payload_type: ClassVar[int] = PayloadType.CR


# -- Notification / Delete --------------------------------------------------------


@dataclass
class NotifyPayload(PayloadBase):
    """Notification payload, RFC 2408 §3.14 (status types RFC 2407 §4.6.3, RFC 3706)."""

    payload_type: ClassVar[int] = PayloadType.N

    notify_type: int
    protocol_id: int = ProtocolId.ISAKMP
    spi: bytes = b""
    data: bytes = b""
    doi: int = Doi.IPSEC

    def encode_body(self) -> bytes:
        """DOI, protocol id, SPI size, notify type, SPI, notification data."""
        return check_uint(self.doi, 32, "DOI").to_bytes(4, "big") + encode_notify_fields(
            self.protocol_id, self.spi, self.notify_type, self.data
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the notification fields."""
        reader = Reader(body, offset)
        doi = reader.u32("notify DOI")
        return cls(*read_notify_fields(reader), doi, raw=bytes(body))


@dataclass
class DeletePayload(PayloadBase):
    """Delete payload, RFC 2408 §3.15."""

    payload_type: ClassVar[int] = PayloadType.D

    protocol_id: int
    spi_size: int
    spis: list[bytes] = field(default_factory=list)
    doi: int = Doi.IPSEC

    def encode_body(self) -> bytes:
        """DOI, protocol id, SPI size, number of SPIs, SPIs."""
        return check_uint(self.doi, 32, "DOI").to_bytes(4, "big") + encode_delete_fields(
            self.protocol_id, self.spi_size, self.spis
        )

    @classmethod
    def decode_body(cls, body: bytes, offset: int) -> Self:
        """Decode the delete fields; the SPIs must fill the body exactly."""
        reader = Reader(body, offset)
        doi = reader.u32("delete DOI")
        return cls(*read_delete_fields(reader), doi, raw=bytes(body))


# -- NAT traversal ---------------------------------------------------------------


@dataclass
class NatDPayload(PayloadBase):
    """NAT-Discovery payload, RFC 3947 §3.2 (type 20; 130 in the drafts)."""

    data: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        """NAT_D, or NAT_D_DRAFT for draft-ietf-ipsec-nat-t-ike-02/03 peers."""
        return PayloadType.NAT_D_DRAFT if self.draft else PayloadType.NAT_D

    def encode_body(self) -> bytes:
        """The hash."""
        return bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int, draft: bool = False) -> Self:
        """Keep the hash (``offset`` unused)."""
        return cls(bytes(body), draft, raw=bytes(body))


@dataclass
class NatOAPayload(PayloadBase):
    """NAT Original Address payload, RFC 3947 §5.2 (type 21; 131 in the drafts).

    Layout: ID type (IPV4_ADDR or IPV6_ADDR), 3 reserved bytes, the address.
    """

    id_type: int
    address: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        """NAT_OA, or NAT_OA_DRAFT for draft peers."""
        return PayloadType.NAT_OA_DRAFT if self.draft else PayloadType.NAT_OA

    @property
    def value(self) -> IPv4Address | IPv6Address:
        """The original address as a Python object."""
        return _address(self.address)

    def encode_body(self) -> bytes:
        """ID type, reserved, address."""
        return bytes([check_uint(self.id_type, 8, "ID type"), 0, 0, 0]) + bytes(self.address)

    @classmethod
    def decode_body(cls, body: bytes, offset: int, draft: bool = False) -> Self:
        """Decode and check that the address length matches the ID type."""
        reader = Reader(body, offset)
        id_type = reader.u8("NAT-OA ID type")
        reader.take(3, "NAT-OA reserved")
        address = reader.rest()
        want = {IdType.IPV4_ADDR: 4, IdType.IPV6_ADDR: 16}.get(id_type)
        if want is None:
            raise ParseError(f"NAT-OA ID type {id_type} is not IPV4_ADDR or IPV6_ADDR", offset)
        if len(address) != want:
            raise ParseError(f"NAT-OA address is {len(address)} bytes, expected {want}", offset + 4)
        return cls(id_type, address, draft, raw=bytes(body))


# -- Anything else ----------------------------------------------------------------


@dataclass
class UnknownPayload(PayloadBase):
    """A payload type this codec does not know; kept opaque (RFC 2408 §3.2).

    ``critical`` sets the high bit of the generic header's RESERVED byte
    (IKEv2-style); such payloads are rejected on decode.
    """

    payload_type: int
    data: bytes
    critical: bool = False

    def encode_body(self) -> bytes:
        """The opaque data."""
        return bytes(self.data)

    @classmethod
    def decode_body(cls, body: bytes, offset: int, payload_type: int = 0) -> Self:
        """Keep the body opaque (``offset`` unused)."""
        return cls(payload_type, bytes(body), raw=bytes(body))
