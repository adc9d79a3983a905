"""The IKEv2 engine between two ipseclab peers on the in-memory network: the four
messages, keys that agree, every refusal in words, retransmission, cookies, NAT-T,
CREATE_CHILD_SA with PFS, deletes — and what an attacker's datagrams cannot do."""

from __future__ import annotations

import dataclasses

from engine_support import (
    LEFT,
    RIGHT,
    assert_child_sa_count,
    assert_ike_sa_state,
    established_pair,
    events_of,
    peer_pair,
    sent,
    terminate,
)

from ipseclab.crypto import kdf_v2
from ipseclab.crypto.registry_v2 import ikev2_cipher, ikev2_integrity, ikev2_prf
from ipseclab.crypto.sk_cipher import SkCipher
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.peer import NON_ESP_MARKER
from ipseclab.runtime.transport.nat import SimulatedNat
from ipseclab.trace import (
    ErrorEvent,
    Info,
    KeyDerived,
    MessageEvent,
    PortFloated,
    Retransmitted,
    SaEstablished,
)
from ipseclab.wire.v2.constants import ExchangeType, HeaderFlag, NotifyType
from ipseclab.wire.v2.message import (
    EncryptedPayload,
    IDiPayload,
    Message,
    NoncePayload,
    NotifyPayload,
    decode_payloads,
)

V2 = {"version": 2}


def key(events: list, peer: str, name: str) -> bytes:
    return next(e.value for e in events_of(events, KeyDerived, peer) if e.name == name)


def test_four_messages_establish_an_ike_sa_and_its_first_child() -> None:
    pp = established_pair(**V2)
    wire = [m for m in sent(pp.events)]
    assert [(m.peer, m.exchange, m.index) for m in wire] == [
        ("left", "IKE_SA_INIT", 1), ("right", "IKE_SA_INIT", 2), ("left", "IKE_AUTH", 1), ("right", "IKE_AUTH", 2),
    ]
    assert wire[0].summary == "HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP), N(SIGNATURE_HASH_ALGORITHMS), N(IKEV2_FRAGMENTATION_SUPPORTED)"
    assert wire[3].summary == "HDR, SK {IDr, AUTH, SAr2, TSi, TSr}"
    for m in wire:  # every datagram is a valid IKEv2 message with the right header flags
        msg = Message.decode(m.raw)
        assert msg.exchange_type in (ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH)
        assert bool(msg.flags & HeaderFlag.INITIATOR) == (m.peer == "left")
        assert bool(msg.flags & HeaderFlag.RESPONSE) == (m.index == 2)
    assert_ike_sa_state(pp.left, "ESTABLISHED")
    assert_ike_sa_state(pp.right, "ESTABLISHED")
    (lp,), (rp,) = pp.left.child_sas, pp.right.child_sas
    assert (lp.inbound.spi, lp.outbound.spi) == (rp.outbound.spi, rp.inbound.spi)
    assert (lp.inbound.enc_key, lp.inbound.integ_key) == (rp.outbound.enc_key, rp.outbound.integ_key)
    assert (lp.outbound.enc_key, lp.outbound.integ_key) == (rp.inbound.enc_key, rp.inbound.integ_key)
    assert (lp.local_ts, lp.remote_ts) == ("10.1.1.0/24", "10.2.1.0/24") == (rp.remote_ts, rp.local_ts)
    for name in ("SKEYSEED", "SK_d", "SK_ei", "SK_er", "SK_pi", "SK_pr"):
        assert key(pp.events, "left", name) == key(pp.events, "right", name)
    ike = {e.peer: e.ike for e in events_of(pp.events, SaEstablished) if e.ike is not None}
    assert ike["left"].mode == ike["right"].mode == "ikev2"
    assert (ike["left"].peer_id, ike["right"].peer_id) == (RIGHT, LEFT)


def test_ike_auth_opens_with_the_logged_keys_alone() -> None:
    """An outsider with SK_ei/SK_ai (what a key export gives Wireshark) reads IKE_AUTH."""
    pp = established_pair(**V2)
    auth = next(m for m in sent(pp.events, "left") if m.exchange == "IKE_AUTH")
    msg = Message.decode(auth.raw)
    sk = msg.payloads[-1]
    assert isinstance(sk, EncryptedPayload)
    cipher = SkCipher(ikev2_cipher(12, 128), ikev2_integrity(2))
    start = len(auth.raw) - len(sk.data) - 4
    plain = cipher.open(key(pp.events, "left", "SK_ei"), key(pp.events, "left", "SK_ai"), auth.raw[: start + 4], sk.data)
    inner = decode_payloads(sk.first_payload, plain)
    assert isinstance(inner[0], IDiPayload) and inner[0].data == bytes([192, 0, 2, 1])
    assert auth.plaintext == plain


