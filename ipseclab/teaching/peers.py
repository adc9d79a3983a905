"""Where a lab's two peers run: in memory, in network namespaces or in containers.

Every lab notebook starts with one parameter, ``PEERS = "memory" | "namespaces" |
"containers"``, and gets its session from :func:`connect`::

    peers = connect(PEERS, DemoOptions(seed=SEED), lab="04")
    lab = IkeLab(session=peers.session)
    print(peers.describe())          # the addresses actually in use

* ``memory`` — a :class:`~ipseclab.teaching.lab.LabSession` on the simulated network (any laptop,
  no root, a simulated clock);
* ``namespaces`` — :class:`~ipseclab.runtime.netlab.peers.NetLab`: a topology of network
  namespaces with an ``ipseclab peer`` daemon per end host (root);
* ``containers`` — :class:`~ipseclab.runtime.containers.stack.ContainerLab`: the compose stack
  (root, podman or docker); inside the stack's JupyterLab container (``IPSECLAB_STACK`` set)
  the notebook attaches to the stack's daemons instead.

Real peers get a lab name unique to this kernel (``<lab>-<pid>``); running the notebook again
takes the previous run's lab down first, and the lab goes down when the kernel exits.  The
widgets drive real peers through a :class:`~ipseclab.runtime.control.RemoteLabSession` exactly
as they drive the in-memory ones.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ipseclab.config import PeerConfig
from ipseclab.demo import LEFT_INSIDE_ADDRESS, NAT_PUBLIC_ADDRESS, DemoOptions, demo_configs
from ipseclab.errors import ConfigError, NetlabError

MODES = ("memory", "namespaces", "containers")
WHERE = {
    "memory": "in memory (a simulated network and clock in this kernel)",
    "namespaces": "in network namespaces (ipseclab peer daemons over real UDP, ESP on TUN devices)",
    "containers": "in containers (the compose stack: ipseclab peer daemons, a NAT router container when there is a NAT)",
}


@dataclass(frozen=True)
class HostView:
    """One host as the prose names it: its IKE address and what it protects."""

    role: str
    address: str
    protects: str
    where: str = ""


class LabPeers:
    """The session of a lab and the peers behind it; :meth:`down` removes real peers."""

    def __init__(self, mode: str, options: DemoOptions, session, hosts: dict[str, HostView], lab=None,  # noqa: ANN001
                 topology=None) -> None:  # noqa: ANN001
        self.mode = mode
        self.options = options
        self.session = session
        self.hosts = hosts
        self.lab = lab  # a lab this kernel brought up (None in memory and when attached)
        self.topology = topology if topology is not None else getattr(lab, "topology", None)

    @property
    def real(self) -> bool:
        """True on namespace or container peers (daemons, the host's clock)."""
        return self.mode != "memory"

    @property
    def name(self) -> str | None:
        return getattr(self.lab, "name", None)

    def address(self, role: str) -> str:
        return self.hosts[role].address

    def configs(self, options: DemoOptions | None = None) -> tuple[PeerConfig, PeerConfig]:
        """Both peers' configurations for ``options`` on these peers' addresses (for
        ``session.reset(configs=...)``)."""
        options = options or self.options
        if self.topology is None:
            return demo_configs(options)
        from ipseclab.runtime.netlab.peers import netlab_configs

        return netlab_configs(self.topology, options)

    def ping(self, count: int = 3):  # noqa: ANN201
        """iputils ``ping`` on left from its first protected address (a remote-access client: its
        virtual IP) to right's, through the daemons' ESP on their TUN devices (real peers started
        by this kernel)."""
        if self.lab is None:
            raise ConfigError("ping runs on the lab's left host: in memory there is none, and a notebook in the "
                              "stack's JupyterLab container cannot enter it (use `ipseclab lab status` on the host)")
        hosts = self.lab.topology.hosts
        # a remote-access client sends from the virtual IP its gateway gave it
        vip = next((s["virtual_ip"] for s in self.session.sa_tables()["left"].get("isakmp", []) if s.get("virtual_ip")), None)
        src = vip or hosts["left"].protected[0]
        if self.mode == "containers":
            return self.lab.ping(count, src=src)
        from ipseclab.runtime.netlab.pinger import ping

        return ping(self.lab.topology, "left", src, hosts["right"].protected[0], count)

    def describe(self) -> str:
        """Where the peers run and their addresses, in the words the labs use."""
        lines = [f"Peers {WHERE[self.mode]}" + (f", lab {self.name!r}:" if self.name else ":")]
        for h in self.hosts.values():
            protects = f", protecting {h.protects}" if h.protects else ""
            where = f"  [{h.where}]" if h.where else ""
            lines.append(f"  {h.role:<6} {h.address}{protects}{where}")
        return "\n".join(lines)

    def down(self) -> None:
        """Tear real peers down (idempotent; nothing to do in memory)."""
        lab, self.lab = self.lab, None
        if lab is not None and hasattr(lab, "down"):
            lab.down()

    def __repr__(self) -> str:
        return f"<LabPeers {self.mode} {', '.join(f'{h.role} {h.address}' for h in self.hosts.values())}>"


def _lab_name(lab: str) -> str:
    from ipseclab.runtime.netlab.plan import validate_name

    return validate_name(f"{lab}-{os.getpid() % 100000}"[:10].strip("-"))


def _memory(options: DemoOptions) -> LabPeers:
    from ipseclab.teaching.lab import LabSession

    session = LabSession(options)
    left, right = session.configs
    left_protects = ", ".join(c.local_ts for c in left.connections[0].children)
    right_protects = ", ".join(c.local_ts for c in right.connections[0].children)
    hosts = {"left": HostView("left", left.address, left_protects), "right": HostView("right", right.address, right_protects)}
    if options.nat:
        hosts = {"left": HostView("left", LEFT_INSIDE_ADDRESS, left_protects, "behind the NAT"),
                 "router": HostView("router", NAT_PUBLIC_ADDRESS, "", "the NAT's public address"),
                 "right": hosts["right"]}
    return LabPeers("memory", options, session, hosts)


def _views(topology, policies: int = 1) -> dict[str, HostView]:  # noqa: ANN001
    views = {}
    for role, h in topology.hosts.items():
        where = "behind the NAT" if role == "left" and h.gateway else ("the NAT's public address" if role == "router" else "")
        views[role] = HostView(role, h.address, ", ".join(f"{a}/32" for a in h.protected[:policies]), where)
    return views


def _namespaces(options: DemoOptions, name: str, kind: str) -> LabPeers:
    from ipseclab.runtime.netlab.peers import NetLab
    from ipseclab.runtime.netlab.topology import destroy, lab_names

    if os.geteuid() != 0:
        raise ConfigError('PEERS = "namespaces" needs root (network namespaces): run JupyterLab as root (make lab) or use "memory"')
    if name in lab_names():  # this kernel's previous run
        destroy(name)
    netlab = NetLab(name, kind, options, dataplane=True).up()
    return LabPeers("namespaces", options, netlab.session(), _views(netlab.topology, options.policies), netlab)


def _containers(options: DemoOptions, name: str, kind: str) -> LabPeers:
    from ipseclab.runtime.containers.stack import ContainerLab, containers_available, free_networks

    reason = containers_available()
    if reason:
        raise ConfigError(f'PEERS = "containers" cannot run here: {reason}')
    for attempt in range(3):  # another lab may take the same free subnets at the same moment
        try:
            lab = ContainerLab(name, kind, options, networks=free_networks(kind, name)).up()
            break
        except NetlabError as exc:
            if "subnet" not in str(exc) or attempt == 2:
                raise
    return LabPeers("containers", options, lab.session(), _views(lab.topology, options.policies), lab)


def _attach_stack(options: DemoOptions, run_dir: Path) -> LabPeers:
    """The daemons of a lab that was brought up for this notebook's server (a classroom's
    student lab, or the stack seen from its own JupyterLab container): ``IPSECLAB_STACK`` names
    its run directory, whose ``peers.json`` says where the peers run and their addresses."""
    import json

    from ipseclab.runtime.control import PeerClient, RemoteLabSession

    clients = {role: PeerClient(f"ipc://{run_dir}/{role}.ctl", f"ipc://{run_dir}/{role}.ev", timeout=5.0) for role in ("left", "right")}
    session = RemoteLabSession(clients["left"], clients["right"])
    described = run_dir / "peers.json"
    if described.exists():
        from types import SimpleNamespace

        from ipseclab.runtime.netlab.peers import netlab_configs

        data = json.loads(described.read_text())
        plan = SimpleNamespace(kind=data["kind"], hosts={
            role: SimpleNamespace(address=h["address"], protected=tuple(h["protected"]), gateway=h.get("gateway"))
            for role, h in data["hosts"].items()})
        configs = netlab_configs(plan, options)  # type: ignore[arg-type]  # the notebook's options on the lab's addresses
        if tuple(configs) != tuple(session.configs):
            session.reset(configs=configs)
        return LabPeers(data.get("mode", "containers"), options, session, _views(plan, options.policies), topology=plan)
    from ipseclab.runtime.containers.entry import topology_from

    plan = topology_from(os.environ)
    return LabPeers("containers", options, session, _views(plan, options.policies), topology=plan)


def connect(peers: str = "memory", options: DemoOptions | None = None, *, lab: str = "lab", nat: bool | None = None) -> LabPeers:
    """The lab's peers: ``memory``, ``namespaces`` or ``containers`` (see the module).

    ``options`` are the demo's (seed, mode, policies, PFS, …); ``nat`` (default:
    ``options.nat``) puts left behind a NAT router.  Real peers come up as lab ``<lab>-<pid>``
    and go down when the kernel exits.
    """
    mode = str(peers).strip().lower()
    if mode not in MODES:
        raise ConfigError(f"PEERS = {peers!r}: choose one of {', '.join(repr(m) for m in MODES)}")
    options = options or DemoOptions(seed=1)
    if nat is not None:
        options = dataclasses.replace(options, nat=nat)
    if mode == "memory":
        return _memory(options)
    stack = os.environ.get("IPSECLAB_STACK")
    if stack:  # this notebook server was given a lab of its own: use it, whatever its kind
        return _attach_stack(options, Path(stack))
    kind = "nat" if options.nat else "site-to-site"
    name = _lab_name(lab)
    result = _namespaces(options, name, kind) if mode == "namespaces" else _containers(options, name, kind)
    atexit.register(_down_quietly, result)
    return result


def _down_quietly(peers: LabPeers) -> None:
    with contextlib.suppress(Exception):  # at interpreter exit: best effort, never a traceback
        peers.down()
