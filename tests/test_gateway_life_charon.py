"""A gateway's whole life against charon (strongSwan 5.9, kernel-libipsec) in namespaces (root).

Every scenario of :mod:`ipseclab.runtime.netlab.life_interop` — the same ones ``ipseclab interop
--life`` runs: charon terminates (we stay down unless ``close_action = start``), rekeys the child
and re-authenticates (both initiators), restarts and reconnects with INITIAL-CONTACT — and so do
we —, Dead Peer Detection both ways with the other side killed, IKE that starts on 4500 (and IKE
sent there without the marker), narrowing both ways, a remote-ID mismatch and charon's default
proposal against the example configurations. Each checks both SA tables and, where traffic
flows, pings through the data plane.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN, raw sockets); CI runs as root"
    from ipseclab.runtime.netlab.charon import Charon

    return Charon.available()


_REASON = _why_not()
if _REASON:
    print(f"skipping the charon life-cycle tests: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

from ipseclab.runtime.netlab.life_interop import LIFE_SCENARIOS, run_life_scenario  # noqa: E402


@pytest.mark.parametrize("name", list(LIFE_SCENARIOS))
def test_life_scenario_against_charon(tmp_path: Path, name: str) -> None:
    result = run_life_scenario(name, tmp_path)
    assert result.passed, f"{name}: {result.verdict}\nours: {result.ours}\ncharon: {result.theirs}"


def test_a_failed_check_is_reported_not_raised(tmp_path: Path) -> None:
    """A scenario whose check cannot hold ends as a FAIL with the reason (the CLI's table)."""
    from dataclasses import replace

    from ipseclab.runtime.netlab import life_interop

    def impossible(t):  # noqa: ANN001, ANN202
        t.establish("ipseclab")
        life_interop.require(False, "this check cannot hold")

    scen = replace(LIFE_SCENARIOS["life-charon-terminates"], name="impossible", run=impossible)
    life_interop.LIFE_SCENARIOS["impossible"] = scen
    try:
        result = run_life_scenario("impossible", tmp_path)
    finally:
        del life_interop.LIFE_SCENARIOS["impossible"]
    assert not result.passed and result.verdict == "this check cannot hold"
    assert result.ours["isakmp"] and result.theirs, "both tables are kept for the report"


def test_cli_interop_runs_life_scenarios(tmp_path: Path, run_ipseclab) -> None:  # noqa: ANN001
    result = run_ipseclab("interop", "--scenario", "life-narrowed-by-charon", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["scenario", "result", "seconds", "verdict"]
    assert lines[1].startswith("life-narrowed-by-charon") and " PASS " in lines[1] and "/32" in lines[1]
    assert (tmp_path / "life-narrowed-by-charon" / "charon1.log").read_text().strip(), "charon's log kept as evidence"
