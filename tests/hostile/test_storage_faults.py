"""Rows the database refuses, and a database that goes away or hangs.

- a NUL byte in a response header and a 6,000-character feed link cost their own
  rows only: the run records its other problems and visits and closes at once
  (the campaign saw every row of the run dropped after 120 s of "database
  unavailable");
- a PostgreSQL server that accepts bytes and never answers (a `TcpProxy` that
  hangs) is an outage within the crawl's timeouts, not a frozen crawl;
- an outage (connections dropped, then refused) loses nothing, is logged once when
  it begins and once when it ends, and pauses the crawl while the buffers are full
  (in-process, and a ``scrapy crawl`` whose engine is paused and resumed);
- a password given in the URL's query never reaches a run record.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.storage.archive import DatabaseUnavailable
from news_archive.vocabulary import Article, FetchFailure, PageVisit, Rejection
from tests.conftest import fresh_database
from tests.crawl.crawling import ROOT, SEEDS, HandCrawl, crawl_environment, wait_until
from tests.crawl.crawling import PipelineRun as Run
from tests.golden import extract, fixture_pages
from tests.hostile.proxy import TcpProxy

# The article whose response carries a NUL byte in its ETag, and the one a
# 6,000-character feed link names (with tracking parameters the URL rules drop).
NUL_PAGE = "https://www.m-i.kr/news/articleView.html?idxno=800102"
LONG_LINK_PAGE = "https://www.m-i.kr/news/articleView.html?idxno=800103"
LONG_LINK = f"{LONG_LINK_PAGE}&utm_source={'x' * 6000}"


def hostile_replay(tmp_path: Path) -> Path:
    """The 매일일보 seeds with a NUL byte in one article's ETag and a 6,000-character
    link in the feed."""
    replay = tmp_path / "replay"
    shutil.copytree(SEEDS / "maeil_ilbo", replay)
    manifest = replay / "manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text("utf-8").splitlines()]
    for entry in entries:
        if entry["url"] == NUL_PAGE:
            entry["headers"]["ETag"] = '"nul\x00etag"'
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries), "utf-8")
    feed = replay / "feeds" / "allArticle.xml"
    item = (
        f"<item><title>long link</title><link>{LONG_LINK.replace('&', '&amp;')}</link>"
        "<pubDate>2026-11-22 09:30:00</pubDate></item>\n"
    )
    feed.write_text(feed.read_text("utf-8").replace("<item>", item + "<item>", 1), "utf-8")
    return replay


def _rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def test_a_nul_header_and_an_overlong_feed_link_cost_only_their_rows(
    database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    with HandCrawl(MaeilIlboSpider, hostile_replay(tmp_path), database_url) as run:
        run.crawl(run.start())
        # Leaving the block asserts that the final flush needed no retry at all.
    assert time.monotonic() - started < 30

    errors = _rows(database_url, "SELECT url, reason, detail FROM crawl_errors")
    reasons = {(url, reason) for url, reason, _ in errors}
    # The run's other problems are there...
    assert ("https://www.m-i.kr/news/articleView.html?idxno=800106", "http_404") in reasons
    assert ("https://www.m-i.kr/news/articleView.html?idxno=800107", "http_500") in reasons
    # ...and the link no index can hold is one problem of its own, its URL cut: a
    # `bad_link` where the spider bounds links, else the alias storage refused.
    (long_link,) = [row for row in errors if row[0].startswith(LONG_LINK[:100])]
    assert long_link[1] in ("bad_link", "value_refused") and len(long_link[0]) <= 2048
    # The visits are there, the NUL byte dropped at the storage boundary.
    states = dict(_rows(database_url, "SELECT url, etag FROM url_state"))
    assert states[NUL_PAGE] == '"nuletag"'
    assert LONG_LINK_PAGE in states
    aliases = dict(_rows(database_url, "SELECT url, canonical_url FROM url_aliases"))
    assert LONG_LINK not in aliases and aliases  # the seeds' other aliases are stored
    stats = run.stats.get_stats()
    assert "archive/store_error" not in stats, "a refused value was taken for an outage"
    assert stats["archive/stored/new"] >= 4


# --- PostgreSQL through a proxy that hangs, drops and refuses ------------------------


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as running:
        yield running


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database of its own (dropped with FORCE: a hung connection may
    still be open when the test ends)."""
    with fresh_database("postgres", tmp_path) as url:
        yield url


def _through(proxy: TcpProxy, database_url: str) -> str:
    url = make_url(database_url).set(port=proxy.port)
    return url.render_as_string(hide_password=False)


