"""Remote access in IKE_AUTH: the Configuration payload (RFC 7296 §3.15, §2.19).

::

    Client (initiator)                          Gateway (responder)
    HDR, SK {IDi, AUTH, CP(CFG_REQUEST), SAi2,
             TSi, TSr}                    -->
                                          <--  HDR, SK {IDr, AUTH, CP(CFG_REPLY), SAr2, TSi, TSr}

The client asks for an INTERNAL_IP4_ADDRESS (and DNS servers) with empty values; the
gateway leases one from its pool — the same one again to an identity that comes back —
replies with it, and narrows the child's TSi to that single address: the client's
traffic inside the tunnel comes from its virtual IP, and the gateway routes that address
into the tunnel (the "static route" a remote-access gateway adds).  A full pool is
INTERNAL_ADDRESS_FAILURE for the child, with the pool named; the IKE SA stays up.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ipseclab.ikev2.exchange import Owner, Reject, Rx
from ipseclab.pools import NoAddress
from ipseclab.trace import Info
from ipseclab.wire.v2.constants import CfgAttributeType, CfgType, NotifyType
from ipseclab.wire.v2.message import ConfigAttribute, CPPayload, Payload

if TYPE_CHECKING:
    from ipseclab.config import Connection
    from ipseclab.ikev2.ike_sa import IkeSaV2


def request(conn: Connection | None) -> list[Payload]:
    """The client's CFG_REQUEST: an IPv4 address and DNS servers, values left empty (§3.15.1)."""
    if conn is None or not conn.vips:
        return []
    return [CPPayload(CfgType.CFG_REQUEST, [ConfigAttribute(CfgAttributeType.INTERNAL_IP4_ADDRESS),
                                            ConfigAttribute(CfgAttributeType.INTERNAL_IP4_DNS)])]


def assign(owner: Owner, sa: IkeSaV2, rx: Rx) -> tuple[list[Payload], ipaddress.IPv4Network | None]:
    """The gateway's side: a lease from the connection's pools, the CFG_REPLY and the /32 the
    child's TSi narrows to; nothing when the client asked for nothing or we have no pool."""
    cp = rx.first(CPPayload)
    conn = sa.connection
    if cp is None or cp.cfg_type != CfgType.CFG_REQUEST or conn is None or not conn.pools:
        return [], None
    if not any(a.type == CfgAttributeType.INTERNAL_IP4_ADDRESS for a in cp.attributes):
        return [], None
    try:
        pool = owner.peer.lease_virtual_ip(sa)
    except NoAddress as exc:
        raise Reject(NotifyType.INTERNAL_ADDRESS_FAILURE, exc.message, fatal=False) from None
    address = sa.virtual_ip
    assert address is not None
    attributes = [ConfigAttribute.address(CfgAttributeType.INTERNAL_IP4_ADDRESS, address)]
    attributes += [ConfigAttribute.address(CfgAttributeType.INTERNAL_IP4_DNS, d) for d in pool.dns]
    return [CPPayload(CfgType.CFG_REPLY, attributes)], ipaddress.IPv4Network(f"{address}/32")


def accept(owner: Owner, sa: IkeSaV2, rx: Rx) -> None:
    """The client's side: the address (and DNS servers) the gateway assigned."""
    conn = sa.connection
    if conn is None or not conn.vips:
        return
    cp = next((p for p in rx.all(CPPayload) if p.cfg_type == CfgType.CFG_REPLY), None)
    addresses = [v for v in cp.get(CfgAttributeType.INTERNAL_IP4_ADDRESS) if len(v) == 4] if cp else []
    if not addresses:
        owner.emit(Info, sa=sa.ref, message="we asked for a virtual IP (vips) and the gateway assigned none (no CFG_REPLY "
                   "with INTERNAL_IP4_ADDRESS): the tunnel carries our own address's traffic only")
        return
    sa.virtual_ip = str(ipaddress.IPv4Address(addresses[0]))
    dns = [str(ipaddress.IPv4Address(v)) for v in cp.get(CfgAttributeType.INTERNAL_IP4_DNS) if len(v) == 4] if cp else []
    owner.emit(Info, sa=sa.ref, message=f"the gateway assigned us the virtual IP {sa.virtual_ip}"
               + (f" and DNS {', '.join(dns)}" if dns else ""))
