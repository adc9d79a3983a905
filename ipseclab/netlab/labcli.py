"""``lab`` commands: build, list, inspect and tear down network labs from a shell.

``python -m ipseclab.netlab up demo --kind nat``, ``... status [demo] [--json]``,
``... down demo`` (or ``--all``), ``... list``.  :func:`add_lab_parser` hangs the same commands
under another argparse parser (``ipseclab lab ...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ipseclab.errors import NetlabError


def _up(args: argparse.Namespace) -> int:
    from ipseclab.netlab.topology import nat, site_to_site

    if args.kind == "nat":
        topo = nat(args.name, port_remap=args.port_remap)
    else:
        topo = site_to_site(args.name, routes=not args.no_routes)
    topo.up()
    print(f"lab {topo.name} ({topo.kind}) is up; tear it down with: python -m ipseclab.netlab down {topo.name}")
    for host in topo.to_json()["hosts"].values():
        print(_host_line(host))
    return 0


def _host_line(h: dict[str, Any]) -> str:
    gateway = f"  gw {h['gateway']}" if h.get("gateway") else ""
    protected = f"  protects {', '.join(h['protected'])}" if h.get("protected") else ""
    return f"  {h['role']:<7} {h['netns']:<22} {h['interface']} {h['address']}{gateway}{protected}"


def _status(args: argparse.Namespace) -> int:
    from ipseclab.netlab.topology import lab_names, lab_status

    names = [args.name] if args.name else lab_names()
    reports = [s for s in (lab_status(n) for n in names) if s is not None]
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0 if reports or not args.name else 1
    if not reports:
        print(f"no lab {args.name!r}" if args.name else "no labs")
        return 1 if args.name else 0
    for s in reports:
        print(f"lab {s['name']} ({s.get('kind', '?')}, {s.get('status', 'no state file')}), "
              f"namespaces: {', '.join(s['namespaces']) or 'none'}")
        for h in s.get("hosts", {}).values():
            print(_host_line(h))
        for p in s.get("processes", []):
            state = "running" if p["running"] else "gone"
            print(f"  pid {p['pid']:<7} {p['role']:<7} {state:<8} {' '.join(p['argv'])}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from ipseclab.netlab.topology import destroy, lab_names

    if args.all == bool(args.name):
        print("give a lab name or --all", file=sys.stderr)
        return 2
    for name in lab_names() if args.all else [args.name]:
        destroy(name)
        print(f"lab {name} is down")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ipseclab.netlab.topology import lab_names

    for name in lab_names():
        print(name)
    return 0


def add_lab_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``up``/``status``/``down``/``list`` sub-commands to ``parser`` (sets ``func``)."""
    sub = parser.add_subparsers(dest="lab_command", required=True)
    up = sub.add_parser("up", help="build a lab and leave it running")
    up.add_argument("name")
    up.add_argument("--kind", choices=["site-to-site", "nat"], default="site-to-site")
    up.add_argument("--port-remap", action="store_true", help="nat: map UDP ports to 20000-20099")
    up.add_argument("--no-routes", action="store_true",
                    help="site-to-site: no plain-text routes to the protected hosts")
    up.set_defaults(func=_up)
    status = sub.add_parser("status", help="what exists of one lab or of all labs")
    status.add_argument("name", nargs="?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    down = sub.add_parser("down", help="tear a lab down (processes, namespaces, state)")
    down.add_argument("name", nargs="?")
    down.add_argument("--all", action="store_true", help="every lab on this machine")
    down.set_defaults(func=_down)
    ls = sub.add_parser("list", help="names of the labs present")
    ls.set_defaults(func=_list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ipseclab lab", description="Network labs in namespaces.")
    add_lab_parser(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NetlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