def test_wrong_psk_is_authentication_failed_on_both_sides() -> None:
    pp = peer_pair(right={"psk": b"another key"}, **V2).initiate().run()
    last = sent(pp.events, "right")[-1]
    assert last.summary == "HDR, SK {N(AUTHENTICATION_FAILED)}"
    assert_ike_sa_state(pp.left, "FAILED")
    assert_ike_sa_state(pp.right, "FAILED")
    words = [e.message for e in events_of(pp.events, ErrorEvent)]
    assert any("pre-shared keys differ" in w for w in words), words
    assert any("did not accept our authentication" in w for w in words), words
    assert not pp.left.child_sas and not pp.right.child_sas


def test_no_proposal_chosen_is_stateless_and_says_what_differs() -> None:
    pp = peer_pair(left={"policy": IsakmpPolicy(10, "aes256", "sha256")}, right={"policy": IsakmpPolicy(10, "aes128", "sha1")}, **V2)
    pp.initiate().run()
    reply = sent(pp.events, "right")
    assert [m.summary for m in reply] == ["HDR, N(NO_PROPOSAL_CHOSEN)"]
    assert Message.decode(reply[0].raw).spi_r == bytes(8)
    assert not pp.right.ike_sas  # nothing kept for an unauthenticated request
    words = " ".join(e.message for e in events_of(pp.events, ErrorEvent))
    assert "ENCR_AES_CBC_256" in words and "ENCR_AES_CBC_128" in words
    assert_ike_sa_state(pp.left, "FAILED")


def test_invalid_ke_payload_retry_with_the_group_asked_for() -> None:
    left = [IsakmpPolicy(10, group=14), IsakmpPolicy(20, group=19)]
    pp = peer_pair(right={"policy": IsakmpPolicy(10, group=19)}, **V2)
    pp.left.config.isakmp_policies = left
    pp.initiate().run()
    summaries = [(m.peer, m.summary) for m in sent(pp.events)]
    assert summaries[1] == ("right", "HDR, N(INVALID_KE_PAYLOAD)")
    assert Message.decode(sent(pp.events, "right")[0].raw).payloads[0].data == (19).to_bytes(2, "big")
    again = Message.decode(sent(pp.events, "left")[1].raw)
    assert again.exchange_type == ExchangeType.IKE_SA_INIT and again.payloads[1].group == 19
    assert_ike_sa_state(pp.left, "ESTABLISHED")
    assert pp.left.ike_sas[next(iter(pp.left.ike_sas))].choice.group == 19


def test_cookie_asked_and_echoed() -> None:
    pp = peer_pair(**V2)
    pp.right.config.cookie_threshold = 0
    pp.initiate().run()
    left = sent(pp.events, "left")
    assert sent(pp.events, "right")[0].summary == "HDR, N(COOKIE)"
    retry = Message.decode(left[1].raw)
    assert isinstance(retry.payloads[0], NotifyPayload) and retry.payloads[0].notify_type == NotifyType.COOKIE
    assert_ike_sa_state(pp.left, "ESTABLISHED")
    assert pp.right.counters["cookies_verified"] == 1


def test_a_flood_of_first_messages_under_cookies_keeps_no_state() -> None:
    pp = peer_pair(**V2)
    pp.right.config.cookie_threshold = 0
    first = None
    pp.network.drop = lambda d: d.dst[0] == LEFT  # the flood's sources never see the cookie
    pp.initiate()
    first = pp.network.in_flight[0].data
    for i in range(200):  # the same request from 200 spoofed addresses and SPIs
        spoofed = bytes([i + 1]) + first[1:]
        pp.right.receive_datagram(spoofed, (f"203.0.113.{i % 250 + 1}", 500), (RIGHT, 500), 0.0)
    assert not pp.right.ike_sas and pp.right.half_open_count == 0
    assert pp.right.counters["cookies_sent"] == 200


def test_lost_response_is_answered_again_from_the_cache() -> None:
    pp = peer_pair(**V2)
    lost = []
    pp.network.drop = lambda d: not lost and d.src[0] == RIGHT and Message.decode(d.data).exchange_type == ExchangeType.IKE_AUTH and not lost.append(d)
    pp.initiate().run()
    pp.network.advance(3)
    assert events_of(pp.events, Retransmitted, "left")
    right = [m for m in sent(pp.events, "right") if m.exchange == "IKE_AUTH"]
    assert len(right) == 2 and right[0].raw == right[1].raw and right[1].retransmission
    assert_ike_sa_state(pp.left, "ESTABLISHED")
    assert_child_sa_count(pp.right, 1)


