"""Titles lose the site's name at either end, by kind: any usual separator or
brackets, the site's declared names and the page's own ``og:site_name``. Only
page-title-like signals are cleaned; the headline element is kept as printed, and an
unspaced dash, dot, slash, colon or tilde joins words rather than separating a name."""

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
        # Bars separate unspaced too.
        ("AI 업계 합종연횡|매일일보", "AI 업계 합종연횡"),
        ("매일일보｜AI 업계 합종연횡", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 ¦매일일보", "AI 업계 합종연횡"),
        # Spaced separators of every other kind.
        ("AI 업계 합종연횡 • SKT 뉴스룸", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 / 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 ~ 매일일보", "AI 업계 합종연횡"),
        ("AI 업계 합종연횡 » 매일일보", "AI 업계 합종연횡"),
        # What a bracketed name leaves before an unspaced separator goes too.
        ("[매일일보]- AI 업계 합종연횡", "AI 업계 합종연횡"),
        # A mark of the headline's own at its end stays.
        ("새 요금제 나왔어요~ | 매일일보", "새 요금제 나왔어요~"),
        ("지지율 40%/ | 매일일보", "지지율 40%/"),
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
        # Unspaced, a dash, dot, slash, colon or tilde joins the name to a partner's:
        # a joint poll, a joint campaign, a list of papers, never a site suffix.
        "매일일보-한국갤럽 여론조사: 尹 지지율 40%",
        "매일일보·SK텔레콤 공동 캠페인 ‘착한 통신’ 시작",
        "매일일보/한국갤럽 여론조사 결과 발표",
        "매일일보:한국갤럽 공동 조사",
        "매일일보~한국갤럽 공동 조사",
        "매일일보–한국갤럽 공동 조사",
        "지역 언론 공동기획 참여…경기일보·매일일보",
        "지역 언론 공동기획 참여…경기일보-매일일보",
        "지역 언론 공동기획 참여…경기일보/매일일보",
        "지역 언론 공동기획 참여 경기일보 ·매일일보",  # one-sided space: still joined
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


def _maeil_article(headline: str, og_title: str) -> Article:
    """A 매일일보 page of the V2 skin (``h3.heading``) with `headline` and `og_title`."""
    page = (
        f"<html><head><title>{og_title}</title>"
        '<meta property="og:site_name" content="매일일보">'
        f'<meta property="og:title" content="{og_title}">'
        '<meta property="article:published_time" content="2026-11-20T10:00:00+09:00">'
        '<meta property="og:type" content="article"></head><body>'
        f'<header class="article-view-header"><h3 class="heading">{headline}</h3></header>'
        '<article id="article-view-content-div" itemprop="articleBody">'
        + "<p>한국갤럽이 전국 성인 1000명에게 물었다. 응답률은 12.3%였다.</p>" * 4
        + "</article></body></html>"
    )
    result = site_for("maeil_ilbo").extract(
        "https://www.m-i.kr/news/articleView.html?idxno=1234567",
        page.encode(),
        {"Content-Type": "text/html; charset=UTF-8"},
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert isinstance(result, Article)
    return result


@pytest.mark.parametrize(
    "headline",
    [
        "매일일보-한국갤럽 여론조사: 尹 지지율 40%",
        "매일일보·SK텔레콤 공동 캠페인 ‘착한 통신’ 시작",
        "매일일보/한국갤럽 여론조사 결과 발표",
        "지역 언론 공동기획 참여…경기일보·매일일보",
        # Even spaced: the headline the reader sees is never cleaned.
        "매일일보 : 창간 20주년 독자 설문",
    ],
)
def test_headline_element_is_kept_as_printed(headline: str) -> None:
    """The reproducer: ``h3.heading`` = ``매일일보-한국갤럽 여론조사: ...`` was stored
    as ``한국갤럽 여론조사: ...``. The headline element is the article's own headline."""
    result = _maeil_article(headline, f"{headline} - 매일일보")
    assert result.title == headline
    assert result.sources["title"] == "markup"


def test_page_title_signals_are_cleaned_without_a_headline_element() -> None:
    """Without a headline element, ``og:title`` answers and loses its site suffix,
    but not the name at the start of a compound."""
    headline = "매일일보-한국갤럽 여론조사: 尹 지지율 40%"
    page = (
        f"<html><head><title>{headline} - 매일일보</title>"
        f'<meta property="og:title" content="{headline} - 매일일보">'
        '<meta property="article:published_time" content="2026-11-20T10:00:00+09:00">'
        '<meta property="og:type" content="article"></head><body>'
        '<div id="article-view-content-div" class="view_con">'
        + "<p>한국갤럽이 전국 성인 1000명에게 물었다. 응답률은 12.3%였다.</p>" * 4
        + "</div></body></html>"
    )
    result = site_for("maeil_ilbo").extract(
        "https://www.m-i.kr/news/articleView.html?idxno=1234568",
        page.encode(),
        {"Content-Type": "text/html; charset=UTF-8"},
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert isinstance(result, Article)
    assert result.title == headline
    assert result.sources["title"] == "og:title"
