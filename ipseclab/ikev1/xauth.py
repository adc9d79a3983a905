"""IKEv1 remote access after phase 1: XAUTH (draft-beaulieu-ike-xauth) and Mode Config
(draft-dukes-ike-mode-cfg), each in Transaction exchanges (:mod:`ipseclab.ikev1.transaction`).

::

    Client (phase-1 initiator)                      Gateway
    Main Mode with auth method XAUTHInitPreShared (65001) — the PSK proves the machine
                                            <--  HDR*, HASH, ATTR(REQUEST: XAUTH_USER_NAME, XAUTH_USER_PASSWORD)
    HDR*, HASH, ATTR(REPLY: alice, password) -->
                                            <--  HDR*, HASH, ATTR(SET: XAUTH_STATUS = OK | FAIL)
    HDR*, HASH, ATTR(ACK: XAUTH_STATUS)      -->
    HDR*, HASH, ATTR(REQUEST: INTERNAL_IP4_ADDRESS, INTERNAL_IP4_DNS)  -->      Mode Config, pull
                                            <--  HDR*, HASH, ATTR(REPLY: 10.3.0.1, DNS)
    Quick Mode from 10.3.0.1/32

The pre-shared key (group key) authenticates the *device*; XAUTH then asks the *user*
for a name and password — Cisco's and strongSwan's "hybrid" of PSK + XAUTH.  A wrong
password is XAUTH_STATUS = FAIL and the gateway deletes the ISAKMP SA.  Mode Config gives
the client its inside address, which its Quick Modes then propose as IDci; the gateway
accepts no other (and no Quick Mode before XAUTH succeeded).
"""

from __future__ import annotations

import hmac as _hmac  # compare_digest only
import ipaddress
from typing import TYPE_CHECKING

from ipseclab.ikev1.phase1 import xauth_client, xauth_server
from ipseclab.pools import NoAddress
from ipseclab.trace import ErrorEvent, Info
from ipseclab.wire.v1.constants import CfgAttribute, CfgType
from ipseclab.wire.v1.isakmp import Attribute, AttributePayload

if TYPE_CHECKING:
    from ipseclab.ikev1.isakmp_sa import IsakmpSa
    from ipseclab.ikev1.transaction import Transaction

XAUTH_OK, XAUTH_FAIL = 1, 0
_USER, _PASSWORD, _STATUS = CfgAttribute.XAUTH_USER_NAME, CfgAttribute.XAUTH_USER_PASSWORD, CfgAttribute.XAUTH_STATUS


def _empty(attr_type: int) -> Attribute:
    return Attribute(attr_type, b"", tlv=True)


def _text(attr: Attribute | None) -> str:
    return attr.value.decode(errors="replace") if attr is not None and isinstance(attr.value, bytes) else ""


def wants_config(sa: IsakmpSa) -> bool:
    """Does our side, as a client, ask the gateway for a virtual IP (the connection's ``vips``)?"""
    return sa.initiator and sa.connection is not None and bool(sa.connection.vips)


def pushes(sa: IsakmpSa) -> bool:
    """Do we, as a gateway with pools, hand the address out unasked (Mode Config push, ``pull = false``)?"""
    return not sa.initiator and sa.connection is not None and bool(sa.connection.pools) and not sa.connection.pull


def _pulls(sa: IsakmpSa) -> bool:
    return sa.connection is not None and sa.connection.pull


def prepare(sa: IsakmpSa) -> None:
    """Phase 1 is about to be announced: hold the children back while XAUTH / Mode Config run."""
    if xauth_server(sa) or xauth_client(sa):
        sa.user_auth = "pending"
    if xauth_client(sa) or wants_config(sa):
        sa.config_pending = True


def begin(owner, sa: IsakmpSa) -> None:  # noqa: ANN001 - the IKEv1 task manager
    """Phase 1 is up: a gateway asks for the user's name and password; a client without
    XAUTH pulls its address at once; a client with XAUTH waits to be asked."""
    if xauth_server(sa):
        ex = owner.start_transaction(sa)
        ex.send_attributes(AttributePayload(CfgType.REQUEST, _identifier(owner), [_empty(_USER), _empty(_PASSWORD)]))
        owner.emit(Info, sa=sa.ref, message="XAUTH: phase 1 proved the device (its pre-shared key); now we ask the user for "
                   "a name and password (Transaction exchange, ATTR REQUEST)")
    elif pushes(sa):
        _push_config(owner, sa)
    elif not xauth_client(sa) and wants_config(sa) and _pulls(sa):
        _pull_config(owner, sa)


