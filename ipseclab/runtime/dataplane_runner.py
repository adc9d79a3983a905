"""The ESP data plane on real I/O: TUN, raw protocol-50 socket and the UDP 4500 socket.

:class:`DataPlaneRunner` joins three things around one sans-I/O
:class:`~ipseclab.esp.dataplane.DataPlane` (the SAD and SPD, RFC 4301 §4.4):

* a **TUN device** (:mod:`ipseclab.runtime.transport.tun`, ``ipl0``, MTU 1400): the remote protected
  subnets of every configured child are routed into it, so the host's packets to them are
  read here, protected by ``DataPlane.outbound`` (RFC 4303 §3.3) and sent; decrypted inner
  packets are written back into it (the kernel then delivers them as if they had arrived
  on ``ipl0``);
* a **raw IP protocol-50 socket** (:mod:`ipseclab.runtime.transport.esp_raw`) for plain ESP: outer
  header built by the data plane, sent with ``IP_HDRINCL``; every received packet goes to
  ``DataPlane.inbound_ip``;
* the **UDP 4500 socket** of the :class:`~ipseclab.runtime.transport.udp.UdpPeerRunner`, shared with
  IKE (RFC 3948 §2.2): the runner stops the asyncio transport reading it and drains the
  socket itself.  A datagram whose first four bytes are zero (the non-ESP marker) or the
  one-byte NAT-keepalive goes to the IKE peer exactly as before; anything else is ESP
  (the SPI is never zero, RFC 4303 §2.1) and goes to ``DataPlane.inbound_esp``.  Outbound
  UDP-encapsulated ESP leaves from the same socket, so it carries the floated IKE port
  through the NAT (RFC 3948 §2.1: ESP directly after the UDP header, no marker).

The :class:`~ipseclab.peer.Peer` stays sans-I/O and knows nothing of this: after every
``SaEstablished``/``SaDeleted`` of an IPsec SA (and when a NAT moves the peer's port) the runner
*reconciles* the data plane with ``peer.child_sas`` — new Quick Mode pairs are installed
(with the ISAKMP SA's ports for UDP encapsulation), deleted or expired ones removed.

All of it runs on the daemon's event loop; readers drain up to a batch of packets per
wake-up so IKE and the control socket are served between batches.  The data plane's clock
is the peer's (``runner.now()``), the one Quick Mode stamped ``established_at`` with.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from ipseclab.errors import ControlError
from ipseclab.esp.dataplane import DataPlane
from ipseclab.esp.errors import EspConfigError
from ipseclab.esp.sa import EspSa
from ipseclab.peer import NON_ESP_MARKER
from ipseclab.runtime.transport.esp_raw import RawEspError, RawEspSocket
from ipseclab.runtime.transport.tun import DEFAULT_MTU, TunDevice, TunError, local_address_in
from ipseclab.runtime.transport.udp import UdpPeerRunner
from ipseclab.sa import IpsecSaPair
from ipseclab.trace import (
    NO_SA,
    EspPacket,
    Event,
    Info,
    PeerMoved,
    PortFloated,
    SaDeleted,
    SaEstablished,
)

__all__ = ["DEFAULT_TUN", "DataPlaneRunner"]

DEFAULT_TUN = "ipl0"
#: Datagrams drained from the UDP 4500 socket per wake-up.
BATCH = 64
#: MTU of the outer packets (the lab's veths): bigger raw-ESP packets are fragmented.
WIRE_MTU = 1500

Listener = Callable[[Event], None]


def _warm_up() -> None:
    """Import scapy now (≈0.3 s) rather than when the first ESP packets are taken apart for
    the trace: otherwise the first ping of a student's lab would take that long."""
    from ipseclab.esp.inspect import inner_view

    inner_view(b"", 4)


