"""What runs inside the lab containers (``containers/compose.yaml``): the image's entry point.

``peer ROLE``   sets the container up as the lab host ``ROLE`` (its protected addresses on
               ``lo``, left's default route through the NAT router) and runs ``ipseclab peer``
               with its control and event sockets as ``ipc://`` files in the shared run
               directory (``/run/ipseclab``) — reachable from the host and from the JupyterLab
               container, never from the network.  Its configuration is ``ROLE.toml`` in that
               directory when the host wrote one (``ipseclab lab up --containers``), else made
               here from the environment (``containers/.env``) the way the namespace labs do.
``router``     names its interfaces ``inside``/``outside`` by their addresses and loads the
               lab's nftables masquerade (:mod:`~ipseclab.runtime.netlab.nft`), then waits.
``health ROLE`` exits 0 once the peer daemon of ``ROLE`` answers ``status`` (the compose
               health check).

The address plan is the namespace labs' (:mod:`~ipseclab.runtime.netlab.topology`), with the
first three octets of each network taken from ``IPSECLAB_INSIDE``/``IPSECLAB_OUTSIDE`` so that
several stacks can share a host.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ipseclab.errors import IpsecLabError

RUN_DIR = Path("/run/ipseclab")
DEFAULTS = {
    "IPSECLAB_KIND": "nat",
    "IPSECLAB_PSK": "ipseclab-lab-psk",
}


class EntryError(IpsecLabError):
    """The container cannot be set up as its lab host (the message says what is missing)."""


def setting(env: Mapping[str, str], key: str) -> str:
    value = env.get(key) or DEFAULTS.get(key, "")
    return value


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EntryError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def interface_with(address: str) -> str:
    """The name of the interface that holds ``address`` (podman and docker number them in
    their own order)."""
    for link in json.loads(_ip("-j", "addr", "show")):
        if any(a.get("local") == address for a in link.get("addr_info", [])):
            return str(link["ifname"])
    raise EntryError(f"no interface holds {address}: is the container on the lab's networks?")


def rename_interface(address: str, name: str) -> None:
    current = interface_with(address)
    if current != name:
        _ip("link", "set", "dev", current, "down")
        _ip("link", "set", "dev", current, "name", name)
        _ip("link", "set", "dev", name, "up")


def topology_from(env: Mapping[str, str]):  # noqa: ANN201
    """The lab's address plan from the compose environment (a typo in ``.env`` fails here)."""
    from ipseclab.runtime.containers.stack import container_topology

    topo = container_topology(setting(env, "IPSECLAB_LAB") or "lab", setting(env, "IPSECLAB_KIND"),
                              setting(env, "IPSECLAB_INSIDE"), setting(env, "IPSECLAB_OUTSIDE"))
    for host in topo.hosts.values():
        ipaddress.IPv4Address(host.address)
    return topo


def setup_peer(role: str, env: Mapping[str, str]) -> None:
    """Protected addresses on ``lo``; behind the NAT, the default route through the router."""
    host = topology_from(env).hosts[role]
    for address in host.protected:
        subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", "lo"], check=False)
    if host.gateway:
        _ip("route", "replace", "default", "via", host.gateway)


def peer_config_path(role: str, env: Mapping[str, str], run_dir: Path) -> Path:
    """``ROLE.toml`` in the run directory; written here from the environment if the host did not."""
    path = run_dir / f"{role}.toml"
    if path.exists():
        return path
    from ipseclab.demo import DemoOptions
    from ipseclab.files import open_private
    from ipseclab.runtime.config_toml import dump_peer_config
    from ipseclab.runtime.netlab.peers import netlab_configs

    configs = dict(zip(("left", "right"), netlab_configs(topology_from(env), DemoOptions()), strict=True))
    cfg = configs[role]
    cfg.psk = setting(env, "IPSECLAB_PSK").encode()
    with open_private(path) as f:
        f.write(dump_peer_config(cfg))
    return path


def daemon_argv(role: str, config: Path, env: Mapping[str, str], run_dir: Path) -> list[str]:
    argv = [sys.executable, "-m", "ipseclab.cli", "peer", "--config", str(config),
            "--control", f"ipc://{run_dir}/{role}.ctl", "--events", f"ipc://{run_dir}/{role}.ev"]
    if env.get("IPSECLAB_SEED"):
        argv += ["--seed", str(int(env["IPSECLAB_SEED"]))]
    if env.get("IPSECLAB_DATAPLANE", "1") not in ("0", "", "false", "no"):
        argv.append("--dataplane")
    return argv


