"""``lab`` commands: build, list, inspect and tear down network labs from a shell.

``python -m ipseclab.runtime.netlab up demo --kind nat``, ``... status [demo] [--json]``,
``... down demo`` (or ``--all``), ``... list``.  :func:`add_lab_parser` hangs the same commands
under another argparse parser (``ipseclab lab ...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipseclab.errors import NetlabError


def _up(args: argparse.Namespace) -> int:
    from ipseclab.runtime.netlab.topology import nat, site_to_site

    name = _name(args)
    if args.students:
        return _up_class(args.name or args.name_opt or "class", args)
    if args.containers:
        return _up_containers(name, args)
    if args.jupyter:
        print("--jupyter needs --containers (with namespaces, run `make lab` on the host)", file=sys.stderr)
        return 2
    if args.no_peers:
        topo = nat(name, port_remap=args.port_remap) if args.kind == "nat" else site_to_site(name, routes=not args.no_routes)
        topo.up()
    else:
        from ipseclab.demo import DemoOptions
        from ipseclab.runtime.netlab.peers import NetLab

        opts = DemoOptions(mode=args.mode, pfs=args.pfs, policies=args.policies, seed=args.seed)
        lab = NetLab(name, args.kind, opts, port_remap=args.port_remap, dataplane=args.dataplane).up()
        topo = lab.topology
    print(f"lab {topo.name} ({topo.kind}) is up; tear it down with: ipseclab lab down {topo.name}")
    for host in topo.to_json()["hosts"].values():
        print(_host_line(host))
    if not args.no_peers:
        for role in ("left", "right"):
            print(f"  {role} peer daemon: control {lab.control_address(role)}  events {lab.events_address(role)}")
        print(
            "  in a notebook: from ipseclab.runtime.netlab.peers import attach_clients; "
            f"c = attach_clients({topo.name!r}); c['left'].initiate('site')"
        )
    return 0


def _up_class(name: str, args: argparse.Namespace) -> int:
    """``lab up --students N``: a lab and a JupyterLab per student (see ipseclab.runtime.classroom)."""
    from ipseclab.demo import DemoOptions
    from ipseclab.runtime.classroom import Classroom

    opts = DemoOptions(mode=args.mode, pfs=args.pfs, policies=args.policies, seed=args.seed)
    where = "containers" if args.containers else "network namespaces"
    print(f"bringing up {args.students} students' labs in {where} and a JupyterLab each ...", flush=True)
    room = Classroom(name, args.students, containers=args.containers, kind=args.kind, options=opts,
                     base_port=args.base_port, home=args.home).up()
    print(f"class {name} is up; tear it down with: ipseclab lab down --class {name}")
    for s in room.students:
        print(f"  {s.name}: {s.url}   (lab {s.lab}, notebooks in {s.labs_dir})")
    return 0


def _up_containers(name: str, args: argparse.Namespace) -> int:
    """``lab up --containers``: the compose stack (images built when the source changed)."""
    from ipseclab.demo import DemoOptions
    from ipseclab.runtime.containers.stack import ContainerLab, free_networks

    if args.no_peers:
        print("--no-peers is for namespaces; the container stack always runs its peer daemons", file=sys.stderr)
        return 2
    opts = DemoOptions(mode=args.mode, pfs=args.pfs, policies=args.policies, seed=args.seed)
    print("building the images if the source changed and starting the stack ...", flush=True)
    lab = ContainerLab(name, args.kind, opts, jupyter=args.jupyter, jupyter_port=args.jupyter_port,
                       networks=free_networks(args.kind, name)).up()
    print(f"lab {name} ({args.kind}) is up in containers; tear it down with: ipseclab lab down {name}")
    for line in lab.describe():
        print(line)
    for role in ("left", "right"):
        print(f"  {role} peer daemon: control {lab.control_address(role)}  events {lab.events_address(role)}")
    if lab.jupyter_url():
        print(f"  JupyterLab on the labs (set PEERS = \"containers\" in a lab to use these peers): {lab.jupyter_url()}")
    print(f"  in a notebook on this host: from ipseclab.runtime.containers.stack import ContainerLab; "
          f"s = ContainerLab.attach({name!r}).session()")
    return 0


def _name(args: argparse.Namespace) -> str:
    return args.name or args.name_opt or "lab"


def _host_line(h: dict[str, Any]) -> str:
    gateway = f"  gw {h['gateway']}" if h.get("gateway") else ""
    protected = f"  protects {', '.join(h['protected'])}" if h.get("protected") else ""
    return f"  {h['role']:<7} {h['netns']:<22} {h['interface']} {h['address']}{gateway}{protected}"


def _status(args: argparse.Namespace) -> int:
    from ipseclab.runtime.containers.stack import container_lab_names
    from ipseclab.runtime.netlab.topology import lab_names, lab_status

    in_containers = container_lab_names()
    names = [args.name or args.name_opt] if (args.name or args.name_opt) else sorted(set(lab_names() + in_containers))
    reports = [s for s in (_container_status(n) if n in in_containers else lab_status(n) for n in names) if s is not None]
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0 if reports or not args.name else 1
    if not reports:
        print(f"no lab {args.name!r}" if args.name else "no labs")
        return 1 if args.name else 0
    for s in reports:
        if s.get("engine") == "containers":
            print(f"lab {s['name']} ({s['kind']}, containers): {', '.join(f'{c} {st}' for c, st in s['containers'].items())}")
            for line in s["lines"]:
                print(line)
            continue
        print(f"lab {s['name']} ({s.get('kind', '?')}, {s.get('status', 'no state file')}), "
              f"namespaces: {', '.join(s['namespaces']) or 'none'}")
        for h in s.get("hosts", {}).values():
            print(_host_line(h))
        for p in s.get("processes", []):
            state = "running" if p["running"] else "gone"
            print(f"  pid {p['pid']:<7} {p['role']:<7} {state:<8} {' '.join(p['argv'])}")
        for line in _daemon_lines(s["name"]):
            print(line)
    return 0


def _container_status(name: str) -> dict[str, Any]:
    """What a container lab's stack runs and what its daemons say about their SAs."""
    from ipseclab.runtime.containers.stack import ContainerLab

    lab = ContainerLab.attach(name)
    containers = {}
    for role in (*lab.topology.hosts, "jupyter"):
        done = lab.podman("inspect", "--format", "{{.State.Status}}", lab.container(role) if role != "jupyter" else f"ipl-{name}-jupyter", check=False)
        if done.returncode == 0:
            containers[role] = done.stdout.strip()
    lines = lab.describe()
    for role, client in lab.clients.items():
        lines.append(_sa_line(role, client))
        client.close()
    if lab.jupyter_url():
        lines.append(f"  JupyterLab: {lab.jupyter_url()}")
    return {"name": name, "kind": lab.kind, "engine": "containers", "containers": containers, "lines": lines}


