"""Every lab on real peers: ``PEERS = "namespaces"`` and ``PEERS = "containers"`` (root).

Each run executes the whole notebook headless like the in-memory run does (no cell may fail,
every check must pass, the lab view must render and export), must say where its peers ran and
at which addresses, and must leave nothing behind once its kernel has shut down: no namespace
and no container of its lab.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipywidgets")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from notebook_support import (  # noqa: E402
    NOTEBOOKS,
    all_output,
    run_lab,
)

from ipseclab.runtime.containers.stack import containers_available  # noqa: E402


def _why_not(mode: str) -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, containers); CI runs as root"
    for tool in ("nft", "tcpdump", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (see the Makefile's Debian packages)"
    return containers_available() if mode == "containers" else None


def _leftovers(prefix: str) -> list[str]:
    """Namespaces and containers of labs named ``<prefix>-*``."""
    from pyroute2 import netns

    from ipseclab.runtime.containers.podman import Podman

    found = [n for n in netns.listnetns() if n.startswith(f"ipl-{prefix}-")]
    if Podman.available() is None:
        podman = Podman()
        found += [c["Names"][0] for c in json.loads(podman("ps", "-a", "--format", "json").stdout or "[]")
                  if c["Names"] and c["Names"][0].startswith(f"ipl-{prefix}-")]
    return found


@pytest.mark.parametrize("mode", ["namespaces", "containers"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lab_runs_on_real_peers(path: Path, mode: str, lab_copy: Path, kernel_spec_manager: KernelSpecManager) -> None:
    reason = _why_not(mode)
    if reason:
        print(f"skipping {path.stem} with {mode} peers: {reason}", file=sys.stderr)
        pytest.skip(reason)
    prefix = path.stem[:2]
    assert _leftovers(prefix) == [], "a lab of an earlier run is still there"
    nb = run_lab(path, lab_copy, kernel_spec_manager, peers=mode, cell_timeout=120)
    text = all_output(nb)
    where = {"namespaces": "Peers in network namespaces", "containers": "Peers in containers"}[mode]
    assert where in text, f"{path.name} does not say where its peers ran"
    assert _leftovers(prefix) == [], "the kernel's exit should have taken its lab down"