def test_changed_byte_is_dropped_unanswered_then_the_retransmission_succeeds() -> None:
    pp = peer_pair(**V2)
    done = []

    def tamper(d):  # noqa: ANN001, ANN202
        if not done and d.src[0] == LEFT and Message.decode(d.data).exchange_type == ExchangeType.IKE_AUTH:
            done.append(1)
            data = bytearray(d.data)
            data[-1] ^= 1
            return type(d)(bytes(data), d.src, d.dst)
        return d

    pp.network.nat = tamper
    pp.initiate().run()
    assert pp.right.counters["sk_icv_failure"] == 1
    assert not [m for m in sent(pp.events, "right") if m.exchange == "IKE_AUTH"]
    assert any(e.code == "INTEGRITY_CHECK_FAILED" for e in events_of(pp.events, ErrorEvent, "right"))
    pp.network.advance(3)
    assert_ike_sa_state(pp.right, "ESTABLISHED")


def test_nat_moves_ike_auth_to_4500_with_the_marker() -> None:
    pp = peer_pair(**V2)
    conn = pp.right.config.connections[0]
    pp.right.config.connections[0] = dataclasses.replace(conn, remote_address="%any")
    nat = SimulatedNat(LEFT, "198.51.100.77", clock=lambda: pp.network.now)
    pp.network.nat = nat
    pp.network._by_address["198.51.100.77"] = pp.left
    pp.initiate().run()
    auth = next(m for m in sent(pp.events, "left") if m.exchange == "IKE_AUTH")
    assert auth.dst == (RIGHT, 4500) and auth.non_esp_marker
    assert any(d.data.startswith(NON_ESP_MARKER) for _, d, _ in pp.network.wire if d.dst[1] == 4500)
    assert events_of(pp.events, PortFloated, "left") and events_of(pp.events, PortFloated, "right")
    (lp,), (rp,) = pp.left.child_sas, pp.right.child_sas
    assert lp.udp_encapsulated and rp.udp_encapsulated
    assert_ike_sa_state(pp.right, "ESTABLISHED")


def test_second_child_with_pfs_by_create_child_sa() -> None:
    ts = TransformSet("pfs", pfs_group=19)
    pp = established_pair(children=2, transform_set=ts, **V2)
    create = [m for m in sent(pp.events) if m.exchange == "CREATE_CHILD_SA"]
    assert [m.summary for m in create] == ["HDR, SK {SAi, Ni, KEi, TSi, TSr}", "HDR, SK {SAr, Nr, KEr, TSi, TSr}"]
    assert_child_sa_count(pp.left, 2)
    assert_child_sa_count(pp.right, 2)
    net2 = {p.name: next(c for c in p.child_sas if c.child == "net2") for p in (pp.left, pp.right)}
    assert net2["left"].pfs_group == 19 and net2["left"].inbound.enc_key == net2["right"].outbound.enc_key


def test_terminate_deletes_everything_on_both_sides() -> None:
    pp = established_pair(children=2, **V2)
    terminate(pp.network, "left")
    assert not pp.left.ike_sas and not pp.right.ike_sas
    assert not pp.left.child_sas and not pp.right.child_sas


def test_forged_delete_with_known_spis_deletes_nothing() -> None:
    """SPIs are in every header; without SK_ai a Delete does not open."""
    pp = established_pair(**V2)
    sa = next(iter(pp.right.ike_sas.values()))
    forged = Message(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, HeaderFlag.INITIATOR, 2,
                     [EncryptedPayload(42, bytes(64))]).encode()
    pp.right.receive_datagram(forged, (LEFT, 500), (RIGHT, 500), 1.0)
    assert_ike_sa_state(pp.right, "ESTABLISHED")
    assert_child_sa_count(pp.right, 1)
    assert pp.right.counters["sk_icv_failure"] == 1


def test_liveness_check_is_an_empty_informational() -> None:
    pp = peer_pair(**V2)
    conn = pp.left.config.connections[0]
    pp.left.config.connections[0] = dataclasses.replace(conn, dpd_delay=30.0)
    pp.initiate().run()
    pp.network.advance(31)
    info = [m for m in sent(pp.events) if m.exchange == "INFORMATIONAL"]
    assert [m.summary for m in info] == ["HDR, SK {}", "HDR, SK {}"]
    assert_ike_sa_state(pp.left, "ESTABLISHED")
    assert isinstance(info[0], MessageEvent)


