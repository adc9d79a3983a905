"""Lab 06 with real peers: namespaces, an nftables NAT router and two daemons (root).

The notebook runs headless with ``USE_NAMESPACES = True``; then its set-up cell runs again in
the same kernel, as a student's second "Run All" does: the first run's lab is taken down and a
new one comes up (one lab per kernel, by name), and the clean-up removes it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, tcpdump); CI runs as root"
    for tool in ("nft", "tcpdump"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (see the Makefile's Debian packages)"
    return None


_REASON = _why_not()
if _REASON:
    print(f"skipping the namespace notebook run: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

LABS = Path(__file__).resolve().parents[1] / "labs"


def test_lab_06_in_namespaces_twice_in_one_kernel(tmp_path: Path) -> None:
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from ipseclab.runtime.netlab.nsproc import netns_exists

    shutil.copytree(LABS, tmp_path / "labs", ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints"))
    nb = nbformat.read(tmp_path / "labs" / "06_nat_traversal.ipynb", as_version=4)
    (param,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("USE_NAMESPACES = False")]
    nb.cells[param].source = nb.cells[param].source.replace("USE_NAMESPACES = False", "USE_NAMESPACES = True", 1)
    (setup,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "NetLab(" in c.source]
    spec = write_kernel_spec(str(tmp_path / "kernels" / "ipl-netns"))
    km = KernelManager(kernel_name="ipl-netns", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(Path(spec).parent)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=120, allow_errors=False, resources={"metadata": {"path": str(tmp_path / "labs")}})
    labs: list[str] = []
    try:
        _run(client, nb, setup, labs)
    finally:  # whatever failed: no lab this kernel made stays behind (by name, processes by PID)
        from ipseclab.runtime.netlab.topology import attach

        for lab in labs:
            if netns_exists(f"ipl-{lab}-left"):
                attach(lab).down()


def _lab_names(cell) -> list[str]:  # noqa: ANN001
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    return [part.split(":")[0] for part in text.split("namespace lab ")[1:]]


def _run(client, nb, setup: int, labs: list[str]) -> None:  # noqa: ANN001
    from ipseclab.runtime.netlab.nsproc import netns_exists

    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                try:
                    client.execute_cell(cell, i)
                finally:
                    if i == setup:
                        labs.extend(_lab_names(cell))
        (name,) = labs
        assert name.startswith("nb06") and name != "nb06", "one lab per kernel, by name"
        client.execute_cell(nb.cells[setup], setup)  # a second Run All in the same kernel
        assert _lab_names(nb.cells[setup]) == [name], "the first run's lab went, a new one came up"
        nb.cells.append(nbformat.v4.new_code_cell("netlab.down()\nprint('down')"))
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    assert not netns_exists(f"ipl-{name}-router"), "the lab is gone after netlab.down()"