def _articles() -> list[Article]:
    found: dict[str, Article] = {}
    for page in fixture_pages():
        if page.path.parent.parent.name == "maeil_ilbo":
            result = extract(page)
            if isinstance(result, Article):
                found.setdefault(result.url, result)
    return list(found.values())


class StubEngine:
    """Scrapy's engine as far as back-pressure goes: `pause` and `unpause`."""

    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0

    def pause(self) -> None:
        self.paused = True
        self.pauses += 1

    def unpause(self) -> None:
        self.paused = False


@pytest.mark.postgres
def test_a_hung_server_is_an_outage_within_the_timeouts(
    proxy: TcpProxy, postgres_database: str
) -> None:
    database_url = postgres_database
    articles = _articles()[:2]
    run = Run(
        _through(proxy, database_url),
        ARCHIVE_BATCH_SIZE=10,
        DATABASE_CONNECT_TIMEOUT=1,
        DATABASE_STATEMENT_TIMEOUT=1,
    )
    try:
        for article in articles:
            run.pipeline.process_item(article)
        proxy.hang()
        flushing = threading.Thread(target=run.pipeline.flush, daemon=True)
        started = time.monotonic()
        flushing.start()
        flushing.join(timeout=20)
        waited = time.monotonic() - started
        proxy.pass_through()  # frees a flush that is still waiting (on the base code)
        assert not flushing.is_alive(), "the flush waited for as long as the server hung"
        assert waited < 10
        assert run.pipeline.down_since is not None
        assert len(run.pipeline.articles) == 2  # kept for the retry
        # Reads too: an outage, not a wait.
        proxy.hang()
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            run.owner.archive.visits.states([articles[0].url])
        assert time.monotonic() - started < 10
        proxy.pass_through()
        run.pipeline.retry_at = 0.0
        run.pipeline.flush()
        assert run.pipeline.articles == []
    finally:
        proxy.pass_through()
        run.close()
    stored = _rows(database_url, "SELECT url FROM articles")
    assert {url for (url,) in stored} == {a.url for a in articles}


@pytest.mark.postgres
def test_an_outage_loses_nothing_is_logged_once_and_pauses_the_crawl(
    proxy: TcpProxy, postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    database_url = postgres_database
    articles = _articles()[:6]
    run = Run(_through(proxy, database_url), ARCHIVE_BATCH_SIZE=2, ARCHIVE_BUFFER_LIMIT=8)
    engine = StubEngine()
    run.crawler.engine = engine  # type: ignore[assignment]
    caplog.set_level(logging.INFO, logger="news_archive")
    try:
        run.pipeline.process_item(articles[0])
        run.pipeline.process_item(articles[1])  # a batch, written
        proxy.drop()  # the pooled connection dies: a reconnect, no outage
        proxy.refuse()
        rejections = [
            Rejection("maeil_ilbo", f"https://www.m-i.kr/list?page={n}", "not_article")
            for n in range(40)
        ]
        items: list[Any] = [articles[2], articles[3], *rejections[:2], _visit(articles[2])]
        items += [articles[4], articles[5], *rejections[2:]]
        fed = 0
        for item in items:
            if engine.paused:
                break  # the engine sends no more (responses in flight aside)
            run.pipeline.process_item(item)
            fed += 1
        assert engine.paused and engine.pauses == 1
        assert run.pipeline.buffered() == 8  # bounded by ARCHIVE_BUFFER_LIMIT
        for item in items[fed : fed + 2]:  # what was in flight still arrives
            run.pipeline.process_item(item)
        assert engine.pauses == 1
        proxy.pass_through()
        run.pipeline.retry_at = 0.0
        run.pipeline._retry_while_paused()  # the timer's call, while no item arrives
        assert not engine.paused
        assert run.pipeline.buffered() == 0
    finally:
        proxy.pass_through()
        run.close()
    messages = [record.getMessage() for record in caplog.records]
    assert sum("database unavailable" in m for m in messages) == 1, messages
    assert sum("database back" in m for m in messages) == 1, messages
    assert len(messages) < 30, messages
    stored = {url for (url,) in _rows(database_url, "SELECT url FROM articles")}
    assert stored == {a.url for a in articles}
    (errors,) = _rows(database_url, "SELECT count(*) FROM crawl_errors")
    fed_rejections = sum(isinstance(item, Rejection) for item in items[: fed + 2])
    assert errors == (fed_rejections,)  # every rejection, none twice
    assert not {k: v for k, v in run.crawler.stats.get_stats().items() if "lost" in k}


@pytest.mark.postgres
def test_a_crawl_paused_by_an_outage_resumes_and_loses_nothing(
    proxy: TcpProxy, postgres_database: str, tmp_path: Path
) -> None:
    """The real engine, in a ``scrapy crawl`` process: Scrapy's reactor runs once per
    process, and the pause is the engine's."""
    corpus = tmp_path / "corpus"
    _generate_corpus(corpus, 2 * PAGES)
    crawl = _start_crawl(
        corpus / "maeil_ilbo",
        _through(proxy, postgres_database),
        tmp_path / "crawl.log",
        *("-s", "ARCHIVE_BATCH_SIZE=5", "-s", "ARCHIVE_BUFFER_LIMIT=40"),
        *("-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8", "-L", "INFO"),
    )
    try:
        wait_until(
            lambda: _count_articles(postgres_database) >= 20 or crawl.poll() is not None,
            "20 stored articles",
        )
        assert crawl.poll() is None, "the crawl ended before the outage"
        proxy.refuse()
        # The outage lasts until it has paused the crawl, however loaded the machine.
        log_path = tmp_path / "crawl.log"
        wait_until(
            lambda: "Crawl paused" in log_path.read_text("utf-8", errors="replace"),
            "the crawl paused by the outage",
        )
        proxy.pass_through()
        assert crawl.wait(timeout=120) == 0
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.wait()
    log = (tmp_path / "crawl.log").read_text("utf-8", errors="replace")
    assert _count_articles(postgres_database) == PAGES, log
    assert log.count("Archive database unavailable") == 1, log
    assert log.count("Archive database back") == 1, log
    assert log.count("Crawl paused") == 1 and log.count("Crawl resumed") == 1, log
    assert "archive/lost" not in log


# Articles per site in the generated corpus of the process test.
PAGES = 150


def _generate_corpus(root: Path, pages: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    module.generate(root, pages)


def _start_crawl(
    replay_dir: Path, database_url: str, log_path: Path, *arguments: str
) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "REPLAY_DIR"}
    env.update(crawl_environment(), DATABASE_URL=database_url, REPLAY_DIR=str(replay_dir))
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "maeil_ilbo", *arguments],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _count_articles(database_url: str) -> int:
    try:
        return _rows(database_url, "SELECT count(*) FROM articles")[0][0]
    except SQLAlchemyError:
        return 0  # not migrated yet