def _daemon_lines(name: str) -> list[str]:
    """What each peer daemon of the lab says about its SAs (if the lab has daemons)."""
    from pathlib import Path

    from ipseclab.runtime.netlab import state

    lines = []
    for role in ("left", "right"):
        if not (Path(state.lab_dir(name)) / f"{role}.ctl").exists():
            continue
        from ipseclab.runtime.control import PeerClient

        with PeerClient(f"ipc://{state.lab_dir(name)}/{role}.ctl", timeout=2.0) as client:
            lines.append(_sa_line(role, client))
    return lines


def _sa_line(role: str, client) -> str:  # noqa: ANN001
    """One line: what a peer daemon says about its SAs (or why it does not answer)."""
    from ipseclab.errors import ControlError

    try:
        sas = client.list_sas()
    except ControlError as exc:
        return f"  {role} peer daemon: not answering ({exc})"
    ike = ", ".join(f"{x['cookies']} {x['state']}" for x in sas.get("isakmp", [])) or "no ISAKMP SA"
    ipsec = ", ".join(f"{x['child']} {x['spi_in']}/{x['spi_out']}" for x in sas.get("ipsec", [])) or "no IPsec SA"
    return f"  {role} peer daemon: {ike}; {ipsec}"


def _down(args: argparse.Namespace) -> int:
    from ipseclab.runtime.classroom import Classroom, class_names
    from ipseclab.runtime.netlab.topology import destroy, lab_names

    if args.class_name:
        Classroom.attach(args.class_name).down()
        print(f"class {args.class_name} is down (JupyterLabs stopped, labs removed; the notebooks stay)")
        return 0
    if args.all:
        for room in class_names():
            Classroom.attach(room).down()
            print(f"class {room} is down")
    name = args.name or args.name_opt
    if args.all and name:
        print("give a lab name or --all, not both", file=sys.stderr)
        return 2
    if not args.all and not name:
        from ipseclab.runtime.containers.stack import container_lab_names as _containers

        present = sorted(set(lab_names() + _containers()))
        if len(present) != 1:
            print(f"give a lab name or --all (labs present: {', '.join(present) or 'none'})", file=sys.stderr)
            return 2
        name = present[0]
    from ipseclab.runtime.containers.stack import ContainerLab, container_lab_names

    in_containers = container_lab_names()
    for lab in sorted(set(lab_names() + in_containers)) if args.all else [name]:
        if lab in in_containers:
            ContainerLab.attach(lab).down()
            print(f"lab {lab} is down (containers and networks removed)")
            continue
        destroy(lab)
        print(f"lab {lab} is down")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ipseclab.runtime.containers.stack import container_lab_names
    from ipseclab.runtime.netlab.topology import lab_names

    for name in lab_names():
        print(name)
    for name in container_lab_names():
        print(f"{name} (containers)")
    from ipseclab.runtime.classroom import class_names

    for name in class_names():
        print(f"{name} (class)")
    return 0