def _identifier(owner) -> int:  # noqa: ANN001
    return int.from_bytes(owner.rng.random_bytes(2), "big")


def on_attributes(owner, ex: Transaction, attr: AttributePayload) -> None:  # noqa: ANN001
    """Route a verified ATTR payload: what it is depends on its type, its attributes and our role."""
    sa = ex.sa
    kinds = {a.type for a in attr.attributes}
    if attr.cfg_type == CfgType.REQUEST and _PASSWORD in kinds:
        _client_login(owner, ex, attr)
    elif attr.cfg_type == CfgType.REPLY and _PASSWORD in kinds and xauth_server(sa):
        _gateway_check(owner, ex, attr)
    elif attr.cfg_type == CfgType.SET and _STATUS in kinds:
        _client_status(owner, ex, attr)
    elif attr.cfg_type == CfgType.SET and CfgAttribute.INTERNAL_IP4_ADDRESS in kinds and wants_config(sa):
        _client_pushed(owner, ex, attr)
    elif attr.cfg_type == CfgType.ACK and _STATUS in kinds and xauth_server(sa):
        _gateway_acked(owner, sa)
    elif attr.cfg_type == CfgType.ACK:
        owner.emit(Info, sa=sa.ref, message="Mode Config: the client acknowledged its address (ACK)")
    elif attr.cfg_type == CfgType.REQUEST and CfgAttribute.INTERNAL_IP4_ADDRESS in kinds:
        _gateway_config(owner, ex, attr)
    elif attr.cfg_type == CfgType.REPLY:
        _client_config(owner, sa, attr)
    elif attr.cfg_type in (CfgType.REQUEST, CfgType.SET):
        ex.send_attributes(AttributePayload(CfgType.REPLY if attr.cfg_type == CfgType.REQUEST else CfgType.ACK, attr.identifier))
        owner.emit(Info, sa=sa.ref, message=f"a Transaction {CfgType(attr.cfg_type).name} we have nothing for: answered empty")


# -- XAUTH ----------------------------------------------------------------------------


def _client_login(owner, ex: Transaction, attr: AttributePayload) -> None:  # noqa: ANN001
    sa = ex.sa
    if not xauth_client(sa):
        ex.send_attributes(AttributePayload(CfgType.REPLY, attr.identifier))
        owner.emit(ErrorEvent, sa=sa.ref, code="XAUTH_NOT_CONFIGURED", message="the gateway asks for an XAUTH user name and "
                   "password, but our connection does not use XAUTH (local_auth = \"xauth\"): answered empty")
        return
    conn = sa.connection
    assert conn is not None
    user = conn.eap_id or (str(owner.config.identity.value) if owner.config.identity else "")
    password = owner.config.eap_users.get(user)
    if password is None:
        owner.peer.delete_ike(sa, f"XAUTH: the gateway asks for {user!r}'s password and we have none: add it to peer.eap_users")
        return
    sa.eap_identity = user
    ex.send_attributes(AttributePayload(CfgType.REPLY, attr.identifier, [Attribute(_USER, user.encode()), Attribute(_PASSWORD, password)]))
    owner.emit(Info, sa=sa.ref, message=f"XAUTH: the gateway asks who we are; we answer user {user!r} and its password "
               "(inside the encrypted ISAKMP SA)")


def _gateway_check(owner, ex: Transaction, attr: AttributePayload) -> None:  # noqa: ANN001
    sa = ex.sa
    user, password = _text(attr.get(_USER)), attr.get(_PASSWORD)
    known = owner.config.eap_users.get(user)
    given = password.value if password is not None and isinstance(password.value, bytes) else b""
    ok = known is not None and _hmac.compare_digest(known, given)
    sa.eap_identity = user
    if ok:
        why = f"XAUTH: user {user!r} gave the right password (XAUTH_STATUS = OK)"
    elif known is None:
        why = f"XAUTH: there is no user {user!r} (known: {', '.join(sorted(owner.config.eap_users)) or 'none'}) — XAUTH_STATUS = FAIL"
    else:
        why = f"XAUTH: the password given for {user!r} is not the one we have: a wrong password (XAUTH_STATUS = FAIL)"
    sa.remote_access = why
    sa.user_auth = "done" if ok else "failed"
    # the verdict now; the ISAKMP SA goes once the client has acknowledged it (or never does)
    owner.emit(Info if ok else ErrorEvent, sa=sa.ref, message=why, **({} if ok else {"code": "AUTHENTICATION_FAILED"}))
    status = owner.start_transaction(sa)
    status.send_attributes(AttributePayload(CfgType.SET, _identifier(owner), [Attribute(_STATUS, XAUTH_OK if ok else XAUTH_FAIL)]))


