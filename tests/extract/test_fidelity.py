"""The fidelity report (`tests.fidelity`): its measures, and the figures it must show
over every golden page: exact on ours, and trafilatura's defaults beside them."""

from __future__ import annotations

import pytest

from tests.fidelity import Measure, furniture_lines, main, measures, summaries, token_f1


def test_token_f1_counts_words_as_a_multiset() -> None:
    assert token_f1("가 나 다", "가 나 다") == 1.0
    assert token_f1("", "") == 1.0
    assert token_f1("라 마", "가 나") == 0.0
    # One word of two is right, and one of the golden's three is found twice.
    assert token_f1("가 가", "가 나 다") == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))


def test_furniture_lines_are_lines_found_nowhere_in_the_golden_body() -> None:
    golden = "첫 문단이다. 둘째 문장.\n마지막 문단."
    # A piece of a golden paragraph is no furniture; a line of its own is.
    assert furniture_lines("첫 문단이다.\n둘째 문장.\n마지막  문단.", golden) == []
    assert furniture_lines("첫 문단이다.\n관련기사\n저작권자 © 매일일보", golden) == [
        "관련기사",
        "저작권자 © 매일일보",
    ]


@pytest.fixture(scope="module")
def rows() -> list[Measure]:
    return measures()


def test_ours_is_exact_on_every_golden_page(rows: list[Measure]) -> None:
    ours = [r for r in rows if r.extractor == "ours"]
    assert ours, "no golden article pages"
    wrong = [
        r
        for r in ours
        if r.body_f1 != 1.0 or r.furniture_lines or not (r.title and r.authors and r.published)
    ]
    assert wrong == []


def test_trafilatura_is_measured_on_the_same_pages(rows: list[Measure]) -> None:
    ours = {r.page for r in rows if r.extractor == "ours"}
    theirs = [r for r in rows if r.extractor == "trafilatura"]
    assert {r.page for r in theirs} == ours
    overall = {s.extractor: s for s in summaries(rows) if s.group == "all"}
    # The margin the report exists to show: trafilatura alone leaks furniture.
    assert overall["trafilatura"].body_f1_mean < overall["ours"].body_f1_mean == 1.0
    assert overall["trafilatura"].furniture_lines > 0


def test_the_report_prints_a_table_per_site_and_over_all(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| pages | extractor |")
    assert "| all | ours |" in out and "| all | trafilatura |" in out