def _visit(article: Article) -> PageVisit:
    return PageVisit("maeil_ilbo", article.url, 200, article.fetched_at)


@pytest.mark.postgres
def test_a_password_in_the_url_query_is_never_recorded(postgres_database: str) -> None:
    database_url = postgres_database
    secret = "hunter2-in-the-query"
    run = Run(f"{database_url}?password={secret}&application_name=news")
    run.pipeline.process_item(FetchFailure("maeil_ilbo", "https://www.m-i.kr/x", "http_404"))
    run.close()
    (settings,) = _rows(database_url, "SELECT settings FROM crawl_runs")
    assert secret not in settings[0]
    assert "password=***" in json.loads(settings[0])["DATABASE_URL"]


@pytest.mark.postgres
def test_an_outage_at_close_counts_its_rows_lost_once_and_writes_them_never(
    proxy: TcpProxy, postgres_database: str
) -> None:
    """Closing ends the back-pressure: no new pause, no retry timer behind the close's
    own retries, and what was counted lost is not written later after all."""
    articles = _articles()[:4]
    run = Run(
        _through(proxy, postgres_database),
        ARCHIVE_BATCH_SIZE=2,
        ARCHIVE_BUFFER_LIMIT=2,
        ARCHIVE_RETRY_SECONDS=0,
    )
    engine = StubEngine()
    run.crawler.engine = engine  # type: ignore[assignment]
    try:
        proxy.refuse()
        for article in articles[:2]:
            run.pipeline.process_item(article)
        assert engine.pauses == 1
        engine.unpause()  # the engine closing
        closing = run.pipeline.close_spider()
        assert closing is not None
        with pytest.raises(StopIteration):  # no retry time left: it ends without waiting
            closing.send(None)
        assert engine.pauses == 1 and run.pipeline._retry_call is None
        assert run.crawler.stats.get_value("archive/lost/articles") == 2
        proxy.pass_through()
        run.pipeline.flush(force=True)  # a late call writes nothing counted lost
        assert run.pipeline.buffered() == 0
    finally:
        proxy.pass_through()
        run.owner.spider_closed(run.crawler.spider, "finished")
        run.owner.engine_stopped()
    assert _rows(postgres_database, "SELECT url FROM articles") == []
