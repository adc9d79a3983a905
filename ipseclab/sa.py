"""SA records every IKE version shares: what the version-neutral peer knows of an IKE SA
(:class:`IkeSa`) and the child SAs it negotiates (:class:`IpsecSaPair`).

One child negotiation (IKEv1 Quick Mode, RFC 2409 §5.5) creates a *pair*: an
inbound SA whose SPI this peer chose and an outbound SA whose SPI the other peer
chose.  Keys are secret (hidden from repr); :meth:`IpsecSaPair.summary` is what the
SA table and trace events show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ipseclab.config import Connection
    from ipseclab.trace import Address, SaRef

#: the state of an IKE SA once deleted, in every version
DELETED = "DELETED"


class IkeSa(Protocol):
    """What the version-neutral peer reads and writes of an IKE SA (IKEv1: ISAKMP SA)."""

    initiator: bool
    local: Address
    remote: Address
    connection: Connection | None
    state: Any
    nat_t: int
    nat_local: bool
    floated: bool
    established_at: float | None
    created_at: float
    expires_at: float | None
    rekey_at: float | None
    replaces: bytes | None
    initial_contact: bool
    next_keepalive: float | None
    dpd_at: float | None
    dpd_seq: int
    dpd_unacked_since: float | None
    children: list[IpsecSaPair]
    #: remote access: who the peer proved to be (IKE identity; EAP or XAUTH user), the virtual
    #: IP assigned (client) or leased out (gateway), and a gateway's lease (pool, identity)
    peer_identity: str
    eap_identity: str
    virtual_ip: str | None
    lease: tuple[str, str] | None

    @property
    def spi_i(self) -> bytes: ...

    @property
    def ref(self) -> SaRef: ...

    @property
    def established(self) -> bool: ...

    @property
    def failed(self) -> bool: ...

    @property
    def address_proven(self) -> bool:
        """Has the initiator shown it receives at its address (echoed our SPI)?"""

    @property
    def lifetime(self) -> int | None: ...

    @property
    def suite(self) -> str | None:
        """The negotiated algorithms in words, for the SA table."""

class ChildState(StrEnum):
    """Life of a pair of IPsec SAs: in use, being replaced by a rekey, gone."""

    ESTABLISHED = "ESTABLISHED"
    REKEYING = "REKEYING"
    #: the peer negotiated a newer pair for the same child (its rekey, as responder we do not
    #: delete the old one: the rekey's initiator does, or the lifetime ends it)
    REKEYED = "REKEYED"
    DELETED = "DELETED"


#: soft limits (rekey) are this fraction of the hard ones, as strongSwan's defaults (RFC 4301 §4.4.2.1)
SOFT_FRACTION = 0.9
#: a connection's responder re-authenticates later than its initiator, so that normally only
#: one side starts (when its own lifetime is the shorter, it still does, in time)
RESPONDER_REAUTH_FRACTION = 0.95


@dataclass
class IpsecSa:
    """One direction of an ESP SA (RFC 4303): SPI, addresses and keying material."""

    spi: int
    src: str
    dst: str
    encryption: str
    integrity: str
    enc_key: bytes = field(repr=False)
    integ_key: bytes = field(repr=False)
    esp_id: int = 0
    key_bits: int | None = None
    auth_alg: int | None = None
    packets: int = 0
    bytes: int = 0


@dataclass
class IpsecSaPair:
    """Inbound and outbound SAs of one child, with what they protect and until when."""

    child: str
    isakmp_sa: SaRef  # the IKE SA it was negotiated under
    inbound: IpsecSa
    outbound: IpsecSa
    local_ts: str
    remote_ts: str
    mode: str
    udp_encapsulated: bool
    pfs_group: int | None
    lifetime: int
    established_at: float
    expires_at: float
    message_id: int
    state: ChildState = ChildState.ESTABLISHED
    #: (initiator, responder) original addresses from NAT-OA, for transport-mode checksum fix-up
    original_addresses: tuple[str, str] | None = None
    #: byte limit (kilobytes) agreed in Quick Mode, RFC 2407 §4.5; ``None`` = no limit
    life_kilobytes: int | None = None
    #: local packet limit (data plane only; IKEv1 cannot negotiate it)
    life_packets: int | None = None
    #: local soft limits (rekey) in bytes and packets; ``None``: 90 % of the hard ones
    rekey_bytes: int | None = None
    rekey_packets: int | None = None
    #: when the initiator starts a replacement Quick Mode (soft lifetime, RFC 4301 §4.4.2.1)
    rekey_at: float | None = None

    @property
    def ref(self) -> SaRef:
        return self.isakmp_sa.negotiation(self.child, self.message_id).with_spis(self.inbound.spi, self.outbound.spi)

    def summary(self) -> dict[str, object]:
        return {
            "child": self.child,
            "spi_in": f"{self.inbound.spi:08x}",
            "spi_out": f"{self.outbound.spi:08x}",
            "local_ts": self.local_ts,
            "remote_ts": self.remote_ts,
            "encryption": self.inbound.encryption,
            "integrity": self.inbound.integrity,
            "mode": self.mode,
            "udp_encapsulated": self.udp_encapsulated,
            "pfs_group": self.pfs_group,
            "lifetime": self.lifetime,
            "life_kilobytes": self.life_kilobytes,
            "life_packets": self.life_packets,
            "state": str(self.state),
        }
