"""Peer configuration: identities, connections and children.

Laid out like strongSwan's ``swanctl.conf`` connections (local/remote addresses and
identities, authentication, IKE proposals as ordered ISAKMP policies, children with
traffic selectors and ESP transform sets), so a student who learns one reads the
other.  Secrets (the PSK, private keys) never show in ``repr``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509

from ipseclab.errors import ConfigError
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.pools import AddressPool
from ipseclab.wire.v1.constants import IdType
from ipseclab.wire.v1.isakmp import IDPayload

if TYPE_CHECKING:
    from cryptography import x509

    from ipseclab.crypto.certs import LabIdentity

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: swanctl's wildcard for a remote address: any peer may connect (responder only).
ANY = "%any"
#: EAP methods a remote-access connection may use (``local_auth`` / ``remote_auth``), IKEv2's
EAP_METHODS = ("eap-md5",)
#: every ``local_auth`` / ``remote_auth``: EAP (IKEv2) or XAUTH (IKEv1, draft-beaulieu-ike-xauth)
USER_AUTH_METHODS = (*EAP_METHODS, "xauth")


@dataclass(frozen=True)
class Identity:
    """A phase 1 identity (RFC 2407 §4.6.2): ``address``, ``fqdn``, ``user_fqdn`` or ``dn``."""

    kind: str
    value: str | bytes

    def __post_init__(self) -> None:
        if self.kind not in ("address", "fqdn", "user_fqdn", "dn"):
            raise ConfigError(f"unknown identity kind {self.kind!r}")

    @classmethod
    def parse(cls, text: str) -> Identity:
        """An identity in swanctl's syntax, read as strongSwan reads it:

        ``10.0.0.1`` → address; ``@gw.lab`` → fqdn ``gw.lab``; ``@@user`` → user_fqdn
        ``user``; ``user@host`` → user_fqdn; ``C=CH, O=Lab, CN=gw`` → a DN (RDNs in
        encoding order, as strongSwan prints them); anything else → fqdn.
        """
        text = text.strip()
        if text.startswith("@@"):
            return cls("user_fqdn", text[2:])
        if text.startswith("@"):
            return cls("fqdn", text[1:])
        try:
            ipaddress.ip_address(text)
            return cls("address", text)
        except ValueError:
            pass
        if "=" in text:
            return cls("dn", dn_from_text(text))
        return cls("user_fqdn" if "@" in text else "fqdn", text)

    def to_payload(self) -> IDPayload:
        if self.kind == "address":
            return IDPayload.from_address(str(self.value))
        if self.kind == "fqdn":
            return IDPayload.from_fqdn(str(self.value))
        if self.kind == "user_fqdn":
            return IDPayload.from_user_fqdn(str(self.value))
        data = self.value if isinstance(self.value, bytes) else bytes.fromhex(str(self.value))
        return IDPayload(IdType.DER_ASN1_DN, data)

    def __str__(self) -> str:
        """In swanctl's syntax: :meth:`parse` reads it back to the same identity."""
        if self.kind == "dn":
            return dn_to_text(self.value if isinstance(self.value, bytes) else bytes.fromhex(self.value))
        if self.kind == "user_fqdn" and "@" not in str(self.value):
            return f"@@{self.value}"
        return str(self.value)

    def describe(self) -> str:
        """For explanations: the ISAKMP identity type and the value."""
        kinds = {"address": "ID_IPV4_ADDR", "fqdn": "ID_FQDN", "user_fqdn": "ID_USER_FQDN", "dn": "ID_DER_ASN1_DN"}
        return f"{kinds[self.kind]} {self}"


_RDN_SPLIT = re.compile(r"(?<!\\),")


def dn_from_text(text: str) -> bytes:
    """DER of a DN written as strongSwan does (``C=CH, O=Lab, CN=gw``: encoding order)."""
    parts = [p.strip() for p in _RDN_SPLIT.split(text) if p.strip()]
    try:
        name = x509.Name.from_rfc4514_string(",".join(reversed(parts)))
    except ValueError as exc:
        raise ConfigError(f"bad distinguished name {text!r}: {exc}") from None
    return name.public_bytes()


def dn_to_text(der: bytes) -> str:
    """A DN in strongSwan's order (``C=CH, O=Lab, CN=gw``)."""
    try:
        rfc4514 = _name(der).rfc4514_string()
    except (ValueError, TypeError):
        return der.hex()
    return ", ".join(reversed(_RDN_SPLIT.split(rfc4514)))


def _name(der: bytes) -> x509.Name:
    from asn1crypto import x509 as asn1_x509

    parsed = asn1_x509.Name.load(der)
    attrs = []
    for rdn in parsed.chosen:
        for atv in rdn:
            oid = x509.ObjectIdentifier(atv["type"].dotted)
            attrs.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, str(atv["value"].native))]))
    return x509.Name(attrs)


