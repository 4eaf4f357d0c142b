"""The WARC capture middleware in-process: a real crawler object with the project's
settings, the crawl owner's archive on both backends, inline responses."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse, Response
from sqlalchemy import text

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.middlewares.capture import WarcCaptureMiddleware, captures_produced
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.crawler.warc import WarcArchive, payload_digest
from news_archive.storage.archive import ArchiveError, DatabaseUnavailable
from news_archive.storage.captures import CaptureLink, CaptureRecord
from news_archive.vocabulary import Article
from tests.crawl.crawling import SqliteLockedAWhile, project_crawler
from tests.storage.factories import make_article

T = TypeVar("T")
PAGE = "https://www.m-i.kr/news/articleView.html?idxno={}"
BODY = "<html><body><p>합종연횡, 똠방각하</p></body></html>".encode("cp949")


@pytest.fixture
def crawler(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Crawler]:
    crawler = project_crawler(
        MaeilIlboSpider,
        DATABASE_URL=database_url,
        WARC_ENABLED=True,
        WARC_DIR=str(tmp_path / "warc"),
        **getattr(request, "param", {}),
    )
    crawler.stats.open_spider()
    yield crawler
    crawler.get_extension(ArchiveRun).engine_stopped()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`coroutine` run to its end on a loop of its own (``asyncio.run`` would leave
    the thread without a current event loop, which later tests rely on)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _capture(middleware: WarcCaptureMiddleware, request: Request, response: Response) -> Response:
    """The middleware's `process_response` (a coroutine: the record is written in
    its writer thread), run to its end."""
    return _run(middleware.process_response(request, response))


def _response(url: str, body: bytes = BODY) -> HtmlResponse:
    headers = {"Content-Type": "text/html; charset=euc-kr", "ETag": '"v1"'}
    return HtmlResponse(url, body=body, headers=headers, request=Request(url))


def test_each_response_is_written_and_indexed_and_a_repeat_is_a_revisit(
    crawler: Crawler, tmp_path: Path
) -> None:
    middleware = WarcCaptureMiddleware.from_crawler(crawler)
    middleware.spider_opened(crawler.spider)
    first = _capture(middleware, Request(PAGE.format(1)), _response(PAGE.format(1)))
    again = _capture(middleware, Request(PAGE.format(2)), _response(PAGE.format(2)))
    middleware.spider_closed(crawler.spider)

    captures = WarcArchive(tmp_path / "warc").captures()
    # each response names its record before any index row exists
    assert [first.meta["capture"], again.meta["capture"]] == [
        (f"{middleware.run_directory.name}/{c.record.file.name}", c.record.offset) for c in captures
    ]
    assert [(c.url, c.record_type) for c in captures] == [
        (PAGE.format(1), "response"),
        (PAGE.format(2), "revisit"),
    ]
    # The revisit answers with the first payload, byte for byte as on the wire.
    archive = WarcArchive(tmp_path / "warc")
    replayed = archive.retrieve_response(captures[1], decode=True)
    assert (replayed.status, replayed.body) == (200, BODY)
    # Indexed in the crawl's one archive, with where each record starts.
    engine = crawler.get_extension(ArchiveRun).archive.engine
    with engine.connect() as connection:
        rows = connection.execute(
            text('SELECT url, record_type, warc_file, "offset" FROM captures ORDER BY id')
        ).all()
    assert [(url, kind) for url, kind, _, _ in rows] == [
        (PAGE.format(1), "response"),
        (PAGE.format(2), "revisit"),
    ]
    for (_, _, warc_file, offset), capture in zip(rows, captures, strict=True):
        assert archive.locate(warc_file, offset).url == capture.url


def test_payloads_an_earlier_run_wrote_are_asked_for_once_per_batch(
    crawler: Crawler, tmp_path: Path
) -> None:
    """The writer thread takes the responses waiting as a batch and asks the index
    once for all their payloads: one an earlier run wrote becomes a revisit of that
    run's record."""
    day1 = WarcCaptureMiddleware.from_crawler(crawler)
    day1.spider_opened(crawler.spider)
    _capture(day1, Request(PAGE.format(1)), _response(PAGE.format(1)))
    day1.spider_closed(crawler.spider)

    day2 = WarcCaptureMiddleware.from_crawler(crawler)
    day2.spider_opened(crawler.spider)
    assert day2.captures is not None
    index, asked, go_on = day2.captures.first_with_digests, [], threading.Event()

    def first_with_digests(digests: Sequence[str]) -> Any:
        asked.append(list(digests))
        go_on.wait(10)  # the first batch waits until every response is handed over
        return index(digests)

    day2.captures.first_with_digests = first_with_digests  # type: ignore[method-assign]
    new = "<html><body><p>새 기사</p></body></html>".encode("cp949")
    pages = [(3, BODY), (4, new), (5, new)]  # seen on day 1; new; the same new one

    def capture(i: int, body: bytes) -> asyncio.Future[Response]:
        request, response = Request(PAGE.format(i)), _response(PAGE.format(i), body)
        return asyncio.ensure_future(day2.process_response(request, response))

    async def one_then_two() -> list[Response]:
        answers = [capture(*pages[0])]
        while not asked:  # the writer asks about the first, alone
            await asyncio.sleep(0.01)
        answers += [capture(*page) for page in pages[1:]]  # these two wait meanwhile
        await asyncio.sleep(0.1)
        go_on.set()
        return list(await asyncio.gather(*answers))

    _run(one_then_two())
    day2.spider_closed(crawler.spider)

    assert asked == [[payload_digest(BODY)], [payload_digest(new)] * 2]
    assert day2.run_directory is not None
    archive = WarcArchive(tmp_path / "warc")
    day2_urls = {PAGE.format(i) for i, _ in pages}
    captures = [c for c in archive.captures(day2.run_directory) if c.url in day2_urls]
    assert [(c.url, c.record_type) for c in captures] == [
        (PAGE.format(3), "revisit"),
        (PAGE.format(4), "response"),
        (PAGE.format(5), "revisit"),
    ]
    assert [archive.retrieve_response(c, decode=True).body for c in captures] == [BODY, new, new]


