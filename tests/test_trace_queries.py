"""What the widgets know comes from the trace alone, and agrees with the peers' own state."""

from __future__ import annotations

import pytest

from ipseclab.demo import DemoOptions
from ipseclab.teaching.lab import LabSession
from ipseclab.trace_queries import established_from_events, failure_lines, in_flight


def _established(s: LabSession) -> bool:
    return established_from_events(s.events, ["left", "right"], s.options.policies)


@pytest.mark.parametrize(
    "opts",
    [DemoOptions(seed=1), DemoOptions(seed=2, mode="aggressive", policies=2, pfs=14), DemoOptions(seed=3, mismatch=True), DemoOptions(seed=4, wrong_psk=True)],
)
def test_step_by_step_the_trace_tells_what_the_network_holds(opts: DemoOptions) -> None:
    s = LabSession(opts)
    while True:
        waiting = in_flight(s.events)
        assert len(waiting) == s.pending
        if waiting:
            assert waiting[0].src == s.network.in_flight[0].src and waiting[0].raw in s.network.in_flight[0].data
        assert _established(s) == s.established()
        if s.next() is None:
            break
    assert _established(s) == (not opts.mismatch and not opts.wrong_psk)
    assert bool(failure_lines(s.events)) == (opts.mismatch or opts.wrong_psk)


def test_trace_follows_expiry_and_renegotiation() -> None:
    s = LabSession(DemoOptions(seed=5, left_lifetime=600, right_lifetime=600, esp_lifetime_left=300, esp_lifetime_right=300))
    s.run_to_end()
    assert _established(s) and s.established()
    s.network.drop = lambda d: True  # from now on nothing arrives: SAs expire and are not replaced
    s.advance(301)
    assert not _established(s) and not s.established()


def test_keys_table_groups_aggressive_mode_values_under_one_sa() -> None:
    import re

    from ipseclab.teaching.widgets.render import keys_table

    s = LabSession(DemoOptions(seed=1, mode="aggressive"))
    s.run_to_end()
    headings = re.findall(r'class="sa">([^<]*)<', keys_table(s.events, "left"))
    assert len([h for h in headings if h.startswith("ISAKMP SA")]) == 1
    assert not any(h.endswith("/" + "0" * 16) for h in headings)


def test_the_timeline_puts_the_life_of_the_sas_between_the_arrows() -> None:
    """Keepalives, moves, deletions and pauses of the clock have no message of their own:
    the sequence diagram draws them as notes between the arrows, in order."""
    from ipseclab.trace import MessageEvent
    from ipseclab.trace_queries import LifeNote, timeline

    s = LabSession(DemoOptions(seed=12, nat=True, esp_lifetime_left=600, esp_lifetime_right=600))
    s.run_to_end()
    handshake = len(s.messages())
    assert timeline(s.events) == list(range(handshake)), "a handshake at t = 0: arrows only"
    s.advance(545)  # keepalives every 20 s, then the child's rekey at 540 s
    rows = timeline(s.events)
    assert [r for r in rows if isinstance(r, int)] == list(range(len(s.messages())))
    notes = [r for r in rows if isinstance(r, LifeNote)]
    kinds = [n.kind for n in notes]
    assert kinds.count("keepalive") == 27 and all(n.peer == "left" for n in notes if n.kind == "keepalive")
    rekey_qm1 = next(i for i, m in enumerate(s.messages()) if m.exchange == "Quick Mode" and m.time >= 540)
    before = rows[rows.index(rekey_qm1) - 1]
    assert isinstance(before, LifeNote) and before.kind in ("time", "keepalive")
    deleted = [n for n in notes if n.kind == "deleted"]
    assert deleted and all("rekeyed" in n.text or "deleted by the peer" in n.text for n in deleted)
    assert rows.index(rekey_qm1) < rows.index(deleted[0]), "in the order they happened"
    assert all(isinstance(e, MessageEvent) for e in [s.messages()[r] for r in rows if isinstance(r, int)])


def test_the_diagram_draws_the_notes() -> None:
    pytest.importorskip("ipywidgets")
    from ipseclab.teaching.widgets import IkeLab

    lab = IkeLab(DemoOptions(seed=5))
    lab.session.run_to_end()
    lab.session.advance(3300)  # the child's rekey at 90 % of 3600 s: a pause, a Quick Mode, a Delete
    def html_of(widget) -> str:  # noqa: ANN001
        return getattr(widget, "value", "") + "".join(html_of(c) for c in getattr(widget, "children", ()))

    html = html_of(lab.diagram.rows)
    assert 'class="ipl-note ipl-note-time"' in html and "(+3240 s)" in html
    assert any("rekeyed: replaced by" in n for n in lab.diagram.note_labels())
    assert html.count('class="ipl-arrow"') == len(lab.diagram.arrow_labels())
