"""The archive pipeline with a real Scrapy crawler object and a real database, as
Scrapy's own component tests are written: items in, rows and stats out.

- articles are written in batches of ``ARCHIVE_BATCH_SIZE``, one transaction each,
  in the writer thread while the reactor goes on;
- an article the database refuses is recorded, and the rest of its batch is stored;
- rejections, fetch failures, aliases and visits go where they belong, with stats;
- a database outage (PostgreSQL refusing connections) keeps every item buffered,
  backs off, and stores them all once the server is back; at close it retries
  for ``ARCHIVE_RETRY_SECONDS``, then counts what is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from scrapy.exceptions import DropItem
from sqlalchemy import create_engine, text

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.pipelines import ArchivePipeline
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.storage.archive import Archive
from news_archive.vocabulary import AliasSeen, Article, FetchFailure, PageVisit, Rejection
from tests.conftest import POSTGRES_SERVER, fresh_database
from tests.crawl.crawling import PipelineRun as Run
from tests.crawl.crawling import SqliteLockedAWhile, project_crawler, snapshot
from tests.golden import extract, fixture_pages


def _articles() -> list[Article]:
    pages = [p for p in fixture_pages() if p.path.parent.parent.name == "maeil_ilbo"]
    by_url: dict[str, Article] = {}
    for page in pages:
        result = extract(page)
        if isinstance(result, Article):
            by_url.setdefault(result.url, result)
    return list(by_url.values())


def _lost(run: Run) -> dict[str, Any]:
    """The run's ``archive/lost/<kind>`` counts."""
    stats = run.crawler.stats.get_stats()
    return {key: value for key, value in stats.items() if key.startswith("archive/lost")}


def _stored_urls(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT url FROM articles")).scalars())
    finally:
        engine.dispose()


def test_a_refused_article_is_recorded_and_its_batch_is_stored(sqlite_url: str) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=sqlite_url, ARCHIVE_BATCH_SIZE=3)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    pipeline = ArchivePipeline.from_crawler(crawler)
    good = _articles()[:4]
    # A naive datetime is refused by the storage layer's UTC type, for good.
    bad = dataclasses.replace(good[1], published_at=good[1].published_at.replace(tzinfo=None))
    pipeline.open_spider()
    run.spider_opened(crawler.spider)
    for item in (good[0], bad, good[2], good[3]):
        pipeline.process_item(item)
    pipeline.close_spider()
    run.spider_closed(crawler.spider, "finished")
    run.engine_stopped()

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        stored = set(connection.execute(text("SELECT url FROM articles")).scalars())
        errors = connection.execute(text("SELECT url, reason FROM crawl_errors")).all()
        finish = connection.execute(text("SELECT finish_reason FROM crawl_runs")).scalar_one()
    engine.dispose()
    assert stored == {good[0].url, good[2].url, good[3].url}
    assert errors == [(bad.url, "store_failed")]
    assert crawler.stats.get_value("archive/failed/store_failed") == 1
    assert crawler.stats.get_value("archive/stored/new") == 3
    assert finish == "finished"


def test_articles_are_written_in_batches(database_url: str) -> None:
    articles = _articles()[:5]
    run = Run(database_url, ARCHIVE_BATCH_SIZE=2)
    try:
        run.pipeline.process_item(articles[0])
        assert _stored_urls(database_url) == set()  # buffered
        run.pipeline.process_item(articles[1])
        assert _stored_urls(database_url) == {a.url for a in articles[:2]}  # one batch
        for article in articles[2:]:
            run.pipeline.process_item(article)
        assert _stored_urls(database_url) == {a.url for a in articles[:4]}
    finally:
        run.close()
    assert _stored_urls(database_url) == {a.url for a in articles}  # the final flush
    assert run.stat("archive/stored/new") == 5
    # The same articles again: unchanged, no new version.
    again = Run(database_url, ARCHIVE_BATCH_SIZE=2)
    try:
        for article in articles:
            again.pipeline.process_item(article)
    finally:
        again.close()
    assert again.stat("archive/stored/unchanged") == 5
    assert again.stat("archive/stored/new") is None
    assert set(snapshot(database_url).versions.values()) == {1}


