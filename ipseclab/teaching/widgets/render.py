"""Pure functions from trace events to HTML/SVG — the widgets' only source of truth.

Kept apart from ipywidgets so tests (and any other front end) can check exactly what
a student will see.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ipseclab.trace import Event, KeyDerived, MessageEvent, PublicValue
from ipseclab.trace_queries import (  # noqa: F401 - re-exported for views
    LifeNote,
    delivered_flags,
    established_from_events,
    failure_lines,
    in_flight,
    timeline,
)

SHORT = {
    "Main Mode": "MM", "Aggressive Mode": "AM", "Quick Mode": "QM", "Informational": "INFO", "Transaction": "CFG",
    # IKEv2: request 1, response 2 of each exchange
    "IKE_SA_INIT": "INIT", "IKE_AUTH": "AUTH", "CREATE_CHILD_SA": "CHILD", "INFORMATIONAL": "INFO", "IKE_INTERMEDIATE": "INT",
}

CSS = """
<style>
.ipl { font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; color: #222; line-height: 1.45; }
.ipl table { border-collapse: collapse; }
.ipl td, .ipl th { padding: 2px 8px; text-align: left; vertical-align: top; }
.ipl th { background: #eef2f7; }
.ipl td.sa { color: #555; font-size: 11px; background: #f6f7f9; padding-top: 6px; }
.ipl .mono { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.ipl .hex { font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.35;
            white-space: pre; max-height: 320px; overflow: auto; border: 1px solid #ddd; padding: 4px 6px; background: #fbfbfb; }
.ipl .hl { background: #ffe08a; outline: 1px solid #e0a800; }
.ipl .secret { color: #a33; font-size: 11px; border: 1px solid #d99; border-radius: 3px; padding: 0 3px; }
.ipl .ok { color: #176b2c; font-weight: 600; }
.ipl .bad { color: #b00020; font-weight: 600; }
.ipl .state { font-family: var(--jp-code-font-family, monospace); background: #eef2f7; border-radius: 3px; padding: 1px 5px; }
</style>
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def short_label(m: MessageEvent) -> str:
    """``MM5``, ``AM2``, ``QM1``, ``INFO`` — the label students use (IKEv2: ``INIT1``, ``AUTH2``,
    ``CHILD1``, ``INFO1``/``INFO2`` for request and response; with EAP, IKE_AUTH's rounds go on
    as ``AUTH3`` … ``AUTH8``)."""
    short = SHORT.get(m.exchange, m.exchange)
    return short if short == "INFO" and m.ike_version == 1 else f"{short}{m.index}"


# -- sequence diagram ---------------------------------------------------------------

ROW_H = 46
FLOAT_NOTE_H = 14  # extra height of the arrow that carries the 'port switch' note
WIDTH = 660
LEFT_X = 70
RIGHT_X = WIDTH - 70


def diagram_header(lanes: Sequence[tuple[str, str, str]]) -> str:
    """The two lane heads: name, address and current state."""
    # display:block: an inline SVG sits on a text baseline and the widget adds ~10 px below it
    parts = [f'<svg width="{WIDTH}" height="62" xmlns="http://www.w3.org/2000/svg" class="ipl-lanes" style="display:block">']
    for x, (name, address, state) in zip((LEFT_X, RIGHT_X), lanes, strict=False):
        parts.append(f'<rect x="{x - 62}" y="4" width="124" height="40" rx="6" fill="#e8eefb" stroke="#5b7bd5"/>')
        parts.append(f'<text x="{x}" y="20" text-anchor="middle" font-weight="bold" font-size="13">{esc(name)}</text>')
        parts.append(f'<text x="{x}" y="36" text-anchor="middle" font-size="11" fill="#444">{esc(address)}</text>')
        parts.append(f'<text x="{x}" y="58" text-anchor="middle" font-size="11" font-family="monospace" fill="#1d3d8f">{esc(state)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def arrow_svg(m: MessageEvent, *, left_name: str, delivered: bool, selected: bool, floated_here: bool = False) -> str:
    """One message as an arrow between the lanes, with its notation and ports."""
    rightward = m.peer == left_name
    x1, x2 = (LEFT_X, RIGHT_X) if rightward else (RIGHT_X, LEFT_X)
    y = 26
    color = "#c05a00" if m.encrypted else "#1d3d8f"
    if not delivered:
        color = "#999"
    dash = ' stroke-dasharray="6 4"' if (m.retransmission or not delivered) else ""
    head = x2 - 9 if rightward else x2 + 9
    label = f"{short_label(m)}  {m.summary}"
    if m.retransmission:
        label += "  (retransmission)"
    ports = f"{m.src[0]}:{m.src[1]} \u2192 {m.dst[0]}:{m.dst[1]}"
    if m.message_id:  # tells apart two Quick Modes (or an Informational) on one ISAKMP SA
        ports += f" \u00b7 M-ID {m.message_id:08x}"
    if m.non_esp_marker:
        ports += "  (non-ESP marker)"
    # the arrow that switches to 4500 gets a taller row: its note goes under the ports line
    height = ROW_H + FLOAT_NOTE_H if floated_here else ROW_H
    parts = [f'<svg width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg" class="ipl-arrow" style="display:block" data-label="{esc(label)}">']
    if selected:
        parts.append(f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff4cc"/>')
    for x in (LEFT_X, RIGHT_X):
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height}" stroke="#9db0e0" stroke-width="2"/>')
    parts.append(f'<line x1="{x1}" y1="{y}" x2="{head}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/>')
    parts.append(f'<polygon points="{x2},{y} {head},{y - 5} {head},{y + 5}" fill="{color}"/>')
    mid = WIDTH / 2
    rest = label[len(short_label(m)):].strip()
    parts.append(
        f'<text x="{mid}" y="{y - 7}" text-anchor="middle" font-size="12" fill="{color}" font-family="monospace">'
        f'<tspan font-weight="bold">{esc(short_label(m))}</tspan>\u2002{esc(rest)}</text>'
    )
    port_color = "#b00020" if m.src[1] == 4500 or m.dst[1] == 4500 else "#555"
    parts.append(f'<text x="{mid}" y="{y + 15}" text-anchor="middle" font-size="10.5" fill="{port_color}">{esc(ports)}</text>')
    if m.encrypted:
        parts.append(f'<text x="{x1 + (14 if rightward else -14)}" y="{y - 7}" text-anchor="middle" font-size="10" fill="{color}">enc</text>')
    if floated_here:
        parts.append(
            f'<text x="{mid}" y="{y + 15 + FLOAT_NOTE_H}" text-anchor="middle" font-size="10.5" font-weight="bold" '
            f'fill="#b00020" class="ipl-float">port switch 500 \u2192 4500</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


NOTE_H = 20
NOTE_COLORS = {"time": "#666", "keepalive": "#6a8f2a", "moved": "#b00020", "deleted": "#8a1c1c"}


def note_svg(note: LifeNote, *, left_name: str) -> str:
    """A life-cycle step between the arrows: a thin row with the lanes and a short text (a
    keepalive as a dotted stub from its sender's lane)."""
    color = NOTE_COLORS.get(note.kind, "#444")
    parts = [f'<svg width="{WIDTH}" height="{NOTE_H}" xmlns="http://www.w3.org/2000/svg" class="ipl-note ipl-note-{note.kind}" '
             f'style="display:block" data-label="{esc(note.text)}">']
    for x in (LEFT_X, RIGHT_X):
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{NOTE_H}" stroke="#9db0e0" stroke-width="2"/>')
    if note.kind == "keepalive":
        x1 = LEFT_X if note.peer == left_name else RIGHT_X
        x2 = x1 + (40 if x1 == LEFT_X else -40)
        parts.append(f'<line x1="{x1}" y1="10" x2="{x2}" y2="10" stroke="{color}" stroke-width="2" stroke-dasharray="2 3"/>')
    style = ' font-style="italic"' if note.kind == "time" else ""
    parts.append(f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-size="10.5" fill="{color}"{style}>{esc(note.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- message inspector ----------------------------------------------------------------


def flatten_tree(node: dict[str, Any], depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    """Depth-first list of (depth, node) for the field list."""
    out = [(depth, node)]
    for child in node.get("children", []):
        out += flatten_tree(child, depth + 1)
    return out


def node_label(depth: int, node: dict[str, Any]) -> str:
    value = node.get("value")
    text = node["name"] + (f": {value}" if value not in (None, "") else "")
    return "\u2003" * depth + ("\u25b8 " if node.get("children") else "\u2022 ") + text


def hexdump_html(data: bytes, highlight: tuple[int, int] | None = None, *, title: str = "") -> str:
    """16 bytes a row with offsets and ASCII; ``highlight`` = (offset, length) is marked."""
    lo, hi = (highlight[0], highlight[0] + highlight[1]) if highlight else (-1, -1)
    rows = []
    for base in range(0, len(data), 16):
        chunk = data[base : base + 16]
        cells, text = [], []
        for i, b in enumerate(chunk):
            pos = base + i
            mark = lo <= pos < hi
            hx = f"{b:02x}"
            ch = chr(b) if 32 <= b < 127 else "."
            cells.append(f'<span class="hl">{hx}</span>' if mark else hx)
            text.append(f'<span class="hl">{esc(ch)}</span>' if mark else esc(ch))
        pad = "   " * (16 - len(chunk))
        rows.append(f"{base:04x}  " + " ".join(cells) + pad + "  " + "".join(text))
    head = f"<div><b>{esc(title)}</b> ({len(data)} bytes)</div>" if title else ""
    return f'{head}<div class="hex">' + "\n".join(rows) + "</div>"


def message_heading(m: MessageEvent, left_name: str) -> str:
    other = "right" if m.peer == left_name else left_name
    enc = "encrypted" if m.encrypted else "in clear"
    return (
        f'<div class="ipl"><b>{esc(short_label(m))}</b> &nbsp; {esc(m.exchange)} message {m.index}, '
        f"{esc(m.peer)} \u2192 {esc(other)}, {enc}, {len(m.raw)} bytes"
        f'<br><span class="mono">{esc(m.summary)}</span> &nbsp; '
        f'<span style="color:#555">{esc(m.src[0])}:{m.src[1]} \u2192 {esc(m.dst[0])}:{m.dst[1]}, '
        f"{'SPIs' if m.ike_version == 2 else 'cookies'} {esc(m.icookie)}/{esc(m.rcookie)}, M-ID {m.message_id:08x}</span></div>"
    )


# -- keys -------------------------------------------------------------------------------


def keys_table(events: Sequence[Event], peer: str, *, show_values: bool = True) -> str:
    """Derived values (formula and value) and the public inputs, in derivation order."""
    rows = []
    for e in events:
        if e.peer != peer:
            continue
        if isinstance(e, PublicValue):
            rows.append((e.sa, e.name, e.note or "public", e.value, False))
        elif isinstance(e, KeyDerived):
            rows.append((e.sa, e.name, e.formula, e.value, True))
    if not rows:
        return '<div class="ipl"><i>No keys yet: step through the exchange.</i></div>'
    # Aggressive Mode's first values are emitted before the responder cookie is known:
    # show them under the SA's full name once it is.
    full = {sa.spi_i: sa for sa, *_ in rows if sa.kind == "ike" and sa.spi_r.strip("0")}
    rows = [(full.get(sa.spi_i, sa) if sa.kind == "ike" else sa, *rest) for sa, *rest in rows]
    # The SA is a full-width row above its values, so the formula column gets the width.
    rfc = "RFC 7296" if any(sa.version == 2 for sa, *_ in rows) else "RFC 2409"
    out = [f'<div class="ipl"><table><tr><th>value</th><th>formula ({rfc})</th><th>bytes (hover for all)</th></tr>']
    last_sa = None
    for sa, name, formula, value, secret in rows:
        if sa != last_sa:
            out.append(f'<tr><td colspan="3" class="sa">{esc(sa)}</td></tr>')
        last_sa = sa
        shown = value.hex() if show_values else "\u2022" * 8
        if len(shown) > 32:
            shown = shown[:32] + "\u2026"
        badge = ' <span class="secret">secret</span>' if secret else ""
        out.append(
            f'<tr><td><b>{esc(name)}</b>{badge}</td>'
            f'<td class="mono">{esc(formula)}</td><td class="mono" title="{esc(value.hex())}">{esc(shown)}</td></tr>'
        )
    out.append("</table></div>")
    return "".join(out)


def result_html(established: bool, explanation: Sequence[str], pending: int, *, version: int = 1,
                virtual_ips: Sequence[tuple[str, str]] = (), client: str = "left") -> str:
    if established:
        what = "the IKE SA and every child SA are up" if version == 2 else "phase 1 and every Quick Mode are up"
        vip = "".join(f" {esc(client)}'s virtual IP: <b>{esc(address)}</b>" + (f" (user {esc(user)})" if user else "")
                      + " — the gateway routes it into the tunnel." for address, user in virtual_ips)
        return f'<div class="ipl"><span class="ok">Established:</span> {what}.{vip}</div>'
    if pending:
        return f'<div class="ipl">In progress: {pending} message(s) in flight.</div>'
    lines = "".join(f"<li>{esc(x.strip())}</li>" for x in explanation) or "<li>nothing in flight</li>"
    return f'<div class="ipl"><span class="bad">Not established.</span><ul>{lines}</ul></div>'
