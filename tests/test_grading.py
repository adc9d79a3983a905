"""Graded exercises: the student notebooks, their solutions, and autograding with nbgrader.

* Every exercise of ``labs/`` is an answer cell holding the placeholder (``answer = ...``) and a
  graded check cell, with nbgrader's metadata; ``labs/solutions/`` releases to ``labs/``
  exactly (:func:`ipseclab.teaching.grading.release`), and ``grading sync`` rebuilds a solution
  after a lab changed.
* In a real kernel, an unanswered or wrong exercise shows its verdict and raises nothing; the
  hidden test and strict mode raise :class:`~ipseclab.teaching.labcheck.CheckFailed`, whose
  traceback is one line.
* With nbgrader (the ``test`` extra): ``generate_assignment`` on a solution gives the student
  notebook, and ``autograde`` gives a right submission full marks, a submission with one wrong
  answer one point less and an unanswered one nothing — for every lab with exercises.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")

from notebook_support import LABS, NOTEBOOKS, SOLUTIONS  # noqa: E402

from ipseclab.teaching import grading  # noqa: E402
from ipseclab.teaching.grading import ANSWER_STUB, BEGIN_SOLUTION, END_SOLUTION  # noqa: E402
from ipseclab.teaching.labcheck import FAILURE_MARK, SUCCESS_MARK, UNANSWERED_MARK  # noqa: E402

GRADED_LABS = [p for p in NOTEBOOKS if not p.name.startswith("07")]  # lab 7 has no exercise
PREFILLED = re.compile(r"^answer\w* = (?!\.\.\.)", re.MULTILINE)


def _nbgrader(cell: Any) -> dict[str, Any]:
    return dict(cell.metadata.get("nbgrader", {}))


def _exercises(nb: Any) -> list[tuple[Any, Any]]:
    """(answer cell, check cell) of every exercise."""
    out = []
    for i, cell in enumerate(nb.cells):
        if _nbgrader(cell).get("solution"):
            out.append((cell, nb.cells[i + 1]))
    return out


def _solution_answers(path: Path) -> dict[str, str]:
    """grade_id of each answer cell -> the answer (the lines between the solution markers)."""
    nb = nbformat.read(LABS / "solutions" / path.name, as_version=4)
    return {
        _nbgrader(cell)["grade_id"]: cell.source.split(BEGIN_SOLUTION + "\n", 1)[1].split("\n" + END_SOLUTION, 1)[0]
        for cell, _ in _exercises(nb)
    }


# -- the notebooks -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_not_prefilled_and_carry_nbgrader_metadata(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    exercises = _exercises(nb)
    assert (len(exercises) > 0) == (path in GRADED_LABS)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not PREFILLED.search(cell.source), f"a pre-filled answer in {path.name}:\n{cell.source}"
    ids = [_nbgrader(c)["grade_id"] for c in nb.cells if _nbgrader(c)]
    assert len(ids) == len(set(ids)) == 2 * len(exercises)
    for answer, checker in exercises:
        meta = _nbgrader(answer)
        assert answer.source.endswith("\n" + ANSWER_STUB) and answer.source.startswith("# ")
        assert meta == {"grade": False, "grade_id": meta["grade_id"], "locked": False, "schema_version": 3, "solution": True}
        meta = _nbgrader(checker)
        assert meta == {"grade": True, "grade_id": meta["grade_id"], "locked": True, "points": 1,
                        "schema_version": 3, "solution": False}
        assert re.search(r"^verdict = (check_equal|check_answer)\(\s*answer\b", checker.source, re.MULTILINE), checker.source
        assert "HIDDEN TESTS" not in checker.source and "SOLUTION" not in answer.source


@pytest.mark.parametrize("path", GRADED_LABS, ids=lambda p: p.stem)
def test_nbgraders_own_validator_accepts_the_metadata(path: Path) -> None:
    pytest.importorskip("nbgrader")
    from nbgrader.nbgraderformat import MetadataValidator

    for nb_path in (path, LABS / "solutions" / path.name):
        MetadataValidator().validate_nb(nbformat.read(nb_path, as_version=4))


def test_the_solutions_release_to_the_student_notebooks() -> None:
    assert [p.name for p in SOLUTIONS] == [p.name for p in NOTEBOOKS]
    assert grading.out_of_date() == [], "run: python -m ipseclab.teaching.grading sync"
    for path in GRADED_LABS:
        nb = nbformat.read(LABS / "solutions" / path.name, as_version=4)
        for answer, checker in _exercises(nb):
            assert BEGIN_SOLUTION in answer.source and "answer = ..." not in answer.source
            assert checker.source.rstrip().endswith(grading.HIDDEN_TEST)


def test_sync_rebuilds_a_solution_after_the_lab_changed(tmp_path: Path) -> None:
    labs = tmp_path / "labs"
    shutil.copytree(LABS, labs, ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints"))
    path = labs / GRADED_LABS[0].name
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source += "\n\nA sentence an author added."
    nbformat.write(nb, path)
    assert grading.main(["check", str(labs)]) == 1
    assert grading.main(["sync", str(labs)]) == 0
    assert grading.out_of_date(labs) == []
    solution = nbformat.read(labs / "solutions" / path.name, as_version=4)
    assert solution.cells[1].source.endswith("A sentence an author added.")
    assert _solution_answers(GRADED_LABS[0]) == {
        _nbgrader(c)["grade_id"]: c.source.split(BEGIN_SOLUTION + "\n", 1)[1].split("\n" + END_SOLUTION, 1)[0]
        for c, _ in _exercises(solution)
    }, "the answers survive a sync"

    (labs / "solutions" / "07_sa_life_cycle.ipynb").unlink()  # a lab without exercise: rebuilt as it is
    assert grading.main(["sync", str(labs)]) == 0 and grading.out_of_date(labs) == []

    nb.cells[-1].metadata["nbgrader"] = {"grade": True, "grade_id": "new_check", "locked": True, "points": 1,
                                         "schema_version": 3, "solution": False}
    nbformat.write(nb, path)  # a new graded cell: its solution is written by hand, once
    assert grading.main(["sync", str(labs)]) == 2


# -- in a kernel --------------------------------------------------------------------------------


def test_in_a_kernel_a_wrong_answer_shows_the_hint_and_no_traceback(kernel_spec_manager: Any) -> None:
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.manager import KernelManager
    from notebook_support import KERNEL_NAME, outputs_text

    cells = [
        "from ipseclab.teaching.labcheck import check_equal, assert_passed\nanswer = ...",
        "check_equal(answer, 3, hint='count the arrows')",  # unanswered
        "answer = 4\ncheck_equal(answer, 3, hint='count the arrows')",  # wrong
        "verdict = check_equal(answer, 3, hint='count the arrows')\nassert_passed(verdict)",  # the hidden test
        "answer = 3\nverdict = check_equal(answer, 3, ok='three')\nassert_passed(verdict)",  # right
        "import os\nos.environ['IPSECLAB_STRICT_CHECKS'] = '1'\ncheck_equal(5, 3, hint='strict')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager)
    client = nbclient.NotebookClient(nb, km=km, timeout=60, allow_errors=True)
    try:
        client.execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    errors = [[o for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    texts = [outputs_text(c) for c in nb.cells]
    assert UNANSWERED_MARK in texts[1] and "not answered yet" in texts[1] and not errors[1]
    assert f"{FAILURE_MARK} count the arrows" in texts[2] and not errors[2]
    assert f"{SUCCESS_MARK} three" in texts[4] and not errors[4]
    for i, message in ((3, "wrong answer — count the arrows"), (5, "strict")):
        (error,) = errors[i]
        assert error.ename == "CheckFailed" and message in error.evalue
        assert len(error.traceback) == 1 and "CheckFailed" in error.traceback[0], error.traceback


# -- nbgrader -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A course directory with every graded lab as an assignment (``lab01`` ...) generated from
    its solution by ``nbgrader generate_assignment``, and the environment to run nbgrader in: a
    ``python3`` kernelspec for this interpreter, no user configuration."""
    pytest.importorskip("nbgrader")
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("nbgrader")
    data, config, course = root / "jupyter-data", root / "jupyter-config", root / "course"
    spec = json.loads((Path(write_kernel_spec(str(data / "kernels" / "python3"))) / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    config.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPSECLAB_"))}
    env.update(JUPYTER_PATH=str(data), JUPYTER_CONFIG_DIR=str(config),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")  # nbgrader runs alembic
    course.mkdir()
    shutil.copy(LABS / "solutions" / "nbgrader_config.py", course)
    for path in GRADED_LABS:
        source = course / "source" / f"lab{path.name[:2]}"
        source.mkdir(parents=True)
        shutil.copy(LABS / "solutions" / path.name, source)
        if path.name.startswith("08"):
            shutil.copytree(LABS / "captures", source / "captures")
        _run(env, course, "generate_assignment", source.name)
    return course, env


def _run(env: dict[str, str], course: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def _submit(course: Path, assignment: str, student: str, path: Path, answers: dict[str, str]) -> None:
    """A student's copy of the released notebook with some exercises answered."""
    nb = copy.deepcopy(nbformat.read(course / "release" / assignment / path.name, as_version=4))
    for answer, _ in _exercises(nb):
        grade_id = _nbgrader(answer)["grade_id"]
        if grade_id in answers:
            answer.source = answer.source.replace(ANSWER_STUB, answers[grade_id])
    target = course / "submitted" / student / assignment
    target.mkdir(parents=True)
    nbformat.write(nb, target / path.name)
    if (course / "release" / assignment / "captures").is_dir():
        shutil.copytree(course / "release" / assignment / "captures", target / "captures")


@pytest.mark.parametrize("path", GRADED_LABS, ids=lambda p: p.stem)
def test_nbgrader_autogrades_a_wrong_and_a_right_submission(path: Path, course: tuple[Path, dict[str, str]]) -> None:
    from nbgrader.api import Gradebook

    root, env = course
    assignment = f"lab{path.name[:2]}"
    released = nbformat.read(root / "release" / assignment / path.name, as_version=4)
    student = nbformat.read(path, as_version=4)
    assert [(c.cell_type, c.source) for c in released.cells] == [(c.cell_type, c.source) for c in student.cells], \
        "nbgrader's release of the solution should be the student notebook"

    right = _solution_answers(path)
    first = next(iter(right))
    wrong = {**right, first: 'answer = "not this"  # a wrong answer'}
    _submit(root, assignment, "right", path, right)
    _submit(root, assignment, "wrong", path, wrong)
    _submit(root, assignment, "blank", path, {})
    _run(env, root, "autograde", assignment, "--create")

    points = len(right)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(assignment, s).score for s in ("right", "wrong", "blank")}
        graded = {g.name: g.score for g in gradebook.find_submission_notebook(path.stem, assignment, "wrong").grades}
        assert gradebook.find_submission(assignment, "right").max_score == points
    assert scores == {"right": points, "wrong": points - 1, "blank": 0}, scores
    assert graded[first.replace("_answer", "_check")] == 0

    feedback = nbformat.read(root / "autograded" / "wrong" / assignment / path.name, as_version=4)
    (checker,) = [c for c in feedback.cells if _nbgrader(c).get("grade_id") == first.replace("_answer", "_check")]
    (error,) = [o for o in checker.outputs if o.output_type == "error"]
    assert error.ename == "CheckFailed" and len(error.traceback) == 1  # one line, not a stack
    assert "BEGIN HIDDEN TESTS" in checker.source, "autograde puts the hidden test back"
