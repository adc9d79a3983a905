"""A lab whose hosts are containers: ``containers/compose.yaml`` (NAT) or
``compose.site-to-site.yaml`` brought up with podman-compose or docker compose.

:class:`ContainerLab` is :class:`~ipseclab.runtime.netlab.peers.NetLab` with containers in place
of namespaces: the same address plan (:func:`container_topology`), the same peer configurations
(:func:`~ipseclab.runtime.netlab.peers.netlab_configs`, written by the host into the lab's run
directory), the same control API — ``ipc://`` sockets in that directory, bind-mounted into every
container, so nothing listens on the network — and so the same
:class:`~ipseclab.runtime.control.RemoteLabSession` for the widgets.  Containers and networks are
named ``ipl-<lab>-<role>`` / ``ipl-<lab>-<network>``; :meth:`ContainerLab.down` runs ``compose
down`` and then removes by name whatever is left.

Images are built from ``containers/Containerfile`` and tagged with a hash of what goes into them,
so a changed package is rebuilt (the Debian and PyPI layers stay cached) and an unchanged one is
not.  Without a registry the base is bootstrapped with ``mmdebstrap`` (``localhost/ipseclab-base``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ipseclab.demo import DemoOptions
from ipseclab.errors import NetlabError
from ipseclab.files import open_private
from ipseclab.runtime.containers.podman import Podman, bootstrap_image
from ipseclab.runtime.netlab.pinger import PingStats, parse
from ipseclab.runtime.netlab.plan import LEFT_PROTECTED, RIGHT_PROTECTED, Host, validate_name

REPO = Path(__file__).resolve().parents[3]
CONTAINERS = REPO / "containers"
CONTAINERFILE = CONTAINERS / "Containerfile"
COMPOSE_FILES = {"nat": CONTAINERS / "compose.yaml", "site-to-site": CONTAINERS / "compose.site-to-site.yaml"}
RUN_ROOT = Path("/run/ipseclab-containers")
BASE_IMAGE = "localhost/ipseclab-base:bookworm"
PEER_IMAGE = "localhost/ipseclab-peer"
JUPYTER_IMAGE = "localhost/ipseclab-jupyter"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The namespace labs' plan, except that the NAT lab's outside is 198.18.77.0/24 (RFC 2544's
# benchmarking range): on the host, a bridge for a documentation range can hide a real server
# (package mirrors have been seen at 203.0.113.x addresses).
DEFAULT_NETWORKS = {"nat": ("192.168.77", "198.18.77"), "site-to-site": ("", "10.99.0")}
ROLES = ("left", "right")


class ContainerTopology:
    """The address plan of a container lab (what :func:`netlab_configs` and the labs read):
    ``name``, ``kind``, ``hosts`` by role (``Host.netns`` holds the container's name)."""

    def __init__(self, name: str, kind: str, hosts: dict[str, Host], networks: dict[str, str]) -> None:
        self.name, self.kind, self.hosts, self.networks = name, kind, hosts, networks

    @property
    def state_dir(self) -> Path:
        return RUN_ROOT / self.name

    def container(self, role: str) -> str:
        """The container of a host, or of the stack's ``jupyter`` service."""
        return self.hosts[role].netns if role in self.hosts else f"ipl-{self.name}-{role}"

    def __repr__(self) -> str:
        return f"<ContainerTopology {self.name!r} {self.kind}: {', '.join(f'{r} {h.address}' for r, h in self.hosts.items())}>"


def container_topology(name: str, kind: str = "nat", inside: str = "", outside: str = "") -> ContainerTopology:
    """The namespace labs' address plan with the networks' first three octets as given."""
    if kind not in COMPOSE_FILES:
        raise NetlabError(f"unknown topology {kind!r}: choose site-to-site or nat")
    inside = inside or DEFAULT_NETWORKS[kind][0]
    outside = outside or DEFAULT_NETWORKS[kind][1]

    def host(role: str, address: str, protected: tuple[str, ...], gateway: str | None, iface: str = "eth0") -> Host:
        return Host(role=role, netns=f"ipl-{name}-{role}", address=address, protected=protected,
                    interface=iface, gateway=gateway)

    if kind == "nat":
        hosts = {
            "left": host("left", f"{inside}.2", LEFT_PROTECTED, f"{inside}.1"),
            "router": host("router", f"{outside}.1", (), None, "outside"),
            "right": host("right", f"{outside}.2", RIGHT_PROTECTED, None),
        }
        networks = {"inside": f"{inside}.0/24", "outside": f"{outside}.0/24"}
    else:
        hosts = {
            "left": host("left", f"{outside}.1", LEFT_PROTECTED, None),
            "right": host("right", f"{outside}.2", RIGHT_PROTECTED, None),
        }
        networks = {"wire": f"{outside}.0/24"}
    return ContainerTopology(name, kind, hosts, networks)


def container_lab_names() -> list[str]:
    """Container labs on this host (their run directories)."""
    return sorted(p.name for p in RUN_ROOT.iterdir() if (p / "lab.json").exists()) if RUN_ROOT.is_dir() else []


def _subnets_in_use(podman: Podman) -> set[str]:
    """/24 prefixes ("a.b.c") the host already reaches: podman's networks, the host's routes,
    its name servers and the package registries' addresses (a lab bridge must not hide them)."""
    import socket

    used = set()
    for net in json.loads(podman("network", "ls", "--format", "json", check=False).stdout or "[]"):
        for subnet in net.get("subnets") or []:
            used.add(str(subnet.get("subnet", "")).rsplit(".", 1)[0])
    stale = _stale_bridges(used)  # a lab's bridge netavark left behind: its lab's next start removes it
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=False).stdout
    for line in routes.splitlines():
        words = line.split()
        dest = words[0] if words else ""
        device = words[words.index("dev") + 1] if "dev" in words[:-1] else ""
        if "/" in dest and dest.endswith(".0/24") and device not in stale:
            used.add(dest.rsplit(".", 1)[0])
    servers = []
    with contextlib.suppress(OSError):
        servers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines() if line.startswith("nameserver ")]
    for host in ("pypi.org", "deb.debian.org"):
        with contextlib.suppress(OSError):
            servers += [info[4][0] for info in socket.getaddrinfo(host, 443, socket.AF_INET)]
    used.update(address.rsplit(".", 1)[0] for address in servers if address.count(".") == 3)
    return used


