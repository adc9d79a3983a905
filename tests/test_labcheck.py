"""The notebooks' check helpers: the verdict shown, no exception unless strict or graded."""

from __future__ import annotations

import pytest

from ipseclab.teaching import labcheck
from ipseclab.teaching.labcheck import (
    FAILURE_MARK,
    STRICT_ENV,
    SUCCESS_MARK,
    UNANSWERED_MARK,
    CheckFailed,
    Verdict,
    assert_passed,
    check,
    check_answer,
    check_equal,
)


@pytest.fixture(autouse=True)
def _lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts outside strict mode."""
    monkeypatch.delenv(STRICT_ENV, raising=False)


def test_check_passes_and_prints_the_success_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(1 + 1 == 2, ok="two", hint="never shown") == Verdict("passed", "two")
    out = capsys.readouterr().out
    assert out == f"{SUCCESS_MARK} two\n"


def test_check_fails_prints_the_hint_and_does_not_raise(capsys: pytest.CaptureFixture[str]) -> None:
    assert not check(False, ok="never shown", hint="count the arrows").passed
    assert capsys.readouterr().out == f"{FAILURE_MARK} count the arrows\n"


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_strict_mode_raises_check_failed_with_the_hint(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(STRICT_ENV, value)
    check(True, ok="fine")
    with pytest.raises(CheckFailed, match="count the arrows") as info:
        check(False, hint="count the arrows")
    assert isinstance(info.value, AssertionError)  # headless runs fail as they did before
    with pytest.raises(CheckFailed, match="not answered yet"):
        check_equal(..., 3)
    out = capsys.readouterr().out
    assert f"{FAILURE_MARK} count the arrows" in out and f"{UNANSWERED_MARK} not answered yet" in out


@pytest.mark.parametrize("value", ["", "0", "no", "false"])
def test_strict_mode_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, value)
    check(False, hint="no exception")


def test_check_failed_renders_as_one_line_in_ipython() -> None:
    lines = CheckFailed("wrong answer — look at MM5")._render_traceback_()
    assert len(lines) == 1 and "CheckFailed" in lines[0] and "look at MM5" in lines[0]


def test_check_equal_uses_normalize_on_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    check_equal(" Hash ", "hash", normalize=lambda s: str(s).strip().lower())
    assert capsys.readouterr().out.startswith(SUCCESS_MARK)
    check_equal("group", "hash", normalize=str.lower)
    assert capsys.readouterr().out.startswith(FAILURE_MARK)


def test_an_answer_of_the_wrong_kind_gets_the_hint_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    check_equal(5, "hash", normalize=str.lower, hint="a word, in quotes")  # str.lower(5) raises
    assert capsys.readouterr().out == f"{FAILURE_MARK} a word, in quotes\n"


def test_check_equal_default_texts_do_not_reveal_the_expected_value(capsys: pytest.CaptureFixture[str]) -> None:
    check_equal(6, 3)
    out = capsys.readouterr().out
    assert out.startswith(FAILURE_MARK) and "6" in out and "3" not in out
    check_equal(3, 3)
    assert "correct: 3" in capsys.readouterr().out


@pytest.mark.parametrize("unanswered", [..., None])
def test_an_unanswered_question_says_so(unanswered: object, capsys: pytest.CaptureFixture[str]) -> None:
    check_equal(unanswered, 3)
    check_answer(unanswered, lambda a: True)  # the test is not even asked
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{UNANSWERED_MARK} {labcheck.NOT_ANSWERED}"] * 2
    assert "set `answer`" in out[0] and FAILURE_MARK not in out[0]


def test_check_answer_runs_its_test_on_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    differing = {"hash"}
    check_answer(" HASH", lambda a: a.strip().lower() in differing, ok="yes", hint="no")
    check_answer("group", lambda a: a.strip().lower() in differing, ok="yes", hint="no")
    assert capsys.readouterr().out == f"{SUCCESS_MARK} yes\n{FAILURE_MARK} no\n"


def test_assert_passed_is_the_hidden_test() -> None:
    verdict = check_equal(3, 3)
    assert_passed(verdict)  # passed: nothing raised
    with pytest.raises(CheckFailed, match="wrong answer — count again"):
        assert_passed(check_equal(3, 3), check_equal(4, 3, hint="count again"))
    with pytest.raises(CheckFailed, match="not answered"):
        assert_passed(check_equal(..., 3))
    with pytest.raises(CheckFailed, match="no check ran"):
        assert_passed()


def test_a_verdict_on_a_cells_last_line_displays_nothing_more() -> None:
    """IPython shows ``Out[]`` for a cell's last value unless it displays itself: a verdict does,
    as nothing (its line was shown when the check ran)."""
    from IPython.core.formatters import DisplayFormatter

    data, metadata = DisplayFormatter().format(check(True, ok="fine"))
    assert data == {} and metadata == {}


def test_in_a_notebook_the_verdict_is_an_html_and_text_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[dict[str, str], bool]] = []

    def fake_display(obj: dict[str, str], raw: bool = False) -> None:
        shown.append((obj, raw))

    import IPython.display

    monkeypatch.setattr(labcheck, "_in_ipython", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    check(True, ok="SKEYID <matches>")
    check(False, hint="look at MM5")
    check_equal(..., 5)
    (ok_bundle, ok_raw), (bad_bundle, _), (open_bundle, _) = shown
    assert ok_raw is True
    assert ok_bundle["text/plain"] == f"{SUCCESS_MARK} SKEYID <matches>"
    assert f"{SUCCESS_MARK} SKEYID &lt;matches&gt;" in ok_bundle["text/html"]  # escaped
    assert bad_bundle["text/plain"] == f"{FAILURE_MARK} look at MM5"
    assert "#c8293f" in bad_bundle["text/html"]
    assert open_bundle["text/plain"].startswith(f"{UNANSWERED_MARK} not answered yet")
    assert "ipl-check-unanswered" in open_bundle["text/html"]
