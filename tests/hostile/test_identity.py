"""Identity cannot be forged; redirects that leave the site or loop are recorded
(failures 6 and 7 of the campaign).

A page at ``evil.m-i.kr`` became the current version of a stored article, with a
forged title: every subdomain of ``m-i.kr`` was allowed, and for a URL that names no
article the page's own ``rel=canonical`` decided which article it was. A redirect
loop and a redirect off the site ended without a row. Real crawls (``scrapy crawl``:
the offsite filter, redirects and the duplicate filter are Scrapy's engine), a
normal day 1 then a hostile day 2 built from the 매일일보 seeds, on both backends.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.redirect import (
    MetaRefreshMiddleware as ScrapyMetaRefreshMiddleware,
)
from scrapy.http import HtmlResponse, Response
from sqlalchemy import create_engine, text

from news_archive.crawler.middlewares.offsite import (
    ExactHostOffsiteMiddleware,
    GuardedRedirectMiddleware,
    MetaRefreshMiddleware,
    OffsiteRedirect,
    RedirectLoop,
    may_refresh,
)
from news_archive.crawler.sites import site_for
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.vocabulary import Article, Rejection
from tests.conftest import BACKENDS, fresh_database
from tests.crawl.crawling import SEEDS, HandCrawl, Snapshot, crawl, project_crawler, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
ARCHIVED = MAEIL.format(714398)
ORIGINAL_TITLE = "[변화하는 재계]미래먹거리 AI…ICT업계 합종연횡 본격화"
FORGED_TITLE = "위조된 제목 FORGED"
PAGE = (SEEDS / "maeil_ilbo" / "pages" / "714398.html").read_text("utf-8")
# The archived article's page, every title signal forged; its rel=canonical still
# names the archived article.
FORGED = PAGE.replace(ORIGINAL_TITLE, FORGED_TITLE)
HTML = {"Content-Type": "text/html; charset=UTF-8"}

EVIL = "https://evil.m-i.kr/news/articleView.html?idxno=714398"
ON_SITE_PAGE = "https://www.m-i.kr/news/special.html?id=1"  # names no article
OTHER_ARTICLE = MAEIL.format(900004)  # names another article than its canonical
REDIRECT_OFF_SITE = MAEIL.format(900001)
LOOP = MAEIL.format(900002)
LOOP_VIA = "https://m.m-i.kr/news/articleView.html?idxno=900002"
SELF_LOOP = MAEIL.format(900003)


def _line(url: str, **entry: Any) -> str:
    return json.dumps({"url": url, **entry}) + "\n"


def hostile_day(directory: Path) -> Path:
    """The 매일일보 seeds, whose feed now also lists: a page on another subdomain,
    an on-site page naming no article and an article page, each claiming the
    archived article 714398 with a forged title; a redirect off the site; a
    redirect loop through the mobile host; a redirect to itself."""
    shutil.copytree(SEEDS / "maeil_ilbo", directory)
    (directory / "pages" / "forged.html").write_text(FORGED, "utf-8")
    links = [EVIL, ON_SITE_PAGE, OTHER_ARTICLE, REDIRECT_OFF_SITE, LOOP, SELF_LOOP]
    items = "".join(f"<item><title>x</title><link>{escape(u)}</link></item>" for u in links)
    feed = directory / "feeds" / "allArticle.xml"
    feed.write_bytes(feed.read_bytes().replace(b"<item>", items.encode() + b"<item>", 1))
    manifest = directory / "manifest.jsonl"
    # a new feed (no validators): the day-1 ETag must not turn it into a 304
    lines = [
        _line(json.loads(line)["url"], file=json.loads(line)["file"], headers=HTML)
        if json.loads(line)["url"].endswith("allArticle.xml")
        else line + "\n"
        for line in manifest.read_text("utf-8").splitlines()
    ]
    lines += [
        _line(EVIL, file="pages/forged.html", headers=HTML),
        _line(ON_SITE_PAGE, file="pages/forged.html", headers=HTML),
        _line(OTHER_ARTICLE, file="pages/forged.html", headers=HTML),
        _line(REDIRECT_OFF_SITE, status=301, headers={"Location": EVIL}),
        _line(LOOP, status=302, headers={"Location": LOOP_VIA}),
        _line(LOOP_VIA, status=302, headers={"Location": LOOP}),
        _line(SELF_LOOP, status=302, headers={"Location": SELF_LOOP}),
    ]
    manifest.write_text("".join(lines), "utf-8")
    return directory


@pytest.fixture(scope="module", params=BACKENDS)
def hostile_crawl(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Snapshot, Snapshot, str]]:
    """(database URL, what SQL shows after day 1, after the hostile day 2, day 2's log)."""
    directory = tmp_path_factory.mktemp("identity")
    with fresh_database(request.param, directory) as url:
        no_health = ("-s", "HEALTH_CHECKS_ENABLED=False")
        crawl("maeil_ilbo", SEEDS / "maeil_ilbo", url, *no_health)
        day1 = snapshot(url)
        log = crawl("maeil_ilbo", hostile_day(directory / "day2"), url, *no_health).stderr
        yield url, day1, snapshot(url), log


def _titles(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT title FROM articles UNION ALL SELECT title FROM article_versions")
                ).scalars()
            )
    finally:
        engine.dispose()


def test_no_page_can_forge_an_archived_article(
    hostile_crawl: tuple[str, Snapshot, Snapshot, str],
) -> None:
    url, day1, day2, _ = hostile_crawl
    assert day1.articles[ARCHIVED]["title"] == ORIGINAL_TITLE
    assert not [title for title in _titles(url) if FORGED_TITLE in title]
    assert day2.articles[ARCHIVED]["title"] == ORIGINAL_TITLE
    assert day2.versions[ARCHIVED] == 1
    assert set(day2.articles) == set(day1.articles)  # no article 900004 either


