"""EAP in IKE_AUTH (RFC 7296 §2.16) with EAP-MD5 (RFC 3748 §5.4) between ipseclab peers in
memory: the gateway proves itself with its certificate, the road warrior with a password; the
messages on the wire, the MD5 answer recomputed with hashlib, the last AUTH keyed with SK_pi,
the lease held under the EAP identity, and every way it can fail said in plain words."""

from __future__ import annotations

import hashlib

import pytest
from engine_support import PSK, events_of, sent

from ipseclab.config import ChildConfig, Connection, Identity, PeerConfig
from ipseclab.crypto.certs import issue_peer_cert, make_lab_ca
from ipseclab.crypto.rng import SeededRng
from ipseclab.errors import ConfigError
from ipseclab.ikev1.policy import IsakmpPolicy
from ipseclab.peer import Peer
from ipseclab.pools import AddressPool
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.trace import ErrorEvent, KeyDerived, SaEstablished
from ipseclab.wire.v2.message import EAPPayload, Message, decode_payloads

GATEWAY = "198.51.100.1"
CA = make_lab_ca("eap test CA")


def client(password: bytes = b"alice-secret", *, eap_id: str = "alice", auth: str = "rsa-sig", local_auth: str = "eap-md5") -> PeerConfig:
    conn = Connection("corp", GATEWAY, children=(ChildConfig("corp", "0.0.0.0/0", "10.2.0.0/16"),), version=2,
                      vips=("0.0.0.0",), local_auth=local_auth, eap_id=eap_id)
    return PeerConfig("alice", "192.0.2.10", identity=Identity("user_fqdn", "alice@lab"), psk=PSK, ca_cert=CA.cert,
                      isakmp_policies=[IsakmpPolicy(10, auth=auth)], connections=[conn], eap_users={eap_id: password})


def gateway(*, auth: str = "rsa-sig") -> PeerConfig:
    conn = Connection("rw", "%any", children=(ChildConfig("corp", "10.2.0.0/16", "10.3.0.0/24"),), version=2,
                      pools=("rw",), remote_auth="eap-md5")
    return PeerConfig("gw", GATEWAY, psk=PSK, isakmp_policies=[IsakmpPolicy(10, auth=auth)], connections=[conn],
                      credentials=issue_peer_cert(CA, "gw", ip_addresses=[GATEWAY], key_type="ecdsa"), ca_cert=CA.cert,
                      pools=[AddressPool("rw", "10.3.0.0/24")], eap_users={"alice": b"alice-secret", "bob": b"bob-secret"})


def run(alice: PeerConfig, gw: PeerConfig | None = None) -> MemoryNetwork:
    net = MemoryNetwork([Peer(cfg, rng=SeededRng(11, cfg.name)) for cfg in (gw or gateway(), alice)])
    net.initiate("alice", "corp")
    net.run()
    return net


def inner(m) -> list:  # the payloads inside SK of a sent message
    return decode_payloads(Message.decode(m.raw).payloads[-1].first_payload, m.plaintext)


def test_eap_md5_after_the_gateways_certificate_then_the_virtual_ip() -> None:
    net = run(client())
    auth = [m for m in sent(net.events) if m.exchange == "IKE_AUTH"]
    assert [(m.peer, m.summary) for m in auth] == [
        ("alice", "HDR, SK {IDi, CERTREQ, N(INITIAL_CONTACT), CP(CFG_REQUEST), SAi2, TSi, TSr}"),
        ("gw", "HDR, SK {IDr, CERT, AUTH, EAP(Request/Identity)}"),
        ("alice", "HDR, SK {EAP(Response/Identity)}"),
        ("gw", "HDR, SK {EAP(Request/MD5-Challenge)}"),
        ("alice", "HDR, SK {EAP(Response/MD5-Challenge)}"),
        ("gw", "HDR, SK {EAP(Success)}"),
        ("alice", "HDR, SK {AUTH}"),
        ("gw", "HDR, SK {AUTH, CP(CFG_REPLY), SAr2, TSi, TSr}"),
    ]
    assert [m.message_id for m in auth] == [1, 1, 2, 2, 3, 3, 4, 4]
    eaps = [next(p for p in inner(m) if isinstance(p, EAPPayload)) for m in auth[1:6]]
    assert eaps[1].data[1:] == b"alice"  # the identity
    challenge, answer = eaps[2].data[2:2 + eaps[2].data[1]], eaps[3].data[2:2 + eaps[3].data[1]]
    assert len(challenge) == 16 and eaps[3].identifier == eaps[2].identifier == eaps[4].identifier
    assert answer == hashlib.md5(bytes([eaps[2].identifier]) + b"alice-secret" + challenge).digest()  # noqa: S324 - RFC 3748 §5.4
    alice, gw = net.peer("alice"), net.peer("gw")
    assert alice.child_sas[0].local_ts == "10.3.0.1/32" and gw.child_sas[0].remote_ts == "10.3.0.1/32"
    assert gw.sa_table()["leases"] == [{"pool": "rw", "identity": "alice", "address": "10.3.0.1", "online": True}]
    info = next(e.ike for e in events_of(net.events, SaEstablished, "gw") if e.ike is not None)
    assert (info.peer_id, info.eap_id) == ("alice@lab", "alice")
    formulas = {e.name: e.formula for e in events_of(net.events, KeyDerived, "alice")}
    assert formulas["AUTH (I, after EAP)"].startswith('prf(prf(SK_pi, "Key Pad for IKEv2")')


