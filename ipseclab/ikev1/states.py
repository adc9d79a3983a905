"""IKEv1 state names, as common gateways print them (Cisco's ``show crypto isakmp sa``).

An ISAKMP SA moves through Main Mode (RFC 2409 §5) or Aggressive Mode to ``QM_IDLE``
(established: Quick Modes may run); a Quick Mode exchange (RFC 2409 §5.5) from
``QM_NO_STATE`` to ``QM_ESTABLISHED``.  Every change goes through the owner's one
``set_state``, which emits a :class:`~ipseclab.trace.StateChanged` event.
"""

from __future__ import annotations

from enum import StrEnum


class IsakmpState(StrEnum):
    """Phase 1 states of an ISAKMP SA (initiator and responder, Main and Aggressive Mode)."""

    MM_NO_STATE = "MM_NO_STATE"
    MM_SA_SENT = "MM_SA_SENT"
    MM_SA_REPLIED = "MM_SA_REPLIED"
    MM_KEY_EXCH_SENT = "MM_KEY_EXCH_SENT"
    MM_KEY_EXCH_REPLIED = "MM_KEY_EXCH_REPLIED"
    MM_AUTH_SENT = "MM_AUTH_SENT"
    AG_NO_STATE = "AG_NO_STATE"
    AG_INIT_SENT = "AG_INIT_SENT"
    AG_REPLY_SENT = "AG_REPLY_SENT"
    QM_IDLE = "QM_IDLE"  # established: phase 2 may run
    FAILED = "FAILED"
    DELETED = "DELETED"


class QuickModeState(StrEnum):
    """States of one Quick Mode exchange."""

    QM_NO_STATE = "QM_NO_STATE"
    QM_I1_SENT = "QM_I1_SENT"
    QM_R1_SENT = "QM_R1_SENT"
    QM_ESTABLISHED = "QM_ESTABLISHED"
    FAILED = "FAILED"


def first_state(mode: str) -> IsakmpState:
    return IsakmpState.MM_NO_STATE if mode == "main" else IsakmpState.AG_NO_STATE
