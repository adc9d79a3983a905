"""Every peer is who its configuration says: keys, identities, Aggressive Mode, DH values."""

from __future__ import annotations

import dataclasses

import pytest
from engine_support import (
    LEFT,
    RIGHT,
    FakeOwner,
    established_pair,
    events_of,
    peer_config,
    peer_pair,
)

from ipseclab.config import Identity
from ipseclab.crypto.dh import dh_group
from ipseclab.crypto.rng import SeededRng
from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.ikev1 import phase1
from ipseclab.ikev1.isakmp_sa import IsakmpSa
from ipseclab.ikev1.main_mode import MainModeResponder
from ipseclab.ikev1.policy import IsakmpPolicy
from ipseclab.peer import Peer
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.trace import ErrorEvent, MessageEvent
from ipseclab.wire.v1.constants import ExchangeType, IdType, NotifyType
from ipseclab.wire.v1.isakmp import KEPayload, Message, NoncePayload, NotifyPayload

MALLORY = "203.0.113.66"


def _errors(events, peer: str) -> list[ErrorEvent]:  # noqa: ANN001
    return events_of(events, ErrorEvent, peer)


def _with_connection(cfg, **changes):  # noqa: ANN001, ANN003, ANN202
    cfg.connections[0] = dataclasses.replace(cfg.connections[0], **changes)
    return cfg


# -- 2: no key, no SA --------------------------------------------------------------------------


def test_an_unconfigured_address_gets_no_empty_key() -> None:
    """Only per-connection keys at the responder: a stranger is refused at its first message."""
    right_cfg = dataclasses.replace(peer_config("right", RIGHT, LEFT, mirrored=True), psk=None)
    right_cfg = _with_connection(right_cfg, psk=b"only-for-left")
    mallory = Peer(dataclasses.replace(peer_config("mallory", MALLORY, RIGHT), psk=b"guess"), rng=SeededRng(1, "m"))
    right = Peer(right_cfg, rng=SeededRng(1, "r"))
    net = MemoryNetwork([mallory, right])
    net.initiate("mallory", "site")
    net.run()
    (err,) = _errors(net.events, "right")
    assert err.code == "NO_PSK" and err.notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert "no connection matches its address" in err.message and MALLORY in err.message
    replies = [Message.decode(e.raw) for e in events_of(net.events, MessageEvent, "right") if e.direction == "sent"]
    assert [m.exchange_type for m in replies] == [ExchangeType.INFORMATIONAL], "no MM2: nothing keyed"
    assert not any(sa.established for sa in right.ike_sas.values())


def test_a_connection_without_any_key_fails_with_the_reason_not_an_empty_key() -> None:
    pair = peer_pair(left={"psk": None})
    pair.left.config.psk = None
    pair.initiate().run()
    codes = [e.code for e in _errors(pair.events, "left")]
    assert codes == ["NO_PSK"]
    assert not any(sa.established for p in (pair.left, pair.right) for sa in p.ike_sas.values())


# -- 3 and 4: remote_id and swanctl's identity syntax --------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value", "id_type"),
    [
        ("@gw.lab", "fqdn", "gw.lab", IdType.FQDN),
        ("@@user", "user_fqdn", "user", IdType.USER_FQDN),
        ("user@host", "user_fqdn", "user@host", IdType.USER_FQDN),
        ("192.0.2.7", "address", "192.0.2.7", IdType.IPV4_ADDR),
        ("gw.lab", "fqdn", "gw.lab", IdType.FQDN),
    ],
)
def test_swanctl_identity_syntax(text: str, kind: str, value: str, id_type: int) -> None:
    ident = Identity.parse(text)
    assert (ident.kind, ident.value) == (kind, value)
    assert ident.to_payload().id_type == id_type
    assert Identity.parse(str(ident)) == ident


