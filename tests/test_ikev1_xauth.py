"""IKEv1 remote access between ipseclab peers in memory: Main Mode with XAUTHInitPreShared,
XAUTH (draft-beaulieu-ike-xauth) and Mode Config (draft-dukes-ike-mode-cfg) in Transaction
exchanges, then Quick Mode from the virtual IP — the bytes on the wire, a wrong password, a
client that tries another address, and the lease coming back."""

from __future__ import annotations

from engine_support import events_of, sent

from ipseclab.demo import DemoOptions
from ipseclab.ikev1.quick_mode import payloads_after_hash
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import ErrorEvent, PolicyDecision
from ipseclab.wire.v1.constants import AuthMethod, CfgAttribute, CfgType, IkeAttribute
from ipseclab.wire.v1.isakmp import (
    AttributePayload,
    HashPayload,
    Message,
    SAPayload,
    decode_payloads,
)


def session(**kw) -> LabSession:
    s = LabSession(DemoOptions(seed=4, remote_access=True, eap=True, **kw))
    s.run_to_end()
    return s


def inner(m) -> list:
    return decode_payloads(Message.decode(m.raw).first_payload, m.plaintext, allow_trailing=True)


def test_xauth_then_mode_config_then_quick_mode_from_the_virtual_ip() -> None:
    s = session()
    msgs = sent(s.events)
    assert [(m.peer, m.exchange, m.summary) for m in msgs if m.exchange != "Main Mode"] == [
        ("right", "Transaction", "HDR*, HASH, ATTR(REQUEST)"),
        ("left", "Transaction", "HDR*, HASH, ATTR(REPLY)"),
        ("right", "Transaction", "HDR*, HASH, ATTR(SET)"),
        ("left", "Transaction", "HDR*, HASH, ATTR(ACK)"),
        ("left", "Transaction", "HDR*, HASH, ATTR(REQUEST)"),
        ("right", "Transaction", "HDR*, HASH, ATTR(REPLY)"),
        ("left", "Quick Mode", "HDR*, HASH(1), SA, Ni, IDci, IDcr"),
        ("right", "Quick Mode", "HDR*, HASH(2), SA, Nr, IDci, IDcr"),
        ("left", "Quick Mode", "HDR*, HASH(3)"),
    ]
    # Main Mode proposes XAUTHInitPreShared (65001): the PSK proves the device, XAUTH the user
    offer = next(p for p in Message.decode(msgs[0].raw).payloads if isinstance(p, SAPayload))
    assert offer.proposals[0].transforms[0].get(IkeAttribute.AUTHENTICATION_METHOD) == AuthMethod.XAUTH_INIT_PSK
    tx = [m for m in msgs if m.exchange == "Transaction"]
    attrs = [next(p for p in inner(m) if isinstance(p, AttributePayload)) for m in tx]
    assert [a.cfg_type for a in attrs] == [CfgType.REQUEST, CfgType.REPLY, CfgType.SET, CfgType.ACK, CfgType.REQUEST, CfgType.REPLY]
    assert attrs[1].get(CfgAttribute.XAUTH_USER_NAME).value == b"alice"
    # the password travels (inside the encrypted ISAKMP SA) but the trace keeps only its length
    assert attrs[1].get(CfgAttribute.XAUTH_USER_PASSWORD).value == b"*" * len(b"alice-secret")
    assert not any(b"alice-secret" in (getattr(e, "plaintext", None) or b"") for e in s.events)
    assert "alice-secret" not in repr(s.events)
    assert attrs[2].get(CfgAttribute.XAUTH_STATUS).int_value == 1
    assert attrs[4].get(CfgAttribute.INTERNAL_IP4_ADDRESS).value == b""  # "give me one"
    assert attrs[5].get(CfgAttribute.INTERNAL_IP4_ADDRESS).value == bytes([10, 3, 0, 1])
    assert attrs[5].get(CfgAttribute.INTERNAL_IP4_NETMASK).value == bytes([255, 255, 255, 0])  # the pool's
    assert tx[0].message_id == tx[1].message_id != tx[2].message_id == tx[3].message_id != tx[4].message_id
    # HASH = prf(SKEYID_a, M-ID | ATTR), recomputed with hmac from the exported SKEYID_a
    import hashlib
    import hmac

    skeyid_a = {e.name: e.value for e in s.events if e.peer == "left" and type(e).__name__ == "KeyDerived"}["SKEYID_a"]
    for m in tx[:1] + tx[2:]:  # (the REPLY's plaintext in the trace has the password blanked)
        payloads = inner(m)
        want = hmac.new(skeyid_a, m.message_id.to_bytes(4, "big") + payloads_after_hash(m.plaintext, payloads), hashlib.sha1).digest()
        assert isinstance(payloads[0], HashPayload) and payloads[0].data == want
    left, right = s.sa_tables()["left"], s.sa_tables()["right"]
    assert (left["isakmp"][0]["virtual_ip"], left["isakmp"][0]["eap_id"]) == ("10.3.0.1", "alice")
    assert [(p["local_ts"], p["remote_ts"]) for p in left["ipsec"]] == [("10.3.0.1/32", "10.2.1.0/24")]
    assert [(p["local_ts"], p["remote_ts"]) for p in right["ipsec"]] == [("10.2.1.0/24", "10.3.0.1/32")]
    assert right["leases"] == [{"pool": "rw", "identity": "alice", "address": "10.3.0.1", "online": True}]