def test_in_a_crawl_a_batch_is_written_while_the_reactor_goes_on(sqlite_url: str) -> None:
    """With the event loop running, a batch goes to the writer thread: the database
    makes the write wait (another writer holds SQLite's lock for 2 s), and meanwhile
    the item that completed the batch has returned and the loop runs on; once the
    lock is let go the articles are stored and counted, on the loop's thread."""
    articles = _articles()[:2]
    run = Run(sqlite_url, ARCHIVE_BATCH_SIZE=2)
    locked = SqliteLockedAWhile(sqlite_url, 2.0)
    stored: list[int] = []
    loop = asyncio.new_event_loop()

    async def crawl() -> float:
        locked.start()
        started = time.monotonic()
        for article in articles:
            run.pipeline.process_item(article)  # the second one completes a batch
        returned = time.monotonic() - started
        await asyncio.sleep(0.5)  # the loop runs while the write waits
        stored.append(locked.count("articles"))
        while run.stat("archive/stored/new") != len(articles):
            await asyncio.sleep(0.02)
        return returned

    try:
        returned = loop.run_until_complete(asyncio.wait_for(crawl(), 20))
    finally:
        loop.close()
        locked.close()
    assert returned < 0.25  # not held for the write (2 s, written on the loop's thread)
    assert stored == [0]
    run.close()
    assert _stored_urls(sqlite_url) == {article.url for article in articles}
    assert _lost(run) == {}


def test_a_fault_of_ours_in_a_write_keeps_the_rows_not_written(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception that is no database error (a bug) in the middle of a batch: the
    articles already written stay counted once, the visits that were not written are
    kept, the fault is logged with its traceback, and the next attempt writes them."""
    articles = _articles()[:2]
    run = Run(sqlite_url, ARCHIVE_BATCH_SIZE=2)
    archive = run.owner.archive
    record = archive.visits.record

    def broken(rows: Any) -> Any:
        raise RuntimeError("a bug in the visits' write")

    monkeypatch.setattr(archive.visits, "record", broken)
    now = datetime.now(UTC)
    run.pipeline.process_item(PageVisit("maeil_ilbo", articles[0].url, 200, now))
    for article in articles:
        run.pipeline.process_item(article)  # a batch: the articles, then the visit fails
    assert run.stat("archive/stored/new") == 2
    assert len(run.pipeline.visits) == 1
    assert "a bug in the visits' write" in caplog.text
    monkeypatch.setattr(archive.visits, "record", record)
    run.pipeline.retry_at = 0.0  # the back-off has passed
    run.close()
    assert run.stat("archive/stored/new") == 2
    assert run.stat("archive/stored/unchanged") is None
    assert _lost(run) == {}
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        (visits,) = connection.execute("SELECT count(*) FROM url_state").fetchone()
    assert visits == 1
    assert _stored_urls(sqlite_url) == {article.url for article in articles}


def test_every_item_kind_is_recorded_with_its_stats(database_url: str) -> None:
    article = _articles()[0]
    now = datetime.now(UTC)
    rejection = Rejection("maeil_ilbo", article.url + "0", "not_article", "no body")
    failure = FetchFailure("maeil_ilbo", article.url + "1", "http_404", 404, "HTTP 404")
    alias = AliasSeen("maeil_ilbo", article.url + "&utm_source=x", article.url)
    fetched = PageVisit(
        "maeil_ilbo", article.url, 200, now, etag='"e1"', next_visit_at=now + timedelta(days=1)
    )
    not_modified = dataclasses.replace(fetched, status=304)
    run = Run(database_url)
    try:
        for item in (article, rejection, failure, alias, fetched, not_modified):
            assert run.pipeline.process_item(item) is item
        with pytest.raises(DropItem, match="not an archive item: dict"):
            run.pipeline.process_item({"url": article.url})
    finally:
        run.close()
    archive = snapshot(database_url)
    assert list(archive.articles) == [article.url]
    assert archive.aliases == {alias.alias_url: article.url}
    assert archive.errors == [
        ("maeil_ilbo", rejection.url, None, "not_article"),
        ("maeil_ilbo", failure.url, 404, "http_404"),
    ]
    assert run.stat("archive/stored/new") == 1
    assert run.stat("archive/rejected/not_article") == 1
    assert run.stat("archive/failed/http_404") == 1
    assert run.stat("archive/aliases") == 1
    # a 304 is an unchanged article that was not sent again
    assert run.stat("archive/stored/unchanged") == run.stat("archive/not_modified") == 1
    # fill-rate inputs of the health checks
    assert run.stat("archive/extracted") == 1
    assert run.stat("archive/body_chars") == len(article.body)
    assert run.stat("archive/filled/body") == run.stat("archive/filled/title") == 1
    assert run.stat(f"archive/body_source/{article.sources['body']}") == 1
    # the visit is the incremental state of the next run
    stored = Archive.open(database_url)
    try:
        state = stored.visits.states([article.url])[article.url]
    finally:
        stored.close()
    assert (state.etag, state.last_status) == ('"e1"', 304)


def test_a_refused_row_costs_that_row_only_and_is_counted_lost(database_url: str) -> None:
    article = _articles()[0]
    long_url = f"{article.url}&utm_source={'x' * 3000}"
    now = datetime.now(UTC)
    good_alias = AliasSeen("maeil_ilbo", article.url + "&utm_source=x", article.url)
    run = Run(database_url)
    try:
        for item in (
            article,
            good_alias,
            AliasSeen("maeil_ilbo", long_url, article.url),
            PageVisit("maeil_ilbo", article.url, 200, now),
            PageVisit("maeil_ilbo", long_url, 200, now),
            Rejection("maeil_ilbo", article.url + "0", "not_article", "no body"),
        ):
            run.pipeline.process_item(item)
    finally:
        run.close()
    archive = snapshot(database_url)
    assert archive.aliases == {good_alias.alias_url: article.url}
    assert sorted(reason for _, _, _, reason in archive.errors) == [
        "not_article",
        "value_refused",
        "value_refused",
    ]
    assert _lost(run) == {"archive/lost/aliases": 1, "archive/lost/visits": 1}
    assert run.stat("archive/failed/value_refused") == 2
    assert run.stat("archive/store_error") is None  # no outage was seen
    assert run.stat("archive/aliases") == 1


# --- a database outage (PostgreSQL) ---------------------------------------------------


@pytest.fixture
def outage_database(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database of its own: the test takes it offline and back."""
    with fresh_database("postgres", tmp_path) as url:
        yield url


@contextmanager
def offline(database_url: str) -> Iterator[None]:
    """The database refuses every new connection and its open ones are cut, as
    during a server restart; accepting again on leaving."""
    name = sql.Identifier(database_url.rsplit("/", 1)[1])
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database_url.rsplit("/", 1)[1],),
        )
    try:
        yield
    finally:
        back_online(database_url)