def test_child_rekey_with_rekey_sa_then_the_old_pair_goes() -> None:
    pp = established_pair(transform_set=TransformSet("short", lifetime=100), **V2)
    (old,) = pp.left.child_sas
    pp.network.advance(95)  # soft lifetime at 90 s
    rekey = next(m for m in sent(pp.events, "left") if m.exchange == "CREATE_CHILD_SA")
    assert rekey.summary == "HDR, SK {N(REKEY_SA), SAi, Ni, TSi, TSr}"
    assert any(isinstance(p, NotifyPayload) and p.spi == old.inbound.spi.to_bytes(4, "big")
               for p in decode_payloads(Message.decode(rekey.raw).payloads[-1].first_payload, rekey.plaintext))
    (new_l,), (new_r,) = pp.left.child_sas, pp.right.child_sas
    assert new_l.inbound.spi != old.inbound.spi and (new_l.inbound.spi, new_l.outbound.spi) == (new_r.outbound.spi, new_r.inbound.spi)
    delete = [m for m in sent(pp.events, "left") if m.exchange == "INFORMATIONAL"]
    assert [m.summary for m in delete] == ["HDR, SK {D}"]


def test_ike_sa_rekey_moves_the_children_and_deletes_the_old_sa() -> None:
    pp = established_pair(policy=IsakmpPolicy(10, lifetime=100), **V2)
    (old_l,) = pp.left.ike_sas.values()
    (child,) = pp.left.child_sas
    pp.network.advance(95)  # the initiator's soft lifetime: 90 s
    (new_l,), (new_r,) = pp.left.ike_sas.values(), pp.right.ike_sas.values()
    assert (new_l.spi_i, new_l.spi_r) == (new_r.spi_i, new_r.spi_r) != (old_l.spi_i, old_l.spi_r)
    assert new_l.initiator and not new_r.initiator
    assert pp.left.child_sas == [child] and child in new_l.children and len(new_r.children) == 1
    assert key(pp.events[-40:], "left", "SKEYSEED") == key(pp.events[-40:], "right", "SKEYSEED")
    seeds = [e for e in events_of(pp.events, KeyDerived, "left") if e.name == "SKEYSEED"]
    assert seeds[-1].formula == "prf(SK_d (old), g^ir (new) | Ni | Nr)"
    summaries = [m.summary for m in sent(pp.events, "left")][-2:]
    assert summaries == ["HDR, SK {SAi, Ni, KEi}", "HDR, SK {D}"]
    # the new SA works: a liveness check with message ID 0 of the new SA
    pp.left.engine(2).send_liveness_check(new_l, 1)
    pp.network.collect()
    pp.network.run()
    last = sent(pp.events)[-2:]
    assert [(m.exchange, m.message_id, m.icookie) for m in last] == [("INFORMATIONAL", 0, new_l.spi_i.hex())] * 2


def test_a_child_the_responder_starts_has_keys_in_its_own_order() -> None:
    """KEYMAT's first half protects the CREATE_CHILD_SA initiator's outbound SA, whichever
    side started the IKE SA (RFC 7296 §2.17) — recomputed here from SK_d and the nonces."""
    pp = established_pair(children=1, **V2)
    right_sa = next(iter(pp.right.ike_sas.values()))
    pp.right.start_child(right_sa, "net1", pp.network.now)
    pp.network.collect()
    pp.network.run()
    assert_child_sa_count(pp.left, 2)
    request, response = [m for m in sent(pp.events) if m.exchange == "CREATE_CHILD_SA"]
    assert request.peer == "right"

    def nonce(m: MessageEvent) -> bytes:
        inner = decode_payloads(Message.decode(m.raw).payloads[-1].first_payload, m.plaintext)
        return next(p.data for p in inner if isinstance(p, NoncePayload))

    keymat = kdf_v2.child_keymat(ikev2_prf(2), key(pp.events, "right", "SK_d"), nonce(request), nonce(response), 2 * (16 + 20))
    new = next(p for p in pp.right.child_sas if p.message_id == request.message_id)
    assert (new.outbound.enc_key, new.outbound.integ_key) == (keymat[:16], keymat[16:36])  # initiator -> responder
    assert (new.inbound.enc_key, new.inbound.integ_key) == (keymat[36:52], keymat[52:])
    mirror = next(p for p in pp.left.child_sas if p.inbound.spi == new.outbound.spi)
    assert mirror.inbound.enc_key == new.outbound.enc_key


