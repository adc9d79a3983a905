"""A network lab with an ipseclab peer daemon in each end host.

:class:`NetLab` builds a :mod:`~ipseclab.runtime.netlab.topology` (``site-to-site`` or ``nat``),
writes a ``swanctl``-style TOML configuration for ``left`` and ``right`` from the demo's
options and the topology's addresses, and starts ``ipseclab peer`` inside each host's
namespace; with ``dataplane=True`` each daemon also runs the ESP data plane (a TUN
device ``ipl0`` with the remote protected hosts routed into it).  The daemons' control
and event sockets are ``ipc://`` files in the lab's state directory — reachable from
the notebook although the daemons live in other network namespaces.  :meth:`NetLab.session` gives a
:class:`~ipseclab.runtime.control.RemoteLabSession`, so the widgets drive real peers exactly as
they drive the in-memory ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ipseclab.config import PeerConfig
from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.errors import ControlError, NetlabError
from ipseclab.files import open_private
from ipseclab.runtime.netlab.topology import Topology, attach, nat, site_to_site

ROLES = ("left", "right")


def netlab_configs(topo: Topology, opts: DemoOptions) -> tuple[PeerConfig, PeerConfig]:
    """The demo's two peers, moved onto the topology's addresses and protected hosts.

    Behind a NAT the responder cannot know the initiator's address in advance, so its
    connection accepts ``%any`` (as in swanctl.conf).
    """
    left_cfg, right_cfg = demo_configs(opts)
    left, right = topo.hosts["left"], topo.hosts["right"]
    if opts.policies > min(len(left.protected), len(right.protected)):
        raise NetlabError(f"this topology protects {len(left.protected)} hosts per side: at most that many policies")

    def move(cfg: PeerConfig, me, other, remote: str) -> PeerConfig:  # noqa: ANN001
        conns = []
        for conn in cfg.connections:
            children = tuple(
                dataclasses.replace(
                    child,
                    # a remote-access client's side is its virtual IP; a gateway's remote side is its pool
                    local_ts=child.local_ts if conn.vips else f"{me.protected[i]}/32",
                    remote_ts=child.remote_ts if conn.pools else f"{other.protected[i]}/32",
                )
                for i, child in enumerate(conn.children)
            )
            conns.append(dataclasses.replace(conn, remote_address="%any" if conn.pools else remote, children=children))
        identity = cfg.identity if cfg.identity is not None and cfg.identity.kind != "address" else None
        return dataclasses.replace(cfg, address=me.address, identity=identity, connections=conns)

    remote_for_right = "%any" if topo.kind == "nat" else left.address
    return move(left_cfg, left, right, right.address), move(right_cfg, right, left, remote_for_right)


class NetLab:
    """A topology plus one peer daemon per end host; ``with NetLab(...) as lab:`` tears all down."""

    def __init__(
        self,
        name: str,
        kind: str = "site-to-site",
        options: DemoOptions | None = None,
        *,
        port_remap: bool = False,
        dataplane: bool = False,
    ) -> None:
        self.options = options or DemoOptions()
        self.dataplane = dataplane
        if kind == "nat":
            self.topology = nat(name, port_remap=port_remap)
        elif kind == "site-to-site":
            self.topology = site_to_site(name, routes=False)
        else:
            raise NetlabError(f"unknown topology {kind!r}: choose site-to-site or nat")
        self.clients: dict[str, object] = {}

    @property
    def name(self) -> str:
        return self.topology.name

    def control_address(self, role: str) -> str:
        return f"ipc://{self.topology.state_dir}/{role}.ctl"

    def events_address(self, role: str) -> str:
        return f"ipc://{self.topology.state_dir}/{role}.ev"

    def up(self, *, timeout: float = 15.0) -> NetLab:
        """Build the topology, write the configurations and start both daemons."""
        from ipseclab.runtime.config_toml import dump_peer_config

        self.topology.up()
        try:
            configs = dict(zip(ROLES, netlab_configs(self.topology, self.options), strict=True))
            for role, cfg in configs.items():
                spawn_daemon(self.topology, role, dump_peer_config(cfg), seed=self.options.seed, dataplane=self.dataplane)
            for role in ROLES:
                self.clients[role] = wait_for_daemon(self.topology, role, timeout)
            write_peers_file(Path(self.topology.state_dir), "namespaces", self.topology)
        except BaseException:
            self.down()
            raise
        return self

    def session(self, connection: str = "site"):  # noqa: ANN201
        """A :class:`~ipseclab.runtime.control.RemoteLabSession` over both daemons (hold mode, stepped)."""
        from ipseclab.runtime.control import RemoteLabSession

        return RemoteLabSession(self.clients["left"], self.clients["right"], connection)

    def down(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(Exception):  # closing a socket must not stop the teardown
                client.close()
        self.clients = {}
        self.topology.down()

    def __enter__(self) -> NetLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def write_peers_file(directory: Path, mode: str, topology) -> Path:  # noqa: ANN001
    """``peers.json`` beside a lab's control sockets: where its peers run and their addresses,
    for a notebook that attaches to the lab (``IPSECLAB_STACK``) instead of building one."""
    import json

    hosts = {role: {"address": h.address, "protected": list(h.protected), "gateway": h.gateway}
             for role, h in topology.hosts.items()}
    path = directory / "peers.json"
    with open_private(path) as f:
        json.dump({"mode": mode, "name": topology.name, "kind": topology.kind, "hosts": hosts}, f)
    return path


def spawn_daemon(
    topo: Topology, role: str, config_text: str, *, seed: int | None = None, dataplane: bool = False
) -> None:
    """Start ``ipseclab peer`` in ``role``'s namespace with this TOML configuration; its control
    and event sockets are ``ipc://<state dir>/<role>.ctl`` / ``.ev``, its output ``<role>.log``.
    ``topo.down()`` stops it (by PID).  :func:`wait_for_daemon` waits until it answers."""
    state = Path(topo.state_dir)
    path = state / f"{role}.toml"
    with open_private(path) as f:  # it holds the PSK
        f.write(config_text)
    argv = [sys.executable, "-m", "ipseclab.cli", "peer", "--config", str(path),
            "--control", f"ipc://{state}/{role}.ctl", "--events", f"ipc://{state}/{role}.ev"]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if dataplane:
        argv.append("--dataplane")
    log = open(state / f"{role}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        topo.spawn(role, argv, stdout=log, stderr=log)
    finally:
        log.close()


def wait_for_daemon(topo: Topology, role: str, timeout: float = 15.0):  # noqa: ANN201
    """A :class:`~ipseclab.runtime.control.PeerClient` for the daemon :func:`spawn_daemon` started in
    ``role``, once it answers ``status``; NetlabError (with its log's tail) after ``timeout``."""
    state = Path(topo.state_dir)
    log = state / f"{role}.log"
    return wait_for_client(f"ipc://{state}/{role}.ctl", f"ipc://{state}/{role}.ev", timeout,
                           what=f"the {role} peer daemon",
                           tail=lambda: log.read_text(errors="replace")[-800:] if log.exists() else "")


def wait_for_client(control: str, events: str, timeout: float, *, what: str, tail: Callable[[], str]):  # noqa: ANN201
    """A PeerClient on ``control``/``events`` once the daemon answers ``status``; after
    ``timeout`` a NetlabError naming ``what`` with ``tail()`` (its log) attached."""
    from ipseclab.runtime.control import PeerClient

    client = PeerClient(control, events, timeout=1.0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.status()
            return client
        except ControlError as exc:
            if time.monotonic() > deadline:
                client.close()
                raise NetlabError(f"{what} did not answer within {timeout:.0f} s: {exc}\n{tail()}") from None
            time.sleep(0.1)


def attach_clients(name: str) -> dict[str, object]:
    """PeerClients for the daemons of a lab started by another process (``ipseclab lab up``)."""
    from ipseclab.runtime.control import PeerClient

    topo = attach(name)
    return {role: PeerClient(f"ipc://{topo.state_dir}/{role}.ctl", f"ipc://{topo.state_dir}/{role}.ev", timeout=2.0) for role in ROLES}
