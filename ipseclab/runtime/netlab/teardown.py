"""Tearing down a lab's kernel resources by name: shared by ``Topology.down`` and ``destroy``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from pyroute2 import IPRoute
from pyroute2 import netns as _netns

from ipseclab.runtime.netlab import nft
from ipseclab.runtime.netlab.nsproc import (
    is_running,
    netns_exists,
    pids_in_netns,
    run_in_thread,
    start_time,
    terminate,
)


def teardown_resources(
    *,
    namespaces: Sequence[str],
    temp_links: Sequence[str],
    processes: Sequence[tuple[int, int | None]],
    nft_netns: str | None,
) -> list[str]:
    """Remove a lab's resources; return what could not be removed (empty: all gone).

    Order: recorded processes (SIGTERM, SIGKILL after 3 s; a PID is only signalled if its start
    time still matches), then any other process still inside the namespaces, the nft table,
    the namespaces, and root-namespace veths left from an interrupted build.
    """
    problems: list[str] = []
    terminate(processes)
    stray = pids_in_netns(namespaces)
    if stray:
        terminate([(pid, start_time(pid)) for pid in stray])
        for pid in stray:  # reap our own children among them; others belong to their parents
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    still = [pid for pid, started in processes if is_running(pid, started)]
    still += pids_in_netns(namespaces)
    if still:
        problems.append(f"processes still running: {sorted(set(still))}")

    def netlink_work() -> None:
        if nft_netns and nft_netns in namespaces and netns_exists(nft_netns):
            # best effort: the table goes with the namespace anyway
            with contextlib.suppress(Exception):
                nft.delete_table(nft_netns)
        for ns in namespaces:
            try:
                if netns_exists(ns):
                    _netns.remove(ns)
            except Exception as exc:  # noqa: BLE001 - reported, teardown goes on
                problems.append(f"namespace {ns}: {exc}")
        if temp_links:
            try:
                with IPRoute() as ipr:
                    for ifname in temp_links:
                        for idx in ipr.link_lookup(ifname=ifname):
                            ipr.link("del", index=idx)
            except Exception as exc:  # noqa: BLE001 - reported, teardown goes on
                problems.append(f"temporary veths {temp_links}: {exc}")

    run_in_thread(netlink_work)
    return problems
