"""Behaviour found necessary against strongSwan charon 5.9.8 (interop runs in namespaces)."""

from __future__ import annotations

from ipseclab.crypto.certs import make_lab_ca
from ipseclab.demo import DemoOptions, make_demo
from ipseclab.ikev1.policy import IsakmpPolicy, check_phase1_transform
from ipseclab.peer import Datagram
from ipseclab.trace import ErrorEvent, MessageEvent
from ipseclab.wire.v1.constants import ExchangeType, HeaderFlag, IkeAttribute, LifeType, NotifyType
from ipseclab.wire.v1.isakmp import Attribute, Message, NotifyPayload, SAPayload, decode_payloads


def test_responder_may_reorder_the_chosen_transforms_attributes() -> None:
    """charon returns the chosen transform with the attributes in another order (RFC 2408 §4.2 allows it)."""
    run = make_demo(DemoOptions(seed=21))
    net = run.network

    def reorder(d: Datagram) -> Datagram:
        msg = Message.decode(d.data)
        if msg.exchange_type == ExchangeType.MAIN and msg.rcookie != bytes(8) and any(isinstance(p, SAPayload) for p in msg.payloads):
            sa = next(p for p in msg.payloads if isinstance(p, SAPayload))
            t = sa.proposals[0].transforms[0]
            t.attributes = list(reversed(t.attributes))
            return Datagram(msg.encode(), d.src, d.dst)
        return d

    net.nat = reorder
    net.initiate("left", "site")
    net.run()
    assert run.established(), run.explanation()


def test_zero_lifetime_means_no_limit() -> None:
    """charon offers Life Duration 0 when rekey/reauth time are 0: never a 0-second SA."""
    policy = IsakmpPolicy(10, lifetime=3600)
    t = policy.to_transform(1)
    t.attributes = [a for a in t.attributes if a.type not in (IkeAttribute.LIFE_TYPE, IkeAttribute.LIFE_DURATION)]
    t.attributes += [Attribute(IkeAttribute.LIFE_TYPE, LifeType.SECONDS), Attribute(IkeAttribute.LIFE_DURATION, 0)]
    check, choice = check_phase1_transform(t, policy)
    assert choice is not None and choice.lifetime == 3600
    assert any("no limit" in n for n in check.notes)


def test_undecryptable_notify_during_phase1_is_explained_as_key_mismatch() -> None:
    """The peer detects our wrong PSK first and answers with a notify encrypted under its keys."""
    run = make_demo(DemoOptions(seed=22))
    net = run.network
    net.initiate("left", "site")
    for _ in range(4):  # MM1..MM4: the initiator now has (its) keys and has sent MM5
        net.step()
    sa = next(iter(run.left.ike_sas.values()))
    assert sa.enc_key and not sa.established
    net.in_flight.clear()  # the responder never sees MM5 ...
    bogus = Message(sa.icookie, sa.rcookie, ExchangeType.INFORMATIONAL, HeaderFlag.ENCRYPTION, 0x1234, first_payload=8, encrypted_body=bytes(range(48)))
    run.left.receive_datagram(bogus.encode(), run.left.ike_sas[sa.icookie].remote, sa.local, net.now)  # ... but "answers"
    net._collect(net.peers)
    net.in_flight.clear()
    net.advance(3)
    errors = [e for e in net.events if isinstance(e, ErrorEvent) and e.peer == "left"]
    assert [e.code for e in errors] == ["UNDECRYPTABLE_NOTIFY", "AUTHENTICATION_FAILED"]
    assert "pre-shared keys differ" in errors[1].message
    assert sa.failed


def test_phase1_error_after_keys_is_sent_protected() -> None:
    """A signature failure (both sides share keys) goes out encrypted, and the initiator reads it."""
    run = make_demo(DemoOptions(auth="rsa", seed=23))
    run.right.config.ca_cert = make_lab_ca("another CA").cert  # right no longer trusts left's certificate
    run.network.initiate("left", "site")
    run.network.run()
    assert not run.established()
    notify_msg = [e for e in run.network.events if isinstance(e, MessageEvent) and e.peer == "right" and e.direction == "sent"][-1]
    assert notify_msg.exchange_type == ExchangeType.INFORMATIONAL and notify_msg.encrypted
    assert notify_msg.summary == "HDR*, HASH(1), N(INVALID_HASH_INFORMATION)"
    msg = Message.decode(notify_msg.raw)
    assert msg.flags & HeaderFlag.ENCRYPTION
    payloads = decode_payloads(msg.first_payload, notify_msg.plaintext, allow_trailing=True)
    assert isinstance(payloads[1], NotifyPayload)
    right_err = next(e for e in run.network.events if isinstance(e, ErrorEvent) and e.peer == "right")
    assert "not issued by our lab CA" in right_err.message
    left_err = next(e for e in run.network.events if isinstance(e, ErrorEvent) and e.peer == "left")
    assert left_err.notify == NotifyType.INVALID_HASH_INFORMATION