def _client_status(owner, ex: Transaction, attr: AttributePayload) -> None:  # noqa: ANN001
    sa = ex.sa
    status = attr.get(_STATUS)
    ex.send_attributes(AttributePayload(CfgType.ACK, attr.identifier, [Attribute(_STATUS, status.int_value if status else 0)]))
    if status is None or status.int_value != XAUTH_OK:
        sa.user_auth = "failed"
        owner.emit(ErrorEvent, sa=sa.ref, code="AUTHENTICATION_FAILED",
                   message=f"XAUTH: the gateway refused our login (XAUTH_STATUS = FAIL): the password for {sa.eap_identity!r} "
                   "is wrong, or the gateway has no such user")
        owner.peer.delete_ike(sa, "XAUTH failed", notify_peer=False)
        return
    sa.user_auth = "done"
    owner.emit(Info, sa=sa.ref, message=f"XAUTH: the gateway accepted user {sa.eap_identity!r} (XAUTH_STATUS = OK)")
    if wants_config(sa) and _pulls(sa):
        _pull_config(owner, sa)
    elif wants_config(sa):
        owner.emit(Info, sa=sa.ref, message="Mode Config push: we wait for the gateway to send our address (ATTR SET)")
    else:
        _ready(owner, sa)


def _gateway_acked(owner, sa: IsakmpSa) -> None:  # noqa: ANN001
    if sa.user_auth == "failed":
        owner.peer.delete_ike(sa, str(sa.remote_access or "XAUTH failed"))
    elif pushes(sa):
        _push_config(owner, sa)


# -- Mode Config -------------------------------------------------------------------------


def _pull_config(owner, sa: IsakmpSa) -> None:  # noqa: ANN001
    ex = owner.start_transaction(sa)
    ex.send_attributes(AttributePayload(CfgType.REQUEST, _identifier(owner), [_empty(CfgAttribute.INTERNAL_IP4_ADDRESS),
                                                                              _empty(CfgAttribute.INTERNAL_IP4_NETMASK),
                                                                              _empty(CfgAttribute.INTERNAL_IP4_DNS)]))
    owner.emit(Info, sa=sa.ref, message="Mode Config: we ask the gateway for an inside address, its netmask and DNS servers "
               "(ATTR REQUEST, values left empty)")


def _push_config(owner, sa: IsakmpSa) -> None:  # noqa: ANN001
    """Mode Config push: the gateway sends the address unasked (SET), the client acknowledges."""
    try:
        reply = _leased_attributes(owner, sa)
    except NoAddress as exc:
        owner.emit(ErrorEvent, sa=sa.ref, code="INTERNAL_ADDRESS_FAILURE", message=f"Mode Config: {exc.message}")
        return
    owner.start_transaction(sa).send_attributes(AttributePayload(CfgType.SET, _identifier(owner), reply))


def _leased_attributes(owner, sa: IsakmpSa) -> list[Attribute]:  # noqa: ANN001
    """A lease for the client (:class:`NoAddress` when there is none) as Mode Config attributes."""
    conn = sa.connection
    assert conn is not None
    pool = owner.peer.lease_virtual_ip(sa, f"Mode Config{'' if conn.pull else ' (push)'}: ")
    address = sa.virtual_ip
    assert address is not None
    return ([Attribute(CfgAttribute.INTERNAL_IP4_ADDRESS, ipaddress.IPv4Address(address).packed),
             Attribute(CfgAttribute.INTERNAL_IP4_NETMASK, pool.network.netmask.packed)]
            + [Attribute(CfgAttribute.INTERNAL_IP4_DNS, ipaddress.IPv4Address(d).packed) for d in pool.dns])


