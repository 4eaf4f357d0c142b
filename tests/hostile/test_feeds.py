"""Feeds that do not parse, and links that must not be followed (failures 7 and 8).

A truncated feed, a wrongly declared encoding or an entity bomb used to give 0 or
partial entries with no error row; an over-long or malformed link was followed or
dropped without a word. Now each feed is a ``bad_feed`` row and one log line (what
could be trusted of it is still followed) and each link a ``bad_link`` row. The XML
stays safe: no external entity is read, no entity bomb expands. In-process crawls
(`HandCrawl`) of hostile feeds built from the 매일일보 seeds, both backends.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.extract.feeds import link_problem
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.vocabulary import FetchFailure
from tests.crawl.crawling import SEEDS, HandCrawl, Snapshot, project_crawler, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
FEED = (SEEDS / "maeil_ilbo" / "feeds" / "allArticle.xml").read_bytes()
HOSTS = frozenset({"www.m-i.kr", "m-i.kr", "m.m-i.kr"})

_BOMB_ENTITIES = "".join(
    f'<!ENTITY {name} "{("&" + previous + ";") * 10}">'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
ENTITY_BOMB = (
    f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">{_BOMB_ENTITIES}]>'.encode()
    + FEED[FEED.index(b"<rss") :].replace(b"<title>", b"<title>&i;", 3)
)
SECRET = "top-secret-7f3a"


def _item(link: str) -> bytes:
    return f"<item><title>t</title><link>{escape(link)}</link></item>".encode()


def _with_items(*links: str) -> bytes:
    return FEED.replace(b"<item>", b"".join(_item(link) for link in links) + b"<item>", 1)


def hostile_replay(directory: Path, feed: bytes) -> Path:
    """The 매일일보 seeds with their feed replaced by `feed`."""
    shutil.copytree(SEEDS / "maeil_ilbo", directory)
    (directory / "feeds" / "allArticle.xml").write_bytes(feed)
    return directory


def crawl_feed(feed: bytes, directory: Path, database_url: str) -> tuple[HandCrawl, Snapshot]:
    with HandCrawl(MaeilIlboSpider, hostile_replay(directory, feed), database_url) as run:
        run.crawl(run.start())
    return run, snapshot(database_url)


def _reasons(archive: Snapshot) -> list[tuple[str, str]]:
    return [(url, reason) for _, url, _, reason in archive.errors]


FEED_URL = "https://www.m-i.kr/rss/allArticle.xml"
CASES = {
    # cut two thirds in: five whole items, the sixth cut in its description
    "truncated": (FEED[: len(FEED) * 2 // 3], {800101, 800102, 800103, 800104}),
    # EUC-KR bytes declared UTF-8: the links (ASCII) are still good, the text is not
    "euc-kr declared utf-8": (
        FEED.decode("utf-8").encode("euc-kr", errors="replace"),
        {714398, 800101, 800102, 800103, 800104},
    ),
    # UTF-8 bytes declared EUC-KR: the parser gives up at once
    "utf-8 declared euc-kr": (FEED.replace(b'encoding="UTF-8"', b'encoding="EUC-KR"'), set()),
    "entity bomb": (ENTITY_BOMB, set()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_feed_that_parses_only_partly_is_a_bad_feed_and_its_good_items_are_followed(
    case: str, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed, stored = CASES[case]
    with caplog.at_level(logging.WARNING):
        run, archive = crawl_feed(feed, tmp_path / "replay", database_url)
    assert _reasons(archive).count((FEED_URL, "bad_feed")) == 1
    assert run.stats.get_value("archive/failed/bad_feed") == 1
    messages = [r.getMessage() for r in caplog.records]
    lines = [m for m in messages if "bad_feed" in m and not m.startswith("HEALTH CHECK")]
    assert len(lines) == 1 and FEED_URL in lines[0]
    # ...and it fails the run's health (crawler/health.py, bad_feeds).
    assert run.stats.get_value("archive/health/failed/bad_feeds") == 1
    assert {MAEIL.format(n) for n in stored} <= set(archive.articles)
    # nothing expanded from the bomb reaches the archive
    assert not any("aaaaaaaaaa" in (row["title"] or "") for row in archive.articles.values())


def test_a_whole_feed_is_no_bad_feed(database_url: str, tmp_path: Path) -> None:
    _, archive = crawl_feed(FEED, tmp_path / "replay", database_url)
    assert "bad_feed" not in {reason for _, reason in _reasons(archive)}
    assert len(archive.articles) == 5


def test_an_external_entity_is_never_read(database_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, "utf-8")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'.encode()
        + FEED[FEED.index(b"<rss") :].replace(b"<title><![CDATA[", b"<title>&x;<![CDATA[", 1)
    )
    _, archive = crawl_feed(xxe, tmp_path / "replay", database_url)
    assert len(archive.articles) == 5
    assert not any(SECRET in json.dumps(row, default=str) for row in archive.articles.values())


LONG = MAEIL.format(800101) + "&x=" + "a" * 6000
BAD_LINKS = {
    LONG: f"link of {len(LONG)} characters, over the limit of 2000",
    "javascript:alert(1)": "malformed link: not an absolute http(s) URL",
    "http://[::1/news": "malformed link: Invalid IPv6 URL",
    "https://www.m-i.kr:99999/news/articleView.html?idxno=800102": "malformed link: Port out",
    "https://evil.m-i.kr/news/articleView.html?idxno=714398": "off-site link: host 'evil.m-i",
}


def test_over_long_malformed_and_off_site_links_are_bad_links(
    database_url: str, tmp_path: Path
) -> None:
    feed = _with_items(*BAD_LINKS)
    _, archive = crawl_feed(feed, tmp_path / "replay", database_url)
    bad = [url for url, reason in _reasons(archive) if reason == "bad_link"]
    assert len(bad) == len(BAD_LINKS)
    assert bad[0] == LONG[:500] + "…"  # recorded, not the whole 6 KB key
    assert set(bad[1:]) == set(list(BAD_LINKS)[1:])
    assert not any(len(alias) > 2000 for alias in archive.aliases)
    # the feed itself parsed: its good items are stored
    assert len(archive.articles) == 5


@pytest.mark.parametrize(("link", "problem"), BAD_LINKS.items())
def test_link_problem_names_the_problem(link: str, problem: str) -> None:
    assert (link_problem(link, HOSTS, 2000) or "").startswith(problem)


@pytest.mark.parametrize(
    "link",
    [
        MAEIL.format(1),
        "http://m-i.kr/news/articlePrint.html?idxno=1",
        "https://www.m-i.kr/news/articleView.html?idxno=1&q=%ED%95%9C",
    ],
)
def test_good_links_have_no_problem(link: str) -> None:
    assert link_problem(link, HOSTS, 2000) is None


LIST_URL = "https://www.m-i.kr/news/articleList.html?view_type=sm&page=1"


def test_a_list_page_cut_short_is_a_bad_feed_and_its_entries_are_followed(
    sqlite_url: str,
) -> None:
    """A backfill list page is HTML, not XML: no parser error says it was cut, so
    the page's own shape does (no closing tags, fewer bytes than promised)."""
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=sqlite_url)
    try:
        page = (SEEDS / "maeil_ilbo_day2" / "lists" / "all_p1.html").read_bytes()
        cut = page[: page.rindex(b"</ul>")]
        outputs = list(crawler.spider.parse_listing(HtmlResponse(LIST_URL, body=cut)))
        problems = [o for o in outputs if isinstance(o, FetchFailure)]
        assert [(p.url, p.reason) for p in problems] == [(LIST_URL, "bad_feed")]
        assert "cut short" in problems[0].detail
        assert any(isinstance(o, Request) for o in outputs)  # its entries still followed
        whole = list(crawler.spider.parse_listing(HtmlResponse(LIST_URL, body=page)))
        assert not any(isinstance(o, FetchFailure) for o in whole)
    finally:
        crawler.get_extension(ArchiveRun).engine_stopped()