def test_a_dn_identity_is_read_in_strongswans_order() -> None:
    ident = Identity.parse("C=CH, O=Lab, CN=gw")
    assert ident.kind == "dn" and ident.to_payload().id_type == IdType.DER_ASN1_DN
    assert str(ident) == "C=CH, O=Lab, CN=gw"
    assert phase1.describe_id(ident.to_payload()) == "ID_DER_ASN1_DN C=CH, O=Lab, CN=gw"


def test_at_fqdn_goes_out_as_id_fqdn() -> None:
    pair = peer_pair(mode="aggressive", left={"psk": b"k"}, right={"psk": b"k"})
    pair.left.config.identity = Identity.parse("@lab.h1")
    pair.right.config.connections[0] = dataclasses.replace(pair.right.config.connections[0], remote_identity=Identity.parse("@lab.h1"))
    pair.initiate().run()
    am1 = Message.decode(next(e.raw for e in events_of(pair.events, MessageEvent, "left") if e.direction == "sent"))
    ident = next(p for p in am1.payloads if p.payload_type == 5)
    assert (ident.id_type, ident.data) == (IdType.FQDN, b"lab.h1")
    assert all(sa.established for sa in pair.right.ike_sas.values())


def test_remote_id_is_enforced_in_main_mode() -> None:
    pair = peer_pair(left={"psk": PSK_SHARED}, right={"psk": PSK_SHARED})
    pair.left.config.identity = Identity.parse("@impostor.lab")
    pair.right.config.connections[0] = dataclasses.replace(pair.right.config.connections[0], remote_identity=Identity.parse("@left.lab"))
    pair.initiate().run()
    (err,) = _errors(pair.events, "right")
    assert err.code == "ID_MISMATCH" and err.notify == NotifyType.INVALID_ID_INFORMATION
    assert "ID_FQDN impostor.lab" in err.message and "ID_FQDN left.lab" in err.message
    (theirs,) = _errors(pair.events, "left")
    assert theirs.code == "PEER_INVALID_ID_INFORMATION"
    assert "the identity we sent: ID_FQDN impostor.lab" in theirs.message and "keys differ" in theirs.message
    assert not any(sa.established for sa in pair.right.ike_sas.values())


def test_remote_id_matching_establishes() -> None:
    pair = peer_pair(left={"psk": PSK_SHARED}, right={"psk": PSK_SHARED})
    pair.left.config.identity = Identity.parse("@left.lab")
    pair.right.config.connections[0] = dataclasses.replace(pair.right.config.connections[0], remote_identity=Identity.parse("@left.lab"))
    pair.initiate().run()
    assert all(sa.established for p in (pair.left, pair.right) for sa in p.ike_sas.values())


PSK_SHARED = b"shared-psk"


@pytest.mark.parametrize(("remote_id", "ok"), [("C=CH, O=ipseclab, CN=left", True), ("CN=left", False), ("C=CH, O=ipseclab, CN=right", False), ("@left", False)])
def test_with_certificates_remote_id_must_name_the_certificate(remote_id: str, ok: bool) -> None:
    left_cfg, right_cfg = demo_configs(DemoOptions(auth="rsa"))
    right_cfg.connections[0] = dataclasses.replace(right_cfg.connections[0], remote_identity=Identity.parse(remote_id))
    peers = [Peer(c, rng=SeededRng(4, c.name)) for c in (left_cfg, right_cfg)]
    net = MemoryNetwork(peers)
    net.initiate("left", "site")
    net.run()
    established = any(sa.established for sa in peers[1].ike_sas.values())
    assert established == ok
    if not ok:
        assert [e.code for e in _errors(net.events, "right")] == ["ID_MISMATCH"]


# -- 6: Aggressive Mode only when asked ---------------------------------------------------------


