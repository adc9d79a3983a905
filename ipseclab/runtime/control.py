"""Clients of the peer daemon (:mod:`ipseclab.runtime.daemon`): :class:`PeerClient` and
:class:`RemoteLabSession`.

:class:`PeerClient` speaks the control API — one JSON request, one JSON reply over a REQ
socket — and subscribes to the daemon's event stream (SUB)::

    left = PeerClient("ipc:///tmp/left.ctl", "ipc:///tmp/left.ev")
    left.hold(True); left.initiate("site")
    left.pending()          # [{"id": 1, "summary": "HDR, SA, VID, ...", "src": [...], ...}]
    left.step()
    for event in left.events(timeout=1.0): print(event.describe())

:class:`RemoteLabSession` puts two daemons behind the interface the widgets use
(:class:`~ipseclab.teaching.lab.LabSession`'s *next*, *run to end*, *back to start*, *reset*, the
events list and the states), so ``IkeLab(session=RemoteLabSession(left, right))`` steps a
real exchange over UDP.  Its clock is the host's: ``advance`` (the simulated clock) has no
remote equivalent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from ipseclab.config import PeerConfig
from ipseclab.errors import ConfigError, ControlError
from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config
from ipseclab.runtime.curve import make_client
from ipseclab.trace import Event, MessageEvent, event_from_dict
from ipseclab.trace_queries import (
    established_from_events,
    failure_lines,
    isakmp_states,
    quick_mode_states,
)

Reply = dict[str, Any]
Listener = Callable[[str], None]


class PeerClient:
    """The control API of one daemon, plus its event stream.

    Every request waits at most ``timeout`` seconds; no answer raises :class:`ControlError`
    (and the REQ socket is replaced, so the client stays usable when the daemon comes back).
    A reply with ``"ok": false`` raises :class:`ControlError` with the daemon's words, except
    from :meth:`request`, which returns any reply as it is.
    """

    def __init__(
        self, control: str, events: str | None = None, *, timeout: float = 5.0, curve: str | None = None, key: str = "client"
    ) -> None:
        """``curve``: the daemon's CURVE key directory (``tcp://`` sockets), ``key`` the client
        key pair's name in it."""
        self.control_addr = control
        self.events_addr = events
        self.timeout = timeout
        self.curve = (curve, key) if curve is not None else None
        self._ctx = zmq.Context()
        self._req = self._new_req()
        self._sub: zmq.Socket | None = None
        if events:
            self._sub = self._ctx.socket(zmq.SUB)
            if self.curve is not None:
                make_client(self._sub, *self.curve)
            self._sub.setsockopt(zmq.LINGER, 0)
            self._sub.setsockopt(zmq.RCVHWM, 100_000)
            self._sub.setsockopt(zmq.SUBSCRIBE, b"")
            self._sub.connect(events)

    def _new_req(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            make_client(sock, *self.curve)
        sock.connect(self.control_addr)
        return sock

    def __repr__(self) -> str:
        return f"<PeerClient {self.control_addr}>"

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._req.close()
        if self._sub is not None:
            self._sub.close()
        self._ctx.term()

    # -- requests ------------------------------------------------------------------

    def send_raw(self, body: bytes, *, timeout: float | None = None) -> Reply:
        """Send any bytes as a request and return the daemon's reply (tests, debugging)."""
        self._req.send(body)
        wait = self.timeout if timeout is None else timeout
        if not self._req.poll(int(wait * 1000), zmq.POLLIN):
            self._req.close()
            self._req = self._new_req()
            raise ControlError(f"no reply from the daemon at {self.control_addr} within {wait:g} s — is it running?")
        try:
            reply = json.loads(self._req.recv())
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise ControlError(f"the daemon at {self.control_addr} sent a reply that is not a JSON object")
        return reply

    def request(self, payload: dict[str, Any], *, timeout: float | None = None) -> Reply:
        """One request as a dict; the reply as it is (``ok`` may be false)."""
        return self.send_raw(json.dumps(payload).encode(), timeout=timeout)

    def call(self, cmd: str, **fields: Any) -> Reply:
        """``{"cmd": cmd, **fields}``; raises :class:`ControlError` unless the reply is ok."""
        reply = self.request({"cmd": cmd, **fields})
        if not reply.get("ok"):
            raise ControlError(f"{cmd}: {reply.get('error', 'refused')}")
        return reply

    def status(self) -> Reply:
        return self.call("status")

    def config_text(self) -> str:
        """The daemon's configuration as TOML (secrets left out if the daemon masks them)."""
        return str(self.call("config")["config"])

    def config(self) -> PeerConfig:
        status = self.status()
        return parse_peer_config(self.config_text(), check_secrets=bool(status.get("secrets", True)))

    def load(self, config: str | PeerConfig) -> Reply:
        """Replace the daemon's configuration (TOML text or a PeerConfig); no SA may exist."""
        text = config if isinstance(config, str) else dump_peer_config(config)
        return self.call("load", config=text)

    def initiate(self, connection: str) -> Reply:
        return self.call("initiate", connection=connection)

    def hold(self, on: bool = True) -> Reply:
        return self.call("hold", on=on)

    def pending(self) -> list[dict[str, Any]]:
        return list(self.call("pending")["pending"])

    def step(self, id: int | None = None) -> dict[str, Any]:  # noqa: A002 - the protocol's field name
        """Release the oldest held datagram (or the one with ``id``); returns its description."""
        fields = {} if id is None else {"id": id}
        return dict(self.call("step", **fields)["released"])

    def release_all(self) -> int:
        return int(self.call("release_all")["released"])

    def discard(self) -> int:
        return int(self.call("discard")["discarded"])

    def list_sas(self) -> Reply:
        reply = self.call("list_sas")
        reply.pop("ok", None)
        return reply

    def terminate(self) -> Reply:
        return self.call("terminate")

    def esp(self) -> Reply:
        """The ESP data plane: SAs with counters, SPD, data plane counters, TUN and socket I/O."""
        reply = self.call("esp")
        reply.pop("ok", None)
        return reply

    def trace_next(self, n: int = 1, *, wait: float = 0.0) -> list[dict[str, Any]]:
        """Ask for the next ``n`` ESP packets taken apart; with ``wait`` > 0 also wait that
        long for them and return their ``esp-packet`` events (they reach the event stream too)."""
        fields: dict[str, Any] = {"n": n}
        if wait:
            fields["wait"] = wait
        reply = self.request({"cmd": "trace_next", **fields}, timeout=(self.timeout + wait) if wait else None)
        if not reply.get("ok"):
            raise ControlError(f"trace_next: {reply.get('error', 'refused')}")
        return list(reply["packets"])

    def event_dicts_since(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.call("events", since=since)["events"])

    def events_since(self, since: int = 0) -> list[Event]:
        """The daemon's history after ``since`` (a seq), as events."""
        return [event_from_dict(d) for d in self.event_dicts_since(since)]

    def shutdown(self) -> Reply:
        return self.call("shutdown")

    # -- the event stream ------------------------------------------------------------

    def _need_sub(self) -> zmq.Socket:
        if self._sub is None:
            raise ControlError("this client has no events address: PeerClient(control, events)")
        return self._sub

    def next_event_dict(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The next published event as JSON data, or None after ``timeout`` seconds."""
        sub = self._need_sub()
        if not sub.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return dict(json.loads(sub.recv()))

    def next_event(self, timeout: float = 0.0) -> Event | None:
        data = self.next_event_dict(timeout)
        return event_from_dict(data) if data is not None else None

    def events(self, timeout: float = 1.0) -> Iterator[Event]:
        """Published events as they arrive; stops after ``timeout`` seconds without one.

        Events published before this client subscribed are not in the stream (ZeroMQ's
        PUB/SUB has no history): :meth:`events_since` replays them.
        """
        while (event := self.next_event(timeout)) is not None:
            yield event


# --- the remote lab session -----------------------------------------------------------


@dataclass
class RemoteOptions:
    """What the widgets read from a session's ``options`` (the mode; no seed here)."""

    mode: str = "main"
    seed: int | None = None


@dataclass
class RemotePeer:
    """A daemon as the widgets see a peer: ``name`` and ``config`` (``config.address``)."""

    name: str
    config: PeerConfig
    client: PeerClient
    ports: tuple[int, int]


@dataclass
class RemoteNetwork:
    """``network.peers``, like :class:`~ipseclab.runtime.transport.memory.MemoryNetwork`'s."""

    peers: list[RemotePeer]


class RemoteLabSession:
    """Two daemons (``left`` initiates ``connection`` to ``right``) stepped in hold mode.

    The events list is the two daemons' event streams merged in arrival order, from the
    last *back to start* on.  *Next* releases the oldest held datagram of either daemon
    (by the host clock at which the peer sent it) and waits until the other daemon has
    received and processed it, so the views see the whole effect of one step.

    Creating a session (like *back to start*) terminates whatever SAs the daemons have and
    drops what they hold.  The policy editor and *reset* load configurations into the
    daemons, which needs daemons that show their secrets (not ``--no-secrets``).
    """

    def __init__(
        self,
        left: PeerClient,
        right: PeerClient,
        connection: str = "site",
        *,
        start: bool = True,
        step_timeout: float = 5.0,
    ) -> None:
        self.connection = connection
        self.step_timeout = step_timeout
        self._clients = (left, right)
        self._listeners: list[Listener] = []
        self._events: list[Event] = []
        self._last = [0, 0]
        self.network = RemoteNetwork([])
        self._refresh_peers()
        self.options = RemoteOptions(mode=self._mode())
        self._restart(initiate=start)

    # -- the peers ---------------------------------------------------------------------

    def _refresh_peers(self) -> None:
        peers = []
        for client in self._clients:
            status = client.status()
            config = parse_peer_config(client.config_text(), check_secrets=bool(status.get("secrets", True)))
            peers.append(RemotePeer(config.name, config, client, (int(status["port"]), int(status["natt_port"]))))
        self.network = RemoteNetwork(peers)

    def _mode(self) -> str:
        conns = self.configs[0].connections
        conn = next((c for c in conns if c.name == self.connection), conns[0] if conns else None)
        return conn.mode if conn is not None else "main"

    @property
    def left(self) -> RemotePeer:
        return self.network.peers[0]

    @property
    def right(self) -> RemotePeer:
        return self.network.peers[1]

    @property
    def configs(self) -> tuple[PeerConfig, PeerConfig]:
        return self.left.config, self.right.config

    @property
    def events(self) -> list[Event]:
        return self._events

    def subscribe(self, listener: Listener) -> None:
        """``listener(kind)`` is called with "step" or "reset" after every change."""
        self._listeners.append(listener)

    def _notify(self, kind: str) -> None:
        for listener in list(self._listeners):
            listener(kind)

    # -- following the event streams -------------------------------------------------

    def _accept(self, i: int, data: dict[str, Any]) -> bool:
        """Append one event of daemon ``i`` if it is the next one; fill a gap first."""
        seq = int(data.get("seq", 0))
        if seq <= self._last[i]:
            return False
        if seq > self._last[i] + 1:  # the stream lost or has not yet delivered some: replay them
            for missing in self._clients[i].event_dicts_since(self._last[i]):
                self._accept(i, missing)
            return True
        self._events.append(event_from_dict(data))
        self._last[i] = seq
        return True

    def sync(self) -> bool:
        """Take in what both event streams delivered, then whatever they have not yet
        (a request/reply catch-up); True if there were new events."""
        new = False
        for i, client in enumerate(self._clients):
            if client.events_addr:
                while (data := client.next_event_dict(0)) is not None:
                    new |= self._accept(i, data)
        for i, client in enumerate(self._clients):
            for data in client.event_dicts_since(self._last[i]):
                new |= self._accept(i, data)
        return new

    def poll(self) -> bool:
        """Pick up events that arrived on their own (a daemon not holding); notify if any."""
        new = self.sync()
        if new:
            self._notify("step")
        return new

    # -- the buttons ---------------------------------------------------------------------

    def _receiver(self, dst: list[Any]) -> PeerClient | None:
        host, port = str(dst[0]), int(dst[1])
        for p in self.network.peers:
            if p.config.address == host and port in p.ports:
                return p.client
        return None

    def _step(self) -> dict[str, Any] | None:
        held = [(h["held_at"], i, h["id"], h) for i, c in enumerate(self._clients) for h in c.pending()]
        if not held:
            return None
        _, i, ident, item = min(held, key=lambda x: (x[0], x[2]))
        receiver = self._receiver(item["dst"])
        before = int(receiver.status()["received"]) if receiver is not None else 0
        self._clients[i].step(ident)
        if receiver is not None:
            deadline = time.monotonic() + self.step_timeout
            while int(receiver.status()["received"]) <= before and time.monotonic() < deadline:
                time.sleep(0.002)
        self.sync()
        return item

    def next(self) -> dict[str, Any] | None:
        """Release the oldest held datagram (None when nothing is held)."""
        item = self._step()
        if item is None:
            self.sync()
        self._notify("step")
        return item

    def sa_tables(self) -> dict[str, dict[str, Any]]:
        """Each daemon's SA table (``list_sas``)."""
        return {p.name: p.client.list_sas() for p in self.network.peers}

    def advance(self, seconds: float) -> None:
        """Real peers live on the host's clock: there is no simulated time to move."""
        raise ConfigError(
            f"cannot advance the clock by {seconds:g} s: these peers are daemons on the host's clock "
            "(run this part with PEERS = \"memory\", or wait and call poll())"
        )

    def run_to_end(self, max_steps: int = 500) -> int:
        """Step until neither daemon holds anything; returns the number of steps."""
        steps = 0
        while steps < max_steps and self._step() is not None:
            steps += 1
        self._notify("step")
        return steps

    def _restart(self, *, initiate: bool = True) -> None:
        for c in self._clients:
            c.hold(True)
        for c in self._clients:
            c.terminate()
        for c in self._clients:
            c.discard()
        for c in self._clients:  # what the streams still carry belongs to the previous run
            while c.events_addr and c.next_event_dict(0) is not None:
                pass
        self._events = []
        self._last = [int(c.status()["last_seq"]) for c in self._clients]
        if initiate:
            self._clients[0].initiate(self.connection)
            self.sync()

    def back_to_start(self) -> None:
        """Terminate every SA on both daemons, drop what is held and initiate again in hold mode."""
        self._restart()
        self._notify("reset")

    def reset(self, options: object | None = None, *, configs: tuple[PeerConfig, PeerConfig] | None = None) -> None:
        """Start over, loading new configurations into the daemons if they differ."""
        if configs is None and options is not None and options != self.options:
            raise ConfigError("a remote session takes new configurations, not demo options: reset(configs=(left, right))")
        if configs is not None and tuple(configs) != self.configs:
            for c in self._clients:
                c.hold(True)
                c.terminate()
                c.discard()
            for client, cfg in zip(self._clients, configs, strict=True):
                client.load(cfg)
            self._refresh_peers()
            self.options = RemoteOptions(mode=self._mode())
        self._restart()
        self._notify("reset")

    # -- what the views read ---------------------------------------------------------------

    @property
    def pending(self) -> int:
        return sum(len(c.pending()) for c in self._clients)

    def next_sender(self) -> str | None:
        held = [(h["held_at"], p.name) for p in self.network.peers for h in p.client.pending()]
        return min(held)[1] if held else None

    def messages(self) -> list[MessageEvent]:
        return [e for e in self._events if isinstance(e, MessageEvent) and e.direction == "sent"]

    def states(self) -> dict[str, str]:
        return isakmp_states(self._events, [p.name for p in self.network.peers], self.options.mode)

    def quick_mode_states(self) -> dict[str, dict[str, str]]:
        return quick_mode_states(self._events, [p.name for p in self.network.peers])

    def established(self) -> bool:
        conns = self.configs[0].connections
        children = len(conns[0].children) if conns else 0
        return established_from_events(self._events, [p.name for p in self.network.peers], children)

    def explanation(self) -> list[str]:
        return failure_lines(self._events)

    def export(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``run.pcap`` and the Wireshark key tables (needs a daemon with secrets)."""
        from ipseclab.export import export_run

        return export_run(self._events, directory)
