"""Serve every request from a fixture directory instead of the network.

Modelled on Scrapy's ``HttpCacheMiddleware``: a downloader middleware whose
``process_request`` answers with a stored response, so nothing reaches the
downloader (and so nothing reaches the network, and no download delay applies).
The directory format is the public one of INTERFACE.md: ``manifest.jsonl`` with
``url``, ``file``, ``status``, ``headers`` per line. A folder of WARC captures
(a capture run, or ``WARC_DIR``) replays too, read through
`news_archive.crawler.warc.WarcArchive`.

Bounds hold as on the network: a body over ``DOWNLOAD_MAXSIZE`` is refused with
the `DownloadCancelledError` Scrapy's HTTP handler cancels such a download with,
and one over ``DOWNLOAD_WARNSIZE`` logged, each overridden per request by the meta
keys ``download_maxsize``/``download_warnsize`` or the spider's attributes of those
names, as Scrapy's handler does.  A manifest ``file`` is confined to the directory:
an absolute path, or one leading out of it (``../``, a symbolic link), is never
read; a request for its URL fails with `BadReplay`.

A WARC folder with damaged records (a file cut short, a corrupt record) replays
what is whole: each damaged record is one ``bad_replay`` `FetchFailure`, handed to
the pipeline before the spider's start requests by `ReplayDamageMiddleware` (a
spider middleware, asking this one through the `replay_damage` signal), under its
URL when what is left of it names one, else under its WARC file (the detail names
file and offset). A request for a damaged record's URL then fails with
`BadReplay` marked ``reported``: no second problem. A record that fails when it is
read for a request fails that request with `BadReplay`, a ``bad_replay`` problem.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from hashlib import blake2b
from pathlib import Path
from typing import BinaryIO

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, NotConfigured
from scrapy.http import Headers, Response
from scrapy.http.response.html import HtmlResponse
from scrapy.responsetypes import responsetypes
from scrapy.statscollectors import StatsCollector
from w3lib.url import canonicalize_url

from news_archive.crawler.warc import Capture, WarcArchive, WarcError
from news_archive.vocabulary import FetchFailure

logger = logging.getLogger(__name__)

# Sent by `ReplayDamageMiddleware` at start; `ReplayMiddleware` answers with the
# damaged records of its WARC folder, as `Damage`s (once: a second ask gets none).
replay_damage = object()


class ManifestError(ValueError):
    """The fixture directory, one of its manifest lines or its WARC files are unusable."""


class BadReplay(Exception):
    """A stored response that must not be served: the request fails with it, and the
    spider's errback records a ``bad_replay`` problem, unless `reported` (the damaged
    record was recorded at start)."""

    def __init__(self, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.reported = reported


@dataclass(frozen=True, slots=True)
class Damage:
    """A damaged record of a replayed WARC folder: its URL when what is left of it
    names one, else its WARC file's; `detail` names the file and offset."""

    url: str
    detail: str

    @classmethod
    def of(cls, error: WarcError) -> Damage:
        if error.url:
            return cls(error.url, str(error))
        where = error.location.file if error.location else None
        return cls(where.as_uri() if where else "", str(error))


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored response: from a manifest line (`file`), or from a WARC capture
    (`capture`, its payload read on demand from `archive`)."""

    url: str
    status: int = 200
    headers: list[tuple[str, str]] | dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    capture: Capture | None = None
    archive: WarcArchive | None = field(default=None, compare=False, repr=False)
    # A manifest entry answers conditional requests like a server; a capture is
    # replayed as it was answered.
    conditional: bool = True
    # Why the entry must not be served (its file lies outside the directory, its
    # record is damaged), or None; `reported`: the refusal is already a problem.
    refused: str | None = None
    reported: bool = False

    def body(self, check: Callable[[int], object] | None = None) -> bytes:
        """The stored body; `check`, if given, is called with its size first: before a
        manifest file is read (a huge file never reaches memory), after a capture's
        payload is (its size is known once it is read)."""
        check = check or _any_size
        if self.capture is not None and self.archive is not None:
            # as captured: Scrapy's own middlewares undo Content-Encoding again
            body = self.archive.retrieve_response(self.capture, decode=False).body
            check(len(body))
            return body
        if self.file is None:
            check(0)
            return b""
        with self.file.open("rb") as stream:  # opened once: its size, then its bytes
            check(os.fstat(stream.fileno()).st_size)
            return stream.read()


def load_replay_directory(
    directory: Path, damaged: list[Damage] | None = None
) -> ManifestIndex | dict[str, Entry]:
    """A manifest directory, or else a directory holding ``*.warc.gz`` captures
    (whose damaged records are added to `damaged`)."""
    if not (directory / "manifest.jsonl").is_file() and any(directory.rglob("*.warc.gz")):
        return load_warc_directory(directory, [] if damaged is None else damaged)
    return load_manifest(directory)


def load_warc_directory(directory: Path, damaged: list[Damage]) -> dict[str, Entry]:
    """Entries of the whole response and revisit records of every ``*.warc.gz`` under
    `directory`, keyed by canonicalised URL (a later capture of a URL wins). A
    revisit answers with its own status and headers and the payload it refers to,
    found in `directory` or in the run folders beside it, where an earlier run
    wrote it.

    Each damaged record is added to `damaged`; its URL, unless a whole record
    answers it, gets an entry refused as already reported."""
    archive = WarcArchive(directory.parent)
    errors: list[WarcError] = []
    captures = archive.captures(directory, damaged=errors)
    entries: dict[str, Entry] = {}
    for error in errors:
        damage = Damage.of(error)
        damaged.append(damage)
        if error.url:
            entries[canonicalize_url(error.url)] = Entry(
                url=error.url, refused=damage.detail, reported=True
            )
    for capture in captures:
        entries[canonicalize_url(capture.url)] = Entry(
            url=capture.url,
            status=capture.status,
            headers=capture.headers,
            capture=capture,
            archive=archive,
            conditional=False,
        )
    return entries


def load_manifest(directory: Path) -> ManifestIndex:
    """The entries of ``directory/manifest.jsonl``, by canonicalised URL.

    A line that is not valid raises `ManifestError` naming the line: a broken
    fixture directory must not quietly turn into a crawl of 404s.
    """
    return ManifestIndex(directory)


class ManifestIndex:
    """The entries of a replay directory's ``manifest.jsonl`` by canonicalised URL
    (a later line for the same URL wins), in 16 bytes per line: a sorted array of
    an 8-byte hash of each line's canonicalised URL, and one of the line's offset in
    the file. A lookup reads its line again, through the file kept open until
    `close` (or the index is collected). A manifest of 100,000 pages held as
    `Entry` objects, their header dicts and paths cost about 130 MiB; this costs
    1.6 MB, so a replayed crawl's memory does not grow with its corpus.

    Every line is read and checked once, when the index is built."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = directory / "manifest.jsonl"
        if not self.manifest.is_file():
            raise ManifestError(f"{self.manifest} does not exist")
        self.root = directory.resolve()
        # offset -> why the line's file is refused (rare: kept as found)
        self.refused: dict[int, str] = {}
        hashes, offsets = array("q"), array("q")
        with self.manifest.open("rb") as lines:
            offset = 0
            for number, line in enumerate(lines, 1):
                if line.strip():
                    entry = self._entry(line, number)
                    if refused := entry.refused:
                        logger.error(
                            "Replay manifest %s:%d refused: %s", self.manifest, number, refused
                        )
                        self.refused[offset] = refused
                    elif entry.file is not None and not entry.file.is_file():
                        raise ManifestError(f"{self.manifest}:{number}: missing file {entry.file}")
                    hashes.append(_url_hash(canonicalize_url(entry.url)))
                    offsets.append(offset)
                offset += len(line)
        # A stable sort: lines of one hash stay in file order, the last one wins.
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        self.hashes = array("q", (hashes[i] for i in order))
        self.offsets = array("q", (offsets[i] for i in order))
        self.urls = sum(1 for i, h in enumerate(self.hashes) if i == 0 or h != self.hashes[i - 1])
        self._lines: BinaryIO | None = None
        self._closer: weakref.finalize | None = None

    def __len__(self) -> int:
        return self.urls

    def get(self, key: str, url: str | None = None) -> Entry | None:
        """The entry of the canonicalised URL `key` (of `url`, if given), or None."""
        wanted = _url_hash(key)
        first = bisect_left(self.hashes, wanted)
        last = bisect_right(self.hashes, wanted, lo=first)
        if first == last:
            return None
        if self._lines is None:
            self._lines = self.manifest.open("rb")
            # closed with the index at the latest, if nobody called `close`
            self._closer = weakref.finalize(self, self._lines.close)
        for index in reversed(range(first, last)):
            offset = self.offsets[index]
            self._lines.seek(offset)
            entry = self._entry(self._lines.readline(), 0, self.refused.get(offset, ""))
            if entry.url == url or canonicalize_url(entry.url) == key:
                return entry
        return None

    def close(self) -> None:
        """Close the manifest (a later `get` opens it again)."""
        if self._closer is not None:
            self._closer()  # closes the file, once
            self._closer = self._lines = None

    def _entry(self, line: bytes, number: int, refused: str | None = None) -> Entry:
        """The entry of one manifest line (`number`, counted from 1, names it in errors);
        its file checked to lie inside the directory unless `refused` says (``""``: it
        does)."""
        try:
            data = json.loads(line)
            if refused is None and data.get("file"):
                refused = _outside(self.directory, str(data["file"]), self.root)
            refused = refused or None
            return Entry(
                url=str(data["url"]),
                status=int(data.get("status", 200)),
                headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                file=self.directory / data["file"] if data.get("file") and not refused else None,
                refused=refused,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ManifestError(f"{self.manifest}:{number}: {error!r}") from error


def _any_size(size: int) -> None:
    """The size check of a caller that has none."""


def _url_hash(key: str) -> int:
    """A signed 64-bit hash of a canonicalised URL, the same in every process."""
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _outside(directory: Path, name: str, root: Path | None = None) -> str | None:
    """Why the manifest `file` `name` is not a file inside `directory` (an absolute
    path, or one that leads out through ``..`` or a symbolic link), or None. `root`:
    `directory` resolved, if known."""
    if Path(name).is_absolute():
        return f"file {name!r} is an absolute path, not one inside the replay directory"
    if not (directory / name).resolve().is_relative_to(root or directory.resolve()):
        return f"file {name!r} leads outside the replay directory"
    return None


class ReplayMiddleware:
    """Answer requests from ``REPLAY_DIR``; unknown URLs get an empty 404."""

    def __init__(
        self, directory: Path, crawler: Crawler, maxsize: int = 0, warnsize: int = 0
    ) -> None:
        assert crawler.stats is not None
        self.directory = directory
        # damaged WARC records, handed out once (`damage`)
        self.damaged: list[Damage] = []
        self.entries = load_replay_directory(directory, self.damaged)
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        # Bytes; 0 means no limit (Scrapy's convention)
        self.maxsize = maxsize
        self.warnsize = warnsize

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayMiddleware:
        settings = crawler.settings
        directory = settings.get("REPLAY_DIR")
        if not directory:
            raise NotConfigured("REPLAY_DIR is not set: live crawl")
        middleware = cls(
            Path(directory),
            crawler,
            maxsize=settings.getint("DOWNLOAD_MAXSIZE"),
            warnsize=settings.getint("DOWNLOAD_WARNSIZE"),
        )
        logger.info("Replaying %d responses from %s", len(middleware.entries), directory)
        if middleware.damaged:
            logger.warning(
                "Replay folder %s has %d damaged WARC records: each recorded as bad_replay",
                directory,
                len(middleware.damaged),
            )
            crawler.stats.set_value("replay/damaged", len(middleware.damaged))
        crawler.signals.connect(middleware.damage, signal=replay_damage)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def damage(self) -> list[Damage]:
        """`replay_damage`: the damaged records, to be recorded (the first ask only)."""
        damaged, self.damaged = self.damaged, []
        return damaged

    def spider_closed(self) -> None:
        """Damage nobody asked for (no `ReplayDamageMiddleware`) is still said, once each;
        the manifest is closed."""
        self.close()
        for damage in self.damage():
            logger.error("Replay record damaged, not served: %s: %s", damage.url, damage.detail)

    def close(self) -> None:
        """Close the manifest, if any (a later request opens it again)."""
        if isinstance(self.entries, ManifestIndex):
            self.entries.close()

    def _limit(self, request: Request, name: str, default: int) -> int:
        """A size limit as Scrapy's HTTP handler reads it: the request's meta, else the
        spider's attribute, else the setting."""
        return int(request.meta.get(name, getattr(self.crawler.spider, name, default)))

    def _check_size(self, request: Request, size: int) -> None:
        """Refuse a body over the max size, as a live download is cancelled; warn over
        the warn size (the messages are Scrapy's own)."""
        maxsize = self._limit(request, "download_maxsize", self.maxsize)
        if maxsize and size > maxsize:
            self.stats.inc_value("replay/too_large")
            raise DownloadCancelledError(
                f"Received {size} bytes which is larger than download max size "
                f"({maxsize}) in request {request}."
            )
        warnsize = self._limit(request, "download_warnsize", self.warnsize)
        if warnsize and size > warnsize:
            logger.warning(
                "Received %d bytes which is larger than download warn size (%d) in request %s.",
                size,
                warnsize,
                request,
            )

    def process_request(self, request: Request) -> Response:
        key = canonicalize_url(request.url)
        entries = self.entries
        entry = (
            entries.get(key, request.url)
            if isinstance(entries, ManifestIndex)
            else entries.get(key)
        )
        if entry is None:
            self.stats.inc_value("replay/miss")
            return Response(request.url, status=404, body=b"", request=request, flags=["replay"])
        if entry.refused:
            self.stats.inc_value("replay/error")
            raise BadReplay(entry.refused, reported=entry.reported)
        try:
            body = entry.body(lambda size: self._check_size(request, size))
        except (OSError, WarcError) as error:
            # not a 500 the site never sent: the archive failed, and says so once
            self.stats.inc_value("replay/error")
            raise BadReplay(f"replayed response unreadable: {error}") from error
        self.stats.inc_value("replay/hit")
        headers = Headers(entry.headers)
        if entry.conditional and entry.status == 200 and _not_modified(request, headers):
            # As a server honouring the conditional request would: no body.
            self.stats.inc_value("replay/not_modified")
            return Response(
                request.url, status=304, headers=headers, request=request, flags=["replay"]
            )
        response_class = responsetypes.from_args(headers=headers, url=request.url, body=body)
        if response_class is Response and body.lstrip()[:1] == b"<":
            response_class = HtmlResponse
        return response_class(
            url=request.url,
            status=entry.status,
            headers=headers,
            body=body,
            request=request,
            flags=["replay"],
        )


class ReplayDamageMiddleware:
    """Spider middleware: record the damaged records of the replayed WARC folder, one
    ``bad_replay`` `FetchFailure` each, before the spider's start output."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayDamageMiddleware:
        if not crawler.settings.get("REPLAY_DIR"):
            raise NotConfigured("REPLAY_DIR is not set: live crawl")
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[object]) -> AsyncIterator[object]:
        spider = self.crawler.spider
        assert spider is not None
        for _, damaged in self.crawler.signals.send_catch_log(replay_damage):
            for damage in damaged or ():
                yield FetchFailure(spider.name, damage.url, "bad_replay", None, damage.detail)
        async for output in start:
            yield output


def _not_modified(request: Request, stored: Headers) -> bool:
    """True when the request's validators match the stored response (RFC 9110 §13.1):
    ``If-None-Match`` against ``ETag`` first; else ``If-Modified-Since`` against
    ``Last-Modified``."""
    if_none_match = request.headers.get("If-None-Match")
    etag = stored.get("ETag")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
        return etag is not None and (b"*" in tags or etag.removeprefix(b"W/") in tags)
    if_modified_since = request.headers.get("If-Modified-Since")
    last_modified = stored.get("Last-Modified")
    if if_modified_since is None or last_modified is None:
        return False
    since = parsedate_to_datetime(if_modified_since.decode("latin-1"))
    modified = parsedate_to_datetime(last_modified.decode("latin-1"))
    return modified <= since
