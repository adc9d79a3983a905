"""Check cells for the lab notebooks: a green tick, a red cross with a hint, or "not answered yet".

A notebook ends a part with a question, an answer cell the student fills in and a check::

    answer = ...  # replace ... with your answer
    check_equal(answer, len(aggressive_messages), ok="Three messages: ...", hint="Count the AM arrows ...")

The verdict is one line, shown as coloured HTML in Jupyter and printed anywhere else, starting
with :data:`SUCCESS_MARK` (right), :data:`FAILURE_MARK` (wrong: the hint follows) or
:data:`UNANSWERED_MARK` (``answer`` still ``...`` or ``None``).  A wrong or missing answer does
**not** raise: the student sees the hint and no traceback, and "Run All" goes on to the next
part.  Where a failure must stop or fail a cell, it raises :class:`CheckFailed`:

* with the environment variable ``IPSECLAB_STRICT_CHECKS=1`` (in the kernel's environment) every
  check that does not pass raises — for headless runs (``jupyter nbconvert --execute``,
  ``nbclient``) that should fail at the first wrong check;
* every check returns its :class:`Verdict`; :func:`assert_passed` raises unless the verdicts it is
  given passed.  It is the hidden test of the graded check cells (``verdict = check_equal(...)``,
  then nbgrader's ``### BEGIN HIDDEN TESTS``): students never see it, and ``nbgrader
  autograde`` marks the cell failed when it raises.

:class:`CheckFailed` is an :class:`AssertionError` whose traceback IPython replaces with one line
(its ``_render_traceback_``).  Tests look for the marks in the cells' outputs.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FAILURE_MARK",
    "STRICT_ENV",
    "SUCCESS_MARK",
    "UNANSWERED_MARK",
    "CheckFailed",
    "Verdict",
    "assert_passed",
    "check",
    "check_answer",
    "check_equal",
    "is_unanswered",
]

SUCCESS_MARK = "\u2713"  # ✓
FAILURE_MARK = "\u2717"  # ✗
UNANSWERED_MARK = "\u270e"  # ✎
STRICT_ENV = "IPSECLAB_STRICT_CHECKS"

PASSED, FAILED, UNANSWERED = "passed", "failed", "unanswered"
_MARK = {PASSED: SUCCESS_MARK, FAILED: FAILURE_MARK, UNANSWERED: UNANSWERED_MARK}
_STYLE = {
    PASSED: "color:#176b2c;background:#e7f5ea;border-left:4px solid #2e9e4f",
    FAILED: "color:#8a1020;background:#fdecee;border-left:4px solid #c8293f",
    UNANSWERED: "color:#24405c;background:#eef3f8;border-left:4px solid #6b8bb0",
}
NOT_ANSWERED = "not answered yet: set `answer` in the cell above, then run this cell again"


class CheckFailed(AssertionError):
    """A check that did not pass, raised in strict mode and by :func:`assert_passed`.

    In IPython its traceback is a single line (``CheckFailed: <hint>``), not a stack.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is installed with the lab extra
        return False
    return get_ipython() is not None


@dataclass(frozen=True)
class Verdict:
    """What one check said: ``status`` (passed, failed, unanswered) and the line it showed.

    A check's return value; it displays as nothing, so a check on a cell's last line adds no
    ``Out[]`` under its verdict line."""

    status: str
    text: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def _ipython_display_(self) -> None:
        """The verdict line was shown when the check ran."""


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "no", "false")


def _show(status: str, text: str) -> None:
    """Display one verdict line: HTML in a notebook, plain text elsewhere."""
    plain = f"{_MARK[status]} {text}"
    if _in_ipython():
        from IPython.display import display

        body = html.escape(plain).replace("\n", "<br>")
        markup = (
            f'<div class="ipl-check ipl-check-{status}" style="{_STYLE[status]};padding:6px 10px;'
            f'margin:4px 0;font-family:var(--jp-ui-font-family,sans-serif);font-size:14px">{body}</div>'
        )
        display({"text/html": markup, "text/plain": plain}, raw=True)
    else:
        print(plain)


def _verdict(status: str, text: str) -> Verdict:
    """Show the verdict and return it; raise if strict and it did not pass."""
    _show(status, text)
    if status != PASSED and _strict():
        raise CheckFailed(text)
    return Verdict(status, text)


def is_unanswered(answer: Any) -> bool:
    """True for the answer cells' placeholder (``...``) and for ``None``."""
    return answer is ... or answer is None


def check(condition: bool, ok: str = "correct", hint: str = "not quite: look again") -> Verdict:
    """Show ``✓ ok`` when ``condition`` holds, otherwise ``✗ hint`` (no exception, unless strict)."""
    passed = bool(condition)
    return _verdict(PASSED if passed else FAILED, ok if passed else hint)


def check_answer(
    answer: Any,
    test: Callable[[Any], Any],
    *,
    ok: str = "correct",
    hint: str = "not quite: look again",
) -> Verdict:
    """Check a student's ``answer`` with ``test(answer)``.

    The placeholder (``...`` or ``None``) shows ``✎ not answered yet``; an answer ``test`` cannot
    handle (it raises, e.g. a number where a string was expected) counts as wrong.
    """
    if is_unanswered(answer):
        return _verdict(UNANSWERED, NOT_ANSWERED)
    try:
        passed = bool(test(answer))
    except Exception:  # a wrong kind of answer: the hint, not a traceback
        passed = False
    return check(passed, ok=ok, hint=hint)


def check_equal(
    answer: Any,
    expected: Any,
    *,
    ok: str | None = None,
    hint: str | None = None,
    normalize: Callable[[Any], Any] | None = None,
) -> Verdict:
    """Check that ``answer`` equals ``expected`` (after ``normalize``, if given, on both).

    An unanswered question (``answer`` left as ``...`` or ``None``) shows ``✎ not answered yet``.
    For strings, pass e.g. ``normalize=lambda s: str(s).strip().lower()`` to forgive case and
    spaces.  The default hint never shows ``expected``.
    """

    def same(value: Any) -> bool:
        return normalize(value) == normalize(expected) if normalize else value == expected

    return check_answer(
        answer,
        same,
        ok=ok or f"correct: {answer!r}",
        hint=hint or f"{answer!r} is not what this run shows: look again",
    )


def assert_passed(*verdicts: Verdict) -> None:
    """Raise :class:`CheckFailed` unless every verdict given passed (and at least one was).

    The graded check cells' hidden test (``assert_passed(verdict)``): a question left
    unanswered or answered wrong fails the cell, which is how ``nbgrader autograde`` scores it.
    """
    if not verdicts:
        raise CheckFailed("no check ran in this cell")
    for v in verdicts:
        if v.status == UNANSWERED:
            raise CheckFailed("not answered")
        if v.status == FAILED:
            raise CheckFailed(f"wrong answer — {v.text}")
