"""Keep every response as fetched: status, headers and exact bytes, in WARC files.

A downloader middleware on the downloader side of everything else (replay
included), so it sees responses before decompression and redirects are
handled. Records are built, compressed and written in one thread of their own
(`RecordWriter`: hashing, compression and file writes release the GIL), so the reactor
does not wait for them; it takes the responses waiting for it as a batch, and
asks the index once per batch whether an earlier run wrote their payloads (one
query a response, made from that thread, cost the crawl 10 % of its time in
handovers of the GIL). The WARC work (file layout, records, rotation at ``WARC_MAX_BYTES``,
revisits for payloads stored before) is `news_archive.crawler.warc.WarcArchive`'s;
each run writes into its own folder ``WARC_DIR/<spider>-<UTC start>-<pid>/``.

Every response or revisit record is indexed in the ``captures`` table, in batches
(``WARC_INDEX_BATCH_SIZE`` rows a transaction, not one a response), written by the
crawl's write thread (`news_archive.crawler.writes`), as the articles are: the
response that completes a batch waits for its write, the reactor does not.
``response.meta["capture"]`` names the record (WARC file, offset) before any row
exists; the spider passes it on in its `PageVisit`, and once the pipeline has
written the article it sends `captures_produced` with the links, which are handed
to the write thread then (after that article's batch: one thread keeps the order).
While the database is unreachable, rows and links wait (up to
``WARC_INDEX_MAX_PENDING``) and are written when it returns, so an outage costs no
capture its link to the version it produced. What is never written is counted
(``archive/lost/captures``, ``archive/lost/links``) and logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.warc import (
    WARC_DATE_FORMAT,
    PayloadRef,
    WarcArchive,
    WrittenRecord,
    payload_digest,
)
from news_archive.crawler.writes import WriteThread, call_soon
from news_archive.storage.archive import ArchiveError, Captures, DatabaseUnavailable
from news_archive.storage.captures import CaptureLink, CaptureRecord

logger = logging.getLogger(__name__)

# Signal (``links``: a list of `CaptureLink`): these captures produced these article
# versions, which are written now. Sent by the pipeline; capture off, nobody listens.
captures_produced = object()

# Write the index at least this often while responses come (seconds), so that a
# killed crawl loses few rows.
FLUSH_INTERVAL = 5.0


class WarcCaptureMiddleware:
    """Write each response to the run's WARC files and index it in ``captures``."""

    def __init__(
        self,
        crawler: Crawler,
        directory: Path,
        max_bytes: int,
        *,
        batch_size: int = 100,
        max_pending: int = 100_000,
        retry_seconds: float = 120.0,
    ) -> None:
        self.crawler = crawler
        self.archive = WarcArchive(directory, max_bytes=max_bytes)
        self.batch_size = max(1, batch_size)
        self.max_pending = max(1, max_pending)
        self.retry_seconds = retry_seconds
        self.run_directory: Path | None = None
        self.captures: Captures | None = None
        self.spider_name = "?"
        # index rows and links not yet written, oldest first
        self.pending: list[CaptureRecord] = []
        self.links: list[CaptureLink] = []
        # records whose row is lost: a link to one of them is lost too
        self.unindexed: set[tuple[str, int]] = set()
        self.overflowed = False
        self.flushed_at = time.monotonic()
        # While the database is unreachable: no write before `retry_at`, and the
        # delay doubles with each failed attempt (as the pipeline backs off).
        self.retry_delay = 0.0
        self.retry_at = 0.0
        # The thread that writes the WARC records (from spider_opened to spider_closed).
        self._writer: RecordWriter | None = None
        # The crawl's write thread, and the index write it is doing, if any.
        self.writes: WriteThread | None = None
        self._writing: _IndexWrite | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        settings = crawler.settings
        if not settings.getbool("WARC_ENABLED") or not settings.get("WARC_DIR"):
            raise NotConfigured("WARC capture is off (WARC_ENABLED / WARC_DIR)")
        middleware = cls(
            crawler,
            Path(settings["WARC_DIR"]),
            settings.getint("WARC_MAX_BYTES"),
            batch_size=settings.getint("WARC_INDEX_BATCH_SIZE"),
            max_pending=settings.getint("WARC_INDEX_MAX_PENDING"),
            retry_seconds=settings.getfloat("ARCHIVE_RETRY_SECONDS"),
        )
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(middleware.link, signal=captures_produced)
        return middleware

    def spider_opened(self, spider: Spider) -> None:
        self.spider_name = spider.name
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.run_directory = self.archive.open_run(
            f"{spider.name}-{started}-{os.getpid()}", spider.name
        )
        # The index lives in the crawl's one archive (ArchiveRun builds and migrates it).
        run = self.crawler.get_extension(ArchiveRun)
        self.captures, self.writes = run.archive.captures, run.writes
        self._writer = RecordWriter(self.archive, self._earlier)
        logger.info("Capturing responses to %s", self.run_directory)

    def spider_closed(self, spider: Spider) -> Deferred[None] | None:
        """Close the WARC file and write what the index still lacks; while the
        database is unreachable, retry (without blocking the reactor) for up to
        ``ARCHIVE_RETRY_SECONDS``, then count and log what is lost."""
        if self._writer is not None:
            # After the records still being written (a crawl cut short by a signal).
            self._writer.stop()
            self._writer = None
        self.archive.close_run()
        if self.captures is None:
            return None
        self._flush(force=True)
        if (self.pending or self.links) and self.retry_seconds > 0:
            deadline = time.monotonic() + self.retry_seconds
            return deferred_from_coro(self._flush_until_written(deadline))
        self._give_up()
        return None

    async def _flush_until_written(self, deadline: float) -> None:
        while (self.pending or self.links) and time.monotonic() < deadline:
            # TWISTED_REACTOR is the asyncio reactor: this sleep lets the reactor run.
            now = time.monotonic()
            await asyncio.sleep(max(0.0, min(self.retry_at, deadline) - now))
            self._flush(force=True)
        self._give_up()

    async def process_response(self, request: Request, response: Response) -> Response:
        if self.captures is None or self.run_directory is None or self._writer is None:
            return response
        fetched_at = datetime.now(UTC)
        # Digests, compression and file writes (C code that releases the GIL) in the
        # writer thread, while the reactor goes on; one thread keeps records in order.
        written = await self._writer.write(request, response, fetched_at)
        self.pending.append(
            CaptureRecord(
                spider=self.spider_name,
                url=response.url,
                fetched_at=fetched_at,
                status=response.status,
                payload_digest=written.payload_digest,
                record_type=written.record_type,
                warc_file=written.file,
                offset=written.offset,
                length=written.length,
            )
        )
        self._bound(self.pending)
        response.meta["capture"] = (written.file, written.offset)
        if len(self.pending) >= self.batch_size or self._flush_overdue():
            # This response (one in a batch) waits for the index write; the reactor
            # does not, and the write is taken in when it is done.
            index_write = self._flush()
            if index_write is not None and index_write.future is not None:
                await asyncio.wrap_future(index_write.future)
                self._indexed(index_write, index_write.future)
        return response

    def link(self, links: Sequence[CaptureLink]) -> None:
        """`captures_produced`: the versions are written; link their captures now."""
        self._lose(
            links=[link for link in links if (link.warc_file, link.offset) in self.unindexed]
        )
        self.links.extend(
            link for link in links if (link.warc_file, link.offset) not in self.unindexed
        )
        self._bound(self.links)
        # Right away: a crawl killed now leaves no written article unlinked.
        self._flush()

    def _bound(self, waiting: list[CaptureRecord] | list[CaptureLink]) -> None:
        """Keep at most ``WARC_INDEX_MAX_PENDING`` waiting: the oldest beyond are lost."""
        excess = len(waiting) - self.max_pending
        if excess <= 0:
            return
        dropped = waiting[:excess]
        del waiting[:excess]
        if not self.overflowed:
            self.overflowed = True
            logger.error(
                "Capture index unreachable for too long: more than %d rows or links "
                "waiting, the oldest are dropped (counted in archive/lost/captures and "
                "archive/lost/links)",
                self.max_pending,
            )
        rows = [item for item in dropped if isinstance(item, CaptureRecord)]
        links = [item for item in dropped if isinstance(item, CaptureLink)]
        self._lose(rows=rows, links=links)

    def _flush_overdue(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.flushed_at >= FLUSH_INTERVAL

    def _flush(self, *, force: bool = False) -> _IndexWrite | None:
        """Hand the waiting rows, then the waiting links, to the crawl's write thread,
        unless a recent failure asks to wait or a write is under way (`force`, at
        close: wait for it, then write and wait again).  Return the write handed in.
        A transient failure keeps them (and backs off); a batch the database
        refuses for good is written row by row, so that one bad row costs only
        itself (`_write_index`)."""
        assert self.captures is not None and self.writes is not None
        if self._writing is not None:
            if not force:
                return None
            self._settle()
        if not (self.pending or self.links) or time.monotonic() < self.retry_at:
            return None
        index_write = _IndexWrite(self.pending, self.links, frozenset(self.unindexed))
        self.pending, self.links = [], []
        self._writing = index_write
        captures = self.captures
        index_write.future = self.writes.submit(
            lambda: _write_index(captures, index_write),
            lambda future: self._indexed(index_write, future),
        )
        if force:
            self._settle()
        return index_write

    def _settle(self) -> None:
        """Wait for the index write under way and take its result in now."""
        index_write = self._writing
        if index_write is not None and index_write.future is not None:
            wait_for([index_write.future])
            self._indexed(index_write, index_write.future)

    def _indexed(self, index_write: _IndexWrite, future: Future[None]) -> None:
        """Take in what an index write did (on the reactor thread): rows and links
        refused are lost; those an outage kept wait again, before what came since."""
        if self._writing is not index_write:  # taken in already
            return
        self._writing = None
        if (error := future.exception()) is not None:  # a fault of ours: keep them all
            logger.error("Writing the capture index failed", exc_info=error)
            index_write.left_rows, index_write.left_links = index_write.rows, index_write.links
            index_write.lost_rows, index_write.lost_links = [], []  # kept, so not lost
            index_write.outage = ArchiveError(f"{type(error).__name__}: {error}")
        self._lose(rows=index_write.lost_rows, links=index_write.lost_links)
        self.pending[:0] = index_write.left_rows
        self.links[:0] = index_write.left_links
        if index_write.outage is not None:
            self._back_off(index_write.outage)
            return
        self.flushed_at = time.monotonic()
        self.crawler.stats.inc_value("warc/indexed", len(index_write.rows))
        if self.retry_delay:
            logger.warning("Capture index written again after an outage")
        self.retry_delay = self.retry_at = 0.0

    def _back_off(self, error: ArchiveError) -> None:
        if not self.retry_delay:
            # Once per outage, not once per response.
            logger.warning(
                "Capture index unreachable, keeping %d rows and %d links to write later: %s",
                len(self.pending),
                len(self.links),
                error,
            )
        self.crawler.stats.inc_value("warc/index_retries")
        self.retry_delay = min(max(2 * self.retry_delay, 0.5), 30.0)
        self.retry_at = time.monotonic() + self.retry_delay

    def _lose(self, rows: Sequence[CaptureRecord] = (), links: Sequence[CaptureLink] = ()) -> None:
        """Count rows and links that will never be written."""
        if rows:
            self.unindexed.update((row.warc_file, row.offset) for row in rows)
            self.crawler.stats.inc_value("archive/lost/captures", len(rows))
        if links:
            self.crawler.stats.inc_value("archive/lost/links", len(links))

    def _give_up(self) -> None:
        """At close, after the retries: what still waits is lost; say so once."""
        if not self.pending and not self.links:
            return
        logger.error(
            "Could not index %d WARC records in %s nor link %d captures to their versions "
            "(the records are in the WARC files; the index lacks them)",
            len(self.pending),
            self.run_directory,
            len(self.links),
        )
        self._lose(rows=self.pending, links=self.links)
        self.pending, self.links = [], []

    def _earlier(self, digests: Sequence[str]) -> dict[str, PayloadRef]:
        """The payloads with these digests as earlier runs wrote them, per the index
        (asked from the writer thread)."""
        if self.captures is None or time.monotonic() < self.retry_at:
            # Unknown while the database is away: a full record costs bytes, never a page.
            return {}
        try:
            stored = self.captures.first_with_digests(digests)
        except ArchiveError:
            return {}
        return {
            digest: PayloadRef(payload.url, payload.fetched_at.strftime(WARC_DATE_FORMAT))
            for digest, payload in stored.items()
        }


@dataclass(eq=False)
class _IndexWrite:
    """Index rows and capture links handed to the write thread, and what became of
    them (filled in by `_write_index`, in that thread)."""

    rows: list[CaptureRecord]
    links: list[CaptureLink]
    unindexed: frozenset[tuple[str, int]]  # records whose row is lost: no link to them
    future: Future[None] | None = None
    lost_rows: list[CaptureRecord] = field(default_factory=list)
    lost_links: list[CaptureLink] = field(default_factory=list)
    left_rows: list[CaptureRecord] = field(default_factory=list)  # kept: an outage
    left_links: list[CaptureLink] = field(default_factory=list)
    outage: ArchiveError | None = None


def _write_index(captures: Captures, index_write: _IndexWrite) -> None:
    """Write the rows, then the links, in one transaction; if the database refuses
    it for good, each in a transaction of its own: one it refuses is lost, and a
    transient failure keeps what is not written yet (`left_*`)."""
    try:
        try:
            captures.write(index_write.rows, index_write.links)
        except DatabaseUnavailable:
            raise
        except ArchiveError:
            _write_one_by_one(captures, index_write)
    except DatabaseUnavailable as error:
        index_write.outage = error
        if not (index_write.left_rows or index_write.left_links):  # none was written
            index_write.left_rows, index_write.left_links = index_write.rows, index_write.links


def _write_one_by_one(captures: Captures, index_write: _IndexWrite) -> None:
    unindexed = set(index_write.unindexed)
    rows, links = index_write.rows, index_write.links
    for position, row in enumerate(rows):
        try:
            captures.write([row], [])
        except DatabaseUnavailable:
            index_write.left_rows, index_write.left_links = rows[position:], links
            raise
        except ArchiveError as error:
            logger.error("Capture index refused %s@%s: %s", row.warc_file, row.offset, error)
            index_write.lost_rows.append(row)
            unindexed.add((row.warc_file, row.offset))
    for position, link in enumerate(links):
        try:
            if (link.warc_file, link.offset) in unindexed:
                raise ArchiveError("its capture is not indexed")
            captures.write([], [link])
        except DatabaseUnavailable:
            index_write.left_links = links[position:]
            raise
        except ArchiveError as error:
            logger.error("Capture link refused for %s: %s", link.url, error)
            index_write.lost_links.append(link)


@dataclass(eq=False)
class _Job:
    request: Request
    response: Response
    fetched_at: datetime
    future: asyncio.Future[WrittenRecord]  # of the loop that waits for it


class RecordWriter:
    """The thread that writes a crawl's WARC records, in the order they are asked
    for. It takes every response waiting (up to `BATCH` at a time), asks `earlier`
    once for the payloads of the batch an earlier run wrote (a mapping digest ->
    `PayloadRef`), then writes each record; each `write` resolves on the loop it
    was called from."""

    BATCH = 100

    def __init__(
        self,
        archive: WarcArchive,
        earlier: Callable[[Sequence[str]], Mapping[str, PayloadRef]],
    ) -> None:
        self.archive = archive
        self.earlier = earlier
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="warc-writer", daemon=True)
        self._thread.start()

    def write(
        self, request: Request, response: Response, fetched_at: datetime
    ) -> Awaitable[WrittenRecord]:
        """Write `response` and `request` (`WarcArchive.store_response`)."""
        future: asyncio.Future[WrittenRecord] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Job(request, response, fetched_at, future))
        return future

    def stop(self) -> None:
        """Return once every record asked for is written."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < self.BATCH and batch[-1] is not None:
                    batch.append(self._jobs.get_nowait())
            jobs = [job for job in batch if job is not None]
            if jobs:
                self._write(jobs)
            if batch[-1] is None:
                return

    def _write(self, jobs: list[_Job]) -> None:
        digests = [payload_digest(job.response.body) for job in jobs]
        try:
            earlier = self.earlier(digests)
        except Exception:  # a full record costs bytes, never a page
            logger.exception("Capture index look-up failed: full records written")
            earlier = {}
        for job, digest in zip(jobs, digests, strict=True):
            try:
                written = self.archive.store_response(
                    job.request, job.response, job.fetched_at, earlier.get(digest), digest
                )
            except Exception as error:
                self._settle(job.future, error=error)
            else:
                self._settle(job.future, written=written)

    def _settle(
        self,
        future: asyncio.Future[WrittenRecord],
        written: WrittenRecord | None = None,
        error: BaseException | None = None,
    ) -> None:
        def settle() -> None:
            if future.done():  # the request was cancelled meanwhile
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(written)  # type: ignore[arg-type]

        call_soon(future.get_loop(), settle)
