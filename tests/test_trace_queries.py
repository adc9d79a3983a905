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
