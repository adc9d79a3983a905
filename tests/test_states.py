"""Every state change is an event: the trace's latest state of each SA equals the SA's own."""

from __future__ import annotations

import pytest

from ipseclab.demo import DemoOptions
from ipseclab.teaching.lab import LabSession
from ipseclab.trace import SaRef, StateChanged


def _latest_states(session: LabSession, peer: str) -> dict[SaRef, str]:
    out: dict[SaRef, str] = {}
    for e in session.events:
        if isinstance(e, StateChanged) and e.peer == peer:
            out[e.sa] = e.new
    return out


def _assert_trace_agrees(session: LabSession) -> None:
    for peer in session.network.peers:
        latest = _latest_states(session, peer.name)
        for sa in peer.ike_sas.values():
            assert latest.get(sa.ref, str(sa.state)) == sa.state, sa.ref
        for pair in peer.child_sas:
            assert latest.get(pair.ref, "ESTABLISHED") == pair.state, pair.ref


@pytest.mark.parametrize(
    "opts",
    [
        DemoOptions(seed=1),
        DemoOptions(seed=2, mode="aggressive", policies=2, pfs=14),
        DemoOptions(seed=3, mismatch=True),
        DemoOptions(seed=4, wrong_psk=True),
    ],
)
def test_the_trace_holds_every_state_change(opts: DemoOptions) -> None:
    s = LabSession(opts)
    while s.next() is not None:
        _assert_trace_agrees(s)
    s.advance(120)  # retransmissions give up, failed SAs stay failed
    _assert_trace_agrees(s)


def test_terminate_leaves_both_peers_with_no_established_sa() -> None:
    s = LabSession(DemoOptions(seed=7))
    s.run_to_end()
    assert s.states() == {"left": "QM_IDLE", "right": "QM_IDLE"}
    s.left.terminate(s.network.now)
    s.network.collect()
    s.run_to_end()
    assert s.states() == {"left": "DELETED", "right": "DELETED"}
    assert not s.established()
    for peer in s.network.peers:
        assert not peer.ike_sas and not peer.child_sas
        downs = [e for e in s.events if isinstance(e, StateChanged) and e.peer == peer.name and e.new == "DELETED"]
        assert {e.sa.kind for e in downs} == {"ike", "child"}


def test_a_timed_out_quick_mode_says_so() -> None:
    s = LabSession(DemoOptions(seed=8))
    while not s.left.child_sas and s.pending:
        if s.network.in_flight[0].data[18] == 32:  # the first Quick Mode message: lost
            s.network.drop = lambda d: True
        s.next()
    s.advance(300)
    qm = [e for e in s.events if isinstance(e, StateChanged) and e.peer == "left" and e.sa.kind == "child"]
    assert [e.new for e in qm] == ["QM_I1_SENT", "FAILED"]