def _stale_bridges(live: set[str]) -> set[str]:
    """Down bridges holding a lab gateway address (``.254``) of a subnet no podman network has."""
    done = subprocess.run(["ip", "-j", "-d", "addr", "show"], capture_output=True, text=True, check=False)
    stale = set()
    for link in json.loads(done.stdout or "[]"):
        if link.get("linkinfo", {}).get("info_kind") != "bridge" or link.get("operstate") != "DOWN":  # no port: no container
            continue
        for a in link.get("addr_info", []):
            address = str(a.get("local", ""))
            if a.get("family") == "inet" and address.endswith(".254") and address.rsplit(".", 1)[0] not in live:
                stale.add(str(link["ifname"]))
    return stale


def free_networks(kind: str, name: str, podman: Podman | None = None) -> tuple[str, str]:
    """The default networks of ``kind`` if no other lab uses them, else free ones (198.18.N,
    192.168.N for N from 100, the name's hash first) — several labs can run on one host."""
    used = _subnets_in_use(podman or Podman())
    inside, outside = DEFAULT_NETWORKS[kind]
    if not ({inside, outside} - {""}) & used:
        return inside, outside
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 150
    for i in range(150):
        n = 100 + (start + i) % 150
        candidate = (f"192.168.{n}" if kind == "nat" else "", f"198.18.{n}")
        if not ({candidate[0], candidate[1]} - {""}) & used:
            return candidate
    raise NetlabError("no free /24 for the lab's networks (192.168.100-249, 198.18.100-249 all in use)")


# -- engines ------------------------------------------------------------------------------------


def compose_command() -> list[str]:
    """How to run compose here: ``$IPSECLAB_COMPOSE`` if set, docker compose when a Docker daemon
    answers, else podman-compose (PyPI's, next to this Python or on PATH)."""
    if os.environ.get("IPSECLAB_COMPOSE"):
        return os.environ["IPSECLAB_COMPOSE"].split()
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0:
        return ["docker", "compose"]
    beside = Path(sys.executable).with_name("podman-compose")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("podman-compose")
    if found:
        return [found]
    raise NetlabError("neither a Docker daemon nor podman-compose is available (make lab installs podman-compose)")


def containers_available() -> str | None:
    """None when container labs can run here, else why not (a test's skip reason)."""
    reason = Podman.available()
    if reason:
        return reason
    try:
        compose_command()
    except NetlabError as exc:
        return str(exc)
    return None


