"""Questions answered from the trace events alone (RFC-agnostic views of a run).

Widgets, the lab session and a future daemon client all ask these of the same event
list, so nothing depends on reaching into a peer's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipseclab.trace import (
    ErrorEvent,
    Event,
    MessageEvent,
    NatKeepalive,
    PeerMoved,
    PolicyDecision,
    SaDeleted,
    SaEstablished,
    SaRef,
    StateChanged,
)

#: a pause in the run at least this long (simulated or real seconds) is marked on the timeline
TIME_GAP = 5.0


@dataclass(frozen=True)
class LifeNote:
    """A step of an SA's life between the messages of a sequence diagram: ``kind`` is
    ``time`` (the clock moved on), ``keepalive`` (a NAT keepalive, RFC 3948 §2.3),
    ``moved`` (an SA followed its peer to a new address) or ``deleted`` (an SA went, and why);
    ``peer`` is the lane it belongs to ("" for both)."""

    kind: str
    peer: str
    time: float
    text: str


def timeline(events: Sequence[Event]) -> list[int | LifeNote]:
    """The sequence diagram's rows: each sent message as its index among the sent messages,
    with the life-cycle steps that have no message of their own between them — pauses of
    the clock, keepalives, moves, deletions (DPD's verdict among them)."""
    rows: list[int | LifeNote] = []
    sent = 0
    last: float | None = None
    for e in events:
        if isinstance(e, MessageEvent):
            if e.direction != "sent":
                continue
            row: int | LifeNote = sent
            sent += 1
        elif isinstance(e, NatKeepalive):
            row = LifeNote("keepalive", e.peer, e.time, f"NAT keepalive (0xFF) {e.src[0]}:{e.src[1]} \u2192 {e.dst[0]}:{e.dst[1]}")
        elif isinstance(e, PeerMoved):
            row = LifeNote("moved", e.peer, e.time, f"{e.peer} follows its peer to {e.new[0]}:{e.new[1]} (was {e.old[0]}:{e.old[1]})")
        elif isinstance(e, SaDeleted):
            row = LifeNote("deleted", e.peer, e.time, f"{e.peer}: {e.sa.label} deleted \u2014 {e.reason}")
        else:
            continue
        if last is not None and e.time - last >= TIME_GAP:
            rows.append(LifeNote("time", "", e.time, f"\u23f1 t = {e.time:.0f} s  (+{e.time - last:.0f} s)"))
        last = e.time
        rows.append(row)
    return rows


def delivered_flags(events: Sequence[Event]) -> list[bool]:
    """For each sent message (in order): has the other peer received it yet?"""
    received: dict[tuple[str, bytes], int] = {}
    for e in events:
        if isinstance(e, MessageEvent) and e.direction == "received":
            key = (e.peer, e.raw)
            received[key] = received.get(key, 0) + 1
    flags = []
    for e in events:
        if isinstance(e, MessageEvent) and e.direction == "sent":
            others = [k for k in received if k[1] == e.raw and k[0] != e.peer and received[k] > 0]
            if others:
                received[others[0]] -= 1
                flags.append(True)
            else:
                flags.append(False)
    return flags


def in_flight(events: Sequence[Event]) -> list[MessageEvent]:
    """Sent messages the other peer has not received (yet), oldest first."""
    sent = [e for e in events if isinstance(e, MessageEvent) and e.direction == "sent"]
    return [m for m, done in zip(sent, delivered_flags(events), strict=True) if not done]


def established_from_events(events: Sequence[Event], peers: Sequence[str], children: int) -> bool:
    """Phase 1 and ``children`` IPsec SA pairs up on every peer, judged from the trace alone."""
    for peer in peers:
        isakmp, ipsec = 0, 0
        for e in events:
            if e.peer != peer:
                continue
            if isinstance(e, SaEstablished):
                isakmp += e.sa.kind == "ike"
                ipsec += e.sa.kind == "child"
            elif isinstance(e, SaDeleted):
                isakmp -= e.sa.kind == "ike" and not e.failed
                ipsec -= e.sa.kind == "child"
        if isakmp < 1 or ipsec < children:
            return False
    return True


def failure_lines(events: Sequence[Event]) -> list[str]:
    """Rejected proposals (with their explanation) and errors, in plain words."""
    lines: list[str] = []
    for e in events:
        if isinstance(e, PolicyDecision) and not e.accepted:
            lines.append(f"[{e.peer}] phase {e.phase} proposal rejected:")
            lines += [f"    {x}" for x in e.explanation]
        elif isinstance(e, ErrorEvent):
            lines.append(f"[{e.peer}] {e.code}: {e.message}")
    return lines


def isakmp_states(events: list[Event], peers: list[str], mode: str) -> dict[str, str]:
    """The latest ISAKMP SA (IKEv2: IKE SA) state of each peer; ``mode`` is ``main``,
    ``aggressive`` or ``ikev2``."""
    first = {"main": "MM_NO_STATE", "aggressive": "AG_NO_STATE", "ikev2": "CREATED"}
    out = {p: first.get(mode, "AG_NO_STATE") for p in peers}
    for e in events:
        if isinstance(e, StateChanged) and e.sa.kind == "ike" and e.peer in out:
            out[e.peer] = e.new
    return out


def quick_mode_states(events: list[Event], peers: list[str]) -> dict[str, dict[SaRef, str]]:
    """Each child negotiation's (Quick Mode's) latest state, per peer."""
    out: dict[str, dict[SaRef, str]] = {p: {} for p in peers}
    for e in events:
        if isinstance(e, StateChanged) and e.sa.kind == "child" and not e.sa.spi_in and e.peer in out:
            out[e.peer][e.sa] = e.new
    return out