def _printable_string_dn(name) -> bytes:  # noqa: ANN001
    """The subject DER re-encoded as strongSwan encodes a DN typed in its configuration:
    every UTF8String value (tag 0x0c) as a PrintableString (tag 0x13)."""
    der = name.public_bytes()
    for attr in name:
        value = attr.value.encode()
        der = der.replace(b"\x0c" + bytes([len(value)]) + value, b"\x13" + bytes([len(value)]) + value)
    assert der != name.public_bytes()
    return der


def test_dn_identity_is_compared_by_value_not_by_string_type(monkeypatch) -> None:  # noqa: ANN001
    """charon sends ID_DER_ASN1_DN with PrintableString values where our certificates hold
    UTF8String: RFC 5280 §7.1 compares names attribute by attribute, so both must match."""
    from ipseclab.ikev1 import phase1
    from ipseclab.wire.v1.constants import IdType
    from ipseclab.wire.v1.isakmp import IDPayload

    real = phase1.own_identity

    def charon_like(peer, sa):  # noqa: ANN001, ANN202
        ident = real(peer, sa)
        if peer.config.name == "right" and ident.id_type == IdType.DER_ASN1_DN:
            return IDPayload(IdType.DER_ASN1_DN, _printable_string_dn(peer.config.credentials.cert.subject))
        return ident

    monkeypatch.setattr(phase1, "own_identity", charon_like)
    run = make_demo(DemoOptions(auth="rsa", seed=24))
    run.network.initiate("left", "site")
    run.network.run()
    assert run.established(), run.explanation()
    other = make_lab_ca("another name").cert.subject
    assert not phase1.dn_matches(_printable_string_dn(run.right.config.credentials.cert.subject), other)
    assert not phase1.dn_matches(b"\x30\x05garbage", other)


def test_dn_identity_survives_malformed_der() -> None:
    """A peer's garbage ID_DER_ASN1_DN is a mismatch, never an exception."""
    import random

    from ipseclab.ikev1.phase1 import dn_matches

    subject = make_lab_ca().cert.subject
    good = subject.public_bytes()
    rnd = random.Random(5)
    for _ in range(500):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            data = data[: rnd.randrange(len(data))]
        assert dn_matches(bytes(data), subject) in (True, False)


def test_an_undecryptable_notify_to_a_responder_still_ends_in_an_authentication_failure() -> None:
    """charon initiating Aggressive Mode with another PSK answers our AM2 with a notify
    encrypted under its keys; our responder, which no longer retransmits to an
    unauthenticated peer, still concludes after one retransmission timeout."""
    from engine_support import peer_pair

    from ipseclab.trace import ErrorEvent
    from ipseclab.wire.v1.constants import ExchangeType, HeaderFlag
    from ipseclab.wire.v1.isakmp import Message

    pair = peer_pair(mode="aggressive")
    net = pair.network
    net.initiate("left", "site")
    net.step()  # AM1 reaches right, AM2 is in flight
    sa = next(iter(pair.right.ike_sas.values()))
    garbage = Message(sa.icookie, sa.rcookie, ExchangeType.INFORMATIONAL, flags=HeaderFlag.ENCRYPTION,
                      message_id=0x5A5A5A5A, first_payload=8, encrypted_body=bytes(range(64)))
    pair.right.receive_datagram(garbage.encode(), ("192.0.2.1", 500), ("198.51.100.1", 500), net.now)
    net.collect()
    net.drop = lambda d: True  # AM2 never arrives: only the notify's verdict can end it
    net.advance(pair.right.config.retransmit_timeout + 0.1)
    codes = [e.code for e in pair.events if isinstance(e, ErrorEvent) and e.peer == "right"]
    assert codes == ["UNDECRYPTABLE_NOTIFY", "AUTHENTICATION_FAILED"]
