"""Test-only: when each request was answered, per worker, for the politeness tests.

An add-on (given to the worker processes with ``-s ADDONS=...``) that puts
`RequestTimes` just after the politeness middleware (940) and before replay (950):
it appends ``<unix time> <claimed at> <host> <url>`` to
``<REQUEST_TIMES_DIR>/<pid>.txt`` at the moment the request is handed on to be
answered (``<claimed at>``: when the politeness middleware claimed its slot, by
Redis's clock, the same host's)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from news_archive.crawler.distributed.politeness import CLAIMED_AT


class RequestTimes:
    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8", buffering=1)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RequestTimes:
        directory = Path(crawler.settings["REQUEST_TIMES_DIR"])
        return cls(directory / f"{os.getpid()}.txt")

    def process_request(self, request: Request) -> None:
        claimed_at = request.meta.get(CLAIMED_AT, 0.0)
        host = urlsplit(request.url).hostname
        self.file.write(f"{time.time():.6f} {claimed_at:.6f} {host} {request.url}\n")


class RecordRequestTimes:
    def update_settings(self, settings: BaseSettings) -> None:
        settings.set_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", RequestTimes, 945)


@dataclass(frozen=True, order=True, slots=True)
class Answered:
    """One request as `RequestTimes` saw it (times in Unix seconds)."""

    at: float
    claimed_at: float
    host: str
    url: str


def read_request_times(directory: Path) -> list[Answered]:
    """Every worker's records, oldest first."""
    records = []
    for path in directory.glob("*.txt"):
        for line in path.read_text("utf-8").splitlines():
            at, claimed_at, host, url = line.split(" ", 3)
            records.append(Answered(float(at), float(claimed_at), host, url))
    return sorted(records)
