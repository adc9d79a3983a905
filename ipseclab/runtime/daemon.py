"""The peer daemon: one sans-I/O :class:`~ipseclab.peer.Peer` on UDP, driven over ZeroMQ.

``ipseclab peer --config left.toml --control ipc:///tmp/left.ctl --events ipc:///tmp/left.ev``
runs one peer on asyncio UDP sockets (:class:`HoldingRunner`, a
:class:`~ipseclab.runtime.transport.udp.UdpPeerRunner` with a *hold* switch) and serves:

* a **command socket** (ZeroMQ ROUTER, so any number of REQ clients): one JSON object per
  request, ``{"cmd": "status"}``, answered by ``{"ok": true, ...}`` or
  ``{"ok": false, "error": "plain words"}``.  A bad request never stops the daemon.
* an **event socket** (ZeroMQ PUB): every trace event as one JSON message
  (:func:`~ipseclab.trace.event_to_dict`), with ``seq`` numbered 1, 2, 3 … over the
  daemon's whole life (also across ``load``); ``events`` replays the history for late
  subscribers.  Derived keys are included — this is a teaching peer on a local socket —
  unless the daemon runs with ``--no-secrets``.

**Hold mode** is the notebook's *Next* button on real sockets: outgoing datagrams are held
instead of sent and ``step`` releases them one at a time.  The peer believes a held
datagram was sent, so while holding the daemon also **stops the peer's clock**: no
retransmission timer fires and no lifetime runs out while a student looks at a message.
When hold is switched off the clock resumes where it stopped (timers keep their remaining
time) and everything still held is sent, oldest first.  Without that freeze a message held
longer than the retransmission timeout would be sent again as soon as it was released.

**Data plane.**  With ``--dataplane`` (or ``[peer] dataplane = true``) the daemon also runs
the userspace ESP data plane (:class:`~ipseclab.runtime.dataplane_runner.DataPlaneRunner`): a TUN
device (``ipl0``) the protected remote subnets are routed into, a raw protocol-50 socket, and
ESP-in-UDP on the NAT-T socket (RFC 3948).  Quick Mode SAs are installed as they come up;
``esp`` shows every ESP SA with its counters, ``trace_next`` asks for the next packets taken
apart.  Hold mode holds IKE only: ESP keeps flowing.

Commands: ``status``, ``config``, ``load``, ``initiate``, ``hold``, ``pending``, ``step``,
``release_all``, ``discard``, ``list_sas``, ``terminate``, ``events``, ``esp``,
``trace_next``, ``shutdown`` (see :data:`COMMANDS` and README "Control API").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import itertools
import json
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from ipseclab.config import PeerConfig
from ipseclab.crypto.rng import Rng, SeededRng, SystemRng
from ipseclab.errors import ControlError, IpsecLabError
from ipseclab.peer import NON_ESP_MARKER, Datagram, Peer
from ipseclab.runtime.config_toml import dump_peer_config, parse_peer_config
from ipseclab.runtime.curve import CurveKeys, ensure_keys, make_server
from ipseclab.runtime.transport.udp import UdpPeerRunner
from ipseclab.trace import NO_SA, Event, Info, MessageEvent, event_to_dict

if TYPE_CHECKING:
    from ipseclab.runtime.dataplane_runner import DataPlaneRunner

Reply = dict[str, Any]

#: Every command and the fields it takes (for error messages and the README).
#: the largest control request read, in bytes, and how deep its JSON may nest
MAX_REQUEST = 256 * 1024
MAX_NESTING = 32
#: trace events the daemon keeps for ``events`` (a ring: the oldest go first)
DEFAULT_HISTORY = 20_000

COMMANDS: dict[str, str] = {
    "status": "",
    "config": "",
    "load": '"config": TOML text',
    "initiate": '"connection": name',
    "hold": '"on": true or false',
    "pending": "",
    "step": '"id" (optional): which held datagram; the oldest by default',
    "release_all": "",
    "discard": "",
    "list_sas": "",
    "terminate": "",
    "events": '"since" (optional): the last seq already seen, 0 by default',
    "esp": "",
    "trace_next": '"n" (optional, 1 by default): decode the next n ESP packets; "wait" (optional): seconds to wait for them',
    "shutdown": "",
}
#: commands recorded in the event stream with who asked
STATE_CHANGING = frozenset({"load", "initiate", "hold", "step", "release_all", "discard", "terminate", "shutdown"})



@dataclass
class HeldDatagram:
    """A datagram the peer sent while the daemon was holding, waiting for ``step``.

    ``held_at`` is the host's monotonic clock (``time.monotonic()``), comparable between
    daemons on one machine — network namespaces share it — so a client can release the
    oldest datagram across several daemons.  ``seq``, ``time`` and ``summary`` come from
    the ``sent`` MessageEvent the peer emitted for it.
    """

    id: int
    datagram: Datagram
    held_at: float
    seq: int | None = None
    time: float | None = None
    exchange: str = ""
    index: int = 0
    summary: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = self.datagram
        return {
            "id": self.id,
            "summary": self.summary or f"datagram of {len(d.data)} bytes",
            "exchange": self.exchange,
            "index": self.index,
            "src": list(d.src),
            "dst": list(d.dst),
            "size": len(d.data),
            "held_at": self.held_at,
            "seq": self.seq,
            "time": self.time,
        }


class HoldingRunner(UdpPeerRunner):
    """A UDP runner that can hold outgoing datagrams and stop the peer's clock meanwhile.

    The peer's clock is the loop's clock minus the total time spent holding, so a timer
    armed before a hold keeps its remaining time after it.
    """

    def __init__(self, peer: Peer, *, host: str | None = None, queue_events: bool = True) -> None:
        super().__init__(peer, host=host, queue_events=queue_events)
        self.holding = False
        self.held: deque[HeldDatagram] = deque()
        self.received = 0
        self._ids = itertools.count(1)
        self._offset = 0.0
        self._paused_at: float | None = None

    def now(self) -> float:
        assert self._loop is not None
        real = self._paused_at if self._paused_at is not None else self._loop.time()
        return real - self._offset

    def receive(self, batch: list[tuple[bytes, tuple[str, int], int]]) -> None:
        self.received += len(batch)
        super().receive(batch)

    def send(self, d: Datagram) -> None:
        if self.holding:
            self.held.append(HeldDatagram(next(self._ids), d, time.monotonic()))
        else:
            super().send(d)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.peer.get_timer()
        if when is not None and self._loop is not None and not self.holding:
            self._timer = self._loop.call_at(when + self._offset, self._on_timer)

    def flush(self) -> None:
        """Send (or hold) what the peer queued and publish its events."""
        self._flush()

    def set_hold(self, on: bool) -> list[HeldDatagram]:
        """Switch hold mode; switching it off sends everything held (returned, oldest first)."""
        assert self._loop is not None
        if on and not self.holding:
            self.holding = True
            self._paused_at = self._loop.time()
            self._arm_timer()  # cancels the armed timer
            return []
        if not on and self.holding:
            self.holding = False
            if self._paused_at is not None:
                self._offset += self._loop.time() - self._paused_at
            self._paused_at = None
            released = self.release_all()
            self._arm_timer()
            return released
        return []

    def release(self, ident: int | None = None) -> HeldDatagram:
        """Send one held datagram (the oldest, or the one with ``ident``)."""
        if not self.held:
            raise ControlError("nothing pending")
        if ident is None:
            item = self.held.popleft()
        else:
            item = next((h for h in self.held if h.id == ident), None)
            if item is None:
                raise ControlError(f"no held datagram has id {ident}; pending ids: {[h.id for h in self.held]}")
            self.held.remove(item)
        super().send(item.datagram)
        return item

    def release_all(self) -> list[HeldDatagram]:
        out = []
        while self.held:
            out.append(self.release())
        return out

    def discard(self) -> int:
        n = len(self.held)
        self.held.clear()
        return n

    def attach(self, event: Event, seq: int) -> None:
        """Give the held datagram of a ``sent`` MessageEvent its summary, seq and time."""
        if not (isinstance(event, MessageEvent) and event.direction == "sent"):
            return
        for h in self.held:
            if h.seq is None and h.datagram.data in (event.raw, NON_ESP_MARKER + event.raw):
                h.seq, h.time, h.summary = seq, event.time, event.summary
                h.exchange, h.index = event.exchange, event.index
                return


def _field(req: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str, *, default: Any = ...) -> Any:
    """A typed request field; a missing or mistyped one is a ControlError naming it."""
    cmd = req.get("cmd")
    if name not in req:
        if default is not ...:
            return default
        raise ControlError(f'"{cmd}" needs "{name}": {what}')
    value = req[name]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ControlError(f'"{cmd}": "{name}" must be {what} (got {json.dumps(value)})')
    return value


class PeerDaemon:
    """One peer, its UDP sockets and its control and event sockets."""

    def __init__(
        self,
        config: PeerConfig,
        control: str,
        events: str | None = None,
        *,
        include_secrets: bool = True,
        hold: bool = False,
        seed: int | None = None,
        host: str | None = None,
        dataplane: bool = False,
        tun: str | None = None,
        history: int = DEFAULT_HISTORY,
        curve: str | None = None,
    ) -> None:
        self.config = config
        self.curve_dir = curve
        self._curve: CurveKeys | None = None
        self.control_addr = control
        self.events_addr = events
        self.include_secrets = include_secrets
        self.seed = seed
        self.host = host
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.last_seq = 0
        self.want_dataplane = dataplane
        self.tun_name = tun
        self.dataplane: DataPlaneRunner | None = None
        self.runner = self._make_runner(config)
        self._start_holding = hold
        self._stopping = asyncio.Event()
        self._pub: zmq.Socket | None = None
        self._commands: dict[str, Callable[[dict[str, Any]], Reply | Awaitable[Reply]]] = {
            name: getattr(self, f"_cmd_{name}") for name in COMMANDS
        }

    # -- the peer ------------------------------------------------------------------

    def _rng(self, name: str) -> Rng:
        return SeededRng(self.seed, name) if self.seed is not None else SystemRng()

    def _make_runner(self, config: PeerConfig) -> HoldingRunner:
        runner = HoldingRunner(Peer(config, rng=self._rng(config.name)), host=self.host, queue_events=False)
        runner.listeners.append(self._on_event)
        return runner

    async def _start_runner(self, runner: HoldingRunner) -> None:
        try:
            await runner.start()
        except OSError as exc:
            await runner.close()
            cfg = runner.peer.config
            raise ControlError(
                f"cannot bind UDP {runner.host} ports {cfg.port}/{cfg.natt_port}: {exc.strerror or exc}"
            ) from None

    def _on_event(self, event: Event) -> None:
        data = event_to_dict(event, include_secrets=self.include_secrets)
        self.last_seq += 1
        data["seq"] = self.last_seq
        self.history.append(data)
        self.runner.attach(event, data["seq"])
        if self._pub is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._pub.send_string(json.dumps(data), zmq.NOBLOCK)

    def _note(self, message: str) -> None:
        """A daemon-level step (hold, load) as an Info event in the trace."""
        self.runner.peer.emit(Info, sa=NO_SA, message=message)
        self.runner.flush()

    async def _start_dataplane(self) -> None:
        """Start the ESP data plane if asked for (``--dataplane`` or ``[peer] dataplane``)."""
        if self.dataplane is not None or not (self.want_dataplane or self.config.dataplane):
            return
        from ipseclab.runtime.dataplane_runner import DEFAULT_TUN, DataPlaneRunner

        dp = DataPlaneRunner(self.config.name, tun_name=self.tun_name or DEFAULT_TUN)
        dp.listeners.append(self._on_event)
        await dp.start(self.runner)
        self.dataplane = dp

    def _need_dataplane(self) -> DataPlaneRunner:
        if self.dataplane is None:
            raise ControlError("this daemon runs without the ESP data plane (start it with --dataplane or [peer] dataplane = true)")
        return self.dataplane

    @property
    def peer(self) -> Peer:
        return self.runner.peer

    def _live_sas(self) -> int:
        return sum(not sa.failed for sa in self.peer.ike_sas.values()) + len(self.peer.child_sas)

    # -- commands ------------------------------------------------------------------

    def _cmd_status(self, req: dict[str, Any]) -> Reply:
        cfg, r = self.peer.config, self.runner
        return {
            "name": cfg.name,
            "pid": os.getpid(),
            "address": cfg.address,
            "port": cfg.port,
            "natt_port": cfg.natt_port,
            "connections": [c.name for c in cfg.connections],
            "holding": r.holding,
            "pending": len(r.held),
            "received": r.received,
            "last_seq": self.last_seq,
            "history": {"kept": len(self.history), "limit": self.history.maxlen},
            "isakmp_sas": len(self.peer.ike_sas),
            "ipsec_sas": len(self.peer.child_sas),
            "secrets": self.include_secrets,
            "dataplane": self.dataplane.status() if self.dataplane is not None else None,
        }

    def _cmd_config(self, req: dict[str, Any]) -> Reply:
        return {"config": dump_peer_config(self.peer.config, secrets=self.include_secrets)}

    async def _cmd_load(self, req: dict[str, Any]) -> Reply:
        text = _field(req, "config", str, "the peer's configuration as TOML text")
        config = parse_peer_config(text)
        live = self._live_sas()
        if live:
            raise ControlError(f"{live} SA(s) exist: terminate them before loading a new configuration")
        old = self.runner
        holding, discarded = old.holding, old.discard()
        if self.dataplane is not None:
            self.dataplane.detach()
        await old.close()
        new = self._make_runner(config)
        new.peer.leases = old.peer.leases.carried_over(config.pools)  # clients keep their virtual IPs
        self.runner = new
        try:
            await self._start_runner(new)
        except ControlError:
            self.runner = old
            await self._start_runner(old)
            if self.dataplane is not None:
                self.dataplane.attach(old)
            raise
        if holding:
            new.set_hold(True)
        self.config = config
        if self.dataplane is not None:
            self.dataplane.attach(new)
        else:
            await self._start_dataplane()
        self._note(f"configuration loaded: peer {config.name} at {config.address}, connections {[c.name for c in config.connections]}")
        self._start_connections()
        return {"name": config.name, "discarded": discarded}

    def _start_connections(self) -> None:
        """start_action = start: the configuration's connections that start on their own."""
        started = self.peer.start_connections(self.runner.now())
        if started:
            self._note(f"start_action = start: initiating {', '.join(sa.ref.label for sa in started)}")
            self.runner.flush()

    def _cmd_initiate(self, req: dict[str, Any]) -> Reply:
        name = _field(req, "connection", str, f"a connection name ({', '.join(c.name for c in self.peer.config.connections) or 'none configured'})")
        sa = self.peer.initiate(name, self.runner.now())
        self.runner.flush()
        return {"sa": sa.ref.label, "ref": dataclasses.asdict(sa.ref), "pending": len(self.runner.held)}

    def _cmd_hold(self, req: dict[str, Any]) -> Reply:
        on = _field(req, "on", bool, "true or false")
        was = self.runner.holding
        released = self.runner.set_hold(on)
        if on and not was:
            self._note("hold on: outgoing datagrams are held until stepped; the peer's clock is stopped")
        elif was and not on:
            self._note(f"hold off: the peer's clock runs again; {len(released)} held datagram(s) sent")
        return {"holding": self.runner.holding, "released": len(released)}

    def _cmd_pending(self, req: dict[str, Any]) -> Reply:
        return {"pending": [h.as_dict() for h in self.runner.held]}

    def _cmd_step(self, req: dict[str, Any]) -> Reply:
        ident = _field(req, "id", int, "the id of a held datagram (see pending)", default=None)
        item = self.runner.release(ident)
        return {"released": item.as_dict(), "pending": len(self.runner.held)}

    def _cmd_release_all(self, req: dict[str, Any]) -> Reply:
        return {"released": len(self.runner.release_all())}

    def _cmd_discard(self, req: dict[str, Any]) -> Reply:
        return {"discarded": self.runner.discard()}

    def _cmd_list_sas(self, req: dict[str, Any]) -> Reply:
        return self.peer.sa_table()

    def _cmd_terminate(self, req: dict[str, Any]) -> Reply:
        isakmp, ipsec = len(self.peer.ike_sas), len(self.peer.child_sas)
        self.peer.terminate(self.runner.now())
        self.runner.flush()
        return {"deleted": {"isakmp": isakmp, "ipsec": ipsec}, "pending": len(self.runner.held)}

    def _cmd_events(self, req: dict[str, Any]) -> Reply:
        since = _field(req, "since", int, "an integer (the last seq already seen)", default=0)
        first = self.history[0]["seq"] if self.history else self.last_seq + 1
        events = [e for e in self.history if e["seq"] > since] if since >= first - 1 else list(self.history)
        reply: dict[str, Any] = {"events": events, "last_seq": self.last_seq}
        if since < first - 1:  # the ring no longer holds what came right after ``since``
            reply["trimmed"] = {"first_seq": first, "lost": first - 1 - max(since, 0)}
        return reply

    def _cmd_esp(self, req: dict[str, Any]) -> Reply:
        return self._need_dataplane().table()

    async def _cmd_trace_next(self, req: dict[str, Any]) -> Reply:
        dp = self._need_dataplane()
        n = _field(req, "n", int, "a number of packets from 1 to 1000", default=1)
        if not 1 <= n <= 1000:
            raise ControlError(f'"trace_next": "n" must be from 1 to 1000 (got {n})')
        wait = _field(req, "wait", (int, float), "seconds to wait for the packets (0 to 30)", default=0)
        if not 0 <= wait <= 30:
            raise ControlError(f'"trace_next": "wait" must be from 0 to 30 seconds (got {wait})')
        if not wait:
            dp.trace_next(n)
            return {"armed": n, "packets": []}
        got = await dp.capture_next(n, float(wait))
        packets = [event_to_dict(e, include_secrets=self.include_secrets) for e in got]
        return {"armed": n, "packets": packets}

    def _cmd_shutdown(self, req: dict[str, Any]) -> Reply:
        self._stopping.set()
        return {"bye": True}

    async def handle(self, body: bytes, asker: str = "a local client") -> Reply:
        """One request in, one reply out; nothing a client sends stops the daemon.

        Requests are at most :data:`MAX_REQUEST` bytes and may nest at most
        :data:`MAX_NESTING` levels; every command that changes state is recorded in the
        event stream with ``asker``.
        """
        if len(body) > MAX_REQUEST:
            return {"ok": False, "error": f"the request is {len(body)} bytes; at most {MAX_REQUEST} are read"}
        if _nesting(body) > MAX_NESTING:
            return {"ok": False, "error": f"the request nests deeper than {MAX_NESTING} levels"}
        try:
            req = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return {"ok": False, "error": f"the request is not valid JSON ({exc})"}
        if not isinstance(req, dict):
            return {"ok": False, "error": 'a request is a JSON object like {"cmd": "status"}'}
        cmd = req.get("cmd")
        if not isinstance(cmd, str) or cmd not in self._commands:
            what = f"unknown command {json.dumps(cmd)}" if "cmd" in req else 'the request has no "cmd"'
            return {"ok": False, "error": f"{what}; commands: {', '.join(COMMANDS)}"}
        if cmd in STATE_CHANGING:
            args = {k: v for k, v in req.items() if k != "cmd" and k != "config"}
            self._note(f"control: {cmd}{' ' + json.dumps(args) if args else ''} asked by {asker}")
        try:
            result = self._commands[cmd](req)
            if inspect.isawaitable(result):
                result = await result
        except IpsecLabError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the client, the daemon keeps running
            return {"ok": False, "error": f"internal error in {cmd} ({type(exc).__name__}: {exc}); the daemon keeps running"}
        return {"ok": True, **result}

    # -- running ---------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    def _secure(self, sock: zmq.Socket, addr: str) -> None:
        """``tcp://`` only with CURVE: any local user can reach a TCP port."""
        if not addr.startswith("tcp://"):
            return
        if self._curve is None:
            raise ControlError(
                f"{addr}: a tcp:// socket needs authentication — any local user could read the PSK "
                "and every key and run load, initiate, terminate and shutdown. Use ipc:// (only its "
                "owner may connect) or give a CURVE key directory (--curve DIR)"
            )
        make_server(sock, self._curve)

    async def run(self, *, handle_signals: bool = False, ready: Callable[[], None] | None = None) -> None:
        """Bind everything, serve until ``shutdown`` (or SIGINT/SIGTERM), then close."""
        self._stopping = asyncio.Event()
        ctx = zmq.asyncio.Context()
        auth: AsyncioAuthenticator | None = None
        if self.curve_dir is not None:
            self._curve = ensure_keys(self.curve_dir)
            auth = AsyncioAuthenticator(ctx)
            auth.start()
            auth.configure_curve(domain="*", location=str(self._curve.clients))
        ctl = ctx.socket(zmq.ROUTER)
        ctl.setsockopt(zmq.LINGER, 500)
        pub: zmq.Socket | None = None
        bound: list[str] = []
        try:
            ctl.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST + 1024)  # a larger message drops the connection
            try:
                self._secure(ctl, self.control_addr)
                _bind_private(ctl, self.control_addr)
                bound.append(self.control_addr)
                if self.events_addr:
                    pub = zmq.Context.shadow(ctx.underlying).socket(zmq.PUB)
                    pub.setsockopt(zmq.LINGER, 0)
                    pub.setsockopt(zmq.SNDHWM, 100_000)
                    self._secure(pub, self.events_addr)
                    _bind_private(pub, self.events_addr)
                    bound.append(self.events_addr)
            except zmq.ZMQError as exc:
                raise ControlError(f"cannot bind the control/event socket: {exc}") from None
            self._pub = pub
            await self._start_runner(self.runner)
            await self._start_dataplane()
            if self._start_holding:
                self._cmd_hold({"cmd": "hold", "on": True})
            self._start_connections()
            if handle_signals:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, self.stop)
            if ready is not None:
                ready()
            await self._serve(ctl)
        finally:
            if self.dataplane is not None:
                self.dataplane.close()
                self.dataplane = None
            await self.runner.close()
            self._pub = None
            if pub is not None:
                pub.close()
            ctl.close()
            if auth is not None:
                auth.stop()
            ctx.term()
            for addr in (a for a in bound if a.startswith("ipc://")):  # no stale socket files
                with contextlib.suppress(OSError):
                    os.unlink(addr.removeprefix("ipc://"))

    async def _serve(self, ctl: zmq.asyncio.Socket) -> None:
        while not self._stopping.is_set():
            if not await ctl.poll(100, zmq.POLLIN):
                continue
            frames = await ctl.recv_multipart(copy=False)
            # REQ clients send [identity, b"", body]; a DEALER may leave out the delimiter
            envelope, body = [bytes(f.buffer) for f in frames[:-1]], frames[-1]
            reply = await self.handle(bytes(body.buffer), self._asker(body))
            await ctl.send_multipart([*envelope, json.dumps(reply).encode()])

    def _asker(self, frame: zmq.Frame) -> str:
        """Who sent a request: the CURVE key's name where the socket authenticates, else the
        socket's owner (an ipc socket only its owner may open)."""
        with contextlib.suppress(zmq.ZMQError, KeyError, UnicodeDecodeError):
            user = frame.get("User-Id")
            if user:
                return f"CURVE client {user}"
        return f"the owner of {self.control_addr} (uid {os.geteuid()})"


