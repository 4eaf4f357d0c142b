"""Run real crawls (``scrapy crawl`` in a subprocess, replay mode) and read back
what they stored. A subprocess per crawl: Twisted's reactor starts once per
process, and this is exactly how cron runs the crawler.

For component tests, in-process: `project_crawler` (a crawler object with the
project's settings) and `HandCrawl` (the archive's own components, driven page by
page over a replay directory, without Scrapy's engine or reactor)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from sqlalchemy import create_engine, text
from twisted.python.failure import Failure

import news_archive.crawler.settings as project_settings
from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.middlewares.incremental import ARTICLE_PAGE, IncrementalMiddleware
from news_archive.crawler.middlewares.replay import ReplayMiddleware
from news_archive.crawler.pipelines import ArchivePipeline
from news_archive.crawler.spiders.sites import MaeilIlboSpider

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"


def crawl(
    spider: str,
    replay_dir: Path | str | None,
    database_url: str,
    *arguments: str,
    expect_exit: int = 0,
    warc_dir: Path | None = None,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``scrapy crawl spider`` with REPLAY_DIR and DATABASE_URL from the environment,
    capturing WARC files into `warc_dir` (no capture when None), with `environment`
    added (``SITES_FILE``...).

    Raises with the crawl's log when it exits with another code than `expect_exit`."""
    env = {key: value for key, value in os.environ.items() if key not in ("REPLAY_DIR",)}
    env["DATABASE_URL"] = database_url
    env.update(crawl_environment(warc_dir))
    if replay_dir is not None:
        env["REPLAY_DIR"] = str(replay_dir)
    env.update(environment or {})
    command = [sys.executable, "-m", "scrapy", "crawl", spider, *arguments]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != expect_exit:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}, not {expect_exit}:\n{result.stderr}"
        )
    return result


def project_crawler(
    spidercls: type[Spider], arguments: dict[str, str] | None = None, **overrides: Any
) -> Crawler:
    """An in-process crawler with the project's settings (as `scrapy crawl` has them)
    and `overrides`, its extensions built (``crawler.get_extension`` works) and its
    spider created with `arguments` (as ``-a NAME=VALUE``): what Scrapy's own
    component tests use, without the reactor."""
    settings = {name: getattr(project_settings, name) for name in dir(project_settings)}
    settings = {name: value for name, value in settings.items() if name.isupper()}
    # Extraction in-process: no reactor here to wait for worker processes.
    settings |= {"WARC_ENABLED": False, "EXTRACTION_WORKERS": 0, "LOG_LEVEL": "WARNING"}
    settings |= overrides
    crawler = get_crawler(spidercls, settings)
    crawler.spider = crawler._create_spider(**(arguments or {}))
    return crawler


# Statuses RedirectMiddleware follows.
REDIRECTS = (301, 302, 303, 307, 308)


