"""Execute every teaching notebook in labs/ and every solution in labs/solutions/ headless, the
way a student's "Run All" would.

* Each notebook runs from a clean kernel in a temporary copy of ``labs/`` (its
  exports land there, not in the source tree).
* The kernel is *this* interpreter: a kernelspec written for ``sys.executable``
  into a temporary directory, so the notebook imports the ipseclab under test even
  when another ``python3`` kernelspec is installed on the machine.  The first cell
  of every run checks that (``sys.prefix`` must be ours).
* No cell may raise or show a failed check; every check cell (one calling ``check(``,
  ``check_equal(`` or ``check_answer(``) must have printed the success mark of
  :mod:`ipseclab.teaching.labcheck` — except, in the students' notebooks, the graded check
  cells, whose exercises are not answered yet: they show the not-answered mark.  In the
  solutions every check passes (their hidden tests included); the widgets must have produced
  widget views.
* The notebooks are stored clean: nbformat 4, kernel ``python3``, no outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from notebook_support import (  # noqa: E402
    CHECK_CALL,
    NOTEBOOKS,
    PEERS_LINE,
    SOLUTIONS,
    all_output,
    notebook_id,
    run_lab,
)

CELL_TIMEOUT = 60  # seconds, per cell


def test_the_labs_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_phase1_transforms.ipynb",
        "02_diffie_hellman.ipynb",
        "03_main_vs_aggressive.ipynb",
        "04_quick_mode.ipynb",
        "05_esp.ipynb",
        "06_nat_traversal.ipynb",
        "07_sa_life_cycle.ipynb",
        "08_troubleshooting.ipynb",
        "09_ikev2.ipynb",
        "10_remote_access.ipynb",
    ]
    assert [p.name for p in SOLUTIONS] == [p.name for p in NOTEBOOKS], "every lab has its solution"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=notebook_id)
def test_notebook_is_saved_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"outputs left in {path.name}"
    sources = "\n".join(c.source for c in nb.cells)
    assert "IkeLab(" in sources and "Export" in sources
    assert CHECK_CALL.search(sources), f"{path.name} has no check cell"
    assert len(PEERS_LINE.findall(sources)) == 1, f"{path.name} has no PEERS parameter"
    assert "connect(PEERS" in sources, f"{path.name} does not get its peers from connect(PEERS, ...)"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=notebook_id)
def test_notebook_runs_headless(path: Path, lab_copy: Path, kernel_spec_manager: KernelSpecManager) -> None:
    nb = run_lab(path, lab_copy, kernel_spec_manager, peers="memory", cell_timeout=CELL_TIMEOUT)
    assert "Peers in memory" in all_output(nb), "the lab says where its peers run"
    if path.stem.startswith("04"):  # part 4 says what its own output shows: a rekey at the soft lifetime
        assert "soft lifetime of 540 s of 600 s reached" in all_output(nb)
        part4 = next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## 4."))
        assert "soft lifetime" in part4 and "When the SAs expire" not in part4