def test_forgeries_and_bad_redirects_each_leave_a_row_and_a_line(
    hostile_crawl: tuple[str, Snapshot, Snapshot, str],
) -> None:
    _, day1, day2, log = hostile_crawl
    errors = {(url, reason) for _, url, _, reason in day2.errors[len(day1.errors) :]}
    expected = {
        (EVIL, "bad_link"),  # another subdomain: off-site, never fetched
        (ON_SITE_PAGE, "canonical_conflict"),
        (OTHER_ARTICLE, "canonical_conflict"),
        (REDIRECT_OFF_SITE, "offsite_redirect"),
        (LOOP, "redirect_loop"),
        (SELF_LOOP, "redirect_loop"),
    }
    assert expected <= errors
    for url, reason in expected:
        assert f"{url}: {reason}" in log, (url, reason)


# --- the pieces, in-process ------------------------------------------------------


def test_rel_canonical_never_chooses_the_article() -> None:
    site = site_for("maeil_ilbo")
    now = datetime.now(UTC)
    for url in (EVIL, ON_SITE_PAGE, OTHER_ARTICLE):
        result = site.extract(url, FORGED.encode(), HTML, now)
        assert isinstance(result, Rejection) and result.reason == "canonical_conflict", url
        assert ARCHIVED in result.detail
    # the URL rules' own article (any alias form of it) is confirmed by its canonical
    amp = "https://m.m-i.kr/news/articleViewAmp.html?idxno=714398"
    for url in (ARCHIVED, amp):
        article = site.extract(url, PAGE.encode(), HTML, now)
        assert isinstance(article, Article) and article.url == ARCHIVED


def _request(url: str, **meta: Any) -> Request:
    return Request(url, meta=meta)


def test_only_the_sites_exact_hosts_are_on_site() -> None:
    crawler = project_crawler(MaeilIlboSpider)
    offsite = ExactHostOffsiteMiddleware.from_crawler(crawler)
    spider = crawler.spider
    for url in (ARCHIVED, "http://m-i.kr/x", "https://m.m-i.kr/x"):
        assert offsite.should_follow(_request(url), spider), url
    for url in (EVIL, "https://www.m-i.kr.evil.example/x", "https://cdn.m-i.kr/a.jpg"):
        assert not offsite.should_follow(_request(url), spider), url


def test_redirect_guard_refuses_loops_and_other_hosts() -> None:
    crawler = project_crawler(MaeilIlboSpider)
    redirect = GuardedRedirectMiddleware.from_crawler(crawler)

    def answer(request: Request, location: str) -> Request | Response:
        response = Response(request.url, status=302, headers={"Location": location})
        return redirect.process_response(request, response)

    hop = answer(_request(LOOP), LOOP_VIA)
    assert isinstance(hop, Request) and hop.url == LOOP_VIA
    with pytest.raises(RedirectLoop, match="redirect loop"):
        answer(hop, LOOP + "#again")  # the same URL after canonicalisation
    with pytest.raises(RedirectLoop):
        answer(_request(SELF_LOOP), SELF_LOOP)
    with pytest.raises(RedirectLoop, match="max redirections"):
        answer(_request(LOOP, redirect_times=20, redirect_ttl=1), MAEIL.format(1))
    with pytest.raises(OffsiteRedirect, match=r"evil\.m-i\.kr"):
        answer(_request(REDIRECT_OFF_SITE), EVIL)


def test_meta_refresh_is_scrapys_and_pages_without_one_pass_undecoded() -> None:
    crawler = project_crawler(MaeilIlboSpider)
    refresh = MetaRefreshMiddleware.from_crawler(crawler)
    scrapys = ScrapyMetaRefreshMiddleware.from_crawler(crawler)
    tag = f'<META HTTP-EQUIV="Refresh" CONTENT="0; URL={MAEIL.format(900005)}">'

    def answer(middleware: Any, body: str, encoding: str = "utf-8") -> Request | Response:
        headers = {"Content-Type": f"text/html; charset={encoding}"}
        response = HtmlResponse(LOOP, body=body.encode(encoding), headers=headers)
        return middleware.process_response(_request(LOOP), response)

    for encoding in ("utf-8", "euc-kr", "utf-16"):
        page = f"<html><head><title>이동</title>{tag}</head></html>"
        moved, expected = answer(refresh, page, encoding), answer(scrapys, page, encoding)
        assert isinstance(moved, Request) and isinstance(expected, Request), encoding
        assert moved.url == expected.url, encoding
    page = answer(refresh, PAGE)
    assert isinstance(page, HtmlResponse) and page._cached_ubody is None  # never decoded
    assert not may_refresh(PAGE.encode())
    assert may_refresh(PAGE.replace("<head>", f"<head>{tag}").encode())
    assert may_refresh(tag.encode("utf-16"))


def test_an_off_site_url_given_to_the_spider_is_a_bad_link(
    database_url: str, tmp_path: Path
) -> None:
    arguments = {"urls": f"{EVIL},{ARCHIVED}"}
    with HandCrawl(MaeilIlboSpider, SEEDS / "maeil_ilbo", database_url, arguments) as run:
        run.crawl(run.start())
    archive = snapshot(database_url)
    assert [(url, reason) for _, url, _, reason in archive.errors] == [(EVIL, "bad_link")]
    assert EVIL not in run.fetched
    assert set(archive.articles) == {ARCHIVED}
