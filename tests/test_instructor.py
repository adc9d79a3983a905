"""The instructor's projector page (``InstructorView``, served by Voilà from
``labs/instructor/projector.ipynb``): chosen peers and scenario, stepped by hand."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("ipywidgets")

from ipseclab.teaching.instructor import SCENARIOS, InstructorView  # noqa: E402


def test_the_page_steps_main_mode_then_switches_scenarios_in_memory() -> None:
    view = InstructorView()
    assert "Peers in memory" in view.where.value and "192.0.2.1" in view.where.value
    for _ in range(9):
        view.stepper.next_button.click()
    assert [label.split()[0] for label in view.diagram.arrow_labels()] == ["MM1", "MM2", "MM3", "MM4", "MM5", "MM6", "QM1", "QM2", "QM3"]
    view.diagram.select(4)
    assert view.inspector.message is not None and view.inspector.message.index == 5
    assert "SKEYID_e" in view.key_panel.table.value
    view.scenario_choice.value = "NAT traversal"
    view.connect_button.click()
    view.stepper.end_button.click()
    assert view.peers is not None and view.peers.session.established()
    assert any(m.dst[1] == 4500 for m in view.peers.session.messages()), "IKE floated to 4500 behind the NAT"
    view.scenario_choice.value = "Wrong PSK"
    view.start()
    view.stepper.end_button.click()
    assert not view.peers.session.established() and view.peers.session.explanation()


def test_every_scenario_is_a_valid_demo() -> None:
    for name in SCENARIOS:
        view = InstructorView(scenario=name, seed=3)
        view.stepper.end_button.click()
        expect_up = name not in ("Proposal mismatch", "Wrong PSK")
        assert view.peers.session.established() is expect_up, name


def test_a_page_that_cannot_start_says_why_instead_of_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    view = InstructorView(peers="namespaces")
    assert "Cannot start" in view.where.value and "needs root" in view.where.value
    assert view.body.children == ()


@pytest.mark.root
def test_the_page_drives_daemons_in_namespaces() -> None:
    if os.geteuid() != 0:
        print("skipping the projector page on namespace peers: needs root", file=sys.stderr)
        pytest.skip("needs root (network namespaces); CI runs as root")
    view = InstructorView(peers="namespaces", scenario="Main Mode + PFS")
    try:
        assert "Peers in network namespaces" in view.where.value
        for _ in range(9):
            view.stepper.next_button.click()
        assert view.peers.session.established()
        assert "KE" in view.diagram.arrow_labels()[6], "QM1 carries KE with PFS"
        name = view.peers.name
    finally:
        view.down()
    from ipseclab.runtime.netlab.topology import lab_names

    assert name not in lab_names()
