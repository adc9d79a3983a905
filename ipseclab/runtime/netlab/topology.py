"""Lab topologies in network namespaces: two IPsec peers on one link, or behind a NAT router.

A :class:`Topology` is a plan (hosts, veth links, an optional NAT) that :meth:`Topology.up`
builds with pyroute2 and :meth:`Topology.down` removes again::

    with site_to_site("demo") as lab:              # namespaces ipl-demo-left / ipl-demo-right
        lab.run("left", ["ping", "-c1", lab.hosts["right"].address])

Each host is a namespace ``ipl-<lab>-<role>`` with ``lo`` up, the host's protected addresses as
/32 on ``lo`` (no ``dummy`` interfaces on our kernels) and its veth ends renamed to
``eth0``/``eth1``.  IPv6 is switched off on the veths (no neighbour-discovery noise in captures),
``rp_filter`` is 0.  Processes started with :meth:`Topology.spawn` run inside a namespace and are
killed (by PID) on ``down``; ``/run/ipseclab/<lab>/lab.json`` records the lab so that
:func:`destroy` in another process can tear it down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2 import netns as _netns

from ipseclab.errors import NetlabError
from ipseclab.runtime.netlab import nft, state
from ipseclab.runtime.netlab.capture import Capture, tcpdump_argv
from ipseclab.runtime.netlab.nsproc import (
    in_netns,
    is_running,
    netns_exists,
    netns_preexec,
    run_in_thread,
    start_time,
    write_sysctl,
)
from ipseclab.runtime.netlab.plan import (
    LEFT_PROTECTED,
    LEFT_PROTECTED_NET,
    NETNS_RE,
    RIGHT_PROTECTED,
    RIGHT_PROTECTED_NET,
    ROLES,
    Host,
    Link,
    Nat,
    netns_name,
    validate_name,
)
from ipseclab.runtime.netlab.teardown import teardown_resources

__all__ = [
    "Host",
    "Link",
    "Nat",
    "Topology",
    "attach",
    "destroy",
    "lab_names",
    "lab_status",
    "nat",
    "netns_name",
    "site_to_site",
    "validate_name",
]

T = TypeVar("T")


@dataclass
class _Proc:
    pid: int
    role: str
    argv: list[str]
    started: int | None
    popen: subprocess.Popen[Any] | None = None  # None: started by another process


class Topology:
    """A lab: hosts in namespaces, veth links between them, optionally a NAT router.

    Build with :meth:`up` (or ``with``), remove with :meth:`down`; both are safe to call from a
    Jupyter kernel (netlink work runs on a helper thread).  ``down`` is idempotent and also runs
    when the ``with`` block ends by an exception or Ctrl+C.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        hosts: dict[str, Host],
        links: Sequence[Link],
        *,
        nat: Nat | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.name = validate_name(name)
        self.kind = kind
        self.hosts = dict(hosts)
        self.links = tuple(links)
        self.nat = nat
        self.options = dict(options or {})
        unknown = set(self.hosts) - set(ROLES)
        if unknown:
            raise NetlabError(f"unknown host roles {sorted(unknown)}; roles are {ROLES}")
        if len(self.links) > 10:
            raise NetlabError("at most 10 links per lab")
        self._procs: dict[int, _Proc] = {}
        self._captures: list[Capture] = []
        self._namespaces: list[str] = []  # created by us (or adopted by attach), to remove
        self._temp_links: list[str] = []  # root-namespace veth names created by us
        self._claimed = False  # we own /run/ipseclab/<name>
        self._up = False
        self._step = "not started"

    # -- plan ---------------------------------------------------------------------------------

    def host(self, role: str) -> Host:
        """The host called ``role``; NetlabError for an unknown role."""
        try:
            return self.hosts[role]
        except KeyError:
            raise NetlabError(
                f"lab {self.name!r} has no host {role!r} (hosts: {', '.join(self.hosts)})"
            ) from None

    @property
    def state_dir(self) -> Path:
        """``/run/ipseclab/<name>``: runtime files of this lab; deleted as a whole by ``down``."""
        return state.lab_dir(self.name)

    @property
    def is_up(self) -> bool:
        return self._up

    def to_json(self) -> dict[str, Any]:
        """The lab's description as stored in ``lab.json`` (without the process list)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "options": self.options,
            "hosts": {role: dataclasses.asdict(h) for role, h in self.hosts.items()},
            "links": [dataclasses.asdict(link) for link in self.links],
            "nat": dataclasses.asdict(self.nat) if self.nat else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Topology:
        """Rebuild the plan from :meth:`to_json` output (does not build anything)."""

        def host(d: dict[str, Any]) -> Host:
            return Host(
                role=d["role"],
                netns=d["netns"],
                address=d["address"],
                protected=tuple(d["protected"]),
                interface=d["interface"],
                gateway=d["gateway"],
                links=tuple(tuple(x) for x in d.get("links", ())),  # type: ignore[misc]
                routes=tuple(tuple(x) for x in d.get("routes", ())),  # type: ignore[misc]
            )

        return cls(
            data["name"],
            data["kind"],
            {role: host(h) for role, h in data["hosts"].items()},
            [Link(**link) for link in data.get("links", [])],
            nat=Nat(**data["nat"]) if data.get("nat") else None,
            options=data.get("options"),
        )

    # -- building -----------------------------------------------------------------------------

    def up(self) -> Topology:
        """Build the lab; on any failure remove what was built and raise NetlabError."""
        if self._up:
            return self
        try:
            run_in_thread(self._build)
        except BaseException as exc:
            step = self._step
            try:
                problems = self._teardown()
            except Exception as cleanup_exc:  # noqa: BLE001 - reported with the first error
                problems = [f"clean-up failed: {cleanup_exc}"]
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                raise
            left_over = f"; clean-up problems: {'; '.join(problems)}" if problems else ""
            if isinstance(exc, NetlabError) and step == "claim":
                raise
            raise NetlabError(
                f"building lab {self.name!r} ({self.kind}) failed at step '{step}': {exc}"
                f"; everything built so far was removed{left_over}"
            ) from exc
        self._up = True
        return self

    def _build(self) -> None:
        self._step = "claim"
        for role in self.hosts:
            ns = netns_name(self.name, role)
            if netns_exists(ns):
                raise NetlabError(
                    f"lab {self.name!r} already exists (namespace {ns}); "
                    f"tear it down first: python -m ipseclab.runtime.netlab down {self.name}"
                )
        state.claim(self.name)
        self._claimed = True
        self._save_state("building")

        self._step = "remove stale temporary veths"
        stale = [n for link in self.links for n in link.temp_names(self.name)]
        with IPRoute() as ipr:
            for ifname in stale:
                for idx in ipr.link_lookup(ifname=ifname):
                    ipr.link("del", index=idx)

        for host in self.hosts.values():
            self._step = f"create namespace {host.netns}"
            self._namespaces.append(host.netns)  # before: a half-made namespace is removed too
            _netns.create(host.netns)
            self._step = f"configure lo and sysctls in {host.netns}"
            self._setup_namespace(host)

        for link in self.links:
            self._step = f"create veth pair {link.a_role}:{link.a_if} <-> {link.b_role}:{link.b_if}"
            self._create_link(link)

        for host in self.hosts.values():
            self._step = f"routes in {host.netns}"
            self._routes(host)

        if self.nat is not None:
            self._step = f"nftables masquerade in {self.host(self.nat.router).netns}"
            nft.apply_ruleset(
                self.host(self.nat.router).netns,
                nft.masquerade_ruleset(
                    self.nat.inside, self.nat.outside_if, port_remap=self.nat.port_remap
                ),
            )

        self._step = "save state"
        self._save_state("up")
        self._step = "done"

    def _setup_namespace(self, host: Host) -> None:
        with in_netns(host.netns):
            for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
                write_sysctl(key, "0")
            is_router = self.nat is not None and host.role == self.nat.router
            if is_router and not write_sysctl("net.ipv4.ip_forward", "1"):
                raise NetlabError("cannot enable IP forwarding (no /proc/sys/net/ipv4)")
            ipr = IPRoute()  # the netlink socket is bound to this thread's namespace now
        with ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            ipr.link("set", index=lo, state="up")
            for address in host.protected:
                ipr.addr("add", index=lo, address=address, prefixlen=32)

    def _create_link(self, link: Link) -> None:
        temp_a, temp_b = link.temp_names(self.name)
        ns_a = self.host(link.a_role).netns
        ns_b = self.host(link.b_role).netns
        with IPRoute() as ipr:
            self._temp_links += [temp_a, temp_b]
            ipr.link("add", ifname=temp_a, kind="veth", peer={"ifname": temp_b})
            for temp, ns in ((temp_a, ns_a), (temp_b, ns_b)):
                (idx,) = ipr.link_lookup(ifname=temp)
                ipr.link("set", index=idx, net_ns_fd=ns)
                self._temp_links.remove(temp)
        for (role, ifname, cidr), temp in zip(link.ends(), (temp_a, temp_b), strict=True):
            ns = self.host(role).netns
            address, prefix = cidr.split("/")
            with in_netns(ns):
                ipr = IPRoute()
            with ipr:
                (idx,) = ipr.link_lookup(ifname=temp)
                ipr.link("set", index=idx, ifname=ifname)
                with in_netns(ns):
                    write_sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "1")
                ipr.addr("add", index=idx, address=address, prefixlen=int(prefix))
                ipr.link("set", index=idx, state="up")

    def _routes(self, host: Host) -> None:
        if host.gateway is None and not host.routes:
            return
        with in_netns(host.netns):
            ipr = IPRoute()
        with ipr:
            if host.gateway is not None:
                ipr.route("add", dst="0.0.0.0/0", gateway=host.gateway)
            for dst, via in host.routes:
                ipr.route("add", dst=dst, gateway=via)

    def _save_state(self, status: str) -> None:
        data = self.to_json()
        data["status"] = status
        data["owner"] = {"pid": os.getpid(), "start_time": start_time(os.getpid())}
        data["created"] = time.time()
        data["pids"] = []
        data["processes"] = []

        def change(current: dict[str, Any]) -> None:
            procs = current.get("processes", [])
            current.clear()
            current.update(data)
            current["processes"] = procs
            current["pids"] = [p["pid"] for p in procs]

        state.update(self.name, change)

    # -- tearing down -------------------------------------------------------------------------

    def down(self) -> None:
        """Kill the lab's processes and remove its namespaces, veths, nft table and state.

        Idempotent.  Raises NetlabError only if something could not be removed.
        """
        problems = self._teardown()
        if problems:
            raise NetlabError(f"lab {self.name!r} not fully torn down: {'; '.join(problems)}")

    def _teardown(self) -> list[str]:
        # on a helper thread: a Ctrl+C while waiting for processes does not stop it half way
        return run_in_thread(self._teardown_now)

    def _teardown_now(self) -> list[str]:
        for capture in self._captures:
            with contextlib.suppress(Exception):
                capture.stop(timeout=2.0)
        self._captures.clear()
        procs = list(self._procs.values())
        self._procs.clear()
        problems = teardown_resources(
            namespaces=list(self._namespaces),
            temp_links=list(self._temp_links),
            processes=[(p.pid, p.started) for p in procs],
            nft_netns=self.host(self.nat.router).netns if self.nat else None,
        )
        for p in procs:
            if p.popen is not None:
                with contextlib.suppress(Exception):
                    p.popen.wait(timeout=2.0)
        if self._claimed:
            state.remove(self.name)
        self._namespaces.clear()
        self._temp_links.clear()
        self._claimed = False
        self._up = False
        return problems

    def __enter__(self) -> Topology:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- running things inside ----------------------------------------------------------------

    def spawn(
        self,
        role: str,
        argv: Sequence[str],
        *,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = None,
        stderr: Any = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        new_session: bool = True,
        **popen_kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``role``'s namespace; ``down`` kills it (by PID).

        The child enters the namespace with ``setns`` before ``exec`` (no ``ip netns exec``:
        the mount namespace and /etc are the caller's).  ``new_session`` (default) puts it in
        its own session so a Ctrl+C in a terminal reaches only this process, whose ``down``
        then stops the children.  Extra keyword arguments go to :class:`subprocess.Popen`.
        """
        host = self.host(role)
        argv = [os.fspath(a) for a in argv]
        fd, enter = netns_preexec(host.netns)
        user_preexec = popen_kwargs.pop("preexec_fn", None)

        def preexec() -> None:
            enter()
            if user_preexec is not None:
                user_preexec()

        try:
            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=cwd,
                preexec_fn=preexec,
                start_new_session=new_session,
                **popen_kwargs,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise NetlabError(f"cannot start {argv[0]!r} in {host.netns}: {exc}") from exc
        finally:
            os.close(fd)
        entry = _Proc(proc.pid, role, argv, start_time(proc.pid), proc)
        self._procs[proc.pid] = entry
        self._record(add=entry)
        return proc

    def run(
        self,
        role: str,
        argv: Sequence[str],
        *,
        input: Any = None,  # noqa: A002 - same name as subprocess.run
        capture_output: bool = False,
        timeout: float | None = None,
        check: bool = False,
        **kw: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """Like :func:`subprocess.run`, inside ``role``'s namespace."""
        if capture_output:
            kw["stdout"] = kw["stderr"] = subprocess.PIPE
        if input is not None:
            kw["stdin"] = subprocess.PIPE
        proc = self.spawn(role, argv, **kw)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        finally:
            self._forget(proc.pid)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check:
            result.check_returncode()
        return result

    def capture(
        self,
        role: str,
        path: str | os.PathLike[str],
        *,
        interface: str | None = None,
        bpf_filter: str | None = None,
    ) -> Capture:
        """Start tcpdump on ``interface`` (default: the host's) of ``role``, writing ``path``.

        Returns once tcpdump listens.  ``Capture.stop()`` sends SIGINT and waits; ``down``
        stops captures that are still running.  ``interface="any"`` gives a Linux cooked
        capture of all interfaces.
        """
        host = self.host(role)
        ifname = interface or host.interface
        target = Path(path).absolute()
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = self.spawn(
            role, tcpdump_argv(ifname, target, bpf_filter), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        capture = Capture(proc, target, role, ifname)
        try:
            capture.wait_ready()
        except NetlabError:
            self._forget(proc.pid)
            raise
        self._captures.append(capture)
        return capture

    @contextlib.contextmanager
    def in_netns(self, role: str) -> Iterator[None]:
        """Run the ``with`` block's *current thread* inside ``role``'s namespace.

        Sockets created inside stay in that namespace (handy for probes from a notebook).  Only
        the calling thread moves; do not ``await`` or start pyroute2 objects inside.
        """
        with in_netns(self.host(role).netns):
            yield

    def netlink(self, role: str, fn: Callable[[IPRoute], T]) -> T:
        """Call ``fn(ipr)`` with a pyroute2 IPRoute bound to ``role``'s namespace.

        Runs on a helper thread (works under Jupyter).  Example: route a subnet into a TUN::

            lab.netlink("left", lambda ipr: ipr.route("replace", dst="10.2.0.0/24",
                                                      oif=ipr.link_lookup(ifname="tun0")[0]))
        """
        netns = self.host(role).netns

        def call() -> T:
            with in_netns(netns):
                ipr = IPRoute()
            with ipr:
                return fn(ipr)

        return run_in_thread(call)

    def processes(self) -> list[tuple[int, str, list[str]]]:
        """``(pid, role, argv)`` of the processes started by this object that still run."""
        out = []
        for p in list(self._procs.values()):
            if p.popen is not None and p.popen.poll() is not None:
                continue
            out.append((p.pid, p.role, p.argv))
        return out

    def _forget(self, pid: int) -> None:
        if self._procs.pop(pid, None) is not None:
            self._record(remove=pid)

    def _record(self, add: _Proc | None = None, remove: int | None = None) -> None:
        def change(data: dict[str, Any]) -> None:
            procs = [p for p in data.get("processes", []) if p["pid"] != remove]
            if add is not None:
                procs.append(
                    {"pid": add.pid, "role": add.role, "argv": add.argv, "start_time": add.started}
                )
            data["processes"] = procs
            data["pids"] = [p["pid"] for p in procs]

        if self._claimed:
            state.update(self.name, change)

    def __repr__(self) -> str:
        status = "up" if self._up else "down"
        return f"<Topology {self.name!r} {self.kind} ({status}): {', '.join(self.hosts)}>"


# -- the two lab kinds -------------------------------------------------------------------------


def site_to_site(name: str, *, routes: bool = True) -> Topology:
    """Two gateways on one veth pair: left 10.99.0.1/24 <-> right 10.99.0.2/24.

    Left protects 10.1.0.1 (plus 10.1.1.1, 10.1.2.1 for extra children), right 10.2.0.1
    (plus 10.2.1.1, 10.2.2.1), all /32 on ``lo``.  With ``routes`` each side reaches the other's
    protected hosts in plain text via a /16 route (10.2.0.0/16 via 10.99.0.2 and 10.1.0.0/16 via
    10.99.0.1); an IPsec peer overrides it with more specific routes (e.g. a /24 into its TUN).
    """
    left_addr, right_addr = "10.99.0.1", "10.99.0.2"
    hosts = {
        "left": Host(
            role="left",
            netns=netns_name(name, "left"),
            address=left_addr,
            protected=LEFT_PROTECTED,
            interface="eth0",
            gateway=None,
            links=(("eth0", f"{left_addr}/24"),),
            routes=((RIGHT_PROTECTED_NET, right_addr),) if routes else (),
        ),
        "right": Host(
            role="right",
            netns=netns_name(name, "right"),
            address=right_addr,
            protected=RIGHT_PROTECTED,
            interface="eth0",
            gateway=None,
            links=(("eth0", f"{right_addr}/24"),),
            routes=((LEFT_PROTECTED_NET, left_addr),) if routes else (),
        ),
    }
    links = [Link(0, "left", "eth0", f"{left_addr}/24", "right", "eth0", f"{right_addr}/24")]
    return Topology(name, "site-to-site", hosts, links, options={"routes": routes})


def nat(name: str, *, port_remap: bool = False) -> Topology:
    """Left behind a masquerading router: left — router (eth0 | eth1) — right.

    Left 192.168.77.2/24 (default route via 192.168.77.1); router 192.168.77.1/24 on ``eth0``
    and 203.0.113.1/24 on ``eth1``, forwarding, nftables table ``ip ipseclab`` masquerading
    192.168.77.0/24 out of ``eth1``; right 203.0.113.2/24 with no route back into
    192.168.77.0/24 (a true NAT: right only ever sees 203.0.113.1).  ``port_remap`` maps UDP
    source ports into 20000-20099, so even IKE's port 500 changes.  Protected addresses as in
    :func:`site_to_site`; the router knows no route to them (only a tunnel reaches them).
    """
    inside, outside = "192.168.77", "203.0.113"
    hosts = {
        "left": Host(
            role="left",
            netns=netns_name(name, "left"),
            address=f"{inside}.2",
            protected=LEFT_PROTECTED,
            interface="eth0",
            gateway=f"{inside}.1",
            links=(("eth0", f"{inside}.2/24"),),
        ),
        "router": Host(
            role="router",
            netns=netns_name(name, "router"),
            address=f"{outside}.1",
            protected=(),
            interface="eth1",
            gateway=None,
            links=(("eth0", f"{inside}.1/24"), ("eth1", f"{outside}.1/24")),
        ),
        "right": Host(
            role="right",
            netns=netns_name(name, "right"),
            address=f"{outside}.2",
            protected=RIGHT_PROTECTED,
            interface="eth0",
            gateway=None,
            links=(("eth0", f"{outside}.2/24"),),
        ),
    }
    links = [
        Link(0, "left", "eth0", f"{inside}.2/24", "router", "eth0", f"{inside}.1/24"),
        Link(1, "router", "eth1", f"{outside}.1/24", "right", "eth0", f"{outside}.2/24"),
    ]
    return Topology(
        name,
        "nat",
        hosts,
        links,
        nat=Nat("router", f"{inside}.0/24", "eth1", port_remap),
        options={"port_remap": port_remap},
    )


# -- labs by name, from any process ------------------------------------------------------------


def lab_names() -> list[str]:
    """Labs present on this machine: from ``ipl-<lab>-<role>`` namespaces and state dirs."""
    found = set()
    for ns in _netns.listnetns():
        match = NETNS_RE.fullmatch(ns)
        if match:
            found.add(match.group(1))
    for name in state.names():
        with contextlib.suppress(NetlabError):
            found.add(validate_name(name))
    return sorted(found)


def lab_status(name: str) -> dict[str, Any] | None:
    """What ``lab.json`` says about a lab, plus what actually exists; None if nothing does.

    Adds ``namespaces`` (existing ones) and marks each process ``running`` true/false.
    """
    validate_name(name)
    data = state.read(name) or {}
    namespaces = [netns_name(name, r) for r in ROLES if netns_exists(netns_name(name, r))]
    if not data and not namespaces:
        return None
    data.setdefault("name", name)
    data["namespaces"] = namespaces
    for p in data.get("processes", []):
        p["running"] = is_running(p["pid"], p.get("start_time"))
    return data


def attach(name: str) -> Topology:
    """A :class:`Topology` for a lab built by another process (from its ``lab.json``).

    The result is up: ``spawn``/``run``/``capture`` work and are recorded in the state file;
    ``down`` tears the whole lab down, including processes the other process started.
    """
    validate_name(name)
    data = state.read(name)
    if not data or data.get("status") != "up":
        raise NetlabError(f"no lab {name!r} is up (no complete {state.lab_dir(name)}/lab.json)")
    topo = Topology.from_json(data)
    topo._namespaces = [h.netns for h in topo.hosts.values()]
    topo._claimed = True
    topo._up = True
    for p in data.get("processes", []):
        topo._procs[p["pid"]] = _Proc(p["pid"], p["role"], p["argv"], p.get("start_time"))
    return topo


def destroy(name: str) -> None:
    """Tear down lab ``name`` from any process: its recorded processes (PID and start time
    must still match), anything else inside its namespaces, the namespaces, leftover
    root-namespace veths of an interrupted build, and ``/run/ipseclab/<name>``.

    Idempotent; NetlabError if something could not be removed.
    """
    validate_name(name)
    data = state.read(name) or {}
    processes = [(p["pid"], p.get("start_time")) for p in data.get("processes", [])]
    namespaces = [netns_name(name, role) for role in ROLES]
    temp_links = [f"ipl{name}{i}{end}" for i in range(10) for end in "ab"]
    problems = teardown_resources(
        namespaces=[ns for ns in namespaces if netns_exists(ns)],
        temp_links=temp_links,
        processes=processes,
        nft_netns=netns_name(name, "router"),
    )
    state.remove(name)
    if problems:
        raise NetlabError(f"lab {name!r} not fully destroyed: {'; '.join(problems)}")
