"""Keep every response as fetched: status, headers and exact bytes, in WARC files.

A downloader middleware on the downloader side of everything else (replay
included), so it sees responses before decompression and redirects are
handled. The WARC work (file layout, records, rotation at ``WARC_MAX_BYTES``,
revisits for payloads stored before) is `news_archive.crawler.warc.WarcArchive`'s;
each run writes into its own folder ``WARC_DIR/<spider>-<UTC start>-<pid>/``.
Every response or revisit record is indexed in the ``captures`` table;
``response.meta["capture_id"]`` carries the id to the spider, which links the
capture to the article version it produced.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.warc import WARC_DATE_FORMAT, PayloadRef, WarcArchive
from news_archive.storage.archive import ArchiveError, Captures
from news_archive.storage.captures import CaptureRecord

logger = logging.getLogger(__name__)


class WarcCaptureMiddleware:
    """Write each response to the run's WARC files and index it in ``captures``."""

    def __init__(self, crawler: Crawler, directory: Path, max_bytes: int) -> None:
        self.crawler = crawler
        self.archive = WarcArchive(directory, max_bytes=max_bytes, earlier_payload=self._earlier)
        self.run_directory: Path | None = None
        self.captures: Captures | None = None
        self.spider_name = "?"
        # index rows not yet written (database unreachable)
        self.pending: list[CaptureRecord] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        settings = crawler.settings
        if not settings.getbool("WARC_ENABLED") or not settings.get("WARC_DIR"):
            raise NotConfigured("WARC capture is off (WARC_ENABLED / WARC_DIR)")
        middleware = cls(crawler, Path(settings["WARC_DIR"]), settings.getint("WARC_MAX_BYTES"))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def spider_opened(self, spider: Spider) -> None:
        self.spider_name = spider.name
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.run_directory = self.archive.open_run(
            f"{spider.name}-{started}-{os.getpid()}", spider.name
        )
        # The index lives in the crawl's one archive (ArchiveRun builds and migrates it).
        self.captures = self.crawler.get_extension(ArchiveRun).archive.captures
        logger.info("Capturing responses to %s", self.run_directory)

    def spider_closed(self, spider: Spider) -> None:
        self.archive.close_run()
        if self.pending and self.captures is not None:
            try:
                for row in list(self.pending):
                    self.captures.add(row)
                    self.pending.remove(row)
            except ArchiveError as error:
                logger.error(
                    "%d WARC records in %s stay unindexed: %s",
                    len(self.pending),
                    self.run_directory,
                    error,
                )

    def process_response(self, request: Request, response: Response) -> Response:
        if self.captures is None or self.run_directory is None:
            return response
        fetched_at = datetime.now(UTC)
        written = self.archive.store_response(request, response, fetched_at)
        record_row = CaptureRecord(
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
        response.meta["capture_id"] = self._index(record_row)
        return response

    def _index(self, row: CaptureRecord) -> int | None:
        """Index the record; its id, or None while the database is unreachable.

        The record is safe in the WARC file already: a database outage must not
        cost the page, so unindexed rows wait and are retried with the next
        response and at close (without a link to the version they produced)."""
        assert self.captures is not None
        self.pending.append(row)
        try:
            while self.pending:
                capture_id = self.captures.add(self.pending[0])
                self.pending.pop(0)
        except ArchiveError as error:
            logger.warning("Capture index write failed, %d rows kept: %s", len(self.pending), error)
            return None
        return capture_id

    def _earlier(self, digest: str) -> PayloadRef | None:
        """The payload with this digest as an earlier run wrote it, per the index."""
        if self.captures is None:
            return None
        try:
            stored = self.captures.first_with_digest(digest)
        except ArchiveError:
            # Unknown for now: a full record costs bytes, never a page.
            return None
        if stored is None:
            return None
        return PayloadRef(stored.url, stored.fetched_at.strftime(WARC_DATE_FORMAT))
