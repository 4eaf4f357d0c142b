"""Serve every request from a fixture directory instead of the network.

Modelled on Scrapy's ``HttpCacheMiddleware``: a downloader middleware whose
``process_request`` answers with a stored response, so nothing reaches the
downloader (and so nothing reaches the network, and no download delay applies).
The directory format is the public one of INTERFACE.md: ``manifest.jsonl`` with
``url``, ``file``, ``status``, ``headers`` per line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers, Response
from scrapy.http.response.html import HtmlResponse
from scrapy.responsetypes import responsetypes
from scrapy.statscollectors import StatsCollector
from w3lib.url import canonicalize_url

logger = logging.getLogger(__name__)


class ManifestError(ValueError):
    """The fixture directory or one of its manifest lines is unusable."""


@dataclass(frozen=True, slots=True)
class Entry:
    url: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None


def load_manifest(directory: Path) -> dict[str, Entry]:
    """Entries of ``directory/manifest.jsonl`` keyed by canonicalised URL.

    A line that is not valid raises `ManifestError` naming the line: a broken
    fixture directory must not quietly turn into a crawl of 404s.
    """
    manifest = directory / "manifest.jsonl"
    if not manifest.is_file():
        raise ManifestError(f"{manifest} does not exist")
    entries: dict[str, Entry] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            entry = Entry(
                url=str(data["url"]),
                status=int(data.get("status", 200)),
                headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                file=directory / data["file"] if data.get("file") else None,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ManifestError(f"{manifest}:{number}: {error!r}") from error
        if entry.file is not None and not entry.file.is_file():
            raise ManifestError(f"{manifest}:{number}: missing file {entry.file}")
        entries[canonicalize_url(entry.url)] = entry
    return entries


class ReplayMiddleware:
    """Answer requests from ``REPLAY_DIR``; unknown URLs get an empty 404."""

    def __init__(self, directory: Path, stats: StatsCollector) -> None:
        self.directory = directory
        self.entries = load_manifest(directory)
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayMiddleware:
        directory = crawler.settings.get("REPLAY_DIR")
        if not directory:
            raise NotConfigured("REPLAY_DIR is not set: live crawl")
        assert crawler.stats is not None
        middleware = cls(Path(directory), crawler.stats)
        logger.info("Replaying %d responses from %s", len(middleware.entries), directory)
        return middleware

    def process_request(self, request: Request) -> Response:
        entry = self.entries.get(canonicalize_url(request.url))
        if entry is None:
            self.stats.inc_value("replay/miss")
            return Response(request.url, status=404, body=b"", request=request, flags=["replay"])
        try:
            body = entry.file.read_bytes() if entry.file else b""
        except OSError as error:
            self.stats.inc_value("replay/error")
            logger.error("Replay file for %s unreadable: %s", request.url, error)
            return Response(request.url, status=500, body=b"", request=request, flags=["replay"])
        self.stats.inc_value("replay/hit")
        headers = Headers(entry.headers)
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
