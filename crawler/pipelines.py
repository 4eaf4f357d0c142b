"""Validate → store. Thin: every SQL statement lives in `storage`.

Articles are written in batches (one transaction each), in the crawl's write
thread (`news_archive.crawler.writes`), so that the reactor goes on while a batch is
written; what a write made of its rows (stats, problems, signals) is taken in on
the reactor thread afterwards.  Rejections and fetch
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
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field, replace
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


# The kinds a batch writes, in this order (capture links go to the capture index).
_WRITTEN = ("articles", "aliases", "visits", "problems")
# A forced flush writes at most this many batches: what waits, then the problems
# the first batch recorded (rows refused, changes held back).
_FORCED_ROUNDS = 3


@dataclass(eq=False)
class _Batch:
    """Rows taken from the buffers for one write, and what the write made of them
    (filled in by `_write`, in the writer thread, and taken in on the reactor's)."""

    rows: dict[str, list[Any]]  # of each kind of `_WRITTEN`
    held: frozenset[str]  # URLs whose change storage held back, their visit still to come
    ping: bool  # check that the database answers before writing (after a failure)
    run_id: int | None
    spider: str
    now: datetime
    future: Future[None] | None = None
    # Each article's outcome (None: not stored), and (index, why) of those not stored.
    outcomes: list[str | None] = field(default_factory=list)
    failures: list[tuple[int, ArchiveError]] = field(default_factory=list)
    refused: dict[str, Sequence[Refused[Any]]] = field(default_factory=dict)
    aliases_written: int = 0
    visits_written: list[str] | None = None  # their URLs, once the visits are written
    held_new: frozenset[str] = frozenset()  # changes this batch held back
    held_done: frozenset[str] = frozenset()  # held URLs whose visit this batch rewrote
    left: dict[str, list[Any]] = field(default_factory=dict)  # not written: an outage
    done: set[str] = field(default_factory=set)  # the kinds written (or refused) whole
    outage: ArchiveError | None = None
    unreachable: bool = False  # the database did not answer: nothing was tried

    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def _write(archive: Archive, batch: _Batch) -> None:
    """Write `batch`, each kind in `_WRITTEN` order in a transaction of its own; a row
    is written or refused (`batch.refused`).  An outage stops it: the rows not yet
    written go to `batch.left`.  Runs in the writer thread: no stats, log or signal."""
    if batch.ping:
        try:
            archive.ping()
        except ArchiveError as error:
            batch.unreachable, batch.outage = True, error
            batch.left = {kind: rows for kind, rows in batch.rows.items() if rows}
            return
    now, run_id, spider = batch.now, batch.run_id, batch.spider
    writers: dict[str, Callable[[list[Any]], list[Refused[Any]]]] = {
        "aliases": lambda rows: archive.articles.record_aliases(rows, now),
        "visits": archive.visits.record,
        "problems": lambda rows: archive.runs.record_errors(run_id, spider, rows, now),
    }
    for position, kind in enumerate(_WRITTEN):
        rows = batch.rows[kind]
        try:
            if kind == "articles":
                _store_articles(archive, batch)
            elif rows:
                if kind == "visits":
                    rows = batch.rows[kind] = _recheck_held(rows, batch)
                batch.refused[kind] = writers[kind](rows)
                if kind == "aliases":
                    batch.aliases_written = len(rows) - len(batch.refused[kind])
                elif kind == "visits":
                    batch.visits_written = [visit.url for visit in rows]
            batch.done.add(kind)
        except DatabaseUnavailable as error:
            batch.outage = error
            if kind != "articles":  # (the articles kept are in `left` already)
                # Rows handled one by one before the outage are done (written or refused).
                batch.left[kind] = rows[error.handled :]
                batch.refused[kind] = error.refused
            for later in _WRITTEN[position + 1 :]:
                if batch.rows[later]:
                    batch.left[later] = batch.rows[later]
            return


def _store_articles(archive: Archive, batch: _Batch) -> None:
    """Store the articles of `batch`; those an outage kept from the database go to
    `batch.left` and the outage is raised."""
    articles = batch.rows["articles"]
    if not articles:
        return
    try:
        batch.outcomes = list(archive.articles.store(articles))
    except DatabaseUnavailable:  # before any article: all are kept
        batch.left["articles"] = articles
        raise
    except StoreFailures as error:
        batch.outcomes, batch.failures = list(error.outcomes), list(error.failures)
    batch.held_new = frozenset(
        article.url
        for article, outcome in zip(articles, batch.outcomes, strict=True)
        if outcome == "held"
    )
    outages = [(index, f) for index, f in batch.failures if isinstance(f, DatabaseUnavailable)]
    if outages:
        batch.left["articles"] = [articles[index] for index, _ in outages]
        raise outages[0][1]


def _recheck_held(visits: list[VisitRecord], batch: _Batch) -> list[VisitRecord]:
    """A held change waits for a fetch that confirms or drops it: its page is due
    again at the next run, not after the revisit schedule's interval (which reaches
    90 days for old articles).  The visit may arrive after its article was stored (a
    batch between them), so held URLs wait for their visit (`batch.held`).  Its
    validators are forgotten: a 304 to a conditional request would only say that
    the server still sends what we doubt, so the confirming fetch is whole."""
    held, done = batch.held | batch.held_new, set()
    rechecked = []
    for visit in visits:
        if visit.url in held and visit.url not in done:
            visit = replace(
                visit,
                next_visit_at=visit.visited_at,
                etag=None,
                last_modified=None,
                keep_validators=False,
            )
            done.add(visit.url)
        rechecked.append(visit)
    batch.held_done = frozenset(done)
    return rechecked


class ArchivePipeline:
    """Store articles, aliases, visits and problems of one crawl in the archive database.

    Rows are judged one by one: a row the database refuses for its values costs
    that row only (recorded as a ``store_failed`` or ``value_refused`` problem and
    counted in ``archive/lost/<kind>``); an outage keeps every row buffered and
    retried with backoff, is logged once when it begins and once when it ends, and
    pauses the crawl (Scrapy's engine) while more than ``ARCHIVE_BUFFER_LIMIT`` rows
    wait, so memory stays bounded however long it lasts.

    One batch is written at a time, by the write thread (`_write`); items keep
    coming into the buffers meanwhile, and the next batch starts when it ends. Only
    a database slower than the crawl, with ``ARCHIVE_BUFFER_LIMIT`` rows waiting,
    makes an item wait for the batch under way (at most until the database
    timeouts end it as an outage).
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
        # The batch being written (by the crawl's write thread, `ArchiveRun.writes`).
        self._writing: _Batch | None = None

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
            if self._writing is not None and self.buffered() >= self.buffer_limit:
                # The database writes slower than the crawl reads: wait for it here.
                self._settle()
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
        for name in TRACKED_FIELDS:
            if getattr(article, name):
                self.stats.inc_value(f"archive/filled/{name}")
        if article.dropped_blocks:  # learned boilerplate lines extraction dropped
            self.stats.inc_value("archive/boilerplate/dropped", len(article.dropped_blocks))
            self.stats.inc_value("archive/boilerplate/articles")

    def buffered(self) -> int:
        """Rows waiting to be written, of every kind, the batch being written included."""
        waiting = sum(len(getattr(self, attribute)) for attribute in KINDS.values())
        return waiting + (self._writing.size() if self._writing is not None else 0)

    # ------------------------------------------------------------------ writing

    def flush(self, *, force: bool = False) -> None:
        """Write what is buffered, unless a recent outage asks to wait or a batch is
        being written (it flushes again when it ends, if a batch is waiting).

        After an outage (connection lost, server restarting, no answer in time) the
        buffers are kept and the next attempts back off exponentially, from 0.5 s up
        to 30 s, so that an outage costs neither rows nor a write attempt per item
        while the crawl goes on.  `force` (the final flush, a drain) ignores the
        wait, and returns once everything it could write is written: the batch under
        way first, then the rest, the problems that batch recorded included.
        """
        for _ in range(_FORCED_ROUNDS if force else 1):
            if self._writing is not None:
                if not force:
                    return
                self._settle()
            if not self.buffered():
                return
            if self.down_since is not None and self.paused_since is None:
                # Full while waiting out the backoff: pause now, not at the next attempt.
                self._hold_back()
            if not force and time.monotonic() < self.retry_at:
                return
            self._submit(self._take_batch())
            if force:
                self._settle()
                if self.down_since is not None:
                    return

    def _take_batch(self) -> _Batch:
        """Take every row waiting (but the capture links) out of the buffers."""
        rows = {kind: getattr(self, KINDS[kind]) for kind in _WRITTEN}
        for kind in _WRITTEN:
            setattr(self, KINDS[kind], [])
        return _Batch(
            rows=rows,
            held=frozenset(self.held_urls),
            # After a failed attempt, one connection check-out (PostgreSQL pings it)
            # first: while the server is down a batch would wait out its own timeouts.
            ping=bool(self.retry_delay),
            run_id=self.run.run_id,
            spider=self._spider_name(),
            now=datetime.now(UTC),
        )

    def _submit(self, batch: _Batch) -> None:
        """Write `batch` in the crawl's write thread; take the result in on the
        reactor thread when it is done (at once without a running event loop)."""
        assert self.archive is not None
        archive = self.archive
        self._writing = batch
        batch.future = self.run.writes.submit(
            lambda: _write(archive, batch), lambda future: self._written(batch, future)
        )

    def _settle(self) -> None:
        """Wait for the batch being written (the thread needs nothing from the
        reactor) and take its result in now."""
        batch = self._writing
        if batch is not None and batch.future is not None:
            wait_for([batch.future])
            self._written(batch, batch.future)

    def _written(self, batch: _Batch, future: Future[None]) -> None:
        """Take in what the write of `batch` made of its rows: stats, problems and
        held changes; signals; the rows it did not get to back in front of the
        buffers; then the outage logic."""
        if self._writing is not batch:  # taken in already (`_settle`)
            return
        self._writing = None
        if (error := future.exception()) is not None:
            # A fault of ours, not the database's: logged, the rows of the kinds not
            # written kept, and the writes backed off as in an outage, so that nothing
            # is lost meanwhile (and at close, what is left is counted lost).
            logger.error("Writing a batch to the archive failed", exc_info=error)
            batch.left = {
                kind: rows for kind, rows in batch.rows.items() if rows and kind not in batch.done
            }
            batch.outage = ArchiveError(f"{type(error).__name__}: {error}")
        self._took_articles(batch)
        for kind, refused in batch.refused.items():
            self._refused(kind, refused)
        if batch.aliases_written:
            self.stats.inc_value("archive/aliases", batch.aliases_written)
        self.held_urls = (self.held_urls | batch.held_new) - batch.held_done
        for kind, rows in batch.left.items():  # before what came meanwhile
            setattr(self, KINDS[kind], rows + getattr(self, KINDS[kind]))
        if batch.visits_written is not None:
            self.crawler.signals.send_catch_log(visits_written, urls=batch.visits_written)
        self._announce_capture_links()
        if batch.unreachable:
            logger.debug("Archive database still unreachable: %s", batch.outage)
            self._still_down()
        elif batch.outage is not None:
            self._went_down(batch.outage)
        else:
            self._came_back()
            if not self.closing and (
                len(self.articles) >= self.batch_size or self.buffered() >= self.buffer_limit
            ):
                self.flush()

    def _took_articles(self, batch: _Batch) -> None:
        """Count and log the articles of `batch` that were written; record those the
        database refused (``store_failed``) and the changes it held back."""
        articles = batch.rows["articles"]
        for index, failure in batch.failures:
            if isinstance(failure, DatabaseUnavailable):
                continue  # kept, in `batch.left`
            article = articles[index]
            self.stats.inc_value("archive/failed/store_failed")
            self.stats.inc_value("archive/lost/articles")
            logger.error("Could not store %s: %s", article.url, failure)
            self.problems.append(
                FetchFailure(article.site, article.url, "store_failed", None, str(failure))
            )
        for article, outcome in zip(articles, batch.outcomes, strict=False):
            if outcome is None:
                continue
            self.stats.inc_value(f"archive/stored/{outcome}")
            self.stats.inc_value(f"archive/body_source/{article.sources.get('body')}")
            logger.debug("Stored %s: %s", article.url, outcome)
            if outcome == "held":  # a suspect change, kept back until a fetch confirms it
                # Recorded, not put through process_item: that may flush.
                self._record_problem(
                    Rejection(article.site, article.url, "suspect_truncation", held(article))
                )

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

    def _back_off(self) -> None:
        self.retry_delay = min(max(2 * self.retry_delay, 0.5), 30.0)
        self.retry_at = time.monotonic() + self.retry_delay

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