def add_lab_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``up``/``status``/``down``/``list`` sub-commands to ``parser`` (sets ``func``)."""
    sub = parser.add_subparsers(dest="lab_command", required=True)
    up = sub.add_parser("up", help="build a lab with a peer daemon per end host and leave it running")
    up.add_argument("name", nargs="?")
    up.add_argument("--name", dest="name_opt", metavar="NAME", help="lab name (default: lab)")
    up.add_argument("--topology", "--kind", dest="kind", choices=["site-to-site", "nat"], default="site-to-site")
    up.add_argument("--port-remap", action="store_true", help="nat: map UDP ports to 20000-20099")
    up.add_argument("--no-routes", action="store_true",
                    help="site-to-site without peers: no plain-text routes to the protected hosts")
    up.add_argument("--no-peers", action="store_true", help="only the topology, no ipseclab peer daemons")
    up.add_argument("--mode", choices=["main", "aggressive"], default="main", help="the peers' phase 1 mode")
    up.add_argument("--pfs", type=int, metavar="GROUP", help="Quick Mode PFS group")
    up.add_argument("--policies", type=int, default=1, metavar="N", help="IPsec policies (children)")
    up.add_argument("--seed", type=int, help="reproducible cookies, nonces, SPIs and DH keys")
    up.add_argument("--dataplane", action="store_true", help="the daemons also run the ESP data plane (TUN ipl0): ping between the protected hosts")
    up.add_argument("--containers", action="store_true",
                    help="the hosts are containers of the compose stack (containers/compose*.yaml; podman or docker)")
    up.add_argument("--jupyter", action="store_true", help="with --containers: also JupyterLab on the labs, in a container")
    up.add_argument("--jupyter-port", type=int, default=8888, metavar="PORT", help="with --jupyter: host port on 127.0.0.1")
    up.add_argument("--students", type=int, default=0, metavar="N",
                    help="a class: N labs named <name>01.. (name default: class), a JupyterLab each on ports BASE+1..")
    up.add_argument("--base-port", type=int, default=9000, metavar="BASE", help="with --students: ports BASE+1 .. BASE+N")
    up.add_argument("--home", type=Path, metavar="DIR",
                    help="with --students: where the students' copies of the labs live (default /var/lib/ipseclab/classes/<name>)")
    up.set_defaults(func=_up)
    status = sub.add_parser("status", help="what exists of one lab or of all labs, and the peers' SAs")
    status.add_argument("name", nargs="?")
    status.add_argument("--name", dest="name_opt", metavar="NAME")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    down = sub.add_parser("down", help="tear a lab down (processes, namespaces, state)")
    down.add_argument("name", nargs="?")
    down.add_argument("--name", dest="name_opt", metavar="NAME")
    down.add_argument("--all", action="store_true", help="every lab and class on this machine")
    down.add_argument("--class", dest="class_name", metavar="NAME", help="a class brought up with --students")
    down.set_defaults(func=_down)
    ls = sub.add_parser("list", help="names of the labs present")
    ls.set_defaults(func=_list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ipseclab lab", description="Network labs in namespaces or containers.")
    add_lab_parser(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NetlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
