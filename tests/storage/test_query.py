"""The search query language, read without a database."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from news_archive.storage.query import KOREA, Query, QuerySyntaxError, Term, parse


def test_words_are_anded_and_phrases_kept_whole() -> None:
    query = parse('삼성전자 반도체 "협력 방안"', zone=KOREA)
    assert query.groups == (
        (Term("삼성전자"),),
        (Term("반도체"),),
        (Term("협력 방안", phrase=True),),
    )
    assert query.excluded == ()


def test_or_joins_its_neighbours_and_minus_excludes() -> None:
    query = parse('반도체 OR 배터리 OR HBM SKT -카카오 -"카카오 뱅크"', zone=KOREA)
    assert query.groups == (
        (Term("반도체"), Term("배터리"), Term("HBM")),
        (Term("SKT"),),
    )
    assert query.excluded == (Term("카카오"), Term("카카오 뱅크", phrase=True))
    # Lower-case `or` is a word.
    assert parse("a or b", zone=KOREA).groups == ((Term("a"),), (Term("or"),), (Term("b"),))


def test_filters() -> None:
    query = parse(
        'site:maeil_ilbo author:박효길 section:"경제 일반" tag:ESG tag:AI 금리', zone=KOREA
    )
    assert query.filters == {
        "site": ("maeil_ilbo",),
        "author": ("박효길",),
        "section": ("경제 일반",),
        "tag": ("ESG", "AI"),
    }
    assert query.groups == ((Term("금리"),),)
    # A name that is no filter leaves the word as typed.
    assert parse("http://a.b", zone=KOREA).groups == ((Term("http://a.b"),),)


def test_since_and_until_are_whole_days_in_the_zone() -> None:
    query = parse("since:2026-11-24 until:2026-11-24", zone=KOREA)
    # 2026-11-24 in Korea: 2026-11-23 15:00 UTC up to 2026-11-24 15:00 UTC.
    assert query.since == datetime(2026, 11, 23, 15, tzinfo=UTC)
    assert query.until == datetime(2026, 11, 24, 15, tzinfo=UTC)
    assert query.groups == ()
    utc = parse("since:2026-11-24", zone=ZoneInfo("UTC"))
    assert utc.since == datetime(2026, 11, 24, tzinfo=UTC)


def test_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "협력")  # as a macOS terminal may send it
    assert parse(decomposed, zone=KOREA).groups == ((Term("협력"),),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty search query"),
        ("   ", "empty search query"),
        ('"협력 방안', "unclosed quote"),
        ("OR 협력", "OR needs a word on each side"),
        ("협력 OR", "OR needs a word on each side"),
        ("협력 OR OR 방안", "OR needs a word on each side"),
        ("협력 OR -방안", "OR cannot join an excluded word"),
        ("-카카오", "cannot only exclude"),
        ("author:", "author: needs a value"),
        ('site:""', "site: needs a value"),
        ("-site:maeil_ilbo 협력", "cannot be excluded"),
        ("since:2026-13-01", "since:2026-13-01 is not a date"),
        ("until:yesterday", "is not a date"),
        ("since:2026-11-30 until:2026-11-01", "since: is after until:"),
        ("*", "* has no letter or digit"),
        ("-", "- has no letter or digit"),
        ('""', "has no letter or digit"),
        ("협력 %%", "%% has no letter or digit"),
    ],
)
def test_mistakes_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(message)) as error:
        parse(text, zone=KOREA)
    assert "\n" not in str(error.value)


def test_exclusions_with_a_filter_are_a_query() -> None:
    query = parse("-카카오 site:skt_insight", zone=KOREA)
    assert query == Query(excluded=(Term("카카오"),), filters={"site": ("skt_insight",)})
    assert query.terms == []