def _nesting(body: bytes) -> int:
    """How deep brackets nest in a JSON text (counted outside strings), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _bind_private(sock: zmq.Socket, addr: str) -> None:
    """Bind; an ipc socket file is created 0600 — only its owner may connect (connecting to
    a Unix socket needs write permission on it) — whatever the umask."""
    if not addr.startswith("ipc://"):
        sock.bind(addr)
        return
    old = os.umask(0o077)
    try:
        sock.bind(addr)
    finally:
        os.umask(old)
    os.chmod(addr.removeprefix("ipc://"), 0o600)


def run_daemon(
    config: PeerConfig,
    control: str,
    events: str | None = None,
    *,
    include_secrets: bool = True,
    hold: bool = False,
    seed: int | None = None,
    announce: Callable[[str], None] | None = None,
    dataplane: bool = False,
    tun: str | None = None,
    history: int = DEFAULT_HISTORY,
    curve: str | None = None,
) -> None:
    """Run a daemon in this process until ``shutdown`` or SIGINT/SIGTERM (the CLI's ``peer``)."""
    daemon = PeerDaemon(
        config, control, events, include_secrets=include_secrets, hold=hold, seed=seed, dataplane=dataplane, tun=tun,
        history=history, curve=curve,
    )

    def ready() -> None:
        if announce is not None:
            c = daemon.peer.config
            announce(
                f"ipseclab peer {c.name}: IKE on {c.address}:{c.port} (NAT-T {c.natt_port}), "
                f"control {control}" + (f", events {events}" if events else "")
                + (", holding" if hold else "") + ("" if include_secrets else ", secrets masked")
                + (f", ESP data plane on {daemon.dataplane.tun_name}" if daemon.dataplane is not None else "")
            )

    asyncio.run(daemon.run(handle_signals=True, ready=ready))
