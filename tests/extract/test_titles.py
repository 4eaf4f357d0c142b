"""Titles lose the site's name at either end, by kind: any usual separator or
brackets, the site's declared names and the page's own ``og:site_name``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from news_archive.crawler.extract.titles import clean_title
from news_archive.crawler.sites import site_for
from news_archive.vocabulary import Article

NAMES = ("매일일보", "SKT 뉴스룸")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("AI 업계 합종연횡 - 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 – 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 — 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 | 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 ｜ 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 :: 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 : 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 · 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 < 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 <매일일보>", "AI 업계 합종연횡"),
        ("[매일일보] AI 업계 합종연횡", "AI 업계 합종연횡"),
        ("【매일일보】AI 업계 합종연횡", "AI 업계 합종연횡"),
        ("매일일보 :: AI 업계 합종연횡", "AI 업계 합종연횡"),
        ("매일일보 - AI 업계 합종연횡 | 매일일보", "AI 업계 합종연횡"),
        ("에이닷 통역콜 확대 - SKT  뉴스룸", "에이닷 통역콜 확대"),
        ("  에이닷   통역콜 확대  ", "에이닷 통역콜 확대"),
    ],
)
def test_site_name_is_stripped_at_either_end(title: str, expected: str) -> None:
    assert clean_title(title, NAMES) == expected


@pytest.mark.parametrize(
    "title",
    [
        "매일일보 창간 20주년 기념식 열려",  # the name is the headline's subject
        "독자가 뽑은 올해의 매일일보 기사",  # mid-string
        "[변화하는 재계]미래먹거리 AI…ICT업계 합종연횡 본격화",  # a series tag, no name
        "[매일일보 박효길 기자] 제목처럼 쓰인 줄",  # a dateline is not a bracketed name
        "SKT·카카오, AI 협력",  # "SKT" alone is not a declared name
    ],
)
def test_name_inside_the_headline_stays(title: str) -> None:
    assert clean_title(title, NAMES) == title


def test_never_an_empty_title() -> None:
    assert clean_title("매일일보", NAMES) == "매일일보"
    assert clean_title("[매일일보]", NAMES) == "[매일일보]"
    assert clean_title("   ", NAMES) is None
    assert clean_title(None, NAMES) is None


def test_page_site_name_counts_too() -> None:
    """A name the site never declared, given by the page (``og:site_name``), is stripped."""
    page = (
        "<html><head><title>새 요금제 출시 | 티뉴스</title>"
        '<meta property="og:site_name" content="티뉴스">'
        '<meta property="og:title" content="새 요금제 출시 | 티뉴스">'
        '<meta property="article:published_time" content="2026-11-20T10:00:00+09:00">'
        '<meta property="og:type" content="article"></head><body>'
        '<article class="post"><div class="entry-content">'
        + "<p>SK텔레콤이 새 요금제를 내놓았다. 데이터 제공량을 늘리고 값은 내렸다.</p>" * 4
        + "</div></article></body></html>"
    )
    result = site_for("skt_insight").extract(
        "https://news.sktelecom.com/131313",
        page.encode(),
        {"Content-Type": "text/html; charset=UTF-8"},
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert isinstance(result, Article)
    assert result.title == "새 요금제 출시"
    assert result.sources["title"] == "og:title"
