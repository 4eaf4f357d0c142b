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
(``WARC_INDEX_BATCH_SIZE`` rows a transaction, not one a response).
``response.meta["capture"]`` names the record (WARC file, offset) before any row
exists; the spider passes it on in its `PageVisit`, and once the pipeline has
written the article it sends `captures_produced` with the links, which are written
with the next batch. While the database is unreachable, rows and links wait (up to
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
from dataclasses import dataclass
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
        self.captures = self.crawler.get_extension(ArchiveRun).archive.captures
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
        self._flush()
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
            self._flush()
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
            self._flush()
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

    def _flush(self) -> None:
        """Write the waiting rows, then the waiting links, unless a recent failure
        asks to wait. A transient failure keeps them (and backs off); a batch the
        database refuses for good is written row by row, so that one bad row costs
        only itself."""
        assert self.captures is not None
        if not (self.pending or self.links) or time.monotonic() < self.retry_at:
            return
        rows, links = len(self.pending), len(self.links)
        try:
            try:
                self.captures.write(self.pending, self.links)
            except DatabaseUnavailable:
                raise
            except ArchiveError:
                self._write_one_by_one(rows, links)
            else:
                del self.pending[:rows], self.links[:links]
        except DatabaseUnavailable as error:
            self._back_off(error)
            return
        self.flushed_at = time.monotonic()
        self.crawler.stats.inc_value("warc/indexed", rows)
        if self.retry_delay:
            logger.warning("Capture index written again after an outage")
        self.retry_delay = self.retry_at = 0.0

    def _write_one_by_one(self, rows: int, links: int) -> None:
        """The first `rows` rows and `links` links, each in a transaction of its own:
        one the database refuses is lost; a transient failure (raised) keeps what
        is not written yet for the next attempt."""
        assert self.captures is not None
        while rows:
            row = self.pending[0]
            try:
                self.captures.write([row], [])
            except DatabaseUnavailable:
                raise
            except ArchiveError as error:
                logger.error("Capture index refused %s@%s: %s", row.warc_file, row.offset, error)
                self._lose(rows=[row])
            del self.pending[0]
            rows -= 1
        while links:
            link = self.links[0]
            try:
                if (link.warc_file, link.offset) in self.unindexed:
                    raise ArchiveError("its capture is not indexed")
                self.captures.write([], [link])
            except DatabaseUnavailable:
                raise
            except ArchiveError as error:
                logger.error("Capture link refused for %s: %s", link.url, error)
                self._lose(links=[link])
            del self.links[0]
            links -= 1

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

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            future.get_loop().call_soon_threadsafe(settle)
