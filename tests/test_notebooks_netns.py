"""Lab 06 on real peers, run twice in one kernel (root).

The notebook runs headless with ``PEERS = "namespaces"`` and with ``"containers"``; then its
set-up cell runs again in the same kernel, as a student's second "Run All" does: the first
run's lab is replaced by a new one of the same name (one lab per kernel), and ``peers.down()``
removes it — namespaces, daemons and nftables, or containers and networks.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from ipseclab.runtime.containers.stack import containers_available  # noqa: E402


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, tcpdump); CI runs as root"
    for tool in ("nft", "tcpdump"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (see the Makefile's Debian packages)"
    return None


_REASON = _why_not()
if _REASON:
    print(f"skipping the real-peer notebook re-run: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

LABS = Path(__file__).resolve().parents[1] / "labs"
LAB_NAME = re.compile(r"lab '([a-z0-9-]+)'")


def _exists(mode: str, name: str) -> bool:
    if mode == "namespaces":
        from ipseclab.runtime.netlab.nsproc import netns_exists

        return netns_exists(f"ipl-{name}-router")
    from ipseclab.runtime.containers.podman import Podman

    return Podman()("container", "exists", f"ipl-{name}-router", check=False).returncode == 0


def _remove(mode: str, name: str) -> None:
    if mode == "namespaces":
        from ipseclab.runtime.netlab.topology import destroy

        destroy(name)
    else:
        from ipseclab.runtime.containers.stack import ContainerLab

        ContainerLab(name, "nat").down()


@pytest.mark.parametrize("mode", ["namespaces", "containers"])
def test_lab_06_on_real_peers_twice_in_one_kernel(mode: str, tmp_path: Path) -> None:
    if mode == "containers" and containers_available():
        print(f"skipping lab 06 in containers: {containers_available()}", file=sys.stderr)
        pytest.skip(containers_available())
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    shutil.copytree(LABS, tmp_path / "labs", ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints"))
    nb = nbformat.read(tmp_path / "labs" / "06_nat_traversal.ipynb", as_version=4)
    (param,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith('PEERS = "memory"')]
    nb.cells[param].source = nb.cells[param].source.replace('PEERS = "memory"', f'PEERS = "{mode}"', 1)
    (setup,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "connect(PEERS" in c.source]
    spec = write_kernel_spec(str(tmp_path / "kernels" / "ipl-real"))
    km = KernelManager(kernel_name="ipl-real", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(Path(spec).parent)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=120, allow_errors=False, resources={"metadata": {"path": str(tmp_path / "labs")}})
    names: list[str] = []
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    try:
                        client.execute_cell(cell, i)
                    finally:
                        if i == setup:
                            names.extend(LAB_NAME.findall("".join(o.get("text", "") for o in cell.outputs)))
            (name,) = names
            assert name.startswith("06-") and _exists(mode, name), "one lab per kernel, by name"
            client.execute_cell(nb.cells[setup], setup)  # a second Run All in the same kernel
            again = LAB_NAME.findall("".join(o.get("text", "") for o in nb.cells[setup].outputs))
            assert again == [name] and _exists(mode, name), "the first run's lab went, a new one came up"
            nb.cells.append(nbformat.v4.new_code_cell("peers.down()\nprint('down')"))
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            assert not _exists(mode, name), "the lab is gone after peers.down()"
    finally:  # whatever failed: no lab this kernel made stays behind
        for name in names:
            if _exists(mode, name):
                _remove(mode, name)
