"""nftables inside a lab namespace, through the ``nft`` tool.

The lab's rules live in one table, ``ip ipseclab``, in the router's namespace.  ``nft -f -`` is
started with a pre-exec hook that enters the namespace (pyroute2 ``setns``), so the root
namespace's ruleset is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ipseclab.errors import NetlabError
from ipseclab.runtime.netlab.nsproc import netns_preexec

TABLE = "ipseclab"
NAT_PORTS = (20000, 20099)


def nft_binary() -> str:
    """Path of the ``nft`` tool; NetlabError if nftables is not installed."""
    path = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if path is None:
        raise NetlabError("the nft tool is missing (Debian: apt-get install nftables)")
    return path


def run_nft(netns: str, args: list[str], script: str | None = None) -> str:
    """Run ``nft ARGS`` inside ``netns`` (``script`` on stdin) and return its stdout."""
    fd, preexec = netns_preexec(netns)
    try:
        result = subprocess.run(
            [nft_binary(), *args],
            input=script,
            capture_output=True,
            text=True,
            preexec_fn=preexec,
            timeout=10,
            check=False,
        )
    finally:
        os.close(fd)
    if result.returncode != 0:
        raise NetlabError(
            f"nft {' '.join(args)} failed in namespace {netns!r}: {result.stderr.strip()}"
        )
    return result.stdout


def apply_ruleset(netns: str, script: str) -> None:
    """Load an nft script (``nft -f -``) atomically inside ``netns``."""
    run_nft(netns, ["-f", "-"], script)


def masquerade_ruleset(inside: str, outside_if: str, *, port_remap: bool = False) -> str:
    """The lab NAT: traffic from ``inside`` (a CIDR) leaving by ``outside_if`` is masqueraded.

    With ``port_remap`` UDP source ports are rewritten into 20000-20099 (so IKE's port 500
    visibly changes, as behind many home routers); other protocols keep their ports.
    """
    rules = []
    if port_remap:
        low, high = NAT_PORTS
        rules.append(
            f'ip saddr {inside} oifname "{outside_if}" meta l4proto udp masquerade to :{low}-{high}'
        )
    rules.append(f'ip saddr {inside} oifname "{outside_if}" masquerade')
    body = "\n".join(f"        {r}" for r in rules)
    return (
        f"table ip {TABLE} {{\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f"{body}\n"
        "    }\n"
        "}\n"
    )


def list_tables(netns: str) -> list[str]:
    """Tables in ``netns`` as ``"family name"`` strings (e.g. ``"ip ipseclab"``)."""
    out = run_nft(netns, ["list", "tables"])
    return [line.removeprefix("table ").strip() for line in out.splitlines() if line.strip()]


def delete_table(netns: str) -> None:
    """Remove the lab table from ``netns`` (no error if it is not there)."""
    run_nft(netns, ["-f", "-"], f"table ip {TABLE}\ndelete table ip {TABLE}\n")