def test_capture_off_means_no_middleware(database_url: str) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url, WARC_ENABLED=False)
    try:
        with pytest.raises(NotConfigured):
            WarcCaptureMiddleware.from_crawler(crawler)
    finally:
        # The crawl's owner opened the archive when the crawler was built.
        crawler.get_extension(ArchiveRun).engine_stopped()


def _opened(crawler: Crawler) -> WarcCaptureMiddleware:
    middleware = WarcCaptureMiddleware.from_crawler(crawler)
    middleware.spider_opened(crawler.spider)
    return middleware


def _indexed(crawler: Crawler) -> list[tuple[str, int, int | None]]:
    engine = crawler.get_extension(ArchiveRun).archive.engine
    with engine.connect() as connection:
        query = 'SELECT warc_file, "offset", article_version_id FROM captures ORDER BY id'
        return [tuple(row) for row in connection.execute(text(query))]


def _link(response: Response, article: Article) -> CaptureLink:
    return CaptureLink(*response.meta["capture"], article.url, article.content_hash)


@pytest.mark.parametrize("crawler", [{"WARC_INDEX_BATCH_SIZE": 3}], indirect=True)
def test_index_rows_are_written_in_batches(crawler: Crawler) -> None:
    """One transaction for a batch of rows, not one per response."""
    middleware = _opened(crawler)
    responses = [
        _capture(middleware, Request(PAGE.format(n)), _response(PAGE.format(n), b"%d" % n))
        for n in range(2)
    ]
    assert _indexed(crawler) == []
    responses.append(_capture(middleware, Request(PAGE.format(2)), _response(PAGE.format(2), b"2")))
    assert [(file, offset) for file, offset, _ in _indexed(crawler)] == [
        r.meta["capture"] for r in responses
    ]
    middleware.spider_closed(crawler.spider)


