"""Metadata survives the loss of any one signal: remove the strongest and the
next one in the stated precedence answers with the same value."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from news_archive.crawler.sites import Site, site_for
from news_archive.vocabulary import Article, FeedEntry
from tests.golden import SEEDS

MAEIL_ILBO = site_for("maeil_ilbo")
SKT_INSIGHT = site_for("skt_insight")

FETCHED_AT = datetime(2026, 11, 23, tzinfo=UTC)
HEADERS = {"Content-Type": "text/html; charset=UTF-8"}
MAEIL_URL = "https://www.m-i.kr/news/articleView.html?idxno=800101"
SKT_URL = "https://news.sktelecom.com/129639"
JSON_LD = re.compile(rb'<script type="application/ld\+json"[^>]*>.*?</script>', re.S)


def _without(page: bytes, *patterns: bytes) -> bytes:
    page = JSON_LD.sub(b"", page)
    for pattern in patterns:
        page = re.sub(pattern, b"", page)
    return page


def _extract(site: Site, url: str, body: bytes, feed: FeedEntry | None = None) -> Article:
    result = site.extract(url, body, HEADERS, FETCHED_AT, feed)
    assert isinstance(result, Article), result
    return result


def test_maeil_dates_fall_back_from_json_ld_to_meta_to_visible_markup() -> None:
    page = (SEEDS / "maeil_ilbo" / "pages" / "800101.html").read_bytes()
    full = _extract(MAEIL_ILBO, MAEIL_URL, page)
    no_ld = _extract(MAEIL_ILBO, MAEIL_URL, _without(page))
    markup_only = _extract(
        MAEIL_ILBO, MAEIL_URL, _without(page, rb'<meta property="article:[^>]*>')
    )
    assert full.sources["published_at"] == "json-ld"
    assert no_ld.sources["published_at"] == "article:published_time"
    assert markup_only.sources["published_at"] == "markup"
    assert full.published_at == no_ld.published_at == markup_only.published_at
    assert full.modified_at == no_ld.modified_at == markup_only.modified_at
    assert markup_only.published_raw == "입력 2026.11.22 09:30"


def test_maeil_title_and_authors_fall_back_to_the_feed_entry() -> None:
    page = (SEEDS / "maeil_ilbo" / "pages" / "800101.html").read_bytes()
    stripped = _without(
        page,
        rb'<meta property="og:title"[^>]*>',
        rb'<h3 class="heading">.*?</h3>',
        rb'<li><i class="icon-user-o"></i>[^<]*</li>',
        rb"<title>.*?</title>",
    )
    feed = FeedEntry(url=MAEIL_URL, title="피드 제목", authors=("박효길",))
    article = _extract(MAEIL_ILBO, MAEIL_URL, stripped, feed)
    assert (article.title, article.sources["title"]) == ("피드 제목", "feed")
    assert (article.authors, article.sources["authors"]) == (("박효길",), "feed")


def test_skt_tags_fall_back_to_json_ld_keywords_not_the_sidebar_cloud() -> None:
    page = (SEEDS / "skt_insight" / "pages" / "129639.html").read_bytes()
    without_tag_links = re.sub(rb'<div class="tags-links">.*?</div>', b"", page, flags=re.S)
    article = _extract(SKT_INSIGHT, SKT_URL, without_tag_links)
    assert article.sources["tags"] == "json-ld"
    assert article.tags == ("SKT", "카카오", "초협력", "ESG", "지적재산권", "특허")


def test_skt_date_falls_back_to_the_visible_date_at_korean_midnight() -> None:
    page = (SEEDS / "skt_insight" / "pages" / "129639.html").read_bytes()
    stripped = _without(page, rb'<meta property="article:[^>]*>', rb'datetime="[^"]*"')
    article = _extract(SKT_INSIGHT, SKT_URL, stripped)
    assert article.sources["published_at"] == "markup-date"
    assert article.published_at == datetime(2021, 3, 14, 15, 0, tzinfo=UTC)
