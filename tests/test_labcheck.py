"""The notebooks' check helpers: verdict shown, AssertionError on a wrong answer."""

from __future__ import annotations

import pytest

from ipseclab.teaching import labcheck
from ipseclab.teaching.labcheck import FAILURE_MARK, SUCCESS_MARK, check, check_equal


def test_check_passes_and_prints_the_success_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(1 + 1 == 2, ok="two", hint="never shown") is None
    out = capsys.readouterr().out
    assert out == f"{SUCCESS_MARK} two\n"


def test_check_fails_prints_the_hint_and_raises(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AssertionError, match="count the arrows"):
        check(False, ok="never shown", hint="count the arrows")
    assert capsys.readouterr().out == f"{FAILURE_MARK} count the arrows\n"


def test_check_equal_uses_normalize_on_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    check_equal(" Hash ", "hash", normalize=lambda s: str(s).strip().lower())
    assert capsys.readouterr().out.startswith(SUCCESS_MARK)
    with pytest.raises(AssertionError):
        check_equal("group", "hash", normalize=str.lower)
    assert capsys.readouterr().out.startswith(FAILURE_MARK)


def test_check_equal_default_texts_do_not_reveal_the_expected_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AssertionError) as info:
        check_equal(6, 3)
    assert "6" in str(info.value) and "3" not in str(info.value)
    check_equal(3, 3)
    assert "correct: 3" in capsys.readouterr().out


@pytest.mark.parametrize("unanswered", [..., None])
def test_check_equal_asks_for_an_answer_first(unanswered: object, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AssertionError, match="set `answer`"):
        check_equal(unanswered, 3)
    assert capsys.readouterr().out.startswith(FAILURE_MARK)


def test_in_a_notebook_the_verdict_is_an_html_and_text_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[dict[str, str], bool]] = []

    def fake_display(obj: dict[str, str], raw: bool = False) -> None:
        shown.append((obj, raw))

    import IPython.display

    monkeypatch.setattr(labcheck, "_in_ipython", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    check(True, ok="SKEYID <matches>")
    with pytest.raises(AssertionError):
        check(False, hint="look at MM5")
    (ok_bundle, ok_raw), (bad_bundle, _) = shown
    assert ok_raw is True
    assert ok_bundle["text/plain"] == f"{SUCCESS_MARK} SKEYID <matches>"
    assert f"{SUCCESS_MARK} SKEYID &lt;matches&gt;" in ok_bundle["text/html"]  # escaped
    assert bad_bundle["text/plain"] == f"{FAILURE_MARK} look at MM5"
    assert "#c8293f" in bad_bundle["text/html"]
