"""Two peers built from plain configuration objects: the engine without the demo's options."""

from __future__ import annotations

import pytest
from engine_support import (
    assert_child_sa_count,
    assert_ike_sa_state,
    established_pair,
    events_of,
    peer_pair,
    sent,
    states_of,
    terminate,
)

from ipseclab.ikev1.policy import TransformSet
from ipseclab.trace import ErrorEvent, SaDeleted


@pytest.mark.parametrize(
    ("mode", "left_states", "right_states"),
    [
        ("main", ["MM_SA_SENT", "MM_KEY_EXCH_SENT", "MM_AUTH_SENT", "QM_IDLE"], ["MM_SA_REPLIED", "MM_KEY_EXCH_REPLIED", "QM_IDLE"]),
        ("aggressive", ["AG_INIT_SENT", "QM_IDLE"], ["AG_REPLY_SENT", "QM_IDLE"]),
    ],
)
def test_phase_1_walks_the_table_and_every_child_comes_up(mode: str, left_states: list[str], right_states: list[str]) -> None:
    pair = established_pair(mode=mode, children=2)
    for peer in (pair.left, pair.right):
        assert_ike_sa_state(peer, "QM_IDLE")
        assert_child_sa_count(peer, 2)
    assert states_of(pair.events, "left") == left_states
    assert states_of(pair.events, "right") == right_states
    assert sorted(states_of(pair.events, "left", "child")) == ["QM_ESTABLISHED"] * 2 + ["QM_I1_SENT"] * 2
    assert len(sent(pair.events)) == (6 if mode == "main" else 3) + 2 * 3


def test_pfs_children_and_terminate() -> None:
    pair = established_pair(transform_set=TransformSet("ts1", pfs_group=14))
    assert pair.left.child_sas[0].pfs_group == 14
    terminate(pair.network, "left")
    for peer in (pair.left, pair.right):
        assert_ike_sa_state(peer, "QM_IDLE", count=0)
        assert_child_sa_count(peer, 0)
    reasons = {(e.peer, e.sa.kind, e.reason) for e in events_of(pair.events, SaDeleted)}
    assert reasons == {
        ("left", "ike", "terminated"), ("left", "child", "terminated"),
        ("right", "ike", "deleted by the peer"), ("right", "child", "deleted by the peer"),
    }


def test_different_psks_fail_on_both_sides_with_the_reason() -> None:
    pair = peer_pair(right={"psk": b"another-psk"}).initiate().run()
    pair.network.advance(5)
    assert_ike_sa_state(pair.right, "FAILED")
    assert_ike_sa_state(pair.left, "FAILED")
    pair.network.advance(10)  # failed_sa_grace: failed SAs leave the table
    assert not pair.right.ike_sas and not pair.left.ike_sas
    codes = {(e.peer, e.code) for e in events_of(pair.events, ErrorEvent)}
    assert ("right", "AUTHENTICATION_FAILED") in codes
    assert ("left", "PEER_INVALID_HASH_INFORMATION") in codes  # the responder told us, in clear