def back_online(database_url: str) -> None:
    name = sql.Identifier(database_url.rsplit("/", 1)[1])
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


@pytest.mark.postgres
def test_an_outage_keeps_every_item_and_stores_them_when_the_server_is_back(
    outage_database: str,
) -> None:
    articles = _articles()[:4]
    run = Run(outage_database, ARCHIVE_BATCH_SIZE=2)
    try:
        with offline(outage_database):
            run.pipeline.process_item(articles[0])
            run.pipeline.process_item(articles[1])  # a batch: the write fails
            assert run.stat("archive/store_error") == 1
            assert len(run.pipeline.articles) == 2  # kept for retry
            assert run.pipeline.retry_delay == 0.5
            run.pipeline.process_item(articles[2])  # within the backoff: no attempt
            assert run.stat("archive/store_error") == 1
            run.pipeline.retry_at = 0.0  # the backoff has passed
            run.pipeline.process_item(articles[3])  # tried (a ping) and failed again
            assert run.pipeline.retry_delay == 1.0  # doubled
            assert len(run.pipeline.articles) == 4
        run.pipeline.retry_at = 0.0
        run.pipeline.flush()
        assert run.pipeline.articles == []
        assert run.pipeline.retry_delay == 0.0
    finally:
        run.close()
    assert _stored_urls(outage_database) == {a.url for a in articles}
    assert run.stat("archive/stored/new") == 4
    assert not _lost(run)


@pytest.mark.postgres
def test_at_close_an_outage_is_waited_out_or_the_loss_counted(outage_database: str) -> None:
    articles = _articles()[:3]
    for retry_seconds, back_after, lost in ((10.0, 1.0, None), (1.0, None, 3)):
        run = Run(outage_database, ARCHIVE_RETRY_SECONDS=retry_seconds)
        try:
            with offline(outage_database):
                for article in articles:
                    run.pipeline.process_item(article)
                waiting = run.pipeline.close_spider()  # Scrapy awaits what it returns
                assert waiting is not None
                if back_after is not None:
                    threading.Timer(back_after, back_online, [outage_database]).start()
                started = time.monotonic()
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(waiting)
                finally:
                    loop.close()
                assert time.monotonic() - started < retry_seconds + 2
            run.owner.spider_closed(run.crawler.spider, "finished")
        finally:
            run.owner.engine_stopped()
        assert run.stat("archive/lost/articles") == lost
    # The first close stored all three; the second found them unchanged, then lost them.
    assert _stored_urls(outage_database) == {a.url for a in articles}