def test_the_gateway_may_prove_itself_with_a_pre_shared_key() -> None:
    net = run(client(auth="psk"), gateway(auth="psk"))
    assert net.peer("alice").child_sas and net.peer("gw").child_sas


def test_a_wrong_password_is_eap_failure_explained_on_both_sides() -> None:
    net = run(client(b"alice-typo"))
    assert not net.peer("alice").child_sas and not net.peer("gw").child_sas
    assert net.peer("gw").sa_table()["leases"] == []
    last = [m.summary for m in sent(net.events) if m.exchange == "IKE_AUTH"][-1]
    assert last == "HDR, SK {EAP(Failure)}"
    gw_error = events_of(net.events, ErrorEvent, "gw")[-1].message
    assert "MD5(Identifier | password | Challenge)" in gw_error and "wrong password" in gw_error
    alice_error = events_of(net.events, ErrorEvent, "alice")[-1].message
    assert "EAP Failure" in alice_error and "'alice'" in alice_error


def test_an_unknown_eap_user_is_named() -> None:
    net = run(client(eap_id="mallory"))
    assert not net.peer("gw").child_sas
    assert "no EAP user of that name (known: alice, bob)" in events_of(net.events, ErrorEvent, "gw")[-1].message


def test_a_client_without_eap_is_refused_by_a_gateway_that_wants_it() -> None:
    net = run(client(auth="psk", local_auth=""), gateway(auth="psk"))
    assert not net.peer("gw").child_sas
    assert "wants its clients to prove themselves by eap-md5 (remote_auth)" in events_of(net.events, ErrorEvent, "gw")[-1].message


def test_eap_needs_ikev2() -> None:
    with pytest.raises(ConfigError, match="EAP, which IKEv2 carries"):
        Connection("c", GATEWAY, local_auth="eap-md5")
    with pytest.raises(ConfigError, match="local_auth must be one of eap-md5, xauth"):
        Connection("c", GATEWAY, version=2, local_auth="eap-mschapv3")


def test_lost_eap_messages_are_retransmitted_and_answered_from_the_cache() -> None:
    """The MD5 challenge and then the client's answer are lost once each: the client repeats its
    requests, the gateway answers a repeated one from its cache (the same challenge, no new round)."""
    net = MemoryNetwork([Peer(cfg, rng=SeededRng(11, cfg.name)) for cfg in (gateway(), client())])
    count = {"n": 0}

    def drop(dgram) -> bool:
        count["n"] += 1
        return count["n"] in (6, 9)

    net.drop = drop
    net.initiate("alice", "corp")
    for _ in range(10):
        net.run()
        if net.peer("alice").child_sas or net.next_timer() is None:
            break
        net.advance(net.next_timer() - net.now)
    assert net.dropped == 2
    assert net.peer("alice").child_sas and net.peer("gw").child_sas
    again = [(m.peer, m.message_id) for m in sent(net.events) if m.exchange == "IKE_AUTH" and m.retransmission]
    assert again == [("alice", 2), ("gw", 2), ("alice", 3)]
    challenges = [m for m in sent(net.events, "gw") if "MD5-Challenge" in m.summary]
    assert len({inner(m)[0].data for m in challenges}) == 1  # the cached answer, not a new challenge


def test_the_eap_conversation_refuses_what_does_not_fit_in_words() -> None:
    """A client already inside the IKE SA (it holds SK_e) sending EAP that does not fit: wrong
    identifier, a Request instead of a Response, a Nak, a malformed MD5 value — each is EAP Failure
    with a sentence, never a traceback; the client side refuses a malformed challenge the same way."""
    from ipseclab.ikev2 import eap
    from ipseclab.wire.v2.constants import EapCode

    def server(stage: str = "identity") -> eap.EapServer:
        state = eap.EapServer(eap.MD5_CHALLENGE, 7, first=None, idi_body=b"", idr_body=b"")  # type: ignore[arg-type]
        state.stage = stage
        if stage == "challenge":
            state.identity, state.challenge = "alice", bytes(16)
        return state

    users = {"alice": b"alice-secret"}
    cases = [
        (server(), eap.response(8, eap.IDENTITY, b"alice"), "with identifier 8"),
        (server(), eap.request(7, eap.IDENTITY), "Request/Identity"),
        (server(), None, "no EAP payload"),
        (server("challenge"), eap.response(7, eap.NAK, bytes([13])), "it proposes TLS"),
        (server("challenge"), eap.response(7, eap.MD5_CHALLENGE, bytes([200, 1, 2])), "expected Response/MD5-Challenge"),
        (server("challenge"), eap.response(7, eap.MD5_CHALLENGE, eap.md5_data(bytes(16))), "a wrong password"),
        (server("success"), eap.response(7, eap.IDENTITY, b"alice"), "the conversation is over"),
    ]
    for state, packet, words in cases:
        step = eap.server_step(state, packet, users, bytes(16))
        assert step.outcome == "failure" and step.reply is not None and step.reply.code == EapCode.FAILURE, words
        assert words in step.message, (words, step.message)
    client = eap.EapClient(b"", "alice")
    bad = eap.client_step(client, eap.request(3, eap.MD5_CHALLENGE, bytes([40, 1])), b"pw")
    assert bad.outcome == "failure" and "malformed" in bad.message
    assert eap.client_step(client, eap.request(3, 26, b"x"), b"pw").reply.data == bytes([eap.NAK, eap.MD5_CHALLENGE])
