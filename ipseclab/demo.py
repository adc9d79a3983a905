"""The two-peer demo behind ``ipseclab demo`` and the notebooks.

``left`` (192.0.2.1, protecting 10.1.x.0/24) initiates to ``right`` (198.51.100.1,
protecting 10.2.x.0/24).  Options choose IKEv1 or IKEv2, Main or Aggressive Mode, PSK or RSA
signatures, PFS, the number of IPsec policies (one Quick Mode each), a deliberate
proposal mismatch or wrong PSK, and a seed for reproducible output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipseclab.config import ChildConfig, Connection, Identity, PeerConfig
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet

if TYPE_CHECKING:
    from ipseclab.teaching.lab import LabSession

LEFT_ADDRESS = "192.0.2.1"
RIGHT_ADDRESS = "198.51.100.1"
#: With ``nat=True`` left sits behind a simulated NAT: its own address and the router's public one.
NAT_INSIDE = "192.168.1.0/24"
LEFT_INSIDE_ADDRESS = "192.168.1.2"
NAT_PUBLIC_ADDRESS = "203.0.113.1"
DEMO_PSK = b"ipseclab-demo-psk"
#: the remote-access gateway's pool of virtual IPs, and the DNS server it tells clients
RA_POOL = "10.3.0.0/24"
RA_DNS = "10.2.1.53"


@dataclass
class DemoOptions:
    """What ``ipseclab demo`` can vary."""

    mode: str = "main"
    auth: str = "psk"
    pfs: int | None = None
    policies: int = 1
    mismatch: bool = False
    wrong_psk: bool = False
    seed: int | None = None
    group: int = 14
    left_lifetime: int = 86400
    right_lifetime: int = 86400
    esp_lifetime_left: int = 3600
    esp_lifetime_right: int = 3600
    nat: bool = False
    encap: bool = False
    version: int = 1  # the IKE version both peers speak (``--ike v1|v2``)
    #: IKEv2: an additional ML-KEM key exchange in IKE_INTERMEDIATE (RFC 9242/9370): 36 = ML-KEM-768
    pq: int | None = None
    #: remote access (IKEv2 Configuration payload): left is a road-warrior client that gets a
    #: virtual IP from right's pool 10.3.0.0/24 (:data:`RA_POOL`)
    remote_access: bool = False
    #: remote access: alice proves herself with a password — by EAP-MD5 in IKEv2 (RFC 7296 §2.16), by
    #: XAUTH in IKEv1 — the gateway by its policy's key or certificate; ``wrong_password``: alice
    #: types the wrong one
    eap: bool = False
    wrong_password: bool = False
    #: IKEv1 remote access: Mode Config push (the gateway sends the address unasked, SET/ACK)
    push: bool = False


#: the demo gateway's EAP users (alice is the road warrior)
EAP_USERS = {"alice": b"alice-secret", "bob": b"bob-secret"}


def demo_configs(opts: DemoOptions) -> tuple[PeerConfig, PeerConfig]:
    """Both peers' configurations for the demo."""
    auth = "rsa-sig" if opts.auth == "rsa" else "psk"
    left_policy = IsakmpPolicy(10, "aes128", "sha1", auth, opts.group, opts.left_lifetime, addke=opts.pq)
    right_policy = IsakmpPolicy(
        10, "aes128", "sha256" if opts.mismatch else "sha1", auth, opts.group, opts.right_lifetime, addke=opts.pq
    )
    ts_left = TransformSet("ts1", "aes128", "sha1", "tunnel", opts.pfs, opts.esp_lifetime_left)
    ts_right = TransformSet("ts1", "aes128", "sha1", "tunnel", opts.pfs, opts.esp_lifetime_right)
    left_children = tuple(
        ChildConfig(f"net{i}", f"10.1.{i}.0/24", f"10.2.{i}.0/24", (ts_left,)) for i in range(1, opts.policies + 1)
    )
    right_children = tuple(
        ChildConfig(f"net{i}", f"10.2.{i}.0/24", f"10.1.{i}.0/24", (ts_right,)) for i in range(1, opts.policies + 1)
    )
    left_address = LEFT_INSIDE_ADDRESS if opts.nat else LEFT_ADDRESS
    left = PeerConfig(
        name="left",
        address=left_address,
        identity=Identity("user_fqdn", "left@lab") if opts.mode == "aggressive" else None,
        psk=DEMO_PSK,
        isakmp_policies=[left_policy],
        connections=[Connection("site", RIGHT_ADDRESS, opts.mode, left_children, force_encapsulation=opts.encap,
                                version=opts.version)],
    )
    right = PeerConfig(
        name="right",
        address=RIGHT_ADDRESS,
        identity=Identity("user_fqdn", "right@lab") if opts.mode == "aggressive" else None,
        psk=b"not-the-same-psk" if opts.wrong_psk else DEMO_PSK,
        isakmp_policies=[right_policy],
        # behind a NAT the initiator's address is not known in advance: accept any (swanctl's %any)
        connections=[Connection("site", "%any" if opts.nat else LEFT_ADDRESS, opts.mode, right_children, version=opts.version)],
    )
    if opts.remote_access:
        _remote_access(opts, left, right)
    if opts.auth == "rsa":
        from ipseclab.crypto.certs import issue_peer_cert, make_lab_ca

        ca = make_lab_ca()
        left.credentials = issue_peer_cert(ca, "left", ip_addresses=[left_address])
        right.credentials = issue_peer_cert(ca, "right", ip_addresses=[RIGHT_ADDRESS])
        left.ca_cert = right.ca_cert = ca.cert
    return left, right


