"""Graded exercises: the labs' student notebooks, their solutions, and nbgrader.

Two forms of every lab, cell for cell the same:

* ``labs/0N_*.ipynb`` — what students open.  Each exercise is an *answer cell* holding
  ``answer = ...`` (a comment says what to put there), followed by its *check cell*, which
  shows ``✎ not answered yet`` until the student sets ``answer``
  (:mod:`ipseclab.teaching.labcheck`).
* ``labs/solutions/0N_*.ipynb`` — nbgrader's *source* form: the answers filled in between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``, and each graded check cell ending with a
  hidden test between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``
  (:func:`~ipseclab.teaching.labcheck.assert_passed` on the cell's ``verdict``, which raises unless its
  check passed: what ``nbgrader autograde`` scores).

The cells carry nbgrader's metadata (schema version 3): an answer cell is an autograded answer
(``solution: true, grade: false``), its check cell an autograder test (``grade: true, locked:
true, points``).  :func:`release` is what ``nbgrader generate_assignment`` does to a solution
notebook, restricted to what the labs use (with ``labs/solutions/nbgrader_config.py``'s
``ClearSolutions.code_stub``): it gives the student notebook exactly.

``python -m ipseclab.teaching.grading check`` reports labs whose solution is out of date with
the student notebook; ``... sync`` rebuilds the solutions from the student notebooks, keeping
each solution's answers and hidden tests (found by ``grade_id``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat

__all__ = [
    "ANSWER_STUB",
    "HIDDEN_TEST",
    "graded_cells",
    "release",
    "solution_from",
    "out_of_date",
    "sync",
]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
ANSWER_STUB = "answer = ...  # replace ... with your answer"
HIDDEN_TEST = "\n".join([
    BEGIN_HIDDEN,
    "from ipseclab.teaching.labcheck import assert_passed",
    "",
    "assert_passed(verdict)  # the grader's test: this cell fails unless its check passed",
    END_HIDDEN,
])
SCHEMA_VERSION = 3
LABS = Path(__file__).resolve().parents[2] / "labs"  # in a source checkout


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def is_answer(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_graded(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def graded_cells(nb: Any) -> Iterator[tuple[int, Any]]:
    """(index, cell) of every cell with nbgrader metadata for grading: answers and checks."""
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if meta.get("solution") or meta.get("grade") or meta.get("locked"):
            yield i, cell


def _cut(source: str, begin: str, end: str, stub: list[str]) -> str:
    """``source`` with each begin..end region (marker lines included) replaced by ``stub``,
    line by line as nbgrader's ClearSolutions and ClearHiddenTests do."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"nested {begin!r}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in stub]
        elif end in line:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r}")
    return "\n".join(out)


def release(solution: Any) -> Any:
    """The student notebook of a solution notebook, as ``nbgrader generate_assignment`` makes it
    (answers replaced by :data:`ANSWER_STUB`, hidden tests removed, the answer and check cells
    locked against deletion, the check cells against editing) — without nbgrader's checksums."""
    nb = copy.deepcopy(solution)
    for _, cell in graded_cells(nb):
        if is_answer(cell):
            if BEGIN_SOLUTION not in cell.source:
                raise ValueError(f"answer cell {nbgrader_meta(cell)['grade_id']!r} has no {BEGIN_SOLUTION}")
            cell.source = _cut(cell.source, BEGIN_SOLUTION, END_SOLUTION, [ANSWER_STUB])
            cell.metadata["deletable"] = False
        if is_graded(cell) and not is_answer(cell):
            cell.source = _cut(cell.source, BEGIN_HIDDEN, END_HIDDEN, [])
            cell.metadata["deletable"] = False
            cell.metadata["editable"] = False
    return nb


def solution_from(student: Any, old_solution: Any) -> Any:
    """The solution notebook for ``student``: its cells, except that each answer cell is the old
    solution's cell of the same ``grade_id`` and each graded check cell gets that cell's hidden
    test back.  Raises KeyError for a graded cell the old solution does not have."""
    old = {nbgrader_meta(c)["grade_id"]: c for _, c in graded_cells(old_solution)}
    nb = copy.deepcopy(student)
    for _, cell in graded_cells(nb):
        grade_id = nbgrader_meta(cell)["grade_id"]
        if grade_id not in old:
            raise KeyError(f"no solution for {grade_id!r}: write it into the solution notebook")
        for key in ("deletable", "editable"):
            cell.metadata.pop(key, None)
        if is_answer(cell):
            cell.source = old[grade_id].source
        elif is_graded(cell):
            hidden = old[grade_id].source.split(BEGIN_HIDDEN, 1)
            if len(hidden) == 2:
                cell.source = f"{cell.source}\n{BEGIN_HIDDEN}{hidden[1]}"
    return nb


def _cells(nb: Any) -> list[tuple[Any, ...]]:
    return [(c.cell_type, c.get("id"), c.source, c.metadata) for c in nb.cells]


def pairs(labs: Path = LABS) -> list[tuple[Path, Path]]:
    """(student notebook, solution notebook) for every lab."""
    return [(p, labs / "solutions" / p.name) for p in sorted(labs.glob("0*.ipynb"))]


def out_of_date(labs: Path = LABS) -> list[str]:
    """Why each lab's solution does not release to its student notebook (empty: all in step)."""
    problems = []
    for student_path, solution_path in pairs(labs):
        if not solution_path.is_file():
            problems.append(f"{solution_path.name}: missing")
            continue
        student = nbformat.read(student_path, as_version=4)
        released = release(nbformat.read(solution_path, as_version=4))
        if released.metadata != student.metadata:
            problems.append(f"{student_path.name}: notebook metadata differ")
        a, b = _cells(released), _cells(student)
        if len(a) != len(b):
            problems.append(f"{student_path.name}: {len(a)} cells in the solution, {len(b)} in the lab")
        else:
            problems += [f"{student_path.name}: cell {i} differs" for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return problems


def sync(labs: Path = LABS) -> list[Path]:
    """Rebuild every solution notebook from its student notebook (a missing one too, if its lab
    has no exercise); returns the ones written.  Raises KeyError for an exercise no solution
    answers yet."""
    written = []
    for student_path, solution_path in pairs(labs):
        student = nbformat.read(student_path, as_version=4)
        old = nbformat.read(solution_path, as_version=4) if solution_path.is_file() else nbformat.v4.new_notebook()
        new = solution_from(student, old)
        if _cells(new) != _cells(old) or new.metadata != old.metadata:
            nbformat.write(new, solution_path)
            written.append(solution_path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipseclab.teaching.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "sync"])
    parser.add_argument("labs", nargs="?", type=Path, default=LABS, help="the labs directory (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "sync":
        try:
            written = sync(args.labs)
        except KeyError as e:  # a new exercise: its answer goes into the solution by hand, once
            print(f"cannot sync: {e.args[0]}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}")
    problems = out_of_date(args.labs)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