def parse_ts(text: str) -> IpNetwork:
    """A traffic selector: ``10.1.0.0/24`` or a host ``10.1.0.1`` (→ /32)."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ConfigError(f"bad traffic selector {text!r}: {exc}") from None


@dataclass(frozen=True)
class ChildConfig:
    """One IPsec policy: traffic selectors plus the transform sets offered/accepted."""

    name: str
    local_ts: str
    remote_ts: str
    transform_sets: tuple[TransformSet, ...] = (TransformSet(),)

    def __post_init__(self) -> None:
        parse_ts(self.local_ts)
        parse_ts(self.remote_ts)
        if not self.transform_sets:
            raise ConfigError(f"child {self.name}: needs at least one transform set")

    @property
    def local_net(self) -> IpNetwork:
        return parse_ts(self.local_ts)

    @property
    def remote_net(self) -> IpNetwork:
        return parse_ts(self.remote_ts)

    @property
    def pfs_group(self) -> int | None:
        return self.transform_sets[0].pfs_group


#: seconds between the peer deleting an SA and ``close_action = start`` negotiating again:
#: charon deletes a connection's children and then its ISAKMP SA in separate messages, and
#: a new Quick Mode must not start on the ISAKMP SA about to go
CLOSE_ACTION_DELAY = 1.0


@dataclass(frozen=True)
class Connection:
    """A connection to one remote peer (``swanctl.conf`` ``connections.<name>``)."""

    name: str
    remote_address: str
    mode: str = "main"  # "main" | "aggressive"
    children: tuple[ChildConfig, ...] = ()
    remote_port: int = 500
    remote_identity: Identity | None = None
    nat_traversal: bool = True
    force_encapsulation: bool = False
    #: swanctl's ``start_action`` (``none``: wait to be asked or for the peer; ``start``: the
    #: daemon initiates when the configuration is loaded; ``trap``: on demand, when traffic
    #: for one of its children finds no SA — an acquire) and ``close_action`` — what to do
    #: when the peer deletes a child or the ISAKMP SA (``none``/``clear``: stay down, so the
    #: gateway's administrator can take the tunnel down; ``trap``: come back on traffic;
    #: ``start``: negotiate again, after :data:`CLOSE_ACTION_DELAY`); strongSwan's defaults.
    #: Our own lifetimes always renew.
    start_action: str = "none"
    close_action: str = "none"
    #: Dead Peer Detection from our side (RFC 3706), swanctl's names: an R-U-THERE every
    #: ``dpd_delay`` seconds (0: off, charon's default); no acknowledgement for ``dpd_timeout``
    #: seconds and the peer is dead: ``dpd_action`` "clear" deletes its SAs, "restart" also
    #: negotiates anew, "trap" negotiates anew when traffic asks for it
    dpd_delay: float = 0.0
    dpd_timeout: float = 150.0
    dpd_action: str = "clear"
    psk: bytes | None = field(default=None, repr=False)
    version: int = 1  # the IKE version this connection speaks
    #: remote access (IKEv2 Configuration payload, RFC 7296 §3.15): a client asks for virtual IPs
    #: (swanctl's ``vips``, ``0.0.0.0`` = any IPv4 address); a gateway hands them out of its
    #: ``pools`` (names of :attr:`PeerConfig.pools`)
    vips: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    #: how a remote-access user proves itself beyond the IKE policy's ``auth`` (swanctl's second
    #: ``local``/``remote`` round): ``eap-md5`` — a user name and password by EAP inside IKE_AUTH
    #: (IKEv2, RFC 7296 §2.16); ``xauth`` — by XAUTH in a Transaction exchange after phase 1
    #: (IKEv1, draft-beaulieu-ike-xauth). The gateway still proves itself by its policy's
    #: certificate or key. ``local_auth`` on the client, ``remote_auth`` on the gateway.
    #: ``eap_id``: the client's user name (swanctl's ``eap_id`` / ``xauth_id``; default: its IKE identity)
    local_auth: str = ""
    remote_auth: str = ""
    eap_id: str = ""
    #: IKEv1 Mode Config (draft-dukes-ike-mode-cfg §3.1): the client asks for its address (pull,
    #: ``REQUEST``/``REPLY``) or the gateway hands it out unasked (push, ``SET``/``ACK``);
    #: swanctl's ``pull``, the same on both sides
    pull: bool = True

    def __post_init__(self) -> None:
        for key, allowed in (
            ("start_action", ("none", "trap", "start")),
            ("close_action", ("none", "clear", "trap", "start")),
            ("dpd_action", ("clear", "trap", "restart", "none")),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"connection {self.name}: {key} must be {', '.join(allowed)} (got {getattr(self, key)!r})")
        if "trap" in (self.start_action, self.close_action, self.dpd_action) and self.accepts_any:
            raise ConfigError(f"connection {self.name}: trap needs a peer to initiate to, and remote_addrs is {ANY}")
        if self.version not in (1, 2):
            raise ConfigError(f"connection {self.name}: IKE version must be 1 or 2 (got {self.version})")
        if self.mode not in ("main", "aggressive"):
            raise ConfigError(f"connection {self.name}: mode must be 'main' or 'aggressive'")
        for key in ("local_auth", "remote_auth"):
            value = getattr(self, key)
            if value and value not in USER_AUTH_METHODS:
                raise ConfigError(f"connection {self.name}: {key} must be one of {', '.join(USER_AUTH_METHODS)} or empty (got {value!r})")
            if value in EAP_METHODS and self.version != 2:
                raise ConfigError(f"connection {self.name}: {key} = {value!r} is EAP, which IKEv2 carries (version = 2); "
                                  "IKEv1 has xauth")
            if value == "xauth" and self.version != 1:
                raise ConfigError(f"connection {self.name}: {key} = 'xauth' is IKEv1's (version = 1); IKEv2 has eap-md5")
        if self.remote_address != ANY:
            try:
                ipaddress.ip_address(self.remote_address)
            except ValueError:
                raise ConfigError(
                    f"connection {self.name}: remote address {self.remote_address!r} is not an IP address or {ANY}"
                ) from None

    @property
    def accepts_any(self) -> bool:
        """A responder-only connection for peers behind NAT or with dynamic addresses."""
        return self.remote_address == ANY


@dataclass
class PeerConfig:
    """Everything one peer needs: its address, identity, credentials, policies and connections."""

    name: str
    address: str
    port: int = 500
    natt_port: int = 4500
    identity: Identity | None = None
    psk: bytes | None = field(default=None, repr=False)
    credentials: LabIdentity | None = field(default=None, repr=False)
    ca_cert: x509.Certificate | None = field(default=None, repr=False)
    isakmp_policies: list[IsakmpPolicy] = field(default_factory=lambda: [IsakmpPolicy(10)])
    include_default_policy: bool = True
    connections: list[Connection] = field(default_factory=list)
    retransmit_timeout: float = 2.0
    retransmit_tries: int = 5
    natt_keepalive: float = 20.0  # seconds between NAT keepalives when behind a NAT; 0 = none
    dataplane: bool = False  # the daemon runs the ESP data plane (TUN + raw/UDP ESP sockets)
    #: resource bounds (charon's half_open_timeout, block_threshold): a responder's IKE SA that
    #: is not established this long after its first message goes; at most so many at once, in
    #: total and per source address; a failed SA leaves the table after the grace period
    half_open_timeout: float = 30.0
    max_half_open: int = 1000
    max_half_open_per_address: int = 5
    failed_sa_grace: float = 10.0
    #: load shedding: of the datagrams read from a socket at once, first messages from
    #: addresses no connection names (a ``%any`` connection or the default key) beyond this
    #: many are dropped, after everything else is handled; idle batches are never this large
    max_strangers_per_batch: int = 4
    #: IKEv2 (RFC 7296 §2.6): with this many responder IKE SAs half open, a new IKE_SA_INIT
    #: is first answered with a COOKIE it must echo — no state for spoofed sources
    cookie_threshold: int = 10
    #: a remote-access gateway's virtual IP pools (swanctl's ``pools``), used by connections' ``pools``
    pools: list[AddressPool] = field(default_factory=list)
    #: IKEv2 fragmentation (RFC 7383): offered in IKE_SA_INIT; when both support it, an encrypted
    #: message larger than ``fragment_size`` (a whole IP datagram, charon's default 1280) goes as
    #: SKF fragments — an IKE_AUTH with a certificate, an ML-KEM key
    ike_fragmentation: bool = True
    fragment_size: int = 1280
    #: EAP users and their passwords (swanctl's ``secrets.eap-*``): a gateway checks a client's
    #: EAP-MD5 answer with the password of the identity it gave; a client answers with its own
    eap_users: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: groups of users (name → user names) a pool's ``users`` may name: per-group address plans
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.address)
        except ValueError:
            raise ConfigError(f"peer {self.name}: address {self.address!r} is not an IP address") from None
        if self.identity is None:
            self.identity = Identity("address", self.address)
        known = {p.name for p in self.pools}
        for conn in self.connections:
            missing = [name for name in conn.pools if name not in known]
            if missing:
                raise ConfigError(f"connection {conn.name}: pools {missing} are not configured (peer.pools has {sorted(known)})")
        priorities = [p.priority for p in self.isakmp_policies]
        if len(set(priorities)) != len(priorities):
            raise ConfigError(f"peer {self.name}: ISAKMP policy priorities must be unique")

    def connections_for(self, remote_address: str) -> list[Connection]:
        """The connections whose remote address is ``remote_address``, else those with ``%any``."""
        exact = [c for c in self.connections if c.remote_address == remote_address]
        return exact or [c for c in self.connections if c.accepts_any]

    def connection_for(self, remote_address: str) -> Connection | None:
        """The first of :meth:`connections_for`."""
        return next(iter(self.connections_for(remote_address)), None)

    def pool_named(self, name: str) -> AddressPool:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise ConfigError(f"peer {self.name} has no pool named {name!r}")

    def connection_named(self, name: str) -> Connection:
        for conn in self.connections:
            if conn.name == name:
                return conn
        raise ConfigError(f"peer {self.name} has no connection named {name!r}")