def _remote_access(opts: DemoOptions, left: PeerConfig, right: PeerConfig) -> None:
    """Left becomes a road warrior asking for a virtual IP, right its gateway with a pool: the
    client's side of each child is whatever address it is given, the gateway's remote side the pool."""
    import dataclasses

    from ipseclab.pools import AddressPool

    (lconn,), (rconn,) = left.connections, right.connections
    left.identity = Identity("user_fqdn", "alice@lab")
    left.connections = [dataclasses.replace(lconn, vips=("0.0.0.0",), children=tuple(
        dataclasses.replace(c, local_ts="0.0.0.0/0") for c in lconn.children))]
    right.pools = [AddressPool("rw", RA_POOL, dns=(RA_DNS,))]
    right.connections = [dataclasses.replace(rconn, remote_address="%any", pools=("rw",), children=tuple(
        dataclasses.replace(c, remote_ts=RA_POOL) for c in rconn.children))]
    if opts.push:
        left.connections = [dataclasses.replace(left.connections[0], pull=False)]
        right.connections = [dataclasses.replace(right.connections[0], pull=False)]
    if opts.eap:  # the user's password: EAP-MD5 in IKEv2, XAUTH in IKEv1
        method = "eap-md5" if opts.version == 2 else "xauth"
        left.connections = [dataclasses.replace(left.connections[0], local_auth=method, eap_id="alice")]
        left.eap_users = {"alice": b"alice-typo" if opts.wrong_password else EAP_USERS["alice"]}
        right.connections = [dataclasses.replace(right.connections[0], remote_auth=method)]
        right.eap_users = dict(EAP_USERS)


def make_demo(opts: DemoOptions) -> LabSession:
    """Both peers on an in-memory network, not yet started (call ``network.initiate``)."""
    from ipseclab.teaching.lab import LabSession

    return LabSession(opts, seed=None, start=False)


def run_demo(opts: DemoOptions) -> LabSession:
    """Run the demo to completion (or failure) on the in-memory network."""
    from ipseclab.teaching.lab import LabSession

    session = LabSession(opts, seed=None)
    session.run_to_end()
    return session
