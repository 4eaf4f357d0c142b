"""Validate → store. Thin: every SQL statement lives in `storage`.

Articles are written in batches (one transaction each); rejections and fetch
failures go to ``crawl_errors`` and to stats (``archive/rejected/<reason>``,
``archive/failed/<reason>``); each run is a ``crawl_runs`` row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.storage.archive import (
    Archive,
    ArchiveError,
    DatabaseUnavailable,
    StoreFailures,
)
from news_archive.storage.visits import VisitRecord
from news_archive.vocabulary import (
    AliasSeen,
    Article,
    FetchFailure,
    PageVisit,
    Rejection,
)

logger = logging.getLogger(__name__)

# Fields whose fill rate a run reports (``archive/filled/<field>``).
TRACKED_FIELDS = (
    "title",
    "author",
    "published_at",
    "body",
    "subtitle",
    "section",
    "tags",
    "images",
    "modified_at",
)


class ArchivePipeline:
    """Store articles, aliases and problems of one crawl in the archive database."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.run = crawler.get_extension(ArchiveRun)
        self.batch_size = max(1, settings.getint("ARCHIVE_BATCH_SIZE"))
        self.articles: list[Article] = []
        self.aliases: list[AliasSeen] = []
        self.problems: list[Rejection | FetchFailure] = []
        self.visits: list[VisitRecord] = []
        # (capture id, canonical URL): WARC captures to link to the version they produced
        self.capture_links: list[tuple[int, str]] = []
        self.archive: Archive | None = None
        # Write retries while the database is unreachable (ARCHIVE_RETRY_SECONDS): no
        # flush is attempted before `retry_at` (time.monotonic()); `retry_delay` doubles
        # with each failed attempt and is 0 after a good one.
        self.retry_seconds = settings.getfloat("ARCHIVE_RETRY_SECONDS")
        self.retry_delay = 0.0
        self.retry_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        return cls(crawler)

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    def open_spider(self) -> None:
        # The crawl's one archive (the first crawl on an empty SQLite file migrates it).
        self.archive = self.run.archive

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Article):
            self._count_fields(item)
            self.articles.append(item)
            if len(self.articles) >= self.batch_size:
                self.flush()
        elif isinstance(item, AliasSeen):
            self.aliases.append(item)
        elif isinstance(item, Rejection):
            self.stats.inc_value(f"archive/rejected/{item.reason}")
            logger.warning("Rejected %s: %s (%s)", item.url, item.reason, item.detail)
            self.problems.append(item)
        elif isinstance(item, FetchFailure):
            self.stats.inc_value(f"archive/failed/{item.reason}")
            logger.warning("Failed %s: %s (%s)", item.url, item.reason, item.detail)
            self.problems.append(item)
        elif isinstance(item, PageVisit):
            if item.status == 304:
                # The site says nothing changed since our stored copy: unchanged.
                self.stats.inc_value("archive/stored/unchanged")
                self.stats.inc_value("archive/not_modified")
            self.visits.append(self._visit_record(item))
            if item.capture_id is not None and item.status == 200:
                self.capture_links.append((item.capture_id, item.url))
        else:
            raise DropItem(f"not an archive item: {type(item).__name__}")
        return item

    def _visit_record(self, visit: PageVisit) -> VisitRecord:
        return VisitRecord(
            site=visit.site,
            url=visit.url,
            status=visit.status,
            visited_at=visit.fetched_at,
            next_visit_at=visit.next_visit_at or visit.fetched_at,
            etag=visit.etag,
            last_modified=visit.last_modified,
            published_at=visit.published_at,
        )

    def _count_fields(self, article: Article) -> None:
        """Fill-rate inputs for the health checks: ``archive/extracted``,
        ``archive/filled/<field>`` and ``archive/body_chars``."""
        self.stats.inc_value("archive/extracted")
        self.stats.inc_value("archive/body_chars", len(article.body))
        for field in TRACKED_FIELDS:
            if getattr(article, field):
                self.stats.inc_value(f"archive/filled/{field}")

    def flush(self, *, force: bool = False) -> None:
        """Write what is buffered, unless a recent failure asks to wait (see `_write`).

        After a transient failure (connection lost, server restarting, lock timeout)
        the buffers are kept and the next attempts back off exponentially, from 0.5 s
        up to 30 s, so that an outage costs neither items nor a write attempt per item
        while the crawl goes on; `force` ignores the wait (the final flush).
        """
        if not self._pending():
            return
        if not force and time.monotonic() < self.retry_at:
            return
        if self.retry_delay and not self._database_reachable():
            self._back_off()
            return
        self._write()
        if self._pending():
            self._back_off()
        else:
            self.retry_delay = self.retry_at = 0.0

    def _pending(self) -> bool:
        return bool(self.articles or self.aliases or self.problems or self.visits)

    def _back_off(self) -> None:
        self.retry_delay = min(max(2 * self.retry_delay, 0.5), 30.0)
        self.retry_at = time.monotonic() + self.retry_delay

    def _database_reachable(self) -> bool:
        """One connection check-out (PostgreSQL pings it) before a batch is tried:
        while the server is down, the repository's per-article retries would otherwise
        each wait out their own backoff."""
        assert self.archive is not None
        try:
            self.archive.ping()
        except ArchiveError as error:
            logger.warning("Archive database still unreachable: %s", error)
            return False
        return True

    def _write(self) -> None:
        """Write each buffer; a buffer is emptied only once its rows are committed.

        An article the database refuses for good (a constraint, bad data) is
        recorded in ``crawl_errors`` as ``store_failed`` and the others are kept;
        on a transient error (connection lost, lock timeout) the articles stay
        buffered for the next flush, so a passing outage loses nothing extracted.
        """
        assert self.archive is not None
        now = datetime.now(UTC)
        try:
            if self.articles:
                self._store_articles()
            if self.aliases:
                self.archive.articles.record_aliases(self.aliases, now)
                self.stats.inc_value("archive/aliases", len(self.aliases))
                self.aliases = []
            if self.problems:
                self.archive.runs.record_errors(
                    self.run.run_id, self._spider_name(), self.problems, now
                )
                self.problems = []
            if self.visits:
                # After the articles, so that a revisit is only scheduled for what is stored.
                self.archive.visits.record(self.visits)
                self.archive.captures.link_to_versions(self.capture_links)
                self.visits = []
                self.capture_links = []
        except ArchiveError as error:
            self.stats.inc_value("archive/store_error")
            logger.error(
                "Archive write failed, %d articles kept for retry: %s", len(self.articles), error
            )

    def _store_articles(self) -> None:
        assert self.archive is not None
        try:
            outcomes: list[str | None] = list(self.archive.articles.store(self.articles))
            failures: list[tuple[int, ArchiveError]] = []
        except StoreFailures as error:
            outcomes, failures = list(error.outcomes), error.failures
        kept: list[Article] = []
        for index, failure in failures:
            article = self.articles[index]
            if isinstance(failure, DatabaseUnavailable):
                kept.append(article)
                continue
            self.stats.inc_value("archive/failed/store_failed")
            logger.error("Could not store %s: %s", article.url, failure)
            self.problems.append(
                FetchFailure(article.site, article.url, "store_failed", None, str(failure))
            )
        for article, outcome in zip(self.articles, outcomes, strict=True):
            if outcome is None:
                continue
            self.stats.inc_value(f"archive/stored/{outcome}")
            self.stats.inc_value(f"archive/body_source/{article.sources.get('body')}")
            logger.debug("Stored %s: %s", article.url, outcome)
            if outcome == "held":  # a suspect change, kept back until a fetch confirms it
                self.process_item(
                    Rejection(article.site, article.url, "suspect_truncation", held(article))
                )
        self.articles = kept
        if kept:
            self.stats.inc_value("archive/store_error")
            logger.error("%d articles kept for retry after transient errors", len(kept))

    def close_spider(self) -> Coroutine[Any, Any, None] | None:
        """The final flush.  If the database is unreachable, return a coroutine
        (Scrapy awaits it) that retries with backoff for up to ARCHIVE_RETRY_SECONDS
        without blocking the reactor; whatever is still unwritten then is logged."""
        self.flush(force=True)
        if self._pending():
            return self._flush_until_stored(time.monotonic() + self.retry_seconds)
        self._report_lost()
        return None

    async def _flush_until_stored(self, deadline: float) -> None:
        while self._pending() and time.monotonic() < deadline:
            delay = min(self.retry_delay, max(0.0, deadline - time.monotonic()))
            logger.warning(
                "Archive database unavailable at close; retrying in %.1f s "
                "(%d articles buffered, giving up in %.0f s)",
                delay,
                len(self.articles),
                deadline - time.monotonic(),
            )
            # TWISTED_REACTOR is the asyncio reactor: this sleep lets the reactor run.
            await asyncio.sleep(delay)
            self.flush(force=True)
        self._report_lost()

    def _report_lost(self) -> None:
        if self.aliases or self.problems or self.visits:
            logger.error(
                "Could not record %d aliases, %d problems and %d visits",
                len(self.aliases),
                len(self.problems),
                len(self.visits),
            )
        if self.articles:
            # A second failure at close: say loudly what is lost.
            self.stats.inc_value("archive/lost", len(self.articles))
            logger.error(
                "Could not store %d articles: %s",
                len(self.articles),
                ", ".join(a.url for a in self.articles),
            )

    def _spider_name(self) -> str:
        spider = self.crawler.spider
        return spider.name if spider is not None else "?"


def held(article: Article) -> str:
    """The detail of a ``suspect_truncation`` record: why storage held `article` back."""
    why = article.suspect or "body lost more than half its length"
    return f"{why}; the current version stays until a later fetch confirms this one"