class HandCrawl:
    """One run of the archive's components driven by hand, in-process: the spider,
    the incremental middleware, the replay middleware as the downloader, the
    pipeline and the crawl's owner, over `replay_dir`.

    What Scrapy's engine adds is left out on purpose (robots.txt, the offsite
    filter, retries, concurrency; the duplicate filter is a set of URLs): tests of
    those run real crawls. Redirects are followed as RedirectMiddleware follows
    them (``meta["redirect_urls"]``); HTTP errors reach the spider's errback as
    `HttpError`, as HttpErrorMiddleware sends them.

        with HandCrawl(MaeilIlboSpider, replay_dir, database_url) as run:
            run.crawl(run.start())
    """

    def __init__(
        self,
        spidercls: type[Spider],
        replay_dir: Path,
        database_url: str,
        arguments: dict[str, str] | None = None,
        **settings: Any,
    ) -> None:
        self.crawler = project_crawler(
            spidercls, arguments, DATABASE_URL=database_url, REPLAY_DIR=str(replay_dir), **settings
        )
        self.spider = self.crawler.spider
        self.stats = self.crawler.stats
        self.run = self.crawler.get_extension(ArchiveRun)
        self.replay = ReplayMiddleware.from_crawler(self.crawler)
        self.incremental = IncrementalMiddleware.from_crawler(self.crawler)
        self.pipeline = ArchivePipeline.from_crawler(self.crawler)
        # URLs fetched, in order
        self.fetched: list[str] = []

    def __enter__(self) -> HandCrawl:
        self.stats.open_spider()
        self.pipeline.open_spider()
        self.run.spider_opened(self.spider)
        self.incremental.spider_opened(self.spider)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                assert self.pipeline.close_spider() is None, "the archive was unreachable"
                self.run.spider_closed(self.spider, "finished")
        finally:
            self.replay.close()
            self.run.engine_stopped()

    def start(self) -> list[Any]:
        """The spider's start output through the incremental middleware's
        ``process_start`` (the due revisits come last)."""
        return _drain(self.incremental.process_start(self.spider.start()))

    def fetch(self, request: Request) -> list[Any]:
        """Download `request` from the replay directory and return the spider's
        output for it, as the incremental middleware lets it through."""
        self.fetched.append(request.url)
        try:
            response = self.replay.process_request(request)
            while response.status in REDIRECTS and b"Location" in response.headers:
                # As RedirectMiddleware: the request again, to the new URL, noting the old.
                location = response.urljoin(response.headers["Location"].decode("latin-1"))
                redirected = [*request.meta.get("redirect_urls", []), request.url]
                request = request.replace(
                    url=location, meta={**request.meta, "redirect_urls": redirected}
                )
                response = self.replay.process_request(request)
        except Exception as error:
            # A download that fails (over DOWNLOAD_MAXSIZE, a refused replay file) goes
            # to the errback, as Scrapy's engine sends it; no response, no visit.
            failure = Failure(error)
            failure.request = request  # type: ignore[attr-defined]
            return list(request.errback(failure) if request.errback else [])
        allowed = request.meta.get("handle_httpstatus_list", [])
        if 200 <= response.status < 300 or response.status in allowed:
            callback = request.callback or self.spider.parse
            result = callback(response, **request.cb_kwargs)
            # An async callback (parse_article) awaits nothing real with in-process extraction.
            output: Iterable[Any] = (
                _drain(result) if isinstance(result, AsyncIterator) else result or []
            )
        else:
            failure = Failure(HttpError(response, f"HTTP {response.status}"))
            failure.request = request  # type: ignore[attr-defined]
            output = request.errback(failure) if request.errback else []
        return list(self.incremental.process_spider_output(response, output))

    def crawl(self, output: Iterable[Any]) -> None:
        """Follow every request in `output` (and theirs) once each, listings first,
        and put every item through the pipeline."""
        pending = list(output)
        seen: set[str] = set()
        while pending:
            # Listing requests carry priority -1 in Scrapy; here, depth-first is enough.
            pending.sort(key=lambda item: isinstance(item, Request) and _is_article(item))
            item = pending.pop(0)
            if isinstance(item, Request):
                if item.url not in seen:
                    seen.add(item.url)
                    pending.extend(self.fetch(item))
            else:
                self.pipeline.process_item(item)


def _is_article(request: Request) -> bool:
    return bool(request.meta.get(ARTICLE_PAGE))


def _drain(iterator: AsyncIterator[Any]) -> list[Any]:
    """Everything an async iterator yields, when it never awaits anything real (no
    event loop is needed, and none is disturbed)."""

    async def collect() -> list[Any]:
        return [item async for item in iterator]

    coroutine = collect()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the iterator awaited something: drive it with an event loop")


def crawl_environment(warc_dir: Path | None = None) -> dict[str, str]:
    """Environment for test crawls: WARC capture only where a test asks for it,
    never into the repository's own warc/ folder."""
    if warc_dir is None:
        return {"WARC_ENABLED": "0"}
    return {"WARC_ENABLED": "1", "WARC_DIR": str(warc_dir)}


