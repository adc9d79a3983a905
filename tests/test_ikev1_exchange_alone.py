"""One IKEv1 exchange driven alone through a fake owner: the seam an exchange sees."""

from __future__ import annotations

from engine_support import LEFT, RIGHT, FakeOwner, peer_config

from ipseclab.ikev1 import phase1
from ipseclab.ikev1.isakmp_sa import IsakmpSa
from ipseclab.ikev1.main_mode import MainModeInitiator, MainModeResponder
from ipseclab.ikev1.policy import IsakmpPolicy
from ipseclab.ikev1.states import IsakmpState
from ipseclab.trace import ErrorEvent, PolicyDecision, StateChanged
from ipseclab.wire.v1.constants import NotifyType
from ipseclab.wire.v1.isakmp import KEPayload, NoncePayload, SAPayload, VendorIDPayload


def _responder() -> tuple[FakeOwner, MainModeResponder]:
    owner = FakeOwner(peer_config("right", RIGHT, LEFT, mirrored=True))
    sa = IsakmpSa(icookie=b"\x01" * 8, rcookie=b"\x02" * 8, initiator=False, local=(RIGHT, 500), remote=(LEFT, 500),
                  connection=owner.config.connections[0])
    return owner, MainModeResponder(owner, sa, False)


def test_main_mode_responder_answers_mm1_with_the_chosen_transform() -> None:
    owner, ex = _responder()
    offer = phase1.offered_sa(FakeOwner(peer_config("left", LEFT, RIGHT)))
    owner.deliver(ex, [offer, *phase1.initiator_vendor_ids(True)], (LEFT, 500), (RIGHT, 500))
    (payloads, encrypt, expect_reply), = owner.transmitted
    assert not encrypt and expect_reply
    assert isinstance(payloads[0], SAPayload) and len(payloads[0].proposals[0].transforms) == 1
    assert any(isinstance(p, VendorIDPayload) for p in payloads)
    assert ex.state == IsakmpState.MM_SA_REPLIED
    assert [(e.old, e.new) for e in owner.events if isinstance(e, StateChanged)] == [("MM_NO_STATE", "MM_SA_REPLIED")]
    assert [e.accepted for e in owner.events if isinstance(e, PolicyDecision)] == [True]


def test_a_missing_required_payload_is_rejected_in_one_place() -> None:
    owner, ex = _responder()
    owner.deliver(ex, [KEPayload(b"\x00" * 256), NoncePayload(b"n" * 32)], (LEFT, 500), (RIGHT, 500))
    assert owner.transmitted == []
    assert owner.notifies == [(NotifyType.PAYLOAD_MALFORMED, False)]
    (error,) = [e for e in owner.events if isinstance(e, ErrorEvent)]
    assert (error.code, error.message) == ("PAYLOAD_MALFORMED", "message 1 carries no SA payload")
    assert ex.failed and ex.done and owner.failed == [ex]


def test_an_unacceptable_offer_is_a_reject_with_no_proposal_chosen() -> None:
    owner, ex = _responder()
    other = FakeOwner(peer_config("left", LEFT, RIGHT, policy=IsakmpPolicy(10, hash="md5")))
    offer = phase1.offered_sa(other)
    owner.deliver(ex, [offer], (LEFT, 500), (RIGHT, 500))
    assert owner.notifies == [(NotifyType.NO_PROPOSAL_CHOSEN, False)]
    assert ex.state == IsakmpState.FAILED


def test_a_message_no_step_handles_is_counted_and_changes_nothing() -> None:
    owner, ex = _responder()
    ex.index = 1  # as if message 1 was handled: message 2 is the responder's own
    owner.deliver(ex, [NoncePayload(b"n" * 32)], (LEFT, 500), (RIGHT, 500))
    assert owner.counters == {"unexpected_message": 1}
    assert ex.state == IsakmpState.MM_NO_STATE and owner.transmitted == []


def test_main_mode_initiator_starts_with_its_offer() -> None:
    owner = FakeOwner(peer_config("left", LEFT, RIGHT))
    sa = IsakmpSa(icookie=b"\x01" * 8, rcookie=bytes(8), initiator=True, local=(LEFT, 500), remote=(RIGHT, 500),
                  connection=owner.config.connections[0])
    ex = MainModeInitiator(owner, sa, True)
    ex.start()
    (payloads, encrypt, expect_reply), = owner.transmitted
    assert isinstance(payloads[0], SAPayload) and not encrypt and expect_reply
    assert ex.state == IsakmpState.MM_SA_SENT and ex.index == 1