def test_certificates_with_rfc_7427_signatures() -> None:
    from ipseclab.demo import DemoOptions
    from ipseclab.teaching.lab import LabSession

    s = LabSession(DemoOptions(version=2, auth="rsa", seed=9), start=False)
    for p in s.network.peers:  # whole messages here: fragments are the next test's
        p.config.ike_fragmentation = False
    s.network.initiate("left", "site")
    s.run_to_end()
    assert s.established()
    auth = [m for m in s.messages() if m.exchange == "IKE_AUTH"]
    assert [m.summary for m in auth] == ["HDR, SK {IDi, CERT, CERTREQ, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr}",
                                         "HDR, SK {IDr, CERT, AUTH, SAr2, TSi, TSr}"]
    inner = decode_payloads(Message.decode(auth[0].raw).payloads[-1].first_payload, auth[0].plaintext)
    method = next(p for p in inner if p.payload_type == 39)
    assert method.method == 14 and method.data[0] == 15  # RFC 7427: sha256WithRSAEncryption, 15 bytes of ASN.1
    assert method.data[1:16] == bytes.fromhex("300d06092a864886f70d01010b0500")


def test_a_certificate_from_another_ca_is_refused_in_words() -> None:
    from ipseclab.crypto.certs import make_lab_ca
    from ipseclab.demo import DemoOptions
    from ipseclab.teaching.lab import LabSession

    s = LabSession(DemoOptions(version=2, auth="rsa", seed=9), start=False)
    right = s.network.peer("right")
    right.config.ca_cert = make_lab_ca("another CA").cert
    s.network.initiate("left", "site")
    s.run_to_end()
    assert not s.established()
    words = [e.message for e in events_of(s.events, ErrorEvent, "right")]
    assert any("is not issued by our lab CA" in w for w in words), words


# -- fragmentation (RFC 7383) ----------------------------------------------------------------


def cert_session(**kw):  # noqa: ANN003, ANN201
    from ipseclab.demo import DemoOptions
    from ipseclab.teaching.lab import LabSession

    return LabSession(DemoOptions(version=2, auth="rsa", seed=9, **kw), start=False)


def test_a_message_larger_than_the_path_goes_as_fragments() -> None:
    s = cert_session()
    s.network.initiate("left", "site")
    s.run_to_end()
    assert s.established()
    auth = [m for m in s.messages() if m.exchange == "IKE_AUTH"]
    assert [m.summary.split(" of ")[0] for m in auth] == ["HDR, SKF {fragment 1/2}", "HDR, SKF {fragment 2/2}",
                                                          "HDR, SKF {fragment 1/2}", "HDR, SKF {fragment 2/2}"]
    assert auth[0].summary.endswith("of SK {IDi, CERT, CERTREQ, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr}")
    assert all(len(m.raw) <= 1280 - 28 for m in auth)  # each fits a 1280-byte IP datagram
    for m in auth:
        msg = Message.decode(m.raw)
        assert msg.payloads[-1].payload_type == 53  # SKF
    received = [m for m in events_of(s.events, MessageEvent, "right") if m.direction == "received" and m.exchange == "IKE_AUTH"]
    assert received[-1].summary.startswith("HDR, SK {IDi, CERT")  # reassembled, then handled as one message
    assert s.network.peer("right").counters["fragments_received"] == 2


def test_a_changed_fragment_is_dropped_and_the_retransmission_completes() -> None:
    s = cert_session()
    done = []

    def tamper(d):  # noqa: ANN001, ANN202
        if not done and d.src[0] == LEFT and len(d.data) > 28 and d.data[16] == 53:  # the first SKF fragment
            done.append(1)
            return type(d)(d.data[:-1] + bytes([d.data[-1] ^ 1]), d.src, d.dst)
        return d

    s.network.nat = tamper
    s.network.initiate("left", "site")
    s.run_to_end()
    right = s.network.peer("right")
    assert right.counters["sk_icv_failure"] == 1 and not s.established()
    s.advance(3)  # left retransmits both fragments
    assert s.established()


