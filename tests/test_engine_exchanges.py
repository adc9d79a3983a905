"""Two in-memory peers negotiate: Main/Aggressive Mode, PSK/RSA, PFS, several Quick Modes."""

from __future__ import annotations

import pytest
from engine_support import sent

from ipseclab.demo import DemoOptions, run_demo
from ipseclab.trace import ErrorEvent, PolicyDecision, SaEstablished, StateChanged
from ipseclab.wire.v1.constants import ExchangeType, NotifyType, PayloadType
from ipseclab.wire.v1.isakmp import Message, NotifyPayload


def _assert_sa_pairs_agree(run) -> None:
    """Each SPI's keys are the same on the sender (outbound) and receiver (inbound)."""
    left, right = run.left, run.right
    assert left.child_sas and len(left.child_sas) == len(right.child_sas)
    right_in = {p.inbound.spi: p.inbound for p in right.child_sas}
    right_out = {p.outbound.spi: p.outbound for p in right.child_sas}
    for pair in left.child_sas:
        theirs_in = right_in[pair.outbound.spi]
        theirs_out = right_out[pair.inbound.spi]
        assert pair.outbound.enc_key == theirs_in.enc_key and pair.outbound.integ_key == theirs_in.integ_key
        assert pair.inbound.enc_key == theirs_out.enc_key and pair.inbound.integ_key == theirs_out.integ_key
        assert pair.inbound.enc_key != pair.outbound.enc_key
        assert len(pair.inbound.enc_key) == 16 and len(pair.inbound.integ_key) == 20


@pytest.mark.parametrize("mode", ["main", "aggressive"])
@pytest.mark.parametrize("pfs", [None, 14])
@pytest.mark.parametrize("policies", [1, 2])
def test_psk_establishes(mode: str, pfs: int | None, policies: int) -> None:
    run = run_demo(DemoOptions(mode=mode, pfs=pfs, policies=policies, seed=7))
    assert run.established(), run.explanation()
    _assert_sa_pairs_agree(run)
    msgs = sent(run.events)
    phase1 = 6 if mode == "main" else 3
    assert len(msgs) == phase1 + 3 * policies
    exchange = ExchangeType.MAIN if mode == "main" else ExchangeType.AGGRESSIVE
    assert [m.exchange_type for m in msgs[:phase1]] == [exchange] * phase1
    qm = [m for m in msgs if m.exchange_type == ExchangeType.QUICK]
    assert len({m.message_id for m in qm}) == policies
    ke_in_qm = ["KE" in m.summary.split(", ") for m in qm if m.index in (1, 2)]
    assert all(ke_in_qm) if pfs else not any(ke_in_qm)
    # each child is its own pair of SPIs
    assert len({p.inbound.spi for p in run.left.child_sas}) == policies
    assert sorted(p.local_ts for p in run.left.child_sas) == [f"10.1.{i}.0/24" for i in range(1, policies + 1)]


@pytest.mark.parametrize("pfs", [None, 14])
def test_rsa_signatures_establish(pfs: int | None) -> None:
    run = run_demo(DemoOptions(auth="rsa", pfs=pfs, seed=3))
    assert run.established(), run.explanation()
    _assert_sa_pairs_agree(run)
    summaries = [m.summary for m in sent(run.events)]
    assert summaries[4] == "HDR*, IDii, CERT, SIG_I"
    assert summaries[5] == "HDR*, IDir, CERT, SIG_R"
    up = [e for e in run.network.events if isinstance(e, SaEstablished) and e.sa.kind == "ike"]
    assert {e.ike.auth for e in up} == {"RSA signature"}
    assert any("CN=right" in e.ike.peer_id for e in up if e.peer == "left")