def source_hash() -> str:
    """12 hex digits over everything an image is built from."""
    digest = hashlib.sha256()
    files = [REPO / "pyproject.toml", REPO / "README.md", CONTAINERFILE, CONTAINERS / "podman" / "containers.conf"]
    for tree in ("ipseclab", "labs"):
        files += sorted(p for p in (REPO / tree).rglob("*") if p.is_file() and not {"__pycache__", "lab-export", ".ipynb_checkpoints"} & set(p.parts))
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def ensure_base_image(podman: Podman, image: str = BASE_IMAGE) -> str:
    """A Debian bookworm base without a registry (``mmdebstrap`` + ``podman import``, ~20 s, once)."""
    return bootstrap_image(podman, image, ("python3", "python3-venv", "iproute2", "ca-certificates"))


def ensure_images(podman: Podman | None = None, *, jupyter: bool = False, base: str | None = None) -> dict[str, str]:
    """The peer (and JupyterLab) images for the current source, built when missing.

    ``base`` defaults to ``$IPSECLAB_BASE`` or the locally bootstrapped Debian (no registry
    here).  pip inside the build is given this machine's CA bundle.
    """
    podman = podman or Podman()
    tag = source_hash()
    images = {"peer": f"{PEER_IMAGE}:{tag}"}
    if jupyter:
        images["jupyter"] = f"{JUPYTER_IMAGE}:{tag}"
    missing = [target for target, image in images.items() if not podman.image_exists(image)]
    if not missing:
        return images
    base = base or os.environ.get("IPSECLAB_BASE") or ensure_base_image(podman)
    for target in missing:
        args = ["build", "-q", "-f", str(CONTAINERFILE), "--target", target, "-t", images[target],
                "--build-arg", f"BASE={base}"]
        if CA_BUNDLE.is_file():
            args += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "--build-arg", f"PIP_CERT={CA_BUNDLE}"]
        podman(*args, str(REPO), timeout=1800)
    return images


# -- the lab ------------------------------------------------------------------------------------