class DataPlaneRunner:
    """One peer's ESP data plane on a TUN device, a raw ESP socket and the IKE runner's
    UDP 4500 socket (see the module docstring).

    ``raw_esp=False`` leaves out the protocol-50 socket (then only UDP-encapsulated SAs
    carry traffic).  ``listeners`` receive the data plane's trace events
    (:class:`~ipseclab.trace.EspPacket`, ``EspStats``, ``EspDropped``, ``Info``).
    """

    def __init__(
        self,
        name: str,
        *,
        tun_name: str = DEFAULT_TUN,
        mtu: int = DEFAULT_MTU,
        raw_esp: bool = True,
        wire_mtu: int = WIRE_MTU,
        replay_window: int = 64,
    ) -> None:
        self.name = name
        self.tun_name = tun_name
        self.mtu = mtu
        self.raw_esp = raw_esp
        self.replay_window = replay_window
        self.listeners: list[Listener] = []
        self.dp = DataPlane(name, sink=self._emit, mtu=wire_mtu, on_lifetime=self._on_lifetime)
        self.tun: TunDevice | None = None
        self.raw: RawEspSocket | None = None
        self.runner: UdpPeerRunner | None = None
        self.installed: dict[tuple[int, int], tuple[IpsecSaPair, tuple[int, int] | None]] = {}
        self.io_errors: dict[str, int] = {}
        self._udp: socket.socket | None = None
        self._udp_port = 0
        self._buf = bytearray(65536)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._waiters: list[tuple[int, list[EspPacket], asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"<DataPlaneRunner {self.name} tun={self.tun_name} sas={len(self.installed)}>"

    # -- life cycle ----------------------------------------------------------------------

    async def start(self, runner: UdpPeerRunner) -> None:
        """Open the TUN and the raw socket in this namespace and attach to ``runner``
        (already started: its UDP sockets are bound)."""
        self._loop = asyncio.get_running_loop()
        try:
            self.tun = TunDevice.open(self.tun_name, mtu=self.mtu)
            if self.raw_esp:
                self.raw = RawEspSocket()
        except (TunError, RawEspError, OSError) as exc:
            self.close()
            raise ControlError(f"cannot start the ESP data plane: {exc}") from None
        except Exception:
            self.close()
            raise
        _warm_up()
        self.tun.start_reader(self._from_tun)
        if self.raw is not None:
            self.raw.start_reader(self._from_raw)
        self.attach(runner)
        self._tick = self._loop.call_later(1.0, self._on_tick)

    def attach(self, runner: UdpPeerRunner) -> None:
        """Serve ``runner``'s peer: take over its NAT-T socket, follow its SAs, route its children."""
        self.detach()
        self.runner = runner
        runner.listeners.append(self._on_peer_event)
        self._take_udp(runner)
        self.sync()

    def detach(self) -> None:
        """Give the NAT-T socket back to the runner and forget its SAs (before it is replaced)."""
        runner = self.runner
        if runner is None:
            return
        with contextlib.suppress(ValueError):
            runner.listeners.remove(self._on_peer_event)
        if self._udp is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._udp.fileno())
            self._udp = None
            runner.resume_reading(self._udp_port)
        for key in list(self.installed):
            self._uninstall(key)
        self.runner = None

    def close(self) -> None:
        """Stop everything; closing the TUN removes it and the routes through it."""
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self.detach()
        if self.raw is not None:
            self.raw.close()
            self.raw = None
        if self.tun is not None:
            self.tun.close()
            self.tun = None
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def _take_udp(self, runner: UdpPeerRunner) -> None:
        port = runner.peer.config.natt_port
        sock = runner.socket(port)
        if sock is None or self._loop is None:
            return
        runner.stop_reading(port)
        self._udp, self._udp_port = sock, port
        self._loop.add_reader(sock.fileno(), self._from_udp)

    # -- SAs: reconcile the data plane with the peer --------------------------------------

    def _on_peer_event(self, event: Event) -> None:
        if (isinstance(event, SaEstablished | SaDeleted) and event.sa.kind == "child") or isinstance(event, PortFloated | PeerMoved):
            self.sync()

    def sync(self) -> None:
        """Install new IPsec SA pairs, remove gone ones, follow port changes, route children."""
        runner = self.runner
        if runner is None:
            return
        peer = runner.peer
        live = {(p.inbound.spi, p.outbound.spi): p for p in peer.child_sas}
        for key in [k for k in self.installed if k not in live]:
            self._uninstall(key)
        for key, pair in live.items():
            ports = self._udp_ports(pair)
            known = self.installed.get(key)
            if known is None:
                self._install(key, pair, ports)
            elif known[1] != ports and ports is not None:
                self._move(key, pair, ports)
        self._sync_routes()

    def _udp_ports(self, pair: IpsecSaPair) -> tuple[int, int] | None:
        """(local, remote) UDP ports for a UDP-encapsulated pair: the ISAKMP SA's (floated) ones."""
        if not pair.udp_encapsulated and not pair.mode.lower().startswith("udp"):
            return None
        assert self.runner is not None
        peer = self.runner.peer
        isakmp = next((s for s in peer.ike_sas.values() if pair in s.children), None)
        if isakmp is None:  # its ISAKMP SA was replaced: any SA to the same peer address
            isakmp = next((s for s in peer.ike_sas.values() if s.remote[0] == pair.outbound.dst and s.established), None)
        if isakmp is None:
            known = self.installed.get((pair.inbound.spi, pair.outbound.spi))
            return known[1] if known else (peer.config.natt_port, 4500)
        return (isakmp.local[1], isakmp.remote[1])

    def _install(self, key: tuple[int, int], pair: IpsecSaPair, ports: tuple[int, int] | None) -> None:
        try:
            self.dp.install_pair(pair, udp_ports=ports, replay_window=self.replay_window)
        except EspConfigError as exc:
            self._info(f"child {pair.child}: SAs {pair.inbound.spi:08x}/{pair.outbound.spi:08x} not installed in the data plane: {exc}")
            return
        self.installed[key] = (pair, ports)
        how = f"ESP-in-UDP {ports[0]} -> {ports[1]}" if ports else "ESP (IP protocol 50)"
        self._info(
            f"data plane: child {pair.child} {pair.local_ts} <-> {pair.remote_ts} installed, "
            f"SPI in {pair.inbound.spi:08x} out {pair.outbound.spi:08x}, {how}"
        )

    def _move(self, key: tuple[int, int], pair: IpsecSaPair, ports: tuple[int, int]) -> None:
        """The NAT gave the peer a new port: re-point the outbound SA (sequence numbers kept)."""
        sa_out = self.dp.sa(pair.outbound.spi)
        if sa_out is None:
            return
        sa_out.udp_encap = ports
        self.dp.install(None, sa_out, pair.local_ts, pair.remote_ts, name=pair.child)
        sa_in = self.dp.sa(pair.inbound.spi)
        if sa_in is not None:
            sa_in.udp_encap = (ports[1], ports[0])
        self.installed[key] = (pair, ports)
        self._info(f"data plane: child {pair.child} now sends ESP-in-UDP {ports[0]} -> {ports[1]}")

    def _uninstall(self, key: tuple[int, int]) -> None:
        pair, _ = self.installed.pop(key)
        self.dp.remove(key[0])
        self.dp.remove(key[1])
        self._info(f"data plane: child {pair.child} SAs {key[0]:08x}/{key[1]:08x} removed")

    def _sync_routes(self) -> None:
        """Route every configured child's remote subnet (and every installed pair's) into the TUN.

        Routes stay while a child has no SA: its packets are then dropped and counted by the
        SPD ("no policy") instead of leaving in clear.  A selector that contains the peer's
        own IKE address (transport mode between the gateways) is not routed: IKE would be
        sucked into the tunnel.
        """
        if self.tun is None or self.runner is None:
            return
        # a remote-access client's virtual IPs live on the TUN: its traffic into the tunnel comes from them
        vips = [f"{v}/32" for s in self.runner.peer.ike_sas.values()
                if s.initiator and (v := getattr(s, "virtual_ip", None)) and s.established]
        try:
            self.tun.sync_addresses(vips)
        except TunError as exc:
            self._info(f"data plane: {exc}")
        cfg = self.runner.peer.config
        gateways = {ipaddress.ip_address(c.remote_address) for c in cfg.connections if not c.accepts_any}
        gateways |= {ipaddress.ip_address(s.remote[0]) for s in self.runner.peer.ike_sas.values()}
        wanted: dict[str, str] = {}
        for conn in cfg.connections:
            for child in conn.children:
                wanted.setdefault(str(child.remote_net), str(child.local_net))
        for pair, _ in self.installed.values():  # an SA's own selectors win (a virtual IP as the source)
            wanted[str(ipaddress.ip_network(pair.remote_ts, strict=False))] = pair.local_ts
        routes: list[tuple[str, str | None]] = []
        for remote, local in wanted.items():
            net = ipaddress.ip_network(remote)
            if any(g in net for g in gateways if g.version == net.version):
                continue
            routes.append((remote, local_address_in(local)))
        try:
            self.tun.sync_routes(routes)
        except TunError as exc:
            self._info(f"data plane: {exc}")

    def _on_lifetime(self, sa: EspSa, stage: str) -> None:
        """Soft limit: the peer rekeys the child; hard: the pair is deleted (RFC 4301 §4.4.2.1).

        Deferred to the event loop (when there is one): the hook runs in the middle of
        packet processing."""
        if self.runner is None:
            return
        reason = sa.limit_reached(self._now())
        if self._loop is None:
            self._lifetime_reached(sa.spi, stage, reason)
        else:
            self._loop.call_soon(self._lifetime_reached, sa.spi, stage, reason)

    def _lifetime_reached(self, spi: int, stage: str, reason: str) -> None:
        runner = self.runner
        if runner is None:
            return
        runner.peer.sa_lifetime_reached(spi, stage, runner.now(), reason)
        runner.flush()

    # -- packets ---------------------------------------------------------------------------

    def _now(self) -> float:
        assert self.runner is not None
        return self.runner.now()

    def _from_tun(self, packet: bytes) -> None:
        runner = self.runner
        if runner is None:
            return
        outputs = self.dp.outbound(packet, runner.now())
        if not outputs and len(packet) >= 20 and packet[0] >> 4 == 4:
            # no SA for it: a trapped connection negotiates on demand (the packet is dropped)
            src, dst = socket.inet_ntop(socket.AF_INET, packet[12:16]), socket.inet_ntop(socket.AF_INET, packet[16:20])
            if runner.peer.acquire(src, dst, runner.now()):
                runner.flush()
        for out in outputs:
            if out.kind == "udp":
                self._send_udp(out.data, out.dst, out.dport)
            elif self.raw is not None:
                if not self.raw.send(out.data, out.dst):
                    self._io_error("raw send")
            else:
                self._io_error("no raw ESP socket")

    def _send_udp(self, data: bytes, dst: str, port: int) -> None:
        sock = self._udp
        if sock is None:
            self._io_error("no UDP socket")
            return
        try:
            sock.sendto(data, (dst, port))
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EPERM):
                raise
            self._io_error("udp send")

    def _from_raw(self, packet: bytes) -> None:
        if self.runner is None:
            return
        inner = self.dp.inbound_ip(packet, self.runner.now())
        if inner is not None and self.tun is not None and not self.tun.write(inner):
            self._io_error("tun write")

    def _from_udp(self) -> None:
        sock, runner = self._udp, self.runner
        if sock is None or runner is None:
            return
        buf = self._buf
        view = memoryview(buf)
        port, host = self._udp_port, runner.host
        ike: list[tuple[bytes, tuple[str, int], int]] = []
        for _ in range(BATCH):
            try:
                n, addr = sock.recvfrom_into(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP port unreachable reported on the socket
                runner.peer.count("socket_errors")
                continue
            data = bytes(view[:n])
            if n > 4 and data[:4] != NON_ESP_MARKER and not self._ike_without_marker(data):
                inner = self.dp.inbound_esp(data, addr[0], host, runner.now())
                if inner is not None and self.tun is not None and not self.tun.write(inner):
                    self._io_error("tun write")
            else:  # IKE after the non-ESP marker, a NAT-keepalive (0xFF), or a runt: the peer's
                ike.append((data, (addr[0], addr[1]), port))
        if ike:
            runner.receive(ike)

    def _ike_without_marker(self, data: bytes) -> bool:
        """An IKE message sent to 4500 without the non-ESP marker (charon with ``remote_port
        = 4500`` but ``local_port`` 500 does that): no inbound SA has its first four bytes as
        SPI and its header reads as IKE — the peer drops it with an event that says why,
        instead of an "unknown SPI" ESP drop."""
        return (
            len(data) >= 28
            and data[17] in (0x10, 0x20)  # version 1.0 or 2.0
            and int.from_bytes(data[24:28], "big") == len(data)  # the header's length: exact
            and not self.dp.knows_spi(data[:4])
        )

    def _io_error(self, what: str) -> None:
        self.io_errors[what] = self.io_errors.get(what, 0) + 1

    # -- events, ticks, views ----------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)
        if isinstance(event, EspPacket) and self._waiters:
            for want, got, fut in list(self._waiters):
                if len(got) < want:
                    got.append(event)
                if len(got) >= want and not fut.done():
                    fut.set_result(None)
            self._waiters = [w for w in self._waiters if not w[2].done()]

    def _info(self, message: str) -> None:
        now = self.runner.now() if self.runner is not None and self.runner._loop is not None else 0.0
        self._emit(Info(peer=self.name, time=now, sa=NO_SA, message=message))

    def _on_tick(self) -> None:
        self._tick = None
        if self.runner is not None:
            self.dp.tick(self.runner.now())
        if self._loop is not None:
            self._tick = self._loop.call_later(1.0, self._on_tick)

    def trace_next(self, n: int) -> None:
        """Decode the next ``n`` ESP packets (either direction) as full ``EspPacket`` events."""
        self.dp.trace_next(n)

    async def capture_next(self, n: int, timeout: float) -> list[EspPacket]:
        """:meth:`trace_next` and wait up to ``timeout`` seconds for those events."""
        assert self._loop is not None
        got: list[EspPacket] = []
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((n, got, fut))
        self.dp.trace_next(n)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        self._waiters = [w for w in self._waiters if w[2] is not fut]
        return got

    def status(self) -> dict[str, Any]:
        """The devices and I/O counters (no SA details)."""
        tun, raw = self.tun, self.raw
        return {
            "tun": None if tun is None else {
                "name": tun.name, "mtu": tun.mtu, "routes": sorted(tun.routes),
                "read": tun.read_packets, "written": tun.written_packets, "write_errors": tun.write_errors,
            },
            "raw_esp": None if raw is None else {"sent": raw.sent, "received": raw.received, "send_errors": raw.send_errors, "malformed": raw.malformed},
            "udp_port": self._udp_port or None,
            "io_errors": dict(self.io_errors),
        }

    def table(self) -> dict[str, Any]:
        """Everything the ``esp`` command shows: SAs with counters, SPD, data plane counters, I/O."""
        return {
            "sas": self.dp.sa_table(),
            "policies": self.dp.policies(),
            "counters": self.dp.counters.as_dict(),
            **self.status(),
        }
