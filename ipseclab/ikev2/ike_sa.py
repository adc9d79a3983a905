"""The IKEv2 IKE SA (RFC 7296 §2): SPIs, the negotiated suite, keys, message IDs.

Its life (charon's ``ike_sa_state_t``)::

    initiator  CONNECTING ──IKE_SA_INIT──▶ AUTHENTICATING ──IKE_AUTH──▶ ESTABLISHED
    responder  CREATED    ──IKE_SA_INIT──▶ AUTHENTICATING ──IKE_AUTH──▶ ESTABLISHED
    any        ──error──▶ FAILED          ESTABLISHED ──delete──▶ DELETED

Message IDs (§2.2): each side numbers its own requests from 0; a response carries
the request's ID.  With a window of one (§2.3, the default), ``next_request_id`` is
the ID of our next request and ``expected_request_id`` the ID the peer's next request
must carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ipseclab.trace import SaRef

if TYPE_CHECKING:
    from ipseclab.config import Connection
    from ipseclab.crypto.dh import DHKeyPair
    from ipseclab.crypto.kdf_v2 import IkeKeys
    from ipseclab.crypto.registry_v2 import PrfSpec
    from ipseclab.crypto.sk_cipher import SkCipher
    from ipseclab.ikev2.proposals import IkeChoice
    from ipseclab.sa import IpsecSaPair
    from ipseclab.trace import Address


class IkeState(StrEnum):
    CREATED = "CREATED"
    CONNECTING = "CONNECTING"
    AUTHENTICATING = "AUTHENTICATING"
    ESTABLISHED = "ESTABLISHED"
    DELETING = "DELETING"
    FAILED = "FAILED"
    DELETED = "DELETED"


@dataclass
class IkeSaV2:
    """State of one IKEv2 IKE SA, shared by the exchanges that run under it."""

    spi_i: bytes
    spi_r: bytes
    initiator: bool
    local: Address
    remote: Address
    connection: Connection | None = None
    state: IkeState = IkeState.CREATED
    choice: IkeChoice | None = None
    prf: PrfSpec | None = None
    cipher: SkCipher | None = None
    dh: DHKeyPair | None = field(default=None, repr=False)
    ke_i: bytes = b""
    ke_r: bytes = b""
    ni: bytes = b""
    nr: bytes = b""
    keys: IkeKeys | None = field(default=None, repr=False)
    #: the IKE_SA_INIT request and response as sent (RealMessage1/2 of §2.15)
    init_request: bytes = b""
    init_response: bytes = b""
    cookie: bytes = b""  # a responder's COOKIE to repeat (§2.6)
    init_attempts: int = 0  # IKE_SA_INIT requests sent (retries after COOKIE / INVALID_KE_PAYLOAD)
    #: RFC 9242/9370: the additional key exchanges done (their methods) and IntAuth so far
    int_rounds: list[int] = field(default_factory=list)
    int_auth_i: bytes = field(default=b"", repr=False)
    int_auth_r: bytes = field(default=b"", repr=False)
    auth_message_id: int = 1  # the IKE_AUTH exchange's Message ID (in IntAuth)
    fragmentation: bool = False  # both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)
    #: remote access: the virtual IP the gateway assigned (client) or leased out (gateway), and
    #: the gateway's lease (pool, client identity) to give back when this SA goes
    virtual_ip: str | None = None
    lease: tuple[str, str] | None = None
    peer_identity: str = ""
    #: EAP (RFC 7296 §2.16): the conversation while IKE_AUTH lasts (the gateway's
    #: :class:`~ipseclab.ikev2.eap.EapServer`), then the identity the client proved with it
    eap: Any = field(default=None, repr=False)
    eap_identity: str = ""
    nat_t: int = 0  # 1 when both sides sent NAT_DETECTION_* notifies
    nat_local: bool = False
    nat_remote: bool = False
    floated: bool = False
    peer_proven: bool = False  # an initiator's IKE_AUTH request decrypted with our keys
    next_request_id: int = 0
    expected_request_id: int = 0
    established_at: float | None = None
    created_at: float = 0.0
    expires_at: float | None = None
    rekey_at: float | None = None
    replaces: bytes | None = None
    initial_contact: bool = False
    next_keepalive: float | None = None
    dpd_at: float | None = None
    dpd_seq: int = 0
    dpd_unacked_since: float | None = None
    children: list[IpsecSaPair] = field(default_factory=list)

    @property
    def ref(self) -> SaRef:
        return SaRef.ike(2, self.spi_i, self.spi_r, self.connection.name if self.connection else "")

    @property
    def established(self) -> bool:
        return self.state == IkeState.ESTABLISHED

    @property
    def failed(self) -> bool:
        return self.state == IkeState.FAILED

    @property
    def address_proven(self) -> bool:
        """The initiator's IKE_AUTH request carried our SPI and opened with the shared keys."""
        return self.initiator or self.peer_proven

    @property
    def lifetime(self) -> int | None:
        return self.choice.lifetime if self.choice else None

    @property
    def suite(self) -> str | None:
        return self.choice.describe() if self.choice else None