def test_fragments_are_bounded() -> None:
    """A fragment that announces more than MAX_FRAGMENTS is refused; the store never grows past
    one message per direction."""
    from ipseclab.ikev2.protection import seal_fragments
    from ipseclab.ikev2.task_manager import MAX_FRAGMENTS

    pp = established_pair(**V2)
    left_sa = next(iter(pp.left.ike_sas.values()))
    right_sa = next(iter(pp.right.ike_sas.values()))
    big = [NotifyPayload(40000, data=bytes(40)) for _ in range(60)]
    raws, _ = seal_fragments(left_sa, ExchangeType.INFORMATIONAL, left_sa.next_request_id, HeaderFlag.INITIATOR, big, 100,
                             lambda: bytes(16))
    assert len(raws) > MAX_FRAGMENTS
    for raw in raws[:5]:
        pp.right.receive_datagram(raw, (LEFT, 500), (RIGHT, 500), 1.0)
    assert pp.right.counters["fragments_over_limit"] == 5
    assert not pp.right.engine(2)._reassembly
    assert right_sa.established


def test_parallel_negotiations_with_initial_contact_leave_each_other_alone() -> None:
    """Two IKE SAs to the same peer at once, both saying INITIAL_CONTACT (neither is up yet):
    the first to be established must not delete the other while it is still negotiating."""
    pp = peer_pair(**V2)
    pp.left.initiate("site", 0.0)
    pp.left.initiate("site", 0.0)
    pp.network.collect()
    pp.network.run()
    assert_ike_sa_state(pp.left, "ESTABLISHED", 2)
    assert_ike_sa_state(pp.right, "ESTABLISHED", 2)


def _right_protects_for_left(pp, remote_ts: str) -> None:  # noqa: ANN001
    """right's only child policy covers `remote_ts` on left's side instead of what left proposes."""
    conn = pp.right.config.connections[0]
    pp.right.config.connections[0] = dataclasses.replace(
        conn, children=(dataclasses.replace(conn.children[0], remote_ts=remote_ts),))


def test_selectors_no_child_covers_are_ts_unacceptable_and_the_ike_sa_stays() -> None:
    pp = peer_pair(**V2)
    _right_protects_for_left(pp, "10.9.9.0/24")
    pp.initiate().run()
    assert sent(pp.events, "right")[-1].summary == "HDR, SK {IDr, AUTH, N(TS_UNACCEPTABLE)}"
    assert_ike_sa_state(pp.left, "ESTABLISHED")
    assert_child_sa_count(pp.left, 0)
    said = " ".join(getattr(e, "message", "") for e in pp.events if e.peer == "right")
    assert "10.1.1.0/24 ↔ 10.2.1.0/24" in said and "protects 10.2.1.0/24 ↔ 10.9.9.0/24" in said, said


def test_narrowing_to_the_responders_smaller_subnet() -> None:
    pp = peer_pair(**V2)
    _right_protects_for_left(pp, "10.1.1.128/25")
    pp.initiate().run()
    (lp,), (rp,) = pp.left.child_sas, pp.right.child_sas
    assert (lp.local_ts, rp.remote_ts) == ("10.1.1.128/25", "10.1.1.128/25")  # TSi narrowed by the responder
    assert lp.remote_ts == "10.2.1.0/24"


def test_ecdsa_certificates_sign_and_verify_both_ways() -> None:
    """P-256 keys from the lab CA: RFC 7427 with ecdsa-with-SHA256 in both AUTH payloads."""
    from ipseclab.crypto.certs import issue_peer_cert, make_lab_ca
    from ipseclab.demo import DemoOptions
    from ipseclab.teaching.lab import LabSession

    s = LabSession(DemoOptions(version=2, auth="rsa", seed=3), start=False)
    ca = make_lab_ca()
    for p in s.network.peers:
        p.config.credentials = issue_peer_cert(ca, p.name, ip_addresses=[p.config.address], key_type="ecdsa")
        p.config.ca_cert = ca.cert
    s.network.initiate("left", "site")
    s.run_to_end()
    assert s.established()
    said = [e.message for e in s.events if isinstance(e, Info) and "signature" in e.message and "verified" in e.message]
    assert len(said) == 2, said
    received = [m for m in events_of(s.events, MessageEvent) if m.direction == "received" and m.exchange == "IKE_AUTH"
                and m.plaintext is not None]
    assert [m.raw[16] for m in received] == [46, 46]  # small certificates: whole SK messages, no fragments
    for m in received:
        inner = decode_payloads(Message.decode(m.raw).payloads[-1].first_payload, m.plaintext)
        auth = next(p for p in inner if p.payload_type == 39)
        assert auth.method == 14 and auth.data[1:1 + auth.data[0]] == bytes.fromhex("300a06082a8648ce3d040302")