class ContainerLab:
    """A compose stack plus the peer daemons' clients; ``with ContainerLab(...) as lab:`` tears it down."""

    def __init__(
        self,
        name: str,
        kind: str = "nat",
        options: DemoOptions | None = None,
        *,
        dataplane: bool = True,
        jupyter: bool = False,
        networks: tuple[str, str] | None = None,
        jupyter_port: int = 8888,
        labs_dir: Path | None = None,
        podman: Podman | None = None,
    ) -> None:
        self.options = options or DemoOptions()
        self.dataplane = dataplane
        self.jupyter = jupyter
        self.jupyter_port = jupyter_port
        self.labs_dir = Path(labs_dir) if labs_dir else REPO / "labs"
        inside, outside = networks or DEFAULT_NETWORKS.get(kind, ("", ""))
        self.topology = container_topology(validate_name(name), kind, inside, outside)
        self.podman = podman or Podman()
        self.clients: dict[str, object] = {}
        self.images: dict[str, str] = {}
        self._captures: dict[str, tuple[str, str]] = {}

    @property
    def name(self) -> str:
        return self.topology.name

    @property
    def kind(self) -> str:
        return self.topology.kind

    @property
    def state_dir(self) -> Path:
        return self.topology.state_dir

    def control_address(self, role: str) -> str:
        return f"ipc://{self.state_dir}/{role}.ctl"

    def events_address(self, role: str) -> str:
        return f"ipc://{self.state_dir}/{role}.ev"

    def container(self, role: str) -> str:
        return self.topology.container(role)

    # -- compose -------------------------------------------------------------------------------

    def compose_env(self) -> dict[str, str]:
        prefix = {k: v.rsplit(".", 1)[0] for k, v in self.topology.networks.items()}
        inside, outside = prefix.get("inside", ""), prefix.get("outside") or prefix.get("wire", "")
        env = {
            "IPSECLAB_LAB": self.name,
            "IPSECLAB_INSIDE": inside,
            "IPSECLAB_OUTSIDE": outside,
            "IPSECLAB_WIRE": outside,
            "IPSECLAB_RUN": str(self.state_dir),
            "IPSECLAB_LABS": str(self.labs_dir),
            "IPSECLAB_SEED": "" if self.options.seed is None else str(self.options.seed),
            "IPSECLAB_DATAPLANE": "1" if self.dataplane else "0",
            "IPSECLAB_PEER_IMAGE": self.images.get("peer", f"{PEER_IMAGE}:latest"),
            "IPSECLAB_JUPYTER_IMAGE": self.images.get("jupyter", f"{JUPYTER_IMAGE}:latest"),
            "JUPYTER_PORT": str(self.jupyter_port),
            "JUPYTER_TOKEN": self._jupyter_token(),
        }
        return env

    def _jupyter_token(self) -> str:
        path = self.state_dir / "jupyter.token"
        return path.read_text().strip() if path.exists() else ""

    def compose(self, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``<compose> -p ipl-<lab> -f <file> --env-file <run dir>/compose.env ARGS``."""
        env = dict(self.podman.env)
        env.update(self.compose_env())
        profile = ["--profile", "jupyter"] if self.jupyter else []
        argv = [*compose_command(), "-p", f"ipl-{self.name}", "-f", str(COMPOSE_FILES[self.kind]),
                "--env-file", str(self.state_dir / "compose.env"), *profile, *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=CONTAINERS)
        except subprocess.TimeoutExpired as exc:
            raise NetlabError(f"{' '.join(argv[:1] + list(args))} took over {timeout:.0f} s") from exc
        if check and done.returncode != 0:
            raise NetlabError(f"compose {' '.join(args)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-1200:]}")
        return done

    # -- up and down ---------------------------------------------------------------------------

    def up(self, *, timeout: float = 60.0) -> ContainerLab:
        """Build the images if needed, write the configurations, start the stack and wait for
        both daemons.  A stack of the same name (a previous run's) is taken down first."""
        from ipseclab.runtime.config_toml import dump_peer_config
        from ipseclab.runtime.netlab.peers import netlab_configs, write_peers_file

        self.images = ensure_images(self.podman, jupyter=self.jupyter)
        self.down()
        RUN_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.mkdir(mode=0o700)
        try:
            if self.jupyter:
                with open_private(self.state_dir / "jupyter.token") as f:
                    f.write(hashlib.sha256(os.urandom(32)).hexdigest()[:32])
            for role, cfg in zip(ROLES, netlab_configs(self.topology, self.options), strict=True):  # type: ignore[arg-type]
                with open_private(self.state_dir / f"{role}.toml") as f:  # it holds the PSK
                    f.write(dump_peer_config(cfg))
            with open_private(self.state_dir / "compose.env") as f:
                f.write("".join(f"{k}={v}\n" for k, v in self.compose_env().items()))
            with open_private(self.state_dir / "lab.json") as f:
                json.dump({"name": self.name, "kind": self.kind, "networks": self.topology.networks,
                           "jupyter": self.jupyter, "jupyter_port": self.jupyter_port, "images": self.images}, f)
            self.compose("up", "-d", "--no-build", timeout=300)
            for role in ROLES:
                self.clients[role] = self._wait_for_daemon(role, timeout)
            write_peers_file(self.state_dir, "containers", self.topology)
        except BaseException:
            self.down()
            raise
        return self

    @classmethod
    def attach(cls, name: str) -> ContainerLab:
        """The container lab ``name`` that another process brought up (its clients connected)."""
        from ipseclab.runtime.control import PeerClient

        path = RUN_ROOT / validate_name(name) / "lab.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NetlabError(f"no container lab {name!r} here ({path}: {exc})") from None
        nets = data["networks"]
        prefixes = (nets.get("inside", "").rsplit(".", 1)[0], (nets.get("outside") or nets.get("wire", "")).rsplit(".", 1)[0])
        lab = cls(name, data["kind"], networks=prefixes, jupyter=bool(data.get("jupyter")), jupyter_port=int(data.get("jupyter_port", 8888)))
        lab.images = dict(data.get("images", {}))
        lab.clients = {role: PeerClient(lab.control_address(role), lab.events_address(role), timeout=2.0) for role in ROLES}
        return lab

    def jupyter_url(self) -> str | None:
        """Where the stack's JupyterLab answers (with its token), if it has one."""
        token = self._jupyter_token()
        return f"http://127.0.0.1:{self.jupyter_port}/lab?token={token}" if self.jupyter and token else None

    def _wait_for_daemon(self, role: str, timeout: float):  # noqa: ANN202
        from ipseclab.runtime.netlab.peers import wait_for_client

        def logs() -> str:
            done = self.podman("logs", "--tail", "20", self.container(role), check=False)
            return (done.stdout + done.stderr)[-1200:]

        return wait_for_client(self.control_address(role), self.events_address(role), timeout,
                               what=f"the {role} peer daemon in container {self.container(role)}", tail=logs)

    def down(self) -> None:
        """Stop and remove the stack, then by name whatever compose left; idempotent."""
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                client.close()  # type: ignore[attr-defined]
        self.clients = {}
        self._captures = {}
        if (self.state_dir / "compose.env").exists():
            with contextlib.suppress(NetlabError):
                self.compose("down", "-t", "1", timeout=120, check=False)
        for role in (*self.topology.hosts, "jupyter"):
            self.podman.rm(f"ipl-{self.name}-{role}")
        for network in self.topology.networks:
            self.podman("network", "rm", "-f", f"ipl-{self.name}-{network}", check=False)
        self._remove_stale_bridges()
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _remove_stale_bridges(self) -> None:
        """A bridge netavark left behind (seen after a failed start) still routes the lab's
        subnet on the host: remove the one holding this lab's gateway address, if any."""
        done = subprocess.run(["ip", "-j", "-d", "addr", "show"], capture_output=True, text=True, check=False)
        live = {str(sub.get("subnet")) for net in json.loads(self.podman("network", "ls", "--format", "json", check=False).stdout or "[]")
                for sub in net.get("subnets") or []}
        gone = {cidr for cidr in self.topology.networks.values() if cidr not in live}
        gateways = {f"{cidr.rsplit('.', 1)[0]}.254" for cidr in gone}
        for link in json.loads(done.stdout or "[]"):
            is_bridge = link.get("linkinfo", {}).get("info_kind") == "bridge"
            if is_bridge and any(a.get("local") in gateways for a in link.get("addr_info", [])):
                subprocess.run(["ip", "link", "del", link["ifname"]], capture_output=True, check=False)
        self._remove_stale_nat_rules(gone)

    @staticmethod
    def _remove_stale_nat_rules(subnets: set[str]) -> None:
        """netavark's masquerade chain for a network it did not tear down (same failures as the
        bridge) would rewrite the next lab's packets on these subnets: remove it."""
        if not subnets or shutil.which("iptables") is None:
            return
        rules = subprocess.run(["iptables", "-t", "nat", "-S", "POSTROUTING"], capture_output=True, text=True, check=False).stdout
        for line in rules.splitlines():
            parts = line.split()
            if parts[:2] == ["-A", "POSTROUTING"] and len(parts) == 6 and parts[2] == "-s" and parts[3] in subnets \
                    and parts[4] == "-j" and parts[5].startswith("NETAVARK-"):
                subprocess.run(["iptables", "-t", "nat", "-D", "POSTROUTING", *parts[2:]], capture_output=True, check=False)
                subprocess.run(["iptables", "-t", "nat", "-F", parts[5]], capture_output=True, check=False)
                subprocess.run(["iptables", "-t", "nat", "-X", parts[5]], capture_output=True, check=False)

    def __enter__(self) -> ContainerLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- using it ------------------------------------------------------------------------------

    def session(self, connection: str = "site"):  # noqa: ANN201
        """A :class:`~ipseclab.runtime.control.RemoteLabSession` over both daemons."""
        from ipseclab.runtime.control import RemoteLabSession

        return RemoteLabSession(self.clients["left"], self.clients["right"], connection)  # type: ignore[arg-type]

    def exec(self, role: str, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.podman.exec(self.container(role), *argv, check=check, timeout=timeout)

    def ping(self, count: int = 3, *, interval: float = 0.2, wait: float = 2.0, src: str | None = None) -> PingStats:
        """iputils ``ping`` in left's container from its protected address (or ``src``) to right's."""
        src, dst = src or self.topology.hosts["left"].protected[0], self.topology.hosts["right"].protected[0]
        done = self.exec("left", ["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}", "-I", src, dst],
                         check=False, timeout=count * interval + wait + 20)
        return parse(done.stdout + done.stderr, src, dst, count)

    def capture(self, role: str, interface: str, name: str, bpf: str = "udp or esp") -> Path:
        """Start tcpdump in ``role``'s container on ``interface`` into ``<run dir>/<name>``;
        :meth:`stop_capture` ends it (by the PID it wrote)."""
        inside = f"/run/ipseclab/{name}"
        # a detached exec session: tcpdump's parent is podman's conmon, which reaps it
        self.podman.exec(self.container(role), "sh", "-c", f"echo $$ > {inside}.pid; exec tcpdump --immediate-mode -U -n -i {interface} -w {inside} {bpf}",
                         detach=True)
        path = self.state_dir / name
        deadline = time.monotonic() + 5
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # tcpdump has opened the interface once the file exists; let it settle
        self._captures[name] = (role, inside)
        return path

    def stop_capture(self, name: str) -> Path:
        role, inside = self._captures.pop(name)
        self.exec(role, ["sh", "-c", f"kill -TERM $(cat {inside}.pid); while kill -0 $(cat {inside}.pid) 2>/dev/null; do sleep 0.05; done"],
                  check=False, timeout=15)
        return self.state_dir / name

    def describe(self) -> list[str]:
        """One line per host: container, address, protected addresses."""
        lines = []
        for role, h in self.topology.hosts.items():
            protected = f"  protects {', '.join(h.protected[:1])}" if h.protected else ""
            lines.append(f"  {role:<7} container {h.netns:<20} {h.address}{protected}")
        return lines