def test_main_mode_message_sequence_and_states() -> None:
    run = run_demo(DemoOptions(seed=1))
    assert [m.summary for m in sent(run.events)] == [
        "HDR, SA, VID, VID, VID, VID, VID",
        "HDR, SA, VID, VID",
        "HDR, KE, Ni, NAT-D, NAT-D",
        "HDR, KE, Nr, NAT-D, NAT-D",
        "HDR*, IDii, HASH_I",
        "HDR*, IDir, HASH_R",
        "HDR*, HASH(1), SA, Ni, IDci, IDcr",
        "HDR*, HASH(2), SA, Nr, IDci, IDcr",
        "HDR*, HASH(3)",
    ]
    left_states = [e.new for e in run.network.events if isinstance(e, StateChanged) and e.peer == "left" and e.sa.kind == "ike"]
    assert left_states == ["MM_SA_SENT", "MM_KEY_EXCH_SENT", "MM_AUTH_SENT", "QM_IDLE"]
    right_states = [e.new for e in run.network.events if isinstance(e, StateChanged) and e.peer == "right" and e.sa.kind == "ike"]
    assert right_states == ["MM_SA_REPLIED", "MM_KEY_EXCH_REPLIED", "QM_IDLE"]
    # encrypted on the wire from message 5 on: the identity is not visible in clear
    for m in sent(run.events)[4:]:
        assert Message.decode(m.raw).encrypted_body is not None
        assert b"192.0.2.1" not in m.raw


def test_seed_makes_runs_reproducible() -> None:
    a = [m.raw for m in sent(run_demo(DemoOptions(seed=42, pfs=14)).events)]
    b = [m.raw for m in sent(run_demo(DemoOptions(seed=42, pfs=14)).events)]
    c = [m.raw for m in sent(run_demo(DemoOptions(seed=43, pfs=14)).events)]
    assert a == b
    assert a != c


def test_mismatch_sends_no_proposal_chosen_and_explains() -> None:
    run = run_demo(DemoOptions(mismatch=True, seed=5))
    assert not run.established()
    msgs = sent(run.events)
    assert len(msgs) == 2
    reply = Message.decode(msgs[1].raw)
    assert reply.exchange_type == ExchangeType.INFORMATIONAL
    notify = reply.payloads[0]
    assert isinstance(notify, NotifyPayload) and notify.notify_type == NotifyType.NO_PROPOSAL_CHOSEN
    decision = next(e for e in run.network.events if isinstance(e, PolicyDecision) and e.peer == "right")
    assert not decision.accepted
    text = "\n".join(decision.explanation)
    assert "Checking ISAKMP transform 1 against policy 10: Hash algorithm offered does not match policy! (offered SHA1, policy 10 has SHA2-256)" in text
    assert "default policy 65535" in text
    # the structured checks name the differing attribute per policy
    by_policy = {c.policy: [a.attribute for a in c.checks if not a.match] for c in decision.checks}
    assert by_policy["policy 10"] == ["hash"]
    assert "encryption" in by_policy["default policy 65535"]
    # the initiator understands the notify
    err = next(e for e in run.network.events if isinstance(e, ErrorEvent) and e.peer == "left")
    assert err.notify == NotifyType.NO_PROPOSAL_CHOSEN and "rejected every transform" in err.message


def test_wrong_psk_is_an_authentication_failure() -> None:
    run = run_demo(DemoOptions(wrong_psk=True, seed=5))
    assert not run.established()
    msgs = sent(run.events)
    assert [m.summary for m in msgs][-1] == "HDR, N(INVALID_HASH_INFORMATION)"
    right_err = next(e for e in run.network.events if isinstance(e, ErrorEvent) and e.peer == "right")
    assert right_err.code == "AUTHENTICATION_FAILED" and "pre-shared keys differ" in right_err.message
    left_err = next(e for e in run.network.events if isinstance(e, ErrorEvent) and e.peer == "left")
    assert left_err.notify == NotifyType.INVALID_HASH_INFORMATION and "pre-shared keys differ" in left_err.message
    assert all(sa.failed for sa in run.right.ike_sas.values())


def test_aggressive_mode_identities_and_hash_travel_in_clear() -> None:
    run = run_demo(DemoOptions(mode="aggressive", seed=9))
    msgs = sent(run.events)
    assert msgs[0].summary.startswith("HDR, SA, KE, Ni, IDii")
    assert b"left@lab" in msgs[0].raw and b"right@lab" in msgs[1].raw
    am2 = Message.decode(msgs[1].raw)
    assert PayloadType.HASH in [p.payload_type for p in am2.payloads]


def test_certificate_request_names_the_trusted_ca() -> None:
    from ipseclab.wire.v1.isakmp import CertReqPayload

    run = run_demo(DemoOptions(auth="rsa", seed=4))
    assert run.established()
    mm3 = Message.decode(sent(run.events)[2].raw)
    cr = next(p for p in mm3.payloads if isinstance(p, CertReqPayload))
    assert cr.authority == run.left.config.ca_cert.subject.public_bytes()
