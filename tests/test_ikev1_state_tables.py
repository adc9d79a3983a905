"""The IKEv1 exchanges' handler tables, tested on their own (h11's state machine tests)."""

from __future__ import annotations

import pytest

from ipseclab.ikev1.aggressive_mode import AggressiveModeInitiator, AggressiveModeResponder
from ipseclab.ikev1.exchange import Exchange
from ipseclab.ikev1.main_mode import MainModeInitiator, MainModeResponder
from ipseclab.ikev1.quick_mode import QuickModeInitiator, QuickModeResponder
from ipseclab.ikev1.states import IsakmpState, QuickModeState

# (class, role, messages it receives, the states its handlers leave, the state it ends in)
TABLES = [
    (MainModeInitiator, "initiator", [2, 4, 6], ["MM_KEY_EXCH_SENT", "MM_AUTH_SENT", "QM_IDLE"], IsakmpState),
    (MainModeResponder, "responder", [1, 3, 5], ["MM_SA_REPLIED", "MM_KEY_EXCH_REPLIED", "QM_IDLE"], IsakmpState),
    (AggressiveModeInitiator, "initiator", [2], ["QM_IDLE"], IsakmpState),
    (AggressiveModeResponder, "responder", [1, 3], ["AG_REPLY_SENT", "QM_IDLE"], IsakmpState),
    (QuickModeInitiator, "initiator", [2], ["QM_ESTABLISHED"], QuickModeState),
    (QuickModeResponder, "responder", [1, 3], ["QM_R1_SENT", "QM_ESTABLISHED"], QuickModeState),
]


@pytest.mark.parametrize(("cls", "role", "indices", "states", "enum"), TABLES, ids=[t[0].__name__ for t in TABLES])
def test_each_table_covers_the_messages_its_role_receives(
    cls: type[Exchange], role: str, indices: list[int], states: list[str], enum: type
) -> None:
    assert [s.receiver for s in cls.steps] == [role] * len(indices)
    assert [s.index for s in cls.steps] == indices
    # the initiator receives even-numbered messages, the responder odd ones
    assert all(i % 2 == (0 if role == "initiator" else 1) for i in indices)
    assert [s.next_state for s in cls.steps] == states
    assert all(isinstance(s.next_state, enum) for s in cls.steps)
    assert cls.steps[-1].next_state in cls.final_states, "the last message ends the exchange"
    for step in cls.steps:
        assert getattr(cls, step.handler.__name__) is step.handler
        assert step.story, f"{cls.__name__} message {step.index} tells no story"


def test_required_payloads_are_declared_where_the_rfc_makes_them_the_first_check() -> None:
    from ipseclab.wire.v1.isakmp import NoncePayload, SAPayload

    required = {(cls.__name__, s.index): s.required for cls, *_ in TABLES for s in cls.steps if s.required}
    assert required == {
        ("MainModeResponder", 1): (SAPayload,),
        ("QuickModeInitiator", 2): (NoncePayload,),
        ("QuickModeResponder", 1): (NoncePayload,),
    }