def test_aggressive_mode_is_refused_by_a_main_mode_connection() -> None:
    pair = peer_pair(mode="aggressive")
    pair.right.config.connections[0] = dataclasses.replace(pair.right.config.connections[0], mode="main")
    pair.initiate().run()
    (err,) = _errors(pair.events, "right")
    assert err.code == "AGGRESSIVE_MODE_REFUSED" and "aggressive = true" in err.message
    sent = [Message.decode(e.raw) for e in events_of(pair.events, MessageEvent, "right") if e.direction == "sent"]
    assert [m.exchange_type for m in sent] == [ExchangeType.INFORMATIONAL], "no HASH_R for an offline attack"
    assert isinstance(sent[0].payloads[0], NotifyPayload) and sent[0].payloads[0].notify_type == NotifyType.AUTHENTICATION_FAILED
    (theirs,) = _errors(pair.events, "left")
    assert theirs.code == "PEER_AUTHENTICATION_FAILED"
    assert "before we sent any proof of identity" in theirs.message and "aggressive = yes" in theirs.message
    assert "keys differ" not in theirs.message, "our HASH_I never left: the key cannot be blamed"


def test_aggressive_mode_with_aggressive_true_still_works() -> None:
    pair = established_pair(mode="aggressive")
    assert all(sa.established for p in (pair.left, pair.right) for sa in p.ike_sas.values())


# -- 7: DH public values (RFC 6989) ----------------------------------------------------------------


def _responder_after_mm1(group: int) -> tuple[FakeOwner, MainModeResponder]:
    policy = IsakmpPolicy(10, group=group)
    owner = FakeOwner(peer_config("right", RIGHT, LEFT, mirrored=True, policy=policy))
    sa = IsakmpSa(icookie=b"\x01" * 8, rcookie=b"\x02" * 8, initiator=False, local=(RIGHT, 500), remote=(LEFT, 500),
                  connection=owner.config.connections[0])
    ex = MainModeResponder(owner, sa, False)
    offer = phase1.offered_sa(FakeOwner(peer_config("left", LEFT, RIGHT, policy=policy)))
    owner.deliver(ex, [offer], (LEFT, 500), (RIGHT, 500))
    return owner, ex


def _modp14_values() -> list[bytes]:
    from ipseclab.crypto._modp_primes import MODP_PRIMES

    p = MODP_PRIMES[14][0]
    return [v.to_bytes(256, "big") for v in (0, 1, p - 1, p, p + 1)]


@pytest.mark.parametrize("bad", _modp14_values(), ids=["0", "1", "p-1", "p", "p+1"])
def test_degenerate_modp_public_values_are_refused(bad: bytes) -> None:
    owner, ex = _responder_after_mm1(14)
    owner.deliver(ex, [KEPayload(bad), NoncePayload(b"n" * 32)], (LEFT, 500), (RIGHT, 500))
    assert owner.notifies[-1] == (NotifyType.INVALID_KEY_INFORMATION, False)
    (err,) = [e for e in owner.events if isinstance(e, ErrorEvent)]
    assert err.code == "INVALID_KEY_INFORMATION" and ("degenerate" in err.message or "not below the prime" in err.message)
    assert len(owner.transmitted) == 1, "no MM4"


def test_an_ecp_point_off_the_curve_is_refused() -> None:
    owner, ex = _responder_after_mm1(19)
    good = dh_group(19).generate(SeededRng(1, "x")).public_bytes
    off = good[:32] + bytes([good[32] ^ 1]) + good[33:]
    owner.deliver(ex, [KEPayload(off), NoncePayload(b"n" * 32)], (LEFT, 500), (RIGHT, 500))
    (err,) = [e for e in owner.events if isinstance(e, ErrorEvent)]
    assert err.code == "INVALID_KEY_INFORMATION" and "not a point on" in err.message


def test_a_ke_of_the_wrong_length_is_refused_with_the_sizes() -> None:
    owner, ex = _responder_after_mm1(14)
    owner.deliver(ex, [KEPayload(b"\x02" * 255), NoncePayload(b"n" * 32)], (LEFT, 500), (RIGHT, 500))
    (err,) = [e for e in owner.events if isinstance(e, ErrorEvent)]
    assert "255 bytes, expected 256 bytes" in err.message
