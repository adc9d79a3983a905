"""The instructor's projector page: one exchange, large, stepped by hand — no code cells.

:class:`InstructorView` puts the step buttons, a large sequence diagram, the message inspector
and the keys of one :class:`~ipseclab.teaching.peers.LabPeers` session on one page, with a bar
to choose where the peers run (memory, namespaces, containers) and which scenario they play
(Main or Aggressive Mode, PFS, a NAT, a proposal mismatch, a wrong PSK).  It is served without
code by Voilà from ``labs/instructor/projector.ipynb`` — ``ipseclab instructor`` starts that —
and works in any notebook too::

    from ipseclab.teaching.instructor import InstructorView
    InstructorView()                       # memory, Main Mode
    InstructorView(peers="namespaces", scenario="NAT traversal")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import ipywidgets as W

from ipseclab.demo import DemoOptions
from ipseclab.errors import IpsecLabError
from ipseclab.teaching.peers import MODES, LabPeers, connect
from ipseclab.teaching.widgets import KeyPanel, MessageInspector, SequenceDiagram, Stepper
from ipseclab.teaching.widgets import render as R

#: What each scenario changes in the demo's options (left initiates to right, seeded).
SCENARIOS: Mapping[str, Mapping[str, object]] = {
    "Main Mode": {},
    "Aggressive Mode": {"mode": "aggressive"},
    "Main Mode + PFS": {"pfs": 14},
    "NAT traversal": {"nat": True},
    "Proposal mismatch": {"mismatch": True},
    "Wrong PSK": {"wrong_psk": True},
}

#: Larger type and a zoomed diagram for a projector; the page keeps working at 1280 x 720.
PROJECTOR_CSS = """<style>
.ipl-projector .ipl { font-size: 17px; }
.ipl-projector .ipl-diagram { zoom: 1.3; }
.ipl-projector .widget-button { font-size: 16px; height: 40px; }
.ipl-projector .ipl-diagram .widget-button { font-size: 13px; height: 28px; }
.ipl-projector .ipl .hex { font-size: 14px; max-height: 420px; }
</style>"""


class InstructorView(W.VBox):
    """Choose peers and scenario, then step the exchange for the class to watch."""

    def __init__(self, peers: str = "memory", scenario: str = "Main Mode", *, seed: int = 1) -> None:
        self.peers_choice = W.Dropdown(options=list(MODES), value=peers, description="peers",
                                       layout=W.Layout(width="260px"))
        self.scenario_choice = W.Dropdown(options=list(SCENARIOS), value=scenario, description="scenario",
                                          layout=W.Layout(width="320px"))
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=W.Layout(width="180px"))
        self.connect_button = W.Button(description="Start", icon="play", button_style="success", layout=W.Layout(width="140px"))
        self.where = W.HTML()
        self.connect_button.on_click(lambda _: self.start())
        self.body = W.VBox()
        self.peers: LabPeers | None = None
        bar = W.HBox([self.peers_choice, self.scenario_choice, self.seed, self.connect_button], layout=W.Layout(flex_flow="row wrap"))
        super().__init__([W.HTML(PROJECTOR_CSS), bar, self.where, self.body])
        self.add_class("ipl-projector")
        self.start()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> InstructorView:
        """The page ``ipseclab instructor`` serves: ``IPSECLAB_PEERS``, ``IPSECLAB_SCENARIO``,
        ``IPSECLAB_SEED`` choose what it starts with."""
        env = os.environ if env is None else env
        scenario = env.get("IPSECLAB_SCENARIO") or "Main Mode"
        return cls(env.get("IPSECLAB_PEERS") or "memory", scenario if scenario in SCENARIOS else "Main Mode",
                   seed=int(env.get("IPSECLAB_SEED") or 1))

    def options(self) -> DemoOptions:
        return DemoOptions(seed=self.seed.value, **SCENARIOS[self.scenario_choice.value])  # type: ignore[arg-type]

    def start(self) -> None:
        """(Re)start with the chosen peers and scenario; real peers of the last start go first."""
        self.down()
        try:
            self.peers = connect(self.peers_choice.value, self.options(), lab="pj")
        except IpsecLabError as exc:  # no root, no podman, ...: say so on the page
            self.where.value = R.CSS + f'<div class="ipl"><span class="bad">Cannot start:</span> {R.esc(exc)}</div>'
            self.body.children = ()
            return
        session = self.peers.session
        self.stepper = Stepper(session)
        self.diagram = SequenceDiagram(session)
        self.inspector = MessageInspector(session.left.name)
        self.key_panel = KeyPanel(session)
        self.diagram.on_select(self.inspector.show)
        tabs = W.Tab(children=[self.inspector, self.key_panel])
        tabs.set_title(0, "Message")
        tabs.set_title(1, "Keys")
        self.tabs = tabs
        lines = self.peers.describe().splitlines()
        self.where.value = R.CSS + '<div class="ipl"><b>' + R.esc(lines[0]) + "</b> " + " · ".join(R.esc(x.strip()) for x in lines[1:]) + "</div>"
        self.body.children = (self.stepper, self.diagram, tabs)

    def down(self) -> None:
        """Take real peers down (also when the page's kernel exits)."""
        peers, self.peers = self.peers, None
        if peers is not None:
            with contextlib.suppress(Exception):
                peers.down()
