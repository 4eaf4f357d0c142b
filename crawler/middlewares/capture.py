"""Keep every response as fetched: status, headers and exact bytes, in WARC files.

A downloader middleware on the downloader side of everything else (replay
included), so it sees responses before decompression and redirects are
handled. Each run writes gzip WARC files (ISO 28500, WARC/1.0, via warcio) into
its own folder ``WARC_DIR/<spider>-<UTC start>-<pid>/``, rotated at
``WARC_MAX_BYTES``; each response gets a ``request`` and a ``response`` record with
``WARC-Payload-Digest``. A payload already archived (same digest, in this run or
an earlier one) is written as a ``revisit`` record instead (profile
identical-payload-digest): identical bytes are stored once. Every record is
indexed in the ``captures`` table; ``response.meta["capture_id"]`` carries the id
to the spider, which links the capture to the article version it produced.
"""

from __future__ import annotations

import io
import logging
import os
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.storage.archive import ArchiveError, Captures
from news_archive.storage.captures import CaptureRecord

logger = logging.getLogger(__name__)

WARC_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class WarcCaptureMiddleware:
    """Write each response to the run's WARC files and index it in ``captures``."""

    def __init__(self, crawler: Crawler, directory: Path, max_bytes: int) -> None:
        self.crawler = crawler
        self.root = directory
        self.max_bytes = max_bytes
        self.run_directory: Path | None = None
        self.file: IO[bytes] | None = None
        self.writer: WARCWriter | None = None
        self.serial = 0
        self.captures: Captures | None = None
        self.spider_name = "?"
        # digest → (uri, date) of payloads written in this run, before the index is asked
        self.seen: dict[str, tuple[str, str]] = {}
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
        self.run_directory = self.root / f"{spider.name}-{started}-{os.getpid()}"
        self.run_directory.mkdir(parents=True, exist_ok=True)
        # The index lives in the crawl's one archive (ArchiveRun builds and migrates it).
        self.captures = self.crawler.get_extension(ArchiveRun).archive.captures
        logger.info("Capturing responses to %s", self.run_directory)

    def spider_closed(self, spider: Spider) -> None:
        self._close_file()
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
        writer, file, name = self._current_writer()
        date = fetched_at.strftime(WARC_DATE_FORMAT)
        response_record = self._response_record(writer, request, response, date)
        digest = response_record.rec_headers.get_header("WARC-Payload-Digest")
        original = self._original(digest)
        record = response_record
        if original is not None:
            record = writer.create_revisit_record(
                response.url,
                digest=digest,
                refers_to_uri=original[0],
                refers_to_date=original[1],
                http_headers=response_record.http_headers,
                warc_headers_dict={"WARC-Date": date},
            )
        offset = file.tell()
        writer.write_record(record)
        length = file.tell() - offset
        writer.write_record(self._request_record(writer, request, response_record, date))
        if original is None:
            self.seen[digest] = (response.url, date)
        record_row = CaptureRecord(
            spider=self.spider_name,
            url=response.url,
            fetched_at=fetched_at,
            status=response.status,
            payload_digest=digest,
            record_type="revisit" if original else "response",
            warc_file=str(Path(self.run_directory.name) / name),
            offset=offset,
            length=length,
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

    def _original(self, digest: str) -> tuple[str, str] | None:
        if digest in self.seen:
            return self.seen[digest]
        assert self.captures is not None
        try:
            stored = self.captures.first_with_digest(digest)
        except ArchiveError:
            # Unknown for now: a full record costs bytes, never a page.
            return None
        if stored is None:
            return None
        return stored.url, stored.fetched_at.strftime(WARC_DATE_FORMAT)

    def _response_record(
        self, writer: WARCWriter, request: Request, response: Response, date: str
    ) -> ArcWarcRecord:
        reason = _reason(response.status)
        headers = [
            (key.decode("latin-1"), value.decode("latin-1"))
            for key, values in response.headers.items()
            for value in values
        ]
        http_headers = StatusAndHeaders(f"{response.status} {reason}", headers, protocol="HTTP/1.1")
        return writer.create_warc_record(
            response.url,
            "response",
            payload=io.BytesIO(response.body),
            length=len(response.body),
            http_headers=http_headers,
            warc_headers_dict={"WARC-Date": date},
        )

    def _request_record(
        self, writer: WARCWriter, request: Request, response_record: ArcWarcRecord, date: str
    ) -> ArcWarcRecord:
        parts = urlsplit(request.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [
            (key.decode("latin-1"), value.decode("latin-1"))
            for key, values in request.headers.items()
            for value in values
        ]
        http_headers = StatusAndHeaders(
            f"{request.method} {target} HTTP/1.1", headers, is_http_request=True
        )
        return writer.create_warc_record(
            request.url,
            "request",
            http_headers=http_headers,
            warc_headers_dict={
                "WARC-Date": date,
                "WARC-Concurrent-To": response_record.rec_headers.get_header("WARC-Record-ID"),
            },
        )

    def _current_writer(self) -> tuple[WARCWriter, IO[bytes], str]:
        if self.file is not None and self.file.tell() >= self.max_bytes:
            self._close_file()
        if self.file is None or self.writer is None:
            assert self.run_directory is not None
            self.serial += 1
            name = f"{self.spider_name}-{self.serial:05d}.warc.gz"
            self.file = (self.run_directory / name).open("wb")
            self.writer = WARCWriter(self.file, gzip=True)
            self.current_name = name
        return self.writer, self.file, self.current_name

    def _close_file(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = None
        self.writer = None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
