"""Any capture in the teaching widgets: the IKE exchange of any implementation, stepped through.

:class:`CaptureSession` reads a pcap (ours, charon's, a router's port mirror) with our own
dissector (:mod:`ipseclab.teaching.decode`), decrypted with Wireshark's key tables when given,
and presents its ISAKMP messages as the trace events the widgets draw: the sequence diagram
and the message inspector then show a real gateway's exchange the way the labs show ours. The
lanes are the two addresses of the first exchange — its initiator on the left.
:class:`CaptureView` is the diagram with the inspector, and the ESP packets listed below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipseclab.teaching.decode import (
    DecodedPacket,
    decode_pcap,
    read_esp_table,
    read_key_table,
    render_packet,
)
from ipseclab.trace import Event, MessageEvent


@dataclass(frozen=True)
class _LaneConfig:
    address: str


@dataclass(frozen=True)
class Lane:
    """One side of the captured exchange, as the widgets name a peer."""

    name: str
    config: _LaneConfig


class CaptureSession:
    """A capture, read once, with the part of :class:`~ipseclab.teaching.lab.LabSession` the
    sequence diagram and inspector use (``events``, ``messages``, ``states``, ``left``/``right``)."""

    def __init__(self, path: str | os.PathLike[str], keys: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self.packets: list[DecodedPacket] = decode_pcap(
            self.path, read_key_table(keys) if keys else None, read_esp_table(keys) if keys else None
        )
        ike = [p for p in self.packets if p.kind == "isakmp" and p.raw]
        first = ike[0] if ike else None
        self.left = Lane("initiator", _LaneConfig(first.src[0] if first else "?"))
        self.right = Lane("responder", _LaneConfig(first.dst[0] if first else "?"))
        self.events: list[Event] = []
        seen: set[bytes] = set()
        for seq, p in enumerate(ike):
            sender, receiver = (self.left, self.right) if p.src[0] == self.left.config.address else (self.right, self.left)
            fields: dict[str, Any] = dict(
                exchange=p.exchange, exchange_type=p.exchange_type, index=p.index,
                sender_role="initiator" if sender is self.left else "responder",
                icookie=p.raw[:8].hex(), rcookie=p.raw[8:16].hex(), message_id=p.message_id, src=p.src, dst=p.dst,
                raw=p.raw, summary=p.summary, encrypted=p.encrypted, plaintext=p.plaintext,
                retransmission=p.raw in seen, non_esp_marker=p.note.startswith(("non-ESP", "IKE moved")),
            )
            seen.add(p.raw)
            self.events.append(MessageEvent(peer=sender.name, time=p.time, seq=2 * seq, direction="sent", **fields))
            self.events.append(MessageEvent(peer=receiver.name, time=p.time, seq=2 * seq + 1, direction="received", **fields))

    def messages(self) -> list[MessageEvent]:
        return [e for e in self.events if isinstance(e, MessageEvent) and e.direction == "sent"]

    def states(self) -> dict[str, str]:
        return {self.left.name: "captured", self.right.name: "captured"}

    def subscribe(self, listener: Any) -> None:
        """A capture does not change: nothing to tell a listener."""

    def data_lines(self) -> list[str]:
        """The ESP/AH packets, one line each (decrypted and checked when a key is known)."""
        return [line for p in self.packets if p.kind in ("esp", "ah") for line in render_packet(p, tree=False)]


def CaptureView(path: str | os.PathLike[str], keys: str | os.PathLike[str] | None = None) -> Any:  # noqa: N802 - a widget factory
    """The capture's sequence diagram with the message inspector, and its data packets."""
    import ipywidgets as W

    from ipseclab.teaching.widgets import MessageInspector, SequenceDiagram
    from ipseclab.teaching.widgets import render as R

    session = CaptureSession(path, keys)
    diagram = SequenceDiagram(session)  # type: ignore[arg-type]
    inspector = MessageInspector(session.left.name)
    diagram.on_select(inspector.show)
    messages = session.messages()
    if messages:
        diagram.select(0)
    lines = session.data_lines()
    data = W.HTML(R.CSS + '<div class="ipl"><b>Data packets</b><pre>' + R.esc("\n".join(lines) or "(none)") + "</pre></div>")
    view = W.VBox([diagram, inspector, data])
    view.session = session  # type: ignore[attr-defined]
    view.diagram = diagram  # type: ignore[attr-defined]
    view.inspector = inspector  # type: ignore[attr-defined]
    return view