@dataclass
class Snapshot:
    """What a user sees with SQL after a crawl."""

    articles: dict[str, dict[str, Any]]
    versions: dict[str, int]
    errors: list[tuple[str, str, int | None, str]]
    aliases: dict[str, str]
    images: dict[str, list[tuple[str, str | None, str | None]]]
    tags: dict[str, list[str]]
    runs: list[dict[str, Any]]

    def site(self, name: str) -> dict[str, dict[str, Any]]:
        return {url: row for url, row in self.articles.items() if row["site"] == name}


def snapshot(database_url: str) -> Snapshot:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            articles = {
                row["url"]: dict(row)
                for row in connection.execute(text("SELECT * FROM articles")).mappings()
            }
            versions = dict(
                connection.execute(
                    text(
                        "SELECT a.url, count(v.id) FROM articles a "
                        "LEFT JOIN article_versions v ON v.article_id = a.id GROUP BY a.url"
                    )
                ).all()
            )
            errors = [
                tuple(row)
                for row in connection.execute(
                    text("SELECT spider, url, status, reason FROM crawl_errors ORDER BY id")
                ).all()
            ]
            aliases = dict(
                connection.execute(text("SELECT url, canonical_url FROM url_aliases")).all()
            )
            images: dict[str, list[tuple[str, str | None, str | None]]] = {}
            for url, image_url, caption, alt in connection.execute(
                text(
                    "SELECT a.url, i.url, i.caption, i.alt FROM article_images i "
                    "JOIN articles a ON a.id = i.article_id ORDER BY a.url, i.position"
                )
            ):
                images.setdefault(url, []).append((image_url, caption, alt))
            tags: dict[str, list[str]] = {}
            for url, tag in connection.execute(
                text(
                    "SELECT a.url, t.tag FROM article_tags t "
                    "JOIN articles a ON a.id = t.article_id "
                    "ORDER BY a.url, t.position"
                )
            ):
                tags.setdefault(url, []).append(tag)
            runs = [
                {**dict(row), "stats": json.loads(row["stats"] or "{}")}
                for row in connection.execute(
                    text("SELECT * FROM crawl_runs ORDER BY id")
                ).mappings()
            ]
    finally:
        engine.dispose()
    return Snapshot(articles, versions, errors, aliases, images, tags, runs)


class PipelineRun:
    """The pipeline of one crawl and the crawl's owner, opened and closed by hand."""

    def __init__(self, database_url: str, **settings: Any) -> None:
        self.crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url, **settings)
        self.crawler.stats.open_spider()
        self.owner = self.crawler.get_extension(ArchiveRun)
        self.pipeline = ArchivePipeline.from_crawler(self.crawler)
        self.pipeline.open_spider()
        self.owner.spider_opened(self.crawler.spider)

    def stat(self, key: str) -> Any:
        return self.crawler.stats.get_value(key)

    def close(self) -> None:
        try:
            assert self.pipeline.close_spider() is None
            self.owner.spider_closed(self.crawler.spider, "finished")
        finally:
            self.owner.engine_stopped()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class SqliteLockedAWhile:
    """Another writer holding the write lock of the SQLite file of `database_url`
    from `start` for `seconds`, and a reader (WAL: it reads while the lock is held).

        held = SqliteLockedAWhile(url, 2.0)
        try: held.start(); ...; held.count("articles")
        finally: held.close()
    """

    def __init__(self, database_url: str, seconds: float) -> None:
        path = database_url.removeprefix("sqlite:///")
        self.writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.writer.execute("BEGIN IMMEDIATE")
        self.release = threading.Timer(seconds, self.writer.execute, ("ROLLBACK",))
        self.reader = sqlite3.connect(path, isolation_level=None)

    def start(self) -> None:
        """The clock starts: the lock is let go `seconds` from now."""
        self.release.start()

    def count(self, table: str) -> int:
        return int(self.reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        if self.release.is_alive():
            self.release.join()
        self.writer.close()
        self.reader.close()