def run_router(env: Mapping[str, str]) -> None:
    from ipseclab.runtime.netlab.nft import masquerade_ruleset

    topo = topology_from(env)
    inside, outside = (topo.networks[n].rsplit(".", 1)[0] for n in ("inside", "outside"))
    rename_interface(f"{inside}.1", "inside")
    rename_interface(f"{outside}.1", "outside")
    ruleset = masquerade_ruleset(f"{inside}.0/24", "outside", port_remap=env.get("IPSECLAB_PORT_REMAP") == "1")
    done = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EntryError(f"nft refused the lab's masquerade: {done.stderr.strip()}")
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    if forwarding != "1":
        raise EntryError("IP forwarding is off in the router container (compose: sysctls net.ipv4.ip_forward=1)")
    print(f"router: {inside}.0/24 (inside) masqueraded to {outside}.1 (outside)", flush=True)
    _wait_for_term()


def _wait_for_term() -> None:
    """Sleep until SIGTERM/SIGINT (as PID 1 a process must ask for them)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def run_notebook(env: Mapping[str, str], args: Sequence[str]) -> None:
    """A notebook server with a lab of its own in the same container (a Kubernetes user pod):
    the namespace lab ``pod`` (two peer daemons, network namespaces inside the container, which
    needs NET_ADMIN, SYS_ADMIN, /dev/net/tun and a writable /proc/sys), ``IPSECLAB_STACK`` set
    to it, then ``jupyterhub-singleuser`` under a hub (``JUPYTERHUB_API_TOKEN`` set) or
    ``jupyter lab`` otherwise, with ``args`` passed on."""
    from ipseclab.demo import DemoOptions
    from ipseclab.runtime.netlab.peers import NetLab

    lab = NetLab("pod", setting(env, "IPSECLAB_KIND") or "site-to-site", DemoOptions(), dataplane=True).up()
    for client in lab.clients.values():
        client.close()  # type: ignore[attr-defined]
    labs, shipped = Path.cwd(), Path("/opt/ipseclab-labs")
    if shipped.is_dir() and not any(labs.iterdir()):  # a new user's empty home: their copy of the labs
        shutil.copytree(shipped, labs, dirs_exist_ok=True, ignore=shutil.ignore_patterns("solutions", "lab-export"))
    child_env = dict(env, IPSECLAB_STACK=str(lab.topology.state_dir))
    if env.get("JUPYTERHUB_API_TOKEN"):
        argv = ["jupyterhub-singleuser", *args]
    else:
        argv = ["jupyter", "lab", "--allow-root", "--no-browser", "--ip=0.0.0.0", "--port=8888", *args]
    print(f"notebook: lab {lab.name} up ({', '.join(h.address for h in lab.topology.hosts.values())}); {' '.join(argv)}", flush=True)
    os.execvpe(argv[0], argv, child_env)


def health(role: str, run_dir: Path) -> int:
    from ipseclab.errors import ControlError
    from ipseclab.runtime.control import PeerClient

    with PeerClient(f"ipc://{run_dir}/{role}.ctl", timeout=2.0) as client:
        try:
            client.status()
        except ControlError as exc:
            print(f"{role}: {exc}", file=sys.stderr)
            return 1
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(prog="ipseclab-container", description="Entry point of the ipseclab lab containers.")
    sub = parser.add_subparsers(dest="what", required=True)
    peer = sub.add_parser("peer", help="run as the lab host ROLE with an ipseclab peer daemon")
    peer.add_argument("role", choices=["left", "right"])
    sub.add_parser("router", help="run as the lab's NAT router")
    check = sub.add_parser("health", help="exit 0 when ROLE's daemon answers")
    check.add_argument("role", choices=["left", "right"])
    notebook = sub.add_parser("notebook", help="a notebook server with its own namespace lab in this container")
    notebook.add_argument("server_args", nargs=argparse.REMAINDER, help="passed to jupyterhub-singleuser / jupyter lab")
    args = parser.parse_args(argv)
    run_dir = Path(env.get("IPSECLAB_RUN_DIR") or RUN_DIR)
    try:
        if args.what == "health":
            return health(args.role, run_dir)
        if args.what == "router":
            run_router(env)
            return 0
        if args.what == "notebook":
            run_notebook(env, [a for a in args.server_args if a != "--"])
            return 0
        setup_peer(args.role, env)
        config = peer_config_path(args.role, env, run_dir)
        argv_ = daemon_argv(args.role, config, env, run_dir)
        print(f"{args.role}: {' '.join(argv_[1:])}", flush=True)
        os.execv(argv_[0], argv_)
    except (IpsecLabError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        time.sleep(1)  # a restart loop should not spin
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
