"""Validate → store. Thin: every SQL statement lives in `storage`.

Articles are written in batches (one transaction each); rejections and fetch
failures go to ``crawl_errors`` and to stats (``archive/rejected/<reason>``,
``archive/failed/<reason>``); each run is a ``crawl_runs`` row.  What could not be
written is counted in ``archive/lost/<kind>`` (articles, aliases, visits, links,
problems) and logged once when the spider closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.defer import deferred_from_coro

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.middlewares.capture import captures_produced
from news_archive.storage.archive import (
    Archive,
    ArchiveError,
    DatabaseUnavailable,
    Refused,
    StoreFailures,
)
from news_archive.storage.captures import CaptureLink
from news_archive.storage.visits import VisitRecord
from news_archive.vocabulary import (
    AliasSeen,
    Article,
    FetchFailure,
    PageVisit,
    Rejection,
)

logger = logging.getLogger(__name__)

# Finish reason of a crawl closed because the database stayed unavailable.
DATABASE_UNAVAILABLE = "database_unavailable"

# Sent after a flush wrote visits, with ``urls`` (the visits' URLs; each page's
# article is written before its visit): a worker of a shared crawl then acknowledges
# those pages' leases (crawler/distributed/worker.py).
visits_written = object()
# Sent by a worker of a shared crawl when it is idle: the pipeline writes what it
# holds and answers True when nothing is left unwritten.
drain_requested = object()

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


# What the pipeline buffers (kind: its buffer attribute), in the order a flush writes
# it: the articles first (a visit schedules a revisit only for what is stored), the
# problems last (they gather the rows the others had refused). Capture links wait
# here only for their article's write, then go to the capture index (which writes them).
KINDS = {
    "articles": "articles",
    "aliases": "aliases",
    "visits": "visits",
    "links": "capture_links",
    "problems": "problems",
}


class ArchivePipeline:
    """Store articles, aliases, visits and problems of one crawl in the archive database.

    Rows are judged one by one: a row the database refuses for its values costs
    that row only (recorded as a ``store_failed`` or ``value_refused`` problem and
    counted in ``archive/lost/<kind>``); an outage keeps every row buffered and
    retried with backoff, is logged once when it begins and once when it ends, and
    pauses the crawl (Scrapy's engine) while more than ``ARCHIVE_BUFFER_LIMIT`` rows
    wait, so memory stays bounded however long it lasts.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.run = crawler.get_extension(ArchiveRun)
        self.batch_size = max(1, settings.getint("ARCHIVE_BATCH_SIZE"))
        self.buffer_limit = max(self.batch_size, settings.getint("ARCHIVE_BUFFER_LIMIT"))
        self.articles: list[Article] = []
        self.aliases: list[AliasSeen] = []
        self.problems: list[Rejection | FetchFailure] = []
        self.visits: list[VisitRecord] = []
        # WARC captures to link to the version they produced, once it is written
        # (`captures_produced`); `produced`: content hash of each article by URL
        # until its visit (which names its capture) comes.
        self.capture_links: list[CaptureLink] = []
        self.produced: dict[str, str] = {}
        # URLs whose change storage held back (suspect): their next visit is the next run.
        self.held_urls: set[str] = set()
        self.archive: Archive | None = None
        # Write retries while the database is unreachable (ARCHIVE_RETRY_SECONDS): no
        # flush is attempted before `retry_at` (time.monotonic()); `retry_delay` doubles
        # with each failed attempt and is 0 after a good one.
        self.retry_seconds = settings.getfloat("ARCHIVE_RETRY_SECONDS")
        self.retry_delay = 0.0
        self.retry_at = 0.0
        # When the current outage began (time.monotonic()), None while writes pass.
        self.down_since: float | None = None
        # Whether this pipeline paused the engine, and the call that retries meanwhile.
        self.paused_since: float | None = None
        self._retry_call: CallLaterResult | None = None
        # Set by close_spider: no more pausing, no retry timer; the close retries alone.
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.drain, signal=drain_requested)
        return pipeline

    def drain(self) -> bool:
        """Write everything buffered now; True when nothing is left (`drain_requested`)."""
        self.flush(force=True)
        return not self.buffered()

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    def open_spider(self) -> None:
        # The crawl's one archive (the first crawl on an empty SQLite file migrates it).
        self.archive = self.run.archive

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Article):
            self._count_fields(item)
            self.produced[item.url] = item.content_hash
            self.articles.append(item)
        elif isinstance(item, AliasSeen):
            self.aliases.append(item)
        elif isinstance(item, Rejection | FetchFailure):
            self._record_problem(item)
        elif isinstance(item, PageVisit):
            if item.status == 304:
                # The site says nothing changed since our stored copy: unchanged.
                self.stats.inc_value("archive/stored/unchanged")
                self.stats.inc_value("archive/not_modified")
            self.visits.append(self._visit_record(item))
            content_hash = self.produced.pop(item.url, None)
            if item.capture is not None and item.status == 200 and content_hash is not None:
                self.capture_links.append(CaptureLink(*item.capture, item.url, content_hash))
        else:
            raise DropItem(f"not an archive item: {type(item).__name__}")
        if len(self.articles) >= self.batch_size or self.buffered() >= self.buffer_limit:
            self.flush()
        return item

    def _record_problem(self, problem: Rejection | FetchFailure) -> None:
        """Count, log and buffer a problem for ``crawl_errors``."""
        if isinstance(problem, Rejection):
            self.stats.inc_value(f"archive/rejected/{problem.reason}")
            logger.warning("Rejected %s: %s (%s)", problem.url, problem.reason, problem.detail)
        else:
            self.stats.inc_value(f"archive/failed/{problem.reason}")
            logger.warning("Failed %s: %s (%s)", problem.url, problem.reason, problem.detail)
        self.problems.append(problem)

    def _recheck_held(self) -> None:
        """A held change waits for a fetch that confirms or drops it: its page is due
        again at the next run, not after the revisit schedule's interval (which
        reaches 90 days for old articles).  The visit may arrive after its article
        was stored (a flush between them), so held URLs wait here for their visit.
        Its validators are forgotten: a 304 to a conditional request would only say
        that the server still sends what we doubt, so the confirming fetch is whole."""
        for index, visit in enumerate(self.visits):
            if visit.url in self.held_urls:
                self.visits[index] = replace(
                    visit,
                    next_visit_at=visit.visited_at,
                    etag=None,
                    last_modified=None,
                    keep_validators=False,
                )
                self.held_urls.discard(visit.url)

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
        ``archive/filled/<field>`` and ``archive/body_chars``; and the learned
        boilerplate lines dropped (``archive/boilerplate/dropped``) from how many
        articles (``archive/boilerplate/articles``)."""
        self.stats.inc_value("archive/extracted")
        self.stats.inc_value("archive/body_chars", len(article.body))
        for field in TRACKED_FIELDS:
            if getattr(article, field):
                self.stats.inc_value(f"archive/filled/{field}")
        if article.dropped_blocks:  # learned boilerplate lines extraction dropped
            self.stats.inc_value("archive/boilerplate/dropped", len(article.dropped_blocks))
            self.stats.inc_value("archive/boilerplate/articles")

    def buffered(self) -> int:
        """Rows waiting to be written, of every kind."""
        return sum(len(getattr(self, attribute)) for attribute in KINDS.values())

    # ------------------------------------------------------------------ writing

    def flush(self, *, force: bool = False) -> None:
        """Write what is buffered, unless a recent outage asks to wait.

        After an outage (connection lost, server restarting, no answer in time) the
        buffers are kept and the next attempts back off exponentially, from 0.5 s up
        to 30 s, so that an outage costs neither rows nor a write attempt per item
        while the crawl goes on; `force` ignores the wait (the final flush).
        """
        if not self.buffered():
            return
        if self.down_since is not None and self.paused_since is None:
            # Full while waiting out the backoff: pause now, not at the next attempt.
            self._hold_back()
        if not force and time.monotonic() < self.retry_at:
            return
        if self.retry_delay and not self._database_reachable():
            self._still_down()
            return
        try:
            self._write()
        except DatabaseUnavailable as error:
            self._went_down(error)
            return
        self._came_back()

    def _back_off(self) -> None:
        self.retry_delay = min(max(2 * self.retry_delay, 0.5), 30.0)
        self.retry_at = time.monotonic() + self.retry_delay

    def _database_reachable(self) -> bool:
        """One connection check-out (PostgreSQL pings it) before a batch is tried:
        while the server is down, a batch would otherwise wait out its own timeouts."""
        assert self.archive is not None
        try:
            self.archive.ping()
        except ArchiveError as error:
            logger.debug("Archive database still unreachable: %s", error)
            return False
        return True

    def _write(self) -> None:
        """Write each buffer, in `KINDS` order; a row leaves its buffer once it is
        committed or refused (then recorded as a problem).  An outage raises
        `DatabaseUnavailable`, the rows not yet written kept for the next flush."""
        assert self.archive is not None
        archive = self.archive
        now = datetime.now(UTC)
        if self.articles:
            self._store_articles()
        self._announce_capture_links()
        if self.aliases:
            written = self._write_rows(
                "aliases", lambda rows: archive.articles.record_aliases(rows, now)
            )
            self.stats.inc_value("archive/aliases", written)
        if self.visits:
            self._recheck_held()
            urls = [visit.url for visit in self.visits]
            self._write_rows("visits", archive.visits.record)
            self.crawler.signals.send_catch_log(visits_written, urls=urls)
        if self.problems:
            run_id, spider = self.run.run_id, self._spider_name()
            self._write_rows(
                "problems", lambda rows: archive.runs.record_errors(run_id, spider, rows, now)
            )

    def _write_rows(self, kind: str, write: Callable[[list[Any]], list[Refused[Any]]]) -> int:
        """Write the buffer of `kind` with `write`; return how many rows were written."""
        attribute = KINDS[kind]
        rows: list[Any] = getattr(self, attribute)
        try:
            refused = write(rows)
        except DatabaseUnavailable as error:
            # Rows handled one by one before the outage are done (written or refused).
            setattr(self, attribute, rows[error.handled :])
            self._refused(kind, error.refused)
            raise
        setattr(self, attribute, [])
        self._refused(kind, refused)
        return len(rows) - len(refused)

    def _refused(self, kind: str, refused: Sequence[Refused[Any]]) -> None:
        """Rows the database refused for their values: lost, each logged and, but for
        problems themselves, recorded as a ``value_refused`` problem."""
        for each in refused:
            url = _url_of(each.item)
            self.stats.inc_value(f"archive/lost/{kind}")
            logger.error("The archive refused a row of %s (%s): %s", kind, url[:200], each.error)
            if kind != "problems":
                self.stats.inc_value("archive/failed/value_refused")
                site = getattr(each.item, "site", None) or self._spider_name()
                self.problems.append(
                    FetchFailure(site, url, "value_refused", None, f"{kind}: {each.error}")
                )

    def _store_articles(self) -> None:
        assert self.archive is not None
        try:
            outcomes: list[str | None] = list(self.archive.articles.store(self.articles))
            failures: list[tuple[int, ArchiveError]] = []
        except StoreFailures as error:
            outcomes, failures = list(error.outcomes), error.failures
        kept: list[Article] = []
        outage: DatabaseUnavailable | None = None
        for index, failure in failures:
            article = self.articles[index]
            if isinstance(failure, DatabaseUnavailable):
                kept.append(article)
                outage = outage or failure
                continue
            self.stats.inc_value("archive/failed/store_failed")
            self.stats.inc_value("archive/lost/articles")
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
                # Recorded, not put through process_item: that may flush, and this is a flush.
                self._record_problem(
                    Rejection(article.site, article.url, "suspect_truncation", held(article))
                )
                self.held_urls.add(article.url)
        self.articles = kept
        if outage is not None:
            raise outage

    # ------------------------------------------------------------------ outages

    def _went_down(self, error: ArchiveError) -> None:
        """A write met an outage: back off; say so once per outage; pause the crawl
        once too many rows wait."""
        self.stats.inc_value("archive/store_error")
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.stats.inc_value("archive/outages")
            logger.error(
                "Archive database unavailable (%s); %d rows kept, writes retried with backoff",
                error,
                self.buffered(),
            )
        self._still_down()

    def _still_down(self) -> None:
        self._back_off()
        self._hold_back()

    def _hold_back(self) -> None:
        """Pause the crawl once the buffers reach ARCHIVE_BUFFER_LIMIT during an
        outage, and keep a timer retrying while it is paused (not once closing: the
        close's own retries are then the only ones)."""
        if self.closing:
            return
        if self.paused_since is None and self.buffered() >= self.buffer_limit:
            self._pause()
        if self.paused_since is not None:
            self._schedule_retry()

    def _came_back(self) -> None:
        self.retry_delay = self.retry_at = 0.0
        if self.down_since is not None:
            logger.warning(
                "Archive database back after %.1f s; the rows kept were written",
                time.monotonic() - self.down_since,
            )
            self.down_since = None
        if self.paused_since is not None:
            self._resume()

    def _pause(self) -> None:
        """Back-pressure: no new downloads while the buffers are full (responses
        already downloading still arrive, so the bound is the limit plus those)."""
        engine = self.crawler.engine
        if engine is None:
            return
        engine.pause()
        self.paused_since = time.monotonic()
        self.stats.inc_value("archive/paused")
        logger.warning(
            "Crawl paused: %d rows wait for the archive database (ARCHIVE_BUFFER_LIMIT %d)",
            self.buffered(),
            self.buffer_limit,
        )

    def _resume(self) -> None:
        assert self.paused_since is not None
        if self._retry_call is not None:
            self._retry_call.cancel()
            self._retry_call = None
        if self.crawler.engine is not None:
            self.crawler.engine.unpause()
        logger.warning("Crawl resumed after %.1f s", time.monotonic() - self.paused_since)
        self.paused_since = None

    def _schedule_retry(self) -> None:
        """While paused no item arrives to trigger a flush: a timer retries instead."""
        if self._retry_call is not None:
            self._retry_call.cancel()
        delay = max(0.1, self.retry_at - time.monotonic())
        self._retry_call = call_later(delay, self._retry_while_paused)

    def _retry_while_paused(self) -> None:
        self._retry_call = None
        if self.paused_since is None:
            return
        if time.monotonic() - self.paused_since > self.retry_seconds and self.crawler.engine:
            # Paused for longer than the close would wait: stop the crawl (cut short),
            # and let the final flush try once more before counting the loss.
            logger.error(
                "Archive database unavailable for over %.0f s: closing the crawl",
                self.retry_seconds,
            )
            self.crawler.engine.unpause()
            self.paused_since = None
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=DATABASE_UNAVAILABLE))
            return
        self.flush()
        if self.paused_since is not None and self._retry_call is None:
            self._schedule_retry()

    # ------------------------------------------------------------------ closing

    def _announce_capture_links(self) -> None:
        """Hand the capture links of written articles to the capture index (which
        writes them, after its rows); links of articles still buffered wait."""
        buffered = {article.url for article in self.articles}
        ready = [link for link in self.capture_links if link.url not in buffered]
        if ready:
            self.capture_links = [link for link in self.capture_links if link.url in buffered]
            self.crawler.signals.send_catch_log(captures_produced, links=ready)

    def close_spider(self) -> Coroutine[Any, Any, None] | None:
        """The final flush.  If the database is unreachable, return a coroutine
        (Scrapy awaits it) that retries with backoff for up to ARCHIVE_RETRY_SECONDS
        without blocking the reactor; whatever is still unwritten then is lost."""
        self.closing = True
        if self._retry_call is not None:
            self._retry_call.cancel()
            self._retry_call = None
        self.flush(force=True)
        if self.buffered():
            return self._flush_until_stored(time.monotonic() + self.retry_seconds)
        self._report_lost()
        return None

    async def _flush_until_stored(self, deadline: float) -> None:
        logger.warning(
            "Archive database unavailable at close; %d rows kept, retrying for up to %.0f s",
            self.buffered(),
            max(0.0, deadline - time.monotonic()),
        )
        while self.buffered() and time.monotonic() < deadline:
            delay = min(self.retry_delay, max(0.0, deadline - time.monotonic()))
            # TWISTED_REACTOR is the asyncio reactor: this sleep lets the reactor run.
            await asyncio.sleep(delay)
            self.flush(force=True)
        self._report_lost()

    def _report_lost(self) -> None:
        """Count what was never written (``archive/lost/<kind>``) and say it once."""
        left = {kind: len(getattr(self, attribute)) for kind, attribute in KINDS.items()}
        for kind, count in left.items():
            if count:
                self.stats.inc_value(f"archive/lost/{kind}", count)
        lost_articles = list(self.articles)
        for attribute in KINDS.values():  # counted as lost: never written afterwards
            setattr(self, attribute, [])
        lost = {
            key.removeprefix("archive/lost/"): value
            for key, value in self.stats.get_stats().items()
            if key.startswith("archive/lost/") and value
        }
        if not lost:
            return
        logger.error(
            "Lost (not written to the archive): %s",
            ", ".join(f"{count} {kind}" for kind, count in sorted(lost.items())),
        )
        if lost_articles:
            logger.error(
                "Articles not stored: %s", ", ".join(article.url for article in lost_articles)
            )

    def _spider_name(self) -> str:
        spider = self.crawler.spider
        return spider.name if spider is not None else "?"


def held(article: Article) -> str:
    """The detail of a ``suspect_truncation`` record: why storage held `article` back."""
    why = article.suspect or "body lost more than half its length"
    return f"{why}; the current version stays until a later fetch confirms this one"


def _url_of(item: Any) -> str:
    """The URL a buffered row is about."""
    if isinstance(item, AliasSeen):
        return item.alias_url
    return str(getattr(item, "url", "") or "")
