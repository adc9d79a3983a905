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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipseclab.teaching.decode import (
    DecodedPacket,
    complete_length,
    decode_pcap,
    read_esp_table,
    read_ikev2_table,
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

    def __init__(self, path: str | os.PathLike[str], keys: str | os.PathLike[str] | None = None, *, growing: bool = False) -> None:
        self.path = Path(path)
        self.keys = Path(keys) if keys else None
        self._listeners: list[Callable[[str], None]] = []
        self.packets: list[DecodedPacket] = []
        self.events: list[Event] = []
        self.left = Lane("initiator", _LaneConfig("?"))
        self.right = Lane("responder", _LaneConfig("?"))
        if growing:  # tcpdump may not even have written the file header yet
            self.refresh()
        else:
            self._load(self._decode())

    def _decode(self) -> list[DecodedPacket]:
        """The capture's packets; of a file still being written, the whole ones only."""
        import io

        keys, esp = (read_key_table(self.keys), read_esp_table(self.keys)) if self.keys else (None, None)
        ikev2 = read_ikev2_table(self.keys) if self.keys else None
        whole = complete_length(self.path)
        if whole < os.path.getsize(self.path):
            with open(self.path, "rb") as f:
                return decode_pcap(io.BytesIO(f.read(whole)), keys, esp, ikev2)
        return decode_pcap(self.path, keys, esp, ikev2)

    def _load(self, packets: list[DecodedPacket]) -> None:
        self.packets = packets
        ike = [p for p in self.packets if p.kind == "isakmp" and p.raw]
        first = ike[0] if ike else None
        self.left = Lane("initiator", _LaneConfig(first.src[0] if first else "?"))
        self.right = Lane("responder", _LaneConfig(first.dst[0] if first else "?"))
        self.events = []
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

    def refresh(self) -> int:
        """Read the file again (a capture still being written, keys that arrived since):
        returns how many packets are new, and tells the listeners if anything changed.  A file
        that is not a capture yet (no header written) or ends in a half-written packet is read
        as far as it goes."""
        try:
            packets = self._decode()
        except Exception:  # noqa: BLE001 - scapy raises its own types for a file with no header yet
            return 0
        new = len(packets) - len(self.packets)
        changed = [(p.kind, p.summary, p.plaintext) for p in packets] != [(p.kind, p.summary, p.plaintext) for p in self.packets]
        if changed:
            self._load(packets)
            for listener in list(self._listeners):
                listener("step")
        return max(new, 0)

    def messages(self) -> list[MessageEvent]:
        return [e for e in self.events if isinstance(e, MessageEvent) and e.direction == "sent"]

    def states(self) -> dict[str, str]:
        return {self.left.name: "captured", self.right.name: "captured"}

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """``listener("step")`` after a :meth:`refresh` that found something new."""
        self._listeners.append(listener)

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


class LiveCapture:
    """Follow a capture that is still being written — tcpdump on a lab interface — into the
    widgets, with keys that may arrive while it runs.

    ``keys`` is a function that returns the current Wireshark rows as ``(ikev1_rows, esp_rows)``
    (e.g. :func:`charon_keys` reading charon's log, or our own events through
    :mod:`ipseclab.export`); they are written to a private key directory before every read.
    :meth:`refresh` reads once; :meth:`follow` keeps reading every ``interval`` seconds on a
    background thread until :meth:`stop`.
    """

    def __init__(self, pcap: str | os.PathLike[str], keys: Callable[[], tuple[list[str], list[str]]] | None = None,
                 *, key_dir: str | os.PathLike[str] | None = None) -> None:
        import tempfile

        self.pcap = Path(pcap)
        self._keys = keys
        self.key_dir = Path(key_dir) if key_dir else Path(tempfile.mkdtemp(prefix="ipl-live-keys-"))
        self._write_keys()
        self.session = CaptureSession(self.pcap, self.key_dir if keys else None, growing=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write_keys(self) -> None:
        if self._keys is not None:
            from ipseclab.export import write_key_tables

            ikev1, esp = self._keys()
            write_key_tables(self.key_dir, ikev1, esp)

    def refresh(self) -> int:
        """Keys, then the capture, read again; returns the number of new packets."""
        self._write_keys()
        return self.session.refresh()

    def follow(self, interval: float = 1.0) -> None:
        """Refresh every ``interval`` seconds until :meth:`stop` (the widgets follow)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a bad read must not end the following
                    continue

        self._thread = threading.Thread(target=loop, name="ipseclab-live-capture", daemon=True)
        self._thread.start()

    @property
    def following(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None


def charon_keys(log: Callable[[], str]) -> Callable[[], tuple[list[str], list[str]]]:
    """Key rows from charon's log as it grows (``log`` returns its text, e.g.
    ``Charon.log_text``): the Ka of every IKE SA and the keys of every ESP SA it installed."""
    from ipseclab.runtime.netlab.charonlog import keys_from_log

    def rows() -> tuple[list[str], list[str]]:
        found = keys_from_log(log())
        return found.ikev1_decryption_rows(), found.esp_sa_rows()

    return rows


def LiveCaptureView(live: LiveCapture, *, interval: float = 1.0) -> Any:  # noqa: N802 - a widget factory
    """:func:`CaptureView` on a :class:`LiveCapture`: *Refresh* reads once, *Follow* keeps
    reading; the diagram grows as the exchange happens, the newest arrow selected."""
    import ipywidgets as W

    from ipseclab.teaching.widgets import MessageInspector, SequenceDiagram
    from ipseclab.teaching.widgets import render as R

    session = live.session
    diagram = SequenceDiagram(session)  # type: ignore[arg-type]
    inspector = MessageInspector(session.left.name)
    diagram.on_select(inspector.show)
    status = W.HTML()
    data = W.HTML()
    refresh = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="120px"))
    follow = W.ToggleButton(description="Follow", icon="play", value=False, layout=W.Layout(width="120px"))

    def show(kind: str = "step") -> None:
        n = len(session.messages())
        ike = sum(p.kind == "isakmp" for p in session.packets)
        status.value = R.CSS + (f'<div class="ipl">{R.esc(str(live.pcap))}: {len(session.packets)} packets, '
                                f'{ike} IKE, {len(session.packets) - ike} other'
                                f'{" — following" if live.following else ""}</div>')
        lines = session.data_lines()
        data.value = R.CSS + '<div class="ipl"><b>Data packets</b><pre>' + R.esc("\n".join(lines[-40:]) or "(none)") + "</pre></div>"
        if n and kind == "step":
            diagram.select(n - 1)

    session.subscribe(show)
    refresh.on_click(lambda _: (live.refresh(), show("refresh")))

    def toggle(change: dict) -> None:
        if change["new"]:
            live.follow(interval)
        else:
            live.stop()
        show("refresh")

    follow.observe(toggle, names="value")
    show()
    view = W.VBox([W.HBox([refresh, follow, status]), diagram, inspector, data])
    view.live = live  # type: ignore[attr-defined]
    view.session = session  # type: ignore[attr-defined]
    view.diagram = diagram  # type: ignore[attr-defined]
    view.inspector = inspector  # type: ignore[attr-defined]
    view.follow_button = follow  # type: ignore[attr-defined]
    return view