def test_a_wrong_password_is_xauth_status_fail_and_the_sa_goes() -> None:
    s = session(wrong_password=True)
    assert not s.established() and not s.left.child_sas and not s.right.child_sas
    assert not s.left.ike_sas and not s.right.ike_sas
    assert s.right.sa_table()["leases"] == []
    assert "Quick Mode" not in {m.exchange for m in sent(s.events)}
    said = " | ".join(s.explanation())
    assert "the password given for 'alice' is not the one we have: a wrong password (XAUTH_STATUS = FAIL)" in said
    assert "the gateway refused our login (XAUTH_STATUS = FAIL)" in said


def test_a_client_without_xauth_is_refused_in_main_mode_with_the_attribute_named() -> None:
    s = LabSession(DemoOptions(seed=4, remote_access=True, eap=True), start=False)
    conn = s.left.config.connections[0]
    import dataclasses

    s.left.config.connections = [dataclasses.replace(conn, local_auth="")]
    s.network.initiate("left", "site")
    s.run_to_end()
    assert not s.established()
    rejected = [line for e in events_of(s.events, PolicyDecision, "right") if not e.accepted for line in e.explanation]
    assert any("offered pre-shared key, policy 10 has XAUTHInitPreShared (pre-shared key + XAUTH)" in line for line in rejected), rejected


def test_the_gateway_refuses_a_quick_mode_from_another_address() -> None:
    s = session()
    (sa,) = s.left.ike_sas.values()
    sa.virtual_ip = "10.3.0.7"  # alice pretends to be another road warrior
    s.left.start_child(sa, "net1", s.network.now)
    s.network.collect()
    s.run_to_end()
    errors = [e.message for e in events_of(s.events, ErrorEvent, "right")]
    assert any("IDci 10.3.0.7/32 is not the client's virtual IP 10.3.0.1" in m for m in errors), errors
    assert [p.remote_ts for p in s.right.child_sas] == ["10.3.0.1/32"]


def test_the_lease_comes_back_after_a_delete() -> None:
    s = session()
    s.left.terminate(s.network.now)
    s.network.collect()
    s.run_to_end()
    assert s.right.sa_table()["leases"] == [{"pool": "rw", "identity": "alice", "address": "10.3.0.1", "online": False}]
    s.network.initiate("left", "site")
    s.run_to_end()
    assert s.established() and s.left.sa_table()["isakmp"][0]["virtual_ip"] == "10.3.0.1"


def test_a_full_pool_is_explained_and_no_child_comes_up() -> None:
    s = LabSession(DemoOptions(seed=4, remote_access=True, eap=True), start=False)
    pool = s.right.config.pool_named("rw")
    n = 0
    while s.right.leases.acquire(pool, f"user{n}") is not None:  # every address held by someone online
        n += 1
    s.network.initiate("left", "site")
    s.run_to_end()
    assert not s.left.child_sas and not s.right.child_sas
    gw = " | ".join(e.message for e in events_of(s.events, ErrorEvent, "right"))
    assert "Mode Config: no virtual IP for alice: pool rw (10.3.0.0/24: 254 addresses) is full" in gw
    client = " | ".join(e.message for e in events_of(s.events, ErrorEvent, "left"))
    assert "the gateway assigned us no address" in client