def _client_pushed(owner, ex: Transaction, attr: AttributePayload) -> None:  # noqa: ANN001
    ex.send_attributes(AttributePayload(CfgType.ACK, attr.identifier, [_empty(a.type) for a in attr.attributes if a.tlv]))
    _client_config(owner, ex.sa, attr)


def _gateway_config(owner, ex: Transaction, attr: AttributePayload) -> None:  # noqa: ANN001
    sa = ex.sa
    conn = sa.connection
    if xauth_server(sa) and sa.user_auth != "done":
        owner.emit(ErrorEvent, sa=sa.ref, code="XAUTH_REQUIRED", message="Mode Config request before the user logged in "
                   "(XAUTH): no address for an unauthenticated user")
        ex.send_attributes(AttributePayload(CfgType.REPLY, attr.identifier))
        return
    if conn is None or not conn.pools:
        ex.send_attributes(AttributePayload(CfgType.REPLY, attr.identifier))
        owner.emit(Info, sa=sa.ref, message=f"Mode Config: the client asks for an address; connection {conn.name if conn else '?'} "
                   "has no pools: answered without one")
        return
    try:
        reply = _leased_attributes(owner, sa)
    except NoAddress as exc:
        ex.send_attributes(AttributePayload(CfgType.REPLY, attr.identifier))
        owner.emit(ErrorEvent, sa=sa.ref, code="INTERNAL_ADDRESS_FAILURE", message=f"Mode Config: {exc.message}")
        return
    ex.send_attributes(AttributePayload(CfgType.REPLY, attr.identifier, reply))


def _client_config(owner, sa: IsakmpSa, attr: AttributePayload) -> None:  # noqa: ANN001
    address = attr.get(CfgAttribute.INTERNAL_IP4_ADDRESS)
    if address is None or not isinstance(address.value, bytes) or len(address.value) != 4:
        owner.emit(ErrorEvent, sa=sa.ref, code="INTERNAL_ADDRESS_FAILURE", message="Mode Config: the gateway assigned us no "
                   "address (no INTERNAL_IP4_ADDRESS in its REPLY): no child can be set up from a virtual IP")
        owner.peer.delete_ike(sa, "no virtual IP")
        return
    sa.virtual_ip = str(ipaddress.IPv4Address(address.value))
    dns = [str(ipaddress.IPv4Address(a.value)) for a in attr.attributes
           if a.type == CfgAttribute.INTERNAL_IP4_DNS and isinstance(a.value, bytes) and len(a.value) == 4]
    mask = attr.get(CfgAttribute.INTERNAL_IP4_NETMASK)
    inside = ""
    if mask is not None and isinstance(mask.value, bytes) and len(mask.value) == 4:
        net = ipaddress.IPv4Network(f"{sa.virtual_ip}/{ipaddress.IPv4Address(mask.value)}", strict=False)
        inside = f" in the gateway's inside network {net}"
    owner.emit(Info, sa=sa.ref, message=f"Mode Config: the gateway assigned us the virtual IP {sa.virtual_ip}{inside}"
               + (f" and DNS {', '.join(dns)}" if dns else "") + "; our Quick Modes propose it as IDci")
    _ready(owner, sa)


def _ready(owner, sa: IsakmpSa) -> None:  # noqa: ANN001
    sa.config_pending = False
    owner.peer.start_children(sa)


def redacted(plaintext: bytes | None, payloads: list | None) -> bytes | None:
    """``plaintext`` with every XAUTH_USER_PASSWORD value overwritten by ``*`` — what the trace
    keeps of a Transaction message (the password is a secret; its length stays visible)."""
    if plaintext is None or not payloads or not any(isinstance(p, AttributePayload) and p.get(_PASSWORD) for p in payloads):
        return plaintext
    out = bytearray(plaintext)
    pos = 0
    for p in payloads:
        body = p.wire_body()
        if isinstance(p, AttributePayload):
            at = pos + 4 + 4  # generic header, then type, reserved, identifier
            for a in p.attributes:
                size = len(a.encode())
                if a.type == _PASSWORD and size > 4:  # TLV: the value follows type and length
                    out[at + 4 : at + size] = b"*" * (size - 4)
                at += size
        pos += 4 + len(body)
    return bytes(out)
