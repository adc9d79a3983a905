"""ipywidgets views of a :class:`~ipseclab.teaching.lab.LabSession`, rendered from trace events.

* :class:`Stepper` — Next / Back to start / Run to end / Reset, who acts, each peer's state;
* :class:`SequenceDiagram` — the peers as lanes, one arrow per message (notation,
  encryption, addresses and ports), an *inspect* button per arrow;
* :class:`MessageInspector` — payload tree (collapsible per payload), field list, hex
  dump with the selected field highlighted, ciphertext and plaintext side by side;
* :class:`KeyPanel` — DH values, nonces, SKEYIDs, IVs, KEYMAT with their formulas;
* :class:`PolicyEditor` — both peers' ISAKMP policies and transform sets as forms; *apply*
  re-runs the negotiation and shows the explanation;
* :class:`IkeLab` — all of them together, plus an export button (pcap + key tables).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ipywidgets as W

from ipseclab.config import PeerConfig
from ipseclab.demo import DemoOptions
from ipseclab.ikev1.policy import (
    AUTH_METHODS,
    ESP_ENCRYPTIONS,
    ESP_INTEGRITIES,
    IKE_ENCRYPTIONS,
    IKE_HASHES,
    IsakmpPolicy,
    TransformSet,
)
from ipseclab.teaching.lab import LabSession
from ipseclab.teaching.widgets import render as R
from ipseclab.trace import MessageEvent, PortFloated

GROUPS = [1, 2, 5, 14, 15, 16, 19, 20, 21, 31]


def _html(value: str = "") -> W.HTML:
    return W.HTML(value=R.CSS + value)


class Stepper(W.VBox):
    """The step controls and the peers' states."""

    def __init__(self, session: LabSession) -> None:
        self.session = session
        self.next_button = W.Button(description="Next \u25b6", button_style="primary", tooltip="deliver the next message")
        # Font Awesome icons (shipped with the widgets) instead of U+23EE/U+23ED, which common
        # Linux fonts (DejaVu) lack: they showed as empty boxes.
        self.start_button = W.Button(description="Back to start", icon="fast-backward", tooltip="replay from the first message")
        self.end_button = W.Button(description="Run to end", icon="fast-forward", tooltip="deliver every message")
        self.reset_button = W.Button(description="Reset \u27f2", tooltip="start over with the notebook's configuration")
        for b in (self.next_button, self.start_button, self.end_button, self.reset_button):
            b.layout = W.Layout(width="150px")
        self.status = _html()
        self._initial = (session.options, session.configs)
        self.next_button.on_click(lambda _: session.next())
        self.start_button.on_click(lambda _: session.back_to_start())
        self.end_button.on_click(lambda _: session.run_to_end())
        self.reset_button.on_click(lambda _: session.reset(self._initial[0], configs=self._initial[1]))
        super().__init__([W.HBox([self.next_button, self.start_button, self.end_button, self.reset_button]), self.status])
        self.add_class("ipl-stepper")
        session.subscribe(lambda kind: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        s = self.session
        states = s.states()
        waiting = R.in_flight(s.events)
        sender = waiting[0].peer if waiting else None
        nxt = f"next: <b>{R.esc(sender)}</b> sends" if sender else "nothing in flight"
        qms = s.quick_mode_states()
        qm_text = ""
        for peer, d in qms.items():
            if d:
                # "net1 (M-ID 5af36beb) QM_ESTABLISHED": which Quick Mode is in which state
                qm_text += f"<br>{R.esc(peer)} Quick Mode: " + ", ".join(
                    f'{R.esc(k.child)} (M-ID {k.message_id or 0:08x}) <span class="state">{R.esc(v)}</span>' for k, v in d.items()
                )
        self.next_button.disabled = sender is None
        self.status.value = R.CSS + (
            f'<div class="ipl">{len(s.messages())} message(s) sent &nbsp;|&nbsp; {nxt} &nbsp;|&nbsp; '
            + " &nbsp; ".join(f'{R.esc(p)}: <span class="state">{R.esc(st)}</span>' for p, st in states.items())
            + qm_text
            + "</div>"
            + self.result()
        )


    def result(self) -> str:
        return Stepper.result_for(self.session)

    @staticmethod
    def result_for(s: LabSession) -> str:
        """Established / in progress / why not — from the trace events alone."""
        events = s.events
        peers = [p.name for p in s.network.peers]
        children = len(s.configs[0].connections[0].children) if s.configs[0].connections else 0
        done = R.established_from_events(events, peers, children)
        version = s.configs[0].connections[0].version if s.configs[0].connections else 1
        vips = []
        if done and any(c.vips for c in s.configs[0].connections):  # remote access: the address the gateway gave
            vips = [(x["virtual_ip"], x.get("eap_id", "")) for x in s.sa_tables()[peers[0]].get("isakmp", []) if x.get("virtual_ip")]
        return R.result_html(done, R.failure_lines(events), len(R.in_flight(events)), version=version, virtual_ips=vips,
                             client=peers[0])


class SequenceDiagram(W.VBox):
    """Lanes and arrows; ``on_select(callback)`` is called with the chosen MessageEvent."""

    def __init__(self, session: LabSession) -> None:
        self.session = session
        self.header = W.HTML()
        self.rows = W.VBox(layout=W.Layout(flex="0 0 auto"))
        # The rows scroll inside a box laid out column-reverse around them: the browser anchors
        # such a box's scroll position at its end, so the newest arrow stays in view as the
        # history grows, while a student who scrolled up to an old arrow is left there.
        self.scroller = W.Box([self.rows], layout=W.Layout(max_height="520px", overflow="hidden auto", flex_flow="column-reverse"))
        self.scroller.add_class("ipl-scroller")
        self.selected: int | None = None
        self._callbacks: list = []
        super().__init__([self.header, self.scroller])
        self.add_class("ipl-diagram")
        session.subscribe(self._on_session)
        self.refresh()

    def on_select(self, callback) -> None:  # noqa: ANN001
        self._callbacks.append(callback)

    def _on_session(self, kind: str) -> None:
        messages = self.session.messages()
        if kind == "reset":
            self.selected = None
        if messages and (self.selected is None or kind == "step"):
            self.selected = len(messages) - 1
        self.refresh()
        self._fire()

    def select(self, index: int) -> None:
        self.selected = index
        self.refresh()
        self._fire()

    def _fire(self) -> None:
        messages = self.session.messages()
        msg = messages[self.selected] if self.selected is not None and self.selected < len(messages) else None
        for cb in self._callbacks:
            cb(msg)

    def arrow_labels(self) -> list[str]:
        """What each arrow says (``MM1  HDR, SA, VID``), for tests and captions."""
        return [f"{R.short_label(m)}  {m.summary}" for m in self.session.messages()]

    def note_labels(self) -> list[str]:
        """The life-cycle rows between the arrows (clock, keepalives, moves, deletions)."""
        return [row.text for row in R.timeline(self.session.events) if isinstance(row, R.LifeNote)]

    def refresh(self) -> None:
        s = self.session
        states = s.states()
        left, right = s.left, s.right
        self.header.value = R.diagram_header(
            [
                (left.name, left.config.address, states.get(left.name, "")),
                (right.name, right.config.address, states.get(right.name, "")),
            ]
        )
        messages = s.messages()
        delivered = R.delivered_flags(s.events)
        floats = {e.new for e in s.events if isinstance(e, PortFloated)}
        first_float_seen = False
        rows = []
        for entry in R.timeline(s.events):
            if isinstance(entry, R.LifeNote):
                rows.append(W.HTML(R.note_svg(entry, left_name=left.name), layout=W.Layout(margin="0", flex="0 0 auto")))
                continue
            i, m = entry, messages[entry]
            floated_here = bool(floats) and not first_float_seen and 4500 in (m.src[1], m.dst[1])
            first_float_seen = first_float_seen or floated_here
            arrow = W.HTML(R.arrow_svg(m, left_name=left.name, delivered=delivered[i], selected=i == self.selected, floated_here=floated_here))
            button = W.Button(description="inspect", layout=W.Layout(width="72px", height="28px", margin="8px 0 0 4px"), tooltip=f"inspect {R.short_label(m)}")
            button.on_click(lambda _, i=i: self.select(i))
            # flex "0 0 auto": a long history scrolls instead of squeezing every arrow (and its ports) flat
            rows.append(W.HBox([arrow, button], layout=W.Layout(margin="0", padding="0", flex="0 0 auto")))
        self.rows.children = rows


class MessageInspector(W.VBox):
    """Payload tree, field list and hex dump(s) of one message."""

    def __init__(self, left_name: str = "left") -> None:
        self.left_name = left_name
        self.message: MessageEvent | None = None
        self.heading = _html('<div class="ipl"><i>Select a message (its <b>inspect</b> button) to see it decoded.</i></div>')
        self.fields = W.Select(options=[], rows=12, layout=W.Layout(width="100%"))
        self.tree = W.Accordion(layout=W.Layout(width="calc(100% - 4px)"))
        self.hex = _html()
        self._nodes: list[dict] = []
        self.fields.observe(self._on_field, names="value")
        # The tree on the left; the hex dumps with the field list right under them (a field and
        # the bytes it lights up stay in one eyeful).  The right column keeps the dumps' full
        # width (offsets, 16 bytes, ASCII): when the row is too narrow for both columns it wraps
        # below the tree instead of clipping the ASCII column.
        left_col = W.VBox([W.HTML("<b>Payload tree</b>"), self.tree],
                          layout=W.Layout(flex="1 1 240px", min_width="220px", margin="0 12px 0 0"))
        right_col = W.VBox([self.hex, W.HTML("<b>Fields</b> (select one to highlight its bytes)"), self.fields],
                           layout=W.Layout(flex="0 0 auto", width="570px", max_width="100%"))
        right_col.add_class("ipl-inspector-bytes")
        super().__init__([self.heading, W.HBox([left_col, right_col], layout=W.Layout(flex_flow="row wrap"))])
        self.add_class("ipl-inspector")

    def show(self, message: MessageEvent | None) -> None:
        self.message = message
        if message is None:
            self.heading.value = R.CSS + '<div class="ipl"><i>No message yet.</i></div>'
            self.fields.options, self.tree.children, self.hex.value = [], [], ""
            return
        self.heading.value = R.CSS + R.message_heading(message, self.left_name)
        flat = R.flatten_tree(message.tree)
        self._nodes = [n for _, n in flat]
        self.fields.options = [(R.node_label(d, n), i) for i, (d, n) in enumerate(flat)]
        root = message.tree
        sections, titles = [], []
        for child in root.get("children", []):
            lines = [R.esc(R.node_label(d, n)) for d, n in R.flatten_tree(child)]
            sections.append(W.HTML(R.CSS + '<div class="ipl mono" style="white-space:pre">' + "\n".join(lines) + "</div>"))
            value = child.get("value")
            titles.append(child["name"] + (f" — {value}" if value else ""))
        self.tree.children = sections
        for i, t in enumerate(titles):
            self.tree.set_title(i, t)
        # open the first real payload (after the header and, if encrypted, the ciphertext)
        first = next((i for i, c in enumerate(root.get("children", [])) if c.get("space") == "plaintext"), None)
        self.tree.selected_index = first if first is not None else (1 if len(sections) > 1 else None)
        self.fields.value = None
        self._render_hex(None)

    def select_field(self, name: str) -> None:
        """Select the first field whose label contains ``name`` (tests and notebooks)."""
        for label, i in self.fields.options:
            if name in label:
                self.fields.value = i
                return
        raise KeyError(name)

    def _on_field(self, change: dict) -> None:
        idx = change["new"]
        self._render_hex(self._nodes[idx] if idx is not None else None)

    def _render_hex(self, node: dict | None) -> None:
        m = self.message
        if m is None:
            return
        span = (node["offset"], node["length"]) if node else None
        wire_hl = span if node and node.get("space") == "wire" else None
        out = R.CSS + '<div class="ipl" style="display:flex;flex-direction:column;gap:6px">'
        out += "<div>" + R.hexdump_html(m.raw, wire_hl, title="on the wire" + (" (ciphertext after the header)" if m.encrypted else "")) + "</div>"
        if m.encrypted and m.plaintext is not None:
            pt_hl = span if node and node.get("space") == "plaintext" else None
            out += "<div>" + R.hexdump_html(m.plaintext, pt_hl, title="decrypted payloads (plaintext + padding)") + "</div>"
        out += "</div>"
        if node:
            out += f'<div class="ipl">selected: <b>{R.esc(node["name"])}</b> = {R.esc(node.get("value") or "")} — bytes {node["offset"]}..{node["offset"] + node["length"] - 1} of the {"plaintext" if node.get("space") == "plaintext" else "datagram"}</div>'
        self.hex.value = out


class KeyPanel(W.VBox):
    """Everything keying produced, with its RFC 2409 formula — the teaching view of secrets."""

    def __init__(self, session: LabSession) -> None:
        self.session = session
        self.peer = W.ToggleButtons(options=[p.name for p in session.network.peers], description="as seen by")
        self.table = _html()
        self.peer.observe(lambda _: self.refresh(), names="value")
        note = W.HTML('<div class="ipl" style="color:#a33;font-size:12px">Secrets are shown here because this is a teaching view; ipseclab never logs them.</div>')
        super().__init__([self.peer, note, self.table])
        self.add_class("ipl-keys")
        session.subscribe(lambda kind: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        self.table.value = R.CSS + R.keys_table(self.session.events, self.peer.value)


class _PolicyRow(W.HBox):
    def __init__(self, p: IsakmpPolicy) -> None:
        self.priority = W.BoundedIntText(value=p.priority, min=1, max=65534, description="priority", layout=W.Layout(width="150px"))
        self.encryption = W.Dropdown(options=list(IKE_ENCRYPTIONS), value=p.encryption, description="encr", layout=W.Layout(width="150px"))
        self.hash = W.Dropdown(options=list(IKE_HASHES), value=p.hash, description="hash", layout=W.Layout(width="150px"))
        self.auth = W.Dropdown(options=list(AUTH_METHODS), value=p.auth, description="auth", layout=W.Layout(width="150px"))
        self.group = W.Dropdown(options=GROUPS, value=p.group, description="group", layout=W.Layout(width="130px"))
        self.lifetime = W.BoundedIntText(value=p.lifetime, min=60, max=10_000_000, description="life (s)", layout=W.Layout(width="170px"))
        for w in (self.priority, self.encryption, self.hash, self.auth, self.group, self.lifetime):
            w.style = {"description_width": "52px"}
        super().__init__([self.priority, self.encryption, self.hash, self.auth, self.group, self.lifetime],
                         layout=W.Layout(flex_flow="row wrap"))

    def policy(self) -> IsakmpPolicy:
        return IsakmpPolicy(self.priority.value, self.encryption.value, self.hash.value, self.auth.value, self.group.value, self.lifetime.value)


class _TransformSetRow(W.HBox):
    def __init__(self, ts: TransformSet) -> None:
        self.encryption = W.Dropdown(options=list(ESP_ENCRYPTIONS), value=ts.encryption, description="ESP", layout=W.Layout(width="170px"))
        # "none" is a real option (a Dropdown shows value None as an empty box): "" / 0 stand for None
        self.integrity = W.Dropdown(options=[("none", ""), *((k, k) for k in ESP_INTEGRITIES)], value=ts.integrity or "", description="integ", layout=W.Layout(width="150px"))
        self.mode = W.Dropdown(options=["tunnel", "transport"], value=ts.mode, description="mode", layout=W.Layout(width="160px"))
        self.pfs = W.Dropdown(options=[("none", 0), *((str(g), g) for g in GROUPS)], value=ts.pfs_group or 0, description="PFS", layout=W.Layout(width="130px"))
        self.lifetime = W.BoundedIntText(value=ts.lifetime, min=60, max=10_000_000, description="life (s)", layout=W.Layout(width="170px"))
        for w in (self.encryption, self.integrity, self.mode, self.pfs, self.lifetime):
            w.style = {"description_width": "52px"}
        self.name = ts.name
        super().__init__([self.encryption, self.integrity, self.mode, self.pfs, self.lifetime], layout=W.Layout(flex_flow="row wrap"))

    def transform_set(self) -> TransformSet:
        return TransformSet(self.name, self.encryption.value, self.integrity.value or None, self.mode.value, self.pfs.value or None, self.lifetime.value)


class PolicyEditor(W.VBox):
    """Both peers' policies as forms; *Apply* re-runs the negotiation and explains the result."""

    def __init__(self, session: LabSession) -> None:
        self.session = session
        self.peer_forms: list[tuple[PeerConfig, list[_PolicyRow], _TransformSetRow, W.Checkbox]] = []
        self.apply_button = W.Button(description="Apply and negotiate", button_style="warning", layout=W.Layout(width="200px"))
        self.result = _html()
        self.apply_button.on_click(lambda _: self.apply())
        self._applying = False
        super().__init__([])
        self.add_class("ipl-policies")
        self.load(session.configs)
        session.subscribe(self._on_session)

    def _on_session(self, kind: str) -> None:
        """After *Reset* (or any reset this form did not make) the form shows what the peers now
        run — a student's unapplied edit must not come back with the next *Apply*."""
        if kind == "reset" and not self._applying:
            self.load(self.session.configs)
            self.result.value = ""

    def load(self, configs: tuple[PeerConfig, PeerConfig]) -> None:
        """Fill the forms from both peers' configurations."""
        self.peer_forms = []
        boxes = []
        for cfg in configs:
            rows = [_PolicyRow(p) for p in sorted(cfg.isakmp_policies, key=lambda p: p.priority)]
            child = cfg.connections[0].children[0] if cfg.connections and cfg.connections[0].children else None
            ts_row = _TransformSetRow(child.transform_sets[0] if child else TransformSet())
            default = W.Checkbox(value=cfg.include_default_policy, description="also try the default policy 65535", indent=False)
            self.peer_forms.append((cfg, rows, ts_row, default))
            add = W.Button(description="add policy", layout=W.Layout(width="110px"))
            policies_box = W.VBox(rows)

            def _add(_, rows=rows, box=policies_box) -> None:  # noqa: ANN001
                prio = max((r.priority.value for r in rows), default=0) + 10
                rows.append(_PolicyRow(IsakmpPolicy(min(prio, 65534))))
                box.children = tuple(rows)

            add.on_click(_add)
            boxes.append(
                W.VBox(
                    [
                        W.HTML(f"<b>{R.esc(cfg.name)}</b> ({R.esc(cfg.address)}) — ISAKMP policies (phase 1)"),
                        policies_box,
                        W.HBox([add, default]),
                        W.HTML("IPsec transform set (phase 2)"),
                        ts_row,
                    ],
                    layout=W.Layout(border="1px solid #ddd", padding="6px", margin="4px 0"),
                )
            )
        self.children = (*boxes, self.apply_button, self.result)

    def configs(self) -> tuple[PeerConfig, PeerConfig]:
        out = []
        for cfg, rows, ts_row, default in self.peer_forms:
            ts = ts_row.transform_set()
            conns = [
                dataclasses.replace(conn, children=tuple(dataclasses.replace(c, transform_sets=(ts,)) for c in conn.children))
                for conn in cfg.connections
            ]
            out.append(dataclasses.replace(cfg, isakmp_policies=[r.policy() for r in rows], include_default_policy=default.value, connections=conns))
        return out[0], out[1]

    def apply(self) -> None:
        try:
            configs = self.configs()
        except Exception as exc:  # noqa: BLE001 - a form error is shown, not raised
            self.result.value = R.CSS + f'<div class="ipl"><span class="bad">Configuration error:</span> {R.esc(exc)}</div>'
            return
        self._applying = True
        try:
            self.session.reset(configs=configs)
        finally:
            self._applying = False
        self.session.run_to_end()
        s = self.session
        self.result.value = R.CSS + Stepper.result_for(s)


class IkeLab(W.VBox):
    """Stepper, sequence diagram, inspector, keys, policy editor and export in one view."""

    def __init__(self, options: DemoOptions | None = None, *, session: LabSession | None = None, export_dir: str = "lab-export") -> None:
        self.session = session or LabSession(options)
        self.stepper = Stepper(self.session)
        self.diagram = SequenceDiagram(self.session)
        self.inspector = MessageInspector(self.session.left.name)
        self.key_panel = KeyPanel(self.session)
        self.policy = PolicyEditor(self.session)
        self.diagram.on_select(self.inspector.show)
        self.export_button = W.Button(description="Export pcap + keys", icon="download", layout=W.Layout(width="200px"))
        self.export_result = _html()
        self.export_dir = export_dir
        self.export_button.on_click(lambda _: self.export())
        tabs = W.Tab(children=[self.inspector, self.key_panel, self.policy, W.VBox([self.export_button, self.export_result])])
        for i, title in enumerate(["Message inspector", "Keys", "Policies", "Export"]):
            tabs.set_title(i, title)
        self.tabs = tabs
        super().__init__([self.stepper, self.diagram, tabs])
        self.add_class("ipl-ikelab")

    def export(self) -> tuple[Path, Path]:
        pcap, keys = self.session.export(self.export_dir)
        self.export_result.value = R.CSS + (
            f'<div class="ipl">Wrote <code>{R.esc(pcap)}</code> and the key tables in <code>{R.esc(keys)}</code>.<br>'
            f"Open the capture in Wireshark with the tables copied to <code>~/.config/wireshark/</code>, or run "
            f"<code>ipseclab decode {R.esc(pcap)} --keys {R.esc(keys)}</code>.</div>"
        )
        return pcap, keys


__all__ = ["IkeLab", "KeyPanel", "MessageInspector", "PolicyEditor", "SequenceDiagram", "Stepper"]