def test_an_outage_costs_no_row_and_no_link(
    crawler: Crawler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and links wait while the database is away (no lost count, no write per
    response) and are written, links included, when it returns."""
    archive = crawler.get_extension(ArchiveRun).archive
    middleware = _opened(crawler)
    write = archive.captures.write
    attempts: list[int] = []

    def unreachable(*args: object) -> None:
        attempts.append(1)
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(archive.captures, "write", unreachable)
    articles = [make_article(n) for n in range(3)]
    responses = [
        _capture(middleware, Request(a.url), _response(a.url, b"page %d" % n))
        for n, a in enumerate(articles)
    ]
    # the pipeline writes the articles, then announces the links (the index is still away)
    archive.articles.store(articles)
    crawler.signals.send_catch_log(
        captures_produced, links=[_link(r, a) for r, a in zip(responses, articles, strict=True)]
    )
    assert len(attempts) == 1  # then it backs off: not one attempt per response
    assert (len(middleware.pending), len(middleware.links)) == (3, 3)

    monkeypatch.setattr(archive.captures, "write", write)
    middleware.retry_at = 0.0  # the back-off has passed
    assert middleware.spider_closed(crawler.spider) is None
    versions = {a.url: v for a, v in zip(articles, _version_ids(crawler, articles), strict=True)}
    assert [(f, o, v) for f, o, v in _indexed(crawler)] == [
        (*r.meta["capture"], versions[a.url]) for r, a in zip(responses, articles, strict=True)
    ]
    assert not [key for key in crawler.stats.get_stats() if key.startswith("archive/lost/")]


def test_what_is_never_written_is_counted_lost(
    crawler: Crawler, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A row the database refuses costs itself (and its link) only; what an outage
    still holds at close, after the retries, is counted and logged once."""
    archive = crawler.get_extension(ArchiveRun).archive
    middleware = _opened(crawler)
    middleware.retry_seconds = 0.0
    write = archive.captures.write

    def refuse_one(records: list[CaptureRecord], links: list[CaptureLink]) -> None:
        if any(record.url == PAGE.format(1) for record in records):
            raise ArchiveError("value too long for type character varying")
        write(records, links)

    monkeypatch.setattr(archive.captures, "write", refuse_one)
    articles = [make_article(n) for n in range(3)]
    responses = [
        _capture(middleware, Request(a.url), _response(a.url, b"page %d" % n))
        for n, a in enumerate(articles)
    ]
    archive.articles.store(articles)
    middleware.link([_link(r, a) for r, a in zip(responses, articles, strict=True)])
    assert len(_indexed(crawler)) == 2
    stats = crawler.stats
    assert (stats.get_value("archive/lost/captures"), stats.get_value("archive/lost/links")) == (
        1,
        1,
    )

    def unreachable(*args: object) -> None:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(archive.captures, "write", unreachable)
    _capture(middleware, Request(PAGE.format(7)), _response(PAGE.format(7), b"late"))
    caplog.clear()
    assert middleware.spider_closed(crawler.spider) is None
    assert stats.get_value("archive/lost/captures") == 2
    (line,) = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.startswith("Could not index 1 WARC records")


def _version_ids(crawler: Crawler, articles: list[Article]) -> list[int]:
    engine = crawler.get_extension(ArchiveRun).archive.engine
    query = text(
        "SELECT v.id FROM article_versions v JOIN articles a ON a.id = v.article_id "
        "WHERE a.url = :url"
    )
    with engine.connect() as connection:
        return [connection.execute(query, {"url": a.url}).scalar_one() for a in articles]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_in_a_crawl_links_are_written_while_the_reactor_goes_on(
    crawler: Crawler, database_url: str
) -> None:
    """With the event loop running, the links the pipeline announces go to the crawl's
    write thread: while another writer holds SQLite's lock (2 s) the announcement
    has returned and the loop runs on; once the lock is let go they are written."""
    archive = crawler.get_extension(ArchiveRun).archive
    middleware = _opened(crawler)
    articles = [make_article(n) for n in range(2)]
    responses = [
        _capture(middleware, Request(a.url), _response(a.url, b"page %d" % n))
        for n, a in enumerate(articles)
    ]
    archive.articles.store(articles)
    locked = SqliteLockedAWhile(database_url, 2.0)
    seen: list[int] = []

    async def announce() -> float:
        locked.start()
        started = time.monotonic()
        middleware.link([_link(r, a) for r, a in zip(responses, articles, strict=True)])
        returned = time.monotonic() - started
        await asyncio.sleep(0.5)  # the loop runs while the write waits
        seen.append(locked.count("captures"))
        while crawler.stats.get_value("warc/indexed") != len(articles):
            await asyncio.sleep(0.02)
        return returned

    try:
        returned = _run(asyncio.wait_for(announce(), 20))
    finally:
        locked.close()
    assert returned < 0.25  # not held for the write (2 s)
    assert seen == [0]
    assert [version is not None for _, _, version in _indexed(crawler)] == [True, True]
    assert middleware.spider_closed(crawler.spider) is None
