"""Check cells for the lab notebooks: a green tick or a red cross with a hint.

A notebook ends each part with a question and an automatic check::

    answer = 3      # students may change this and re-run the cell
    check_equal(answer, len(aggressive_messages), ok="Three messages: ...", hint="Count the AM arrows ...")

In Jupyter the verdict is shown as a coloured line (HTML); anywhere else it is
printed.  A wrong answer also raises :class:`AssertionError` with the hint, so a
notebook executed headless (CI, ``nbclient``, ``jupyter nbconvert --execute``)
fails exactly where a student would see the red cross.

Both the HTML and the plain-text form of a verdict start with
:data:`SUCCESS_MARK` or :data:`FAILURE_MARK`, which is what tests look for.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

__all__ = ["FAILURE_MARK", "SUCCESS_MARK", "check", "check_equal"]

SUCCESS_MARK = "\u2713"  # ✓
FAILURE_MARK = "\u2717"  # ✗

_STYLE = {
    True: "color:#176b2c;background:#e7f5ea;border-left:4px solid #2e9e4f",
    False: "color:#8a1020;background:#fdecee;border-left:4px solid #c8293f",
}


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is installed with the lab extra
        return False
    return get_ipython() is not None


def _show(passed: bool, text: str) -> None:
    """Display one verdict line: HTML in a notebook, plain text elsewhere."""
    plain = f"{SUCCESS_MARK if passed else FAILURE_MARK} {text}"
    if _in_ipython():
        from IPython.display import display

        body = html.escape(plain).replace("\n", "<br>")
        markup = (
            f'<div class="ipl-check" style="{_STYLE[passed]};padding:6px 10px;margin:4px 0;'
            f'font-family:var(--jp-ui-font-family,sans-serif);font-size:14px">{body}</div>'
        )
        display({"text/html": markup, "text/plain": plain}, raw=True)
    else:
        print(plain)


def check(condition: bool, ok: str = "correct", hint: str = "not quite: look again") -> None:
    """Show ``✓ ok`` when ``condition`` holds; otherwise show ``✗ hint`` and raise.

    Raises :class:`AssertionError` (message: ``hint``) on failure, which makes a
    headless run of the notebook fail at this cell.  Returns None, so a check as
    the last line of a cell adds no ``Out[]`` value under the verdict.
    """
    passed = bool(condition)
    _show(passed, ok if passed else hint)
    if not passed:
        raise AssertionError(hint)


def check_equal(
    answer: Any,
    expected: Any,
    *,
    ok: str | None = None,
    hint: str | None = None,
    normalize: Callable[[Any], Any] | None = None,
) -> None:
    """Check that ``answer`` equals ``expected`` (after ``normalize``, if given, on both).

    An unanswered question (``answer`` left as ``...`` or ``None``) gets its own
    hint.  For strings, pass e.g. ``normalize=lambda s: str(s).strip().lower()``
    to forgive case and spaces.
    """
    if answer is ... or answer is None:
        check(False, hint="set `answer` in the cell above first, then run this cell again")
    a, e = (normalize(answer), normalize(expected)) if normalize else (answer, expected)
    passed = a == e
    ok_text = ok or f"correct: {answer!r}"
    hint_text = hint or f"{answer!r} is not what this run shows: look again"
    check(passed, ok=ok_text, hint=hint_text)
