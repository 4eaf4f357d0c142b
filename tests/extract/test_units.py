"""Small pure functions: dates, bylines, canonical URLs, decoding, feeds, body sources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from news_archive.crawler.extract.bylines import byline_names
from news_archive.crawler.extract.dates import parse_iso, parse_korea_local, parse_rfc822
from news_archive.crawler.extract.decode import DecodeError, decode_html
from news_archive.crawler.extract.feeds import FeedError, PartialFeed, read_rss
from news_archive.crawler.sites import site_for
from news_archive.vocabulary import Article, BodyMethod, BodySource, content_hash
from tests.golden import FETCHED_AT, SEEDS

MAEIL_ILBO = site_for("maeil_ilbo")
SKT_INSIGHT = site_for("skt_insight")


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("승인 2020.06.21 09:00", datetime(2020, 6, 21, 0, 0, tzinfo=UTC)),
        ("입력 2026.11.22 09:30", datetime(2026, 11, 22, 0, 30, tzinfo=UTC)),
        ("2020-06-21 09:00:00", datetime(2020, 6, 21, 0, 0, tzinfo=UTC)),
        ("2021. 03. 15", datetime(2021, 3, 14, 15, 0, tzinfo=UTC)),
        ("2020.01.01 08:59", datetime(2019, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_korea_local_times_become_utc(raw: str, utc: datetime) -> None:
    assert parse_korea_local(raw) == utc


def test_bad_local_dates_are_none() -> None:
    assert parse_korea_local("댓글 0") is None
    assert parse_korea_local("2020.13.45 09:00") is None


def test_iso_and_rfc822() -> None:
    assert parse_iso("2021-03-15T01:00:00+00:00") == datetime(2021, 3, 15, 1, tzinfo=UTC)
    assert parse_iso("2020-06-21T09:00:00+09:00") == datetime(2020, 6, 21, 0, tzinfo=UTC)
    assert parse_iso("2020-06-21T09:00:00") == datetime(2020, 6, 21, 0, tzinfo=UTC)
    assert parse_rfc822("Mon, 15 Mar 2021 01:00:00 +0000") == datetime(2021, 3, 15, 1, tzinfo=UTC)
    assert parse_rfc822("not a date") is None


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("박효길 기자", ("박효길",)),
        ("기자명 박효길", ("박효길",)),
        ("박효길·이지은 기자", ("박효길", "이지은")),
        ("박효길기자", ("박효길",)),
        ("김민수 기자 kms@m-i.kr", ("김민수",)),
        ("글 이정민", ("이정민",)),
        ("SKT 뉴스룸", ()),
        ("매일일보", ()),
        ("온라인뉴스팀", ()),
        ("", ()),
    ],
)
def test_byline_names(raw: str, names: tuple[str, ...]) -> None:
    assert byline_names(raw, ("SKT 뉴스룸", "매일일보")) == names


@pytest.mark.parametrize(
    "url",
    [
        "https://www.m-i.kr/news/articleView.html?idxno=714398",
        "http://www.m-i.kr/news/articleView.html?idxno=714398",
        "https://m-i.kr/news/articleViewAmp.html?idxno=714398",
        "https://www.m-i.kr/news/articlePrint.html?idxno=714398",
        "https://m.m-i.kr/news/articleView.html?idxno=714398&utm_source=naver#comment",
    ],
)
def test_maeil_ilbo_article_urls_share_one_canonical_form(url: str) -> None:
    assert MAEIL_ILBO.canonical_url(url) == "https://www.m-i.kr/news/articleView.html?idxno=714398"


@pytest.mark.parametrize(
    "url",
    [
        "https://news.sktelecom.com/129639",
        "http://news.sktelecom.com/129639/",
        "https://news.sktelecom.com/129639/amp",
        "https://www.sktinsight.com/129639",
        "https://sktinsight.com/129639?utm_source=facebook#respond",
    ],
)
def test_skt_post_urls_share_one_canonical_form(url: str) -> None:
    assert SKT_INSIGHT.canonical_url(url) == "https://news.sktelecom.com/129639"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.m-i.kr/news/articleList.html?view_type=sm",
        "https://www.m-i.kr/news/articleView.html?idxno=abc",
        "https://example.com/news/articleView.html?idxno=1",
        "https://news.sktelecom.com/en/129639",
        "https://news.sktelecom.com/?p=129639",
        "https://news.sktelecom.com/feed",
    ],
)
def test_non_article_urls_have_no_canonical_form(url: str) -> None:
    assert MAEIL_ILBO.canonical_url(url) is None
    assert SKT_INSIGHT.canonical_url(url) is None


def test_decode_prefers_header_then_meta_and_reads_euc_kr_as_cp949() -> None:
    text = '<meta charset="euc-kr"><p>똠방각하 햏자 뷁</p>'
    body = text.encode("cp949")
    decoded, encoding = decode_html(body, {"Content-Type": "text/html"})
    assert "똠방각하 햏자 뷁" in decoded and encoding == "cp949"
    utf8 = '<meta charset="euc-kr"><p>한글</p>'.encode()
    assert "한글" in decode_html(utf8, {"Content-Type": "text/html; charset=utf-8"})[0]


def test_mostly_undecodable_bytes_are_refused() -> None:
    with pytest.raises(DecodeError):
        decode_html(bytes(range(128, 256)) * 40, {"Content-Type": "text/html; charset=utf-8"})


def test_content_hash_ignores_whitespace_only_changes() -> None:
    assert content_hash("제목", "첫 문단\n둘째  문단") == content_hash(
        " 제목 ", "첫 문단\n\n 둘째 문단 "
    )
    assert content_hash("제목", "첫 문단") != content_hash("제목", "첫 문단.")


def test_maeil_feed_dates_are_korea_time() -> None:
    feed = (
        b"<rss version='2.0'><channel><item><title>t</title>"
        b"<link>https://www.m-i.kr/news/articleView.html?idxno=1</link>"
        b"<author>\xeb\xb0\x95\xed\x9a\xa8\xea\xb8\xb8 \xea\xb8\xb0\xec\x9e\x90</author>"
        b"<pubDate>2020-06-21 09:00:00</pubDate></item></channel></rss>"
    )
    (entry,) = MAEIL_ILBO.feed_entries(feed, "https://www.m-i.kr/rss/allArticle.xml")
    assert entry.published_at == datetime(2020, 6, 21, 0, tzinfo=UTC)
    assert entry.authors == ("박효길",)


def test_malformed_feed_is_partial_keeps_readable_items_and_garbage_is_an_error() -> None:
    broken = (
        b"<rss><channel><item><title>A & B</title><link>https://news.sktelecom.com/1</link>"
        b"<pubDate>Mon, 15 Mar 2021 01:00:00 +0000</pubDate></item>"
        b"<item><link>https://news.sktelecom.com/22"
    )
    with pytest.raises(PartialFeed) as partial:
        read_rss(broken)
    # the last item the error broke in is not trusted (its link may be cut)
    assert [item.link for item in partial.value.found] == ["https://news.sktelecom.com/1"]
    with pytest.raises(FeedError):
        read_rss(b"<html><body>Service Unavailable</body></html>")
    with pytest.raises(FeedError):
        read_rss(b"")


@pytest.mark.parametrize(
    ("text", "fallback"),
    [
        ("V1/container", False),
        ("V2/trafilatura-page", True),
        ("unknown/container", True),
        ("unknown/trafilatura-page", True),
    ],
)
def test_body_sources_read_back_what_they_write(text: str, fallback: bool) -> None:
    source = BodySource.parse(text)
    assert source is not None and str(source) == text
    assert source.is_fallback is fallback


@pytest.mark.parametrize("text", ["None", "", "V1", "V1/markup", "/container"])
def test_a_body_source_of_another_form_is_none(text: str) -> None:
    assert BodySource.parse(text) is None


def test_an_article_carries_its_body_source_typed() -> None:
    page = (SEEDS / "maeil_ilbo" / "pages" / "800101.html").read_bytes()
    url = "https://www.m-i.kr/news/articleView.html?idxno=800101"
    article = MAEIL_ILBO.extract(
        url, page, {"Content-Type": "text/html; charset=UTF-8"}, FETCHED_AT
    )
    assert isinstance(article, Article)
    assert article.body_source == BodySource("V2", BodyMethod.CONTAINER)