def test_a_client_that_never_logs_in_keeps_nothing_on_the_gateway() -> None:
    """The group key alone (phase 1) is not enough: XAUTH's request goes unanswered, the gateway
    retransmits, gives up and deletes the ISAKMP SA; no child, no lease."""
    s = LabSession(DemoOptions(seed=4, remote_access=True, eap=True), start=False)
    s.left.config.half_open_timeout = 300  # the client waits longer than the gateway retransmits
    s.network.drop = lambda d: d.src[0] == s.left.config.address and d.data[18:19] == b"\x06"  # left's Transactions lost
    s.network.initiate("left", "site")
    for _ in range(12):
        s.run_to_end()
        if s.network.next_timer() is None:
            break
        s.advance(s.network.next_timer() - s.network.now)
    assert not s.right.ike_sas and not s.right.child_sas and s.right.sa_table()["leases"] == []
    said = [e.message for e in events_of(s.events, ErrorEvent, "right")]
    assert any("no answer to our Transaction REQUEST" in m for m in said), said


def test_mode_config_push_sends_the_address_unasked() -> None:
    s = session(push=True)
    tx = [m for m in sent(s.events) if m.exchange == "Transaction"]
    assert [(m.peer, m.summary.split(", ")[-1]) for m in tx] == [
        ("right", "ATTR(REQUEST)"), ("left", "ATTR(REPLY)"),  # XAUTH
        ("right", "ATTR(SET)"), ("left", "ATTR(ACK)"),  # its status
        ("right", "ATTR(SET)"), ("left", "ATTR(ACK)"),  # the address, pushed
    ]
    pushed = next(p for p in inner(tx[4]) if isinstance(p, AttributePayload))
    assert pushed.get(CfgAttribute.INTERNAL_IP4_ADDRESS).value == bytes([10, 3, 0, 1])
    assert s.established() and s.sa_tables()["left"]["isakmp"][0]["virtual_ip"] == "10.3.0.1"


def test_a_client_whose_gateway_never_asks_gives_up() -> None:
    """The gateway agreed XAUTHInitPreShared but never sends its XAUTH request (lost here): the
    client does not hold a childless ISAKMP SA forever — half_open_timeout after phase 1 it goes."""
    s = LabSession(DemoOptions(seed=4, remote_access=True, eap=True), start=False)
    s.network.drop = lambda d: d.src[0] == s.right.config.address and d.data[18:19] == b"\x06"  # the gateway's Transactions lost
    s.network.initiate("left", "site")
    for _ in range(20):
        s.run_to_end()
        if s.network.next_timer() is None or not s.left.ike_sas:
            break
        s.advance(s.network.next_timer() - s.network.now)
    assert not s.left.ike_sas and not s.left.child_sas
    said = [e.message for e in events_of(s.events, ErrorEvent, "left")]
    assert any("the gateway never asked us to log in (XAUTH) within 30 s of phase 1" in m for m in said), said


def test_replayed_and_forged_transactions_change_nothing() -> None:
    """After the login: the client's XAUTH REPLY replayed, and a Transaction under a fresh Message ID
    whose body is random bytes (no key, no HASH) — the gateway sends no new SET, counts the forgery,
    keeps no exchange for it, and the SA, the lease and the child stay as they were."""
    import os

    s = session()
    net = s.network
    reply = next(m for m in sent(s.events, "left") if m.exchange == "Transaction" and "REPLY" in m.summary)
    before_sent = len(sent(s.events, "right"))
    (gw_sa,) = s.right.ike_sas.values()
    right_addr = (s.right.config.address, 500)
    s.right.receive_datagram(reply.raw, reply.src, right_addr, net.now + 10)  # the replay
    forged = bytearray(reply.raw[:28]) + os.urandom(48)
    forged[20:24] = (0x0BADF00D).to_bytes(4, "big")  # a Message ID never used
    forged[24:28] = len(forged).to_bytes(4, "big")
    s.right.receive_datagram(bytes(forged), reply.src, right_addr, net.now + 11)
    net.collect()
    net.run()
    assert len(sent(s.events, "right")) == before_sent  # no new SET, no answer to the forgery
    assert s.right.counters.get("undecryptable", 0) + s.right.counters.get("transaction_bad_hash", 0) >= 1
    assert gw_sa.user_auth == "done" and s.right.ike_sas and len(s.right.child_sas) == 1
    assert s.right.sa_table()["leases"] == [{"pool": "rw", "identity": "alice", "address": "10.3.0.1", "online": True}]
    assert not [k for k in s.right.engines[1].exchanges if k[1] == 0x0BADF00D]
