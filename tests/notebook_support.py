"""Running a lab notebook headless, as a student's "Run All" does, with ``PEERS`` set.

Shared by the in-memory run of every lab and of its solution (``test_notebooks.py``) and the
runs on namespace and container peers (``test_notebooks_peers.py``).

What a check cell must show: in a student notebook (``labs/``) a graded check cell (nbgrader
``grade``) follows an unanswered exercise, so it shows the not-answered mark; every other check
cell shows the success mark.  In a solution (``labs/solutions/``) every check cell shows the
success mark.  No cell anywhere may show the failure mark or raise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager

from ipseclab.teaching.labcheck import FAILURE_MARK, SUCCESS_MARK, UNANSWERED_MARK

LABS = Path(__file__).resolve().parents[1] / "labs"
NOTEBOOKS = sorted(LABS.glob("*.ipynb"))
SOLUTIONS = sorted((LABS / "solutions").glob("*.ipynb"))
KERNEL_NAME = "ipseclab-test-python"
CHECK_CALL = re.compile(r"^\s*(?:verdict = )?(check|check_equal|check_answer)\(", re.MULTILINE)
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


def notebook_id(path: Path) -> str:
    """A test id: ``01_phase1_transforms``, ``solutions/01_phase1_transforms``."""
    return path.relative_to(LABS).with_suffix("").as_posix()


def is_solution(path: Path) -> bool:
    return path.parent.name == "solutions"


def is_graded(cell: Any) -> bool:
    """A check cell nbgrader scores (its metadata: ``nbgrader.grade``)."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def set_peers(nb: Any, peers: str) -> None:
    """Set the notebook's ``PEERS`` parameter (its one ``PEERS = "memory"`` line)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and PEERS_LINE.search(c.source)]
    assert len(cells) == 1, "a lab has exactly one PEERS parameter line"
    cells[0].source = PEERS_LINE.sub(f'PEERS = "{peers}"', cells[0].source)


def run_lab(path: Path, lab_copy: Path, ksm: KernelSpecManager, *, peers: str = "memory", cell_timeout: int = 60) -> Any:
    """Execute the copy of ``path`` in ``lab_copy`` with ``PEERS = peers``; check what every
    student-facing cell produced; return the executed notebook."""
    from jupyter_client.manager import KernelManager

    here = lab_copy / path.parent.relative_to(LABS)  # labs/ or labs/solutions/
    nb = nbformat.read(here / path.name, as_version=4)
    set_peers(nb, peers)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    client = nbclient.NotebookClient(nb, km=km, timeout=cell_timeout, allow_errors=False,
                                     resources={"metadata": {"path": str(here)}})
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
            where = notebook_id(path)
            if is_graded(cell) and not is_solution(path):
                assert UNANSWERED_MARK in text and SUCCESS_MARK not in text, \
                    f"an exercise in {where} is answered already (or its check shows nothing):\n{cell.source}\n{text}"
            else:
                assert SUCCESS_MARK in text, f"check cell without success mark in {where}:\n{cell.source}\n{text}"
                assert UNANSWERED_MARK not in text, f"unanswered exercise in {where}:\n{cell.source}\n{text}"
    assert checks >= 1
    assert widgets >= 1, f"{path.name} displayed no widget"
    export = here / "lab-export" / path.stem[:2]
    assert (export / "run.pcap").is_file(), f"{path.name} should export its run into lab-export/{path.stem[:2]}"
    return nb


def all_output(nb: Any) -> str:
    return "\n".join(outputs_text(c) for c in nb.cells if c.cell_type == "code")

