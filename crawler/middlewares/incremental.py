"""Incremental crawling as a spider middleware the spider never sees.

Modelled on scrapy-deltafetch: the spider only discovers (feeds, list pages,
article links); this middleware, with what the archive knows of each article URL
(``url_state``), decides what is fetched and when it is due again:

- **skip what is not due**: an article request for a URL the archive holds whose
  next visit is later than the run's start is dropped (``archive/skipped/not_due``);
- **conditional revisits**: a known article that is due is asked with
  ``If-None-Match`` / ``If-Modified-Since`` from the stored validators
  (``archive/revisits/conditional``); a ``304`` answer is a visit, not a page: the
  spider's output for it is dropped and the stored copy counts as unchanged;
- **due revisits**: after the spider's start requests, the URLs whose revisit is
  due, most overdue first, at most ``REVISIT_LIMIT`` (``archive/revisits/due``);
  none when the spider was given ``-a urls=``;
- **next visit**: after each article response (or HTTP error), a `PageVisit`
  carrying the validators and the next visit from ``REVISIT_SCHEDULE``;
- **backfill stops at the archive**: a next-page request marked
  ``meta["stop_at_archived"]`` is dropped when its list page named an article an
  earlier run archived (``archive/backfill/stopped_at_archived``).

A listing read while the archive database is unreachable waits for it (asked again
with backoff for up to ``ARCHIVE_RETRY_SECONDS``, ``archive/listing_waits``) rather
than lose the rest of its articles.

The spider marks article requests with ``meta["article_page"] = True``; a request
with ``meta["incremental"] = False`` is left alone.  With ``INCREMENTAL = False``
every feed item is fetched, unconditionally, as on a first crawl, and no due
revisits are added; the visits are still recorded, so the next incremental run
knows what this one fetched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.schedule import next_visit, parse_schedule
from news_archive.storage.archive import DatabaseUnavailable, Visits
from news_archive.storage.visits import VisitState
from news_archive.vocabulary import Article, FetchFailure, PageVisit, Rejection

logger = logging.getLogger(__name__)

ARTICLE_PAGE = "article_page"
STOP_AT_ARCHIVED = "stop_at_archived"
# A listing's output is read this many items at a time (one query for their states).
FILTER_CHUNK = 500


class IncrementalMiddleware:
    """Skip, make conditional, add due revisits and schedule the next visit."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.incremental = settings.getbool("INCREMENTAL")
        self.revisit_limit = settings.getint("REVISIT_LIMIT")
        self.schedule = parse_schedule(settings["REVISIT_SCHEDULE"])
        self.started_at = datetime.now(UTC)
        self.retry_seconds = settings.getfloat("ARCHIVE_RETRY_SECONDS")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IncrementalMiddleware:
        middleware = cls(crawler)
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware

    def spider_opened(self, spider: Spider) -> None:
        self.started_at = datetime.now(UTC)

    @property
    def visits(self) -> Visits:
        return self.crawler.get_extension(ArchiveRun).archive.visits

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    # ---------------------------------------------------------------- start

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item in start:
            yield item
        spider = self.crawler.spider
        if not self.incremental or getattr(spider, "requested_urls", None):
            return  # a full crawl, or `-a urls=`: exactly what was asked for
        due = self.visits.due(spider.name, self.started_at, self.revisit_limit)
        self.stats.set_value("archive/revisits/due", len(due))
        for state in due:
            yield self._conditional(spider.article_request(state.url), state)

    # ---------------------------------------------------------------- output

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        spider = self.crawler.spider
        request = response.request
        if request is not None and request.meta.get(ARTICLE_PAGE):
            yield from self._after_article(response, request, result, spider)
        elif self.incremental:
            yield from self._filter(result)
        else:
            yield from result

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        request = response.request
        if request is None or not request.meta.get(ARTICLE_PAGE):
            if not self.incremental:
                async for item in result:
                    yield item
                return
            # A listing: read lazily, a chunk at a time (see `_filter`).
            listing = _Listing()
            while chunk := [item async for item in _take(result, FILTER_CHUNK)]:
                states = await self._states_once_reachable(_article_urls(chunk))
                for item in self._decide(chunk, listing, states):
                    yield item
            for item in self._next_pages(listing):
                yield item
            return
        # One article page's output is small: collect it, then decide as the sync path does.
        output = [item async for item in result]
        for item in self.process_spider_output(response, output):
            yield item

    def _filter(self, output: Iterable[Any]) -> Iterator[Any]:
        """Drop article requests that are not due, make known ones conditional, and
        drop a next page that backfill should not reach.

        Read lazily, `FILTER_CHUNK` outputs at a time (one query for their states):
        a feed naming 100,000 articles is never held as 100,000 requests here. A
        next page waits for the end of its listing's output, where the spider puts
        it anyway: whether the listing named an archived article is known only then."""
        listing = _Listing()
        iterator = iter(output)
        while chunk := list(islice(iterator, FILTER_CHUNK)):
            yield from self._decide(chunk, listing, self._states(_article_urls(chunk)))
        yield from self._next_pages(listing)

    def _decide(
        self, chunk: list[Any], listing: _Listing, states: dict[str, VisitState]
    ) -> Iterator[Any]:
        listing.archived = listing.archived or any(
            state.archived_before(self.started_at) for state in states.values()
        )
        for item in chunk:
            if _is_article_request(item):
                state = states.get(item.url)
                if state is None:
                    yield item
                elif state.next_visit_at > self.started_at:
                    self.stats.inc_value("archive/skipped/not_due")
                else:
                    yield self._conditional(item, state)
            elif isinstance(item, Request) and item.meta.get(STOP_AT_ARCHIVED):
                listing.next_pages.append(item)
            else:
                yield item

    def _next_pages(self, listing: _Listing) -> Iterator[Request]:
        for request in listing.next_pages:
            if listing.archived:
                self.stats.inc_value("archive/backfill/stopped_at_archived")
            else:
                yield request

    async def _states_once_reachable(self, urls: list[str]) -> dict[str, VisitState]:
        """`_states`; while the database is unreachable (a server restarting), asked
        again with backoff (0.5 s, doubling up to 30 s) for up to
        ``ARCHIVE_RETRY_SECONDS``, while the reactor goes on: a listing read during an
        outage waits for it instead of losing the rest of its articles."""
        delay, deadline = 0.0, time.monotonic() + self.retry_seconds
        while True:
            try:
                return self._states(urls)
            except DatabaseUnavailable as error:
                if time.monotonic() >= deadline:
                    raise
                if not delay:
                    self.stats.inc_value("archive/listing_waits")
                    logger.warning(
                        "Archive database unavailable while reading a listing (%s): "
                        "asking again for up to %.0f s",
                        error,
                        self.retry_seconds,
                    )
                delay = min(max(2 * delay, 0.5), 30.0, max(0.0, deadline - time.monotonic()))
                await asyncio.sleep(delay)

    def _states(self, urls: list[str]) -> dict[str, VisitState]:
        """Visit states keyed by request URL; shortlinks through the alias table."""
        if not urls:
            return {}
        canonical = {url: url for url in urls}
        canonical.update(self.visits.canonical_of(urls))
        states = self.visits.states(set(canonical.values()))
        return {url: states[c] for url, c in canonical.items() if c in states}

    def _conditional(self, request: Request, state: VisitState) -> Request:
        headers = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        # 304 is an answer, not an error, for a conditional request; the stored age
        # schedules the next visit when the page itself is not sent again.
        handled = [*request.meta.get("handle_httpstatus_list", []), 304]
        meta = {"handle_httpstatus_list": handled, "published_at": state.published_at}
        return request.replace(
            headers={**request.headers.to_unicode_dict(), **headers},
            meta={**request.meta, **meta},
        )

    def _after_article(
        self, response: Response, request: Request, result: Iterable[Any], spider: Spider
    ) -> Iterator[Any]:
        """The spider's output for an article page, then the visit that schedules the
        next one; for a 304, only the visit."""
        if b"If-None-Match" in request.headers or b"If-Modified-Since" in request.headers:
            # Counted on the answer: the feed may list a due article a second time.
            self.stats.inc_value("archive/revisits/conditional")
        if response.status == 304:
            for _ in result:
                pass  # extraction of an empty 304 body says nothing
            yield self._visit(spider, request.url, response, request.meta.get("published_at"))
            return
        visited: tuple[str, datetime | None] | None = None
        for item in result:
            if isinstance(item, Article):
                visited = (item.url, item.published_at)
            elif isinstance(item, Rejection) and visited is None:
                visited = (spider.site.canonical_url(response.url) or response.url, None)
            elif isinstance(item, FetchFailure) and item.status and visited is None:
                # An HTTP error answer (errback): schedules the retry of the URL.
                visited = (request.url, None)
            yield item
        if visited is not None:
            yield self._visit(spider, visited[0], response, visited[1])

    def _visit(
        self, spider: Spider, url: str, response: Response, published_at: datetime | None
    ) -> PageVisit:
        fetched_at = datetime.now(UTC)
        return PageVisit(
            site=spider.name,
            url=url,
            status=response.status,
            fetched_at=fetched_at,
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
            published_at=published_at,
            next_visit_at=next_visit(published_at, fetched_at, self.schedule, response.status),
            capture=response.meta.get("capture"),
        )


@dataclass
class _Listing:
    """What the filter learns over one listing's output: whether it named an article
    an earlier run archived, and the next pages that wait for the answer."""

    archived: bool = False
    next_pages: list[Request] = field(default_factory=list)


async def _take(iterator: AsyncIterator[Any], count: int) -> AsyncIterator[Any]:
    """The next `count` items of `iterator` (fewer at its end)."""
    for _ in range(count):
        try:
            yield await anext(iterator)
        except StopAsyncIteration:
            return


def _article_urls(chunk: list[Any]) -> list[str]:
    return [item.url for item in chunk if _is_article_request(item)]


def _is_article_request(item: Any) -> bool:
    return (
        isinstance(item, Request)
        and bool(item.meta.get(ARTICLE_PAGE))
        and item.meta.get("incremental", True)
    )


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
