"""A notebook-facing lab session: two in-memory peers, stepped one message at a time.

:class:`LabSession` wraps the demo's :class:`~ipseclab.runtime.transport.memory.MemoryNetwork`
with the verbs the widgets' buttons need — *next*, *run to end*, *back to start*,
*reset* with new configurations, *advance the clock* — and keeps the run's trace
events.  Everything the widgets show is computed from those events; with a seed the
whole run (cookies, nonces, SPIs, DH values) is reproducible, so a notebook's output
is stable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ipseclab.config import PeerConfig
from ipseclab.crypto.rng import SeededRng, SystemRng
from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.errors import ConfigError
from ipseclab.peer import Peer
from ipseclab.runtime.transport.memory import Delivery, MemoryNetwork
from ipseclab.runtime.transport.nat import SimulatedNat
from ipseclab.trace import Event, MessageEvent
from ipseclab.trace_queries import failure_lines, isakmp_states, quick_mode_states

Listener = Callable[[str], None]


class LabSession:
    """Two peers (``left`` initiates connection ``site`` to ``right``) on a simulated network."""

    def __init__(
        self,
        options: DemoOptions | None = None,
        *,
        configs: tuple[PeerConfig, PeerConfig] | None = None,
        seed: int | None = 1,
        connection: str = "site",
        start: bool = True,
    ) -> None:
        self.options = options or DemoOptions(seed=seed)
        if self.options.seed is None and seed is not None:
            self.options = dataclasses.replace(self.options, seed=seed)
        self.connection = connection
        self._configs = configs or demo_configs(self.options)
        self._listeners: list[Listener] = []
        self.network: MemoryNetwork
        self._build(start=start)

    # -- construction ------------------------------------------------------------

    def _build(self, *, start: bool = True) -> None:
        seed = self.options.seed
        peers = [
            Peer(cfg, rng=SeededRng(seed, cfg.name) if seed is not None else SystemRng()) for cfg in self._configs
        ]
        self.network = MemoryNetwork(peers)
        self.nat: SimulatedNat | None = None
        if self.options.nat:
            from ipseclab.demo import NAT_INSIDE, NAT_PUBLIC_ADDRESS

            network = self.network
            self.nat = SimulatedNat(NAT_INSIDE, NAT_PUBLIC_ADDRESS, clock=lambda: network.now)
            self.network.nat = self.nat
        if start:
            self.network.initiate(self.left.name, self.connection)

    @property
    def configs(self) -> tuple[PeerConfig, PeerConfig]:
        return self._configs

    @property
    def left(self) -> Peer:
        return self.network.peers[0]

    @property
    def right(self) -> Peer:
        return self.network.peers[1]

    @property
    def events(self) -> list[Event]:
        return self.network.events

    def subscribe(self, listener: Listener) -> None:
        """``listener(kind)`` is called with "step" or "reset" after every change."""
        self._listeners.append(listener)

    def _notify(self, kind: str) -> None:
        for listener in list(self._listeners):
            listener(kind)

    # -- the buttons -------------------------------------------------------------

    def next(self) -> Delivery | None:
        """Deliver the next message in flight (None when the exchange has nothing more to send)."""
        delivery = self.network.step()
        self._notify("step")
        return delivery

    def run_to_end(self) -> int:
        steps = self.network.run()
        self._notify("step")
        return steps

    def back_to_start(self) -> None:
        """Replay from the first message: same configuration, same seed, nothing delivered yet."""
        self._build()
        self._notify("reset")

    def reset(
        self, options: DemoOptions | None = None, *, configs: tuple[PeerConfig, PeerConfig] | None = None
    ) -> None:
        """Start over with new options or configurations (the policy editor's *apply*)."""
        if options is not None:
            self.options = options
            self._configs = configs or demo_configs(options)
        elif configs is not None:
            self._configs = configs
        self._build()
        self._notify("reset")

    def advance(self, seconds: float) -> None:
        """Move the simulated clock (retransmissions, lifetimes, re-negotiation)."""
        self.network.advance(seconds)
        self._notify("step")

    def start_quick_mode(self, child: str | None = None) -> int:
        """Left starts another Quick Mode for ``child`` (default: the connection's first child)
        under its newest established ISAKMP SA, at the network's current time.

        QM1 is put in flight, not delivered: *next* or *run to end* carry it.  Returns the
        exchange's Message ID.  This is what a rekey or new traffic does — and after a NAT
        mapping has timed out, it is what makes the initiator speak again (a new mapping).
        """
        initiator = self.left
        sas = [
            sa
            for sa in initiator.ike_sas.values()
            if sa.established and sa.initiator and sa.connection is not None and sa.connection.name == self.connection
        ]
        if not sas:
            raise ConfigError(f"{initiator.name} has no established ISAKMP SA for {self.connection}: finish phase 1 first")
        sa = sas[-1]
        assert sa.connection is not None
        if child is None:
            if not sa.connection.children:
                raise ConfigError(f"connection {sa.connection.name} has no children")
            child = sa.connection.children[0].name
        mid = initiator.start_child(sa, child, self.network.now)
        self.network.collect()
        self._notify("step")
        return mid

    # -- what the views read -------------------------------------------------------

    @property
    def pending(self) -> int:
        return self.network.pending

    def next_sender(self) -> str | None:
        """Name of the peer whose message will be delivered by the next step."""
        if not self.network.in_flight:
            return None
        src = self.network.in_flight[0].src[0]
        return next((p.name for p in self.network.peers if p.config.address == src), src)

    def messages(self) -> list[MessageEvent]:
        """Every datagram put on the wire, in order (the sequence diagram's arrows)."""
        return [e for e in self.events if isinstance(e, MessageEvent) and e.direction == "sent"]

    def states(self) -> dict[str, str]:
        """The latest state of each peer's ISAKMP SA, from the StateChanged events."""
        conns = self._configs[0].connections
        mode = ("ikev2" if conns[0].version == 2 else conns[0].mode) if conns else self.options.mode
        return isakmp_states(self.events, [p.name for p in self.network.peers], mode)

    def quick_mode_states(self) -> dict[str, dict[str, str]]:
        return quick_mode_states(self.events, [p.name for p in self.network.peers])

    def established(self) -> bool:
        want = len(self._configs[0].connections[0].children) if self._configs[0].connections else 0
        for peer in self.network.peers:
            if not any(sa.established for sa in peer.ike_sas.values()) or len(peer.child_sas) < want:
                return False
        return True

    def explanation(self) -> list[str]:
        return failure_lines(self.events)

    def sa_tables(self) -> dict[str, dict]:
        """Each peer's SA table, as ``ipseclab peer``'s ``list_sas`` reports it."""
        return {p.name: p.sa_table() for p in self.network.peers}

    def export(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``run.pcap`` and the Wireshark key tables into ``directory``."""
        from ipseclab.export import export_run

        return export_run(self.events, directory)
