"""Running a lab notebook headless, as a student's "Run All" does, with ``PEERS`` set.

Shared by the in-memory run of every lab (``test_notebooks.py``) and the runs on namespace
and container peers (``test_notebooks_peers.py``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager

from ipseclab.teaching.labcheck import FAILURE_MARK, SUCCESS_MARK

LABS = Path(__file__).resolve().parents[1] / "labs"
NOTEBOOKS = sorted(LABS.glob("*.ipynb"))
KERNEL_NAME = "ipseclab-test-python"
CHECK_CALL = re.compile(r"^\s*(check|check_equal)\(", re.MULTILINE)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PEERS_LINE = re.compile(r'^PEERS = "memory"', re.MULTILINE)


def outputs_text(cell: dict[str, Any]) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        for mime in ("text/plain", "text/html"):
            data = out.get("data", {}).get(mime)
            if data:
                parts.append(data if isinstance(data, str) else "".join(data))
    return "\n".join(parts)


def set_peers(nb: Any, peers: str) -> None:
    """Set the notebook's ``PEERS`` parameter (its one ``PEERS = "memory"`` line)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and PEERS_LINE.search(c.source)]
    assert len(cells) == 1, "a lab has exactly one PEERS parameter line"
    cells[0].source = PEERS_LINE.sub(f'PEERS = "{peers}"', cells[0].source)


def run_lab(path: Path, lab_copy: Path, ksm: KernelSpecManager, *, peers: str = "memory", cell_timeout: int = 60) -> Any:
    """Execute the copy of ``path`` in ``lab_copy`` with ``PEERS = peers``; check what every
    student-facing cell produced; return the executed notebook."""
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(lab_copy / path.name, as_version=4)
    set_peers(nb, peers)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    client = nbclient.NotebookClient(nb, km=km, timeout=cell_timeout, allow_errors=False,
                                     resources={"metadata": {"path": str(lab_copy)}})
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:  # as a student's "Shut Down Kernel" does: the kernel exits, its real peers go with it
        if km.has_kernel:
            km.shutdown_kernel(now=False)

    assert outputs_text(nb.cells[0]).strip() == sys.prefix
    checks = widgets = 0
    for cell in nb.cells[1:]:
        if cell.cell_type != "code":
            continue
        text = outputs_text(cell)
        assert FAILURE_MARK not in text, f"a check failed in {path.name}:\n{cell.source}\n{text}"
        widgets += sum(WIDGET_MIME in out.get("data", {}) for out in cell.outputs)
        if CHECK_CALL.search(cell.source):
            checks += 1
            assert SUCCESS_MARK in text, f"check cell without success mark in {path.name}:\n{cell.source}\n{text}"
    assert checks >= 1
    assert widgets >= 1, f"{path.name} displayed no widget"
    export = lab_copy / "lab-export" / path.stem[:2]
    assert (export / "run.pcap").is_file(), f"{path.name} should export its run into lab-export/{path.stem[:2]}"
    return nb


def all_output(nb: Any) -> str:
    return "\n".join(outputs_text(c) for c in nb.cells if c.cell_type == "code")

