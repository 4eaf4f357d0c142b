"""The incremental spider middleware in-process: a real crawler object with the
project's settings, a real archive on both backends, inline responses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.middlewares.incremental import (
    FILTER_CHUNK,
    STOP_AT_ARCHIVED,
    IncrementalMiddleware,
)
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.storage.archive import DatabaseUnavailable
from news_archive.storage.visits import VisitRecord
from news_archive.vocabulary import AliasSeen, PageVisit, Rejection
from tests.crawl.crawling import project_crawler

ARTICLE = "https://www.m-i.kr/news/articleView.html?idxno={}"
FEED = "https://www.m-i.kr/rss/allArticle.xml"
PUBLISHED = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


@pytest.fixture
def crawler(database_url: str) -> Iterator[Crawler]:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
    crawler.stats.open_spider()
    yield crawler
    crawler.get_extension(ArchiveRun).engine_stopped()


def _remember(crawler: Crawler, idxno: int, *, due_in: timedelta, **fields: Any) -> None:
    now = datetime.now(UTC)
    visit = VisitRecord(
        site="maeil_ilbo",
        url=ARTICLE.format(idxno),
        status=fields.pop("status", 200),
        visited_at=now - timedelta(days=1),
        next_visit_at=now + due_in,
        published_at=PUBLISHED,
        **fields,
    )
    crawler.get_extension(ArchiveRun).archive.visits.record([visit])


def _middleware(crawler: Crawler) -> IncrementalMiddleware:
    middleware = IncrementalMiddleware.from_crawler(crawler)
    middleware.spider_opened(crawler.spider)
    return middleware


def _listing_output(crawler: Crawler, middleware: IncrementalMiddleware, *items: Any) -> list[Any]:
    response = HtmlResponse(FEED, body=b"<rss/>", request=Request(FEED))
    return list(middleware.process_spider_output(response, list(items)))


def test_known_articles_that_are_not_due_are_skipped(crawler: Crawler) -> None:
    _remember(crawler, 1, due_in=timedelta(days=3), etag='"a"')
    _remember(crawler, 2, due_in=-timedelta(hours=1), etag='"b"', last_modified="Mon, 05 Jan")
    middleware = _middleware(crawler)
    spider = crawler.spider
    new, not_due, due = (spider.article_request(ARTICLE.format(n)) for n in (3, 1, 2))
    alias = AliasSeen("maeil_ilbo", "https://m-i.kr/x", ARTICLE.format(3))
    output = _listing_output(crawler, middleware, alias, new, not_due, due)
    assert output[0] is alias
    assert [request.url for request in output[1:]] == [ARTICLE.format(3), ARTICLE.format(2)]
    assert output[1] is new and not new.headers.get("If-None-Match")
    conditional = output[2]
    assert conditional.headers["If-None-Match"] == b'"b"'
    assert conditional.headers["If-Modified-Since"] == b"Mon, 05 Jan"
    assert 304 in conditional.meta["handle_httpstatus_list"]
    assert crawler.stats.get_value("archive/skipped/not_due") == 1


def test_backfill_stops_at_a_page_listing_an_archived_article(crawler: Crawler) -> None:
    _remember(crawler, 1, due_in=timedelta(days=3))
    middleware = _middleware(crawler)
    next_page = Request("https://www.m-i.kr/news/articleList.html?page=2")
    next_page.meta[STOP_AT_ARCHIVED] = True
    output = _listing_output(
        crawler, middleware, crawler.spider.article_request(ARTICLE.format(1)), next_page
    )
    assert output == []
    assert crawler.stats.get_value("archive/backfill/stopped_at_archived") == 1
    # With past_archived the spider does not mark it: paging goes on.
    next_page.meta[STOP_AT_ARCHIVED] = False
    assert _listing_output(crawler, middleware, next_page) == [next_page]


def test_a_304_is_a_visit_with_the_next_due_date_and_nothing_else(crawler: Crawler) -> None:
    middleware = _middleware(crawler)
    request = crawler.spider.article_request(ARTICLE.format(7))
    request.headers["If-None-Match"] = '"a"'
    request.meta["published_at"] = PUBLISHED
    response = HtmlResponse(request.url, status=304, body=b"", request=request)
    rejected = Rejection("maeil_ilbo", request.url, "empty_page", "no body")
    (visit,) = middleware.process_spider_output(response, [rejected])
    assert isinstance(visit, PageVisit)
    assert (visit.url, visit.status, visit.published_at) == (request.url, 304, PUBLISHED)
    assert visit.next_visit_at is not None and visit.next_visit_at > visit.fetched_at
    assert crawler.stats.get_value("archive/revisits/conditional") == 1


def test_a_rejected_page_is_revisited_a_day_later(crawler: Crawler) -> None:
    middleware = _middleware(crawler)
    url = ARTICLE.format(8) + "&utm_source=feed"
    request = crawler.spider.article_request(url)
    response = HtmlResponse(url, body=b"<html></html>", request=request)
    rejected = Rejection("maeil_ilbo", url, "not_article", "no body")
    output = list(middleware.process_spider_output(response, [rejected]))
    assert output[0] is rejected
    visit = output[1]
    assert visit.url == ARTICLE.format(8)  # canonical
    assert visit.next_visit_at - visit.fetched_at == timedelta(days=1)


def test_with_incremental_off_everything_is_fetched_and_visits_still_recorded(
    database_url: str,
) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url, INCREMENTAL=False)
    crawler.stats.open_spider()
    try:
        _remember(crawler, 1, due_in=timedelta(days=3))
        middleware = _middleware(crawler)
        known = crawler.spider.article_request(ARTICLE.format(1))
        assert _listing_output(crawler, middleware, known) == [known]
        response = HtmlResponse(known.url, status=304, body=b"", request=known)
        (visit,) = middleware.process_spider_output(response, [])
        assert isinstance(visit, PageVisit)
    finally:
        crawler.get_extension(ArchiveRun).engine_stopped()


def test_a_listing_is_read_a_chunk_at_a_time(crawler: Crawler) -> None:
    """Scrapy hands the middleware an asynchronous output: a feed naming many articles
    is read `FILTER_CHUNK` at a time, never held whole, and judged as the sync path
    judges it (a not-due article skipped, a next page stopped at the archive)."""
    _remember(crawler, 5, due_in=timedelta(days=3))
    middleware = _middleware(crawler)
    spider = crawler.spider
    read = 0

    async def output() -> AsyncIterator[Any]:
        nonlocal read
        for number in range(3 * FILTER_CHUNK):
            read += 1
            yield spider.article_request(ARTICLE.format(number))
        next_page = Request(FEED + "?page=2", meta={STOP_AT_ARCHIVED: True})
        read += 1
        yield next_page

    response = HtmlResponse(FEED, body=b"<rss/>", request=Request(FEED))
    filtered = middleware.process_spider_output_async(response, output())
    first = _step(anext(filtered))
    assert first.url == ARTICLE.format(0)
    assert read == FILTER_CHUNK
    rest = [_step(anext(filtered)) for _ in range(3 * FILTER_CHUNK - 2)]
    assert ARTICLE.format(5) not in {request.url for request in rest}
    with pytest.raises(StopAsyncIteration):
        _step(anext(filtered))
    assert crawler.stats.get_value("archive/skipped/not_due") == 1
    assert crawler.stats.get_value("archive/backfill/stopped_at_archived") == 1


def _step(awaitable: Any) -> Any:
    """The value of an awaitable that awaits nothing real (no event loop needed)."""
    try:
        awaitable.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("awaited something real")


def _read_listing(middleware: IncrementalMiddleware, urls: list[str]) -> list[Any]:
    """A listing's whole asynchronous output through the middleware, on an event loop
    of its own (the middleware sleeps on it while the database is away)."""
    spider = middleware.crawler.spider

    async def output() -> AsyncIterator[Any]:
        for url in urls:
            yield spider.article_request(url)

    async def read() -> list[Any]:
        response = HtmlResponse(FEED, body=b"<rss/>", request=Request(FEED))
        return [item async for item in middleware.process_spider_output_async(response, output())]

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(read())
    finally:
        loop.close()


def test_a_listing_read_during_an_outage_waits_for_the_database(
    crawler: Crawler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive cannot say which articles are known (a server restarting): the
    listing waits and asks again, and once it answers every article is judged as
    usual; none is dropped with the rest of the listing."""
    _remember(crawler, 5, due_in=timedelta(days=3))
    visits = crawler.get_extension(ArchiveRun).archive.visits
    canonical_of = visits.canonical_of
    failures = iter([DatabaseUnavailable("connection refused")] * 2)

    def restarting(urls: Any) -> Any:
        if (error := next(failures, None)) is not None:
            raise error
        return canonical_of(urls)

    monkeypatch.setattr(visits, "canonical_of", restarting)
    middleware = _middleware(crawler)
    started = time.monotonic()
    urls = [ARTICLE.format(number) for number in range(10)]
    read = _read_listing(middleware, urls)
    assert [request.url for request in read] == [url for url in urls if url != ARTICLE.format(5)]
    assert time.monotonic() - started >= 1.5  # 0.5 s, then 1 s
    assert crawler.stats.get_value("archive/listing_waits") == 1
    assert crawler.stats.get_value("archive/skipped/not_due") == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_listing_waits_no_longer_than_the_retry_time(
    crawler: Crawler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Still away after ``ARCHIVE_RETRY_SECONDS``: the outage is raised (the frontier
    logs it and counts ``frontier/errors``)."""
    visits = crawler.get_extension(ArchiveRun).archive.visits

    def away(urls: Any) -> Any:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(visits, "canonical_of", away)
    middleware = _middleware(crawler)
    middleware.retry_seconds = 1.0
    with pytest.raises(DatabaseUnavailable):
        _read_listing(middleware, [ARTICLE.format(1)])
