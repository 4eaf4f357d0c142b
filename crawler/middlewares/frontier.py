"""Back-pressure between feeds and the scheduler: a listing's requests are handed to
Scrapy only as the scheduler drains.

A feed (or backfill list page) can name 100,000 articles. Scrapy schedules
everything a callback yields at once, so each would wait in the scheduler as a
full `Request` (its meta, its headers, the `FeedEntry` in its ``cb_kwargs``) for
the whole run: the crawl's memory grew with the number of URLs its feeds listed.

`FrontierMiddleware` is a spider middleware that sits next to the engine (after
the incremental middleware, the referer and depth middlewares have seen every
request). From a listing's output it passes on what comes before the first
article request; the rest, still unread, is kept as it is: the lazily evaluated
output of the spider's callback and of every middleware above this one. When
the engine finds the scheduler empty (Scrapy's ``scheduler_empty`` signal) it
reads on, up to ``FRONTIER_BATCH_SIZE`` requests, into the scheduler (items met
on the way, such as aliases, go to the item pipelines). What waits is one
listing's entries, not a request per URL; and since a backfill's next list page
is the last request of a page's output, the walk goes no further ahead than its
articles. The callback itself never waits, so the scraper does not hold the
feed's response against ``SCRAPER_SLOT_MAX_ACTIVE_SIZE`` (which would stop the
downloads the scheduler waits for).

Listings are read in the order they were fetched. While any output is unread the
spider is kept open. Stats: ``frontier/held`` (listings whose output waited),
``frontier/released`` (requests handed to the scheduler later), ``frontier/errors``
(a listing whose output raised when read later: logged, the rest of it dropped).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http import Response

from news_archive.crawler.middlewares.incremental import ARTICLE_PAGE

logger = logging.getLogger(__name__)


class FrontierMiddleware:
    """Hold a listing's unread output; hand its requests to the scheduler as it drains."""

    def __init__(self, crawler: Crawler, batch_size: int) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        # (listing URL, its unread output), oldest first
        self.pending: deque[tuple[str, AsyncIterator[Any]]] = deque()
        # items read from held output and not yet through the item pipelines
        self.items_in_flight = 0
        self.tasks: set[asyncio.Future[Any]] = set()
        # the reading of held output under way, if any
        self.reading: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierMiddleware:
        batch_size = crawler.settings.getint("FRONTIER_BATCH_SIZE")
        if batch_size <= 0:
            raise NotConfigured("FRONTIER_BATCH_SIZE is 0: listings are scheduled at once")
        middleware = cls(crawler, batch_size)
        crawler.signals.connect(middleware.release, signal=signals.scheduler_empty)
        crawler.signals.connect(middleware.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    # ---------------------------------------------------------------- output

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        if _is_article_response(response):
            async for output in result:
                yield output  # one page's output: an article and its visit
            return
        async for output in result:
            if isinstance(output, Request) and output.meta.get(ARTICLE_PAGE):
                self.pending.append((response.url, _chained(output, result)))
                self.crawler.stats.inc_value("frontier/held")
                return
            yield output

    # ---------------------------------------------------------------- release

    def release(self) -> None:
        """``scheduler_empty``: read held output on (unless a reading is under way)."""
        if self.pending and self.reading is None and self.crawler.engine is not None:
            self.reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        """Read held output on, up to a batch of requests into the scheduler; items on
        the way go to the item pipelines."""
        engine = self.crawler.engine
        assert engine is not None
        released = 0
        try:
            while self.pending and released < self.batch_size:
                url, iterator = self.pending[0]
                try:
                    output = await anext(iterator)
                except StopAsyncIteration:
                    self.pending.popleft()
                    continue
                except Exception:
                    self.pending.popleft()
                    self.crawler.stats.inc_value("frontier/errors")
                    logger.exception("Reading the output of listing %s failed: rest dropped", url)
                    continue
                if isinstance(output, Request):
                    engine.crawl(output)
                    released += 1
                elif output is not None:
                    self._process_item(output)
        finally:
            self.reading = None
            self.crawler.stats.inc_value("frontier/released", released)

    def _process_item(self, item: Any) -> None:
        engine = self.crawler.engine
        assert engine is not None
        self.items_in_flight += 1
        task = asyncio.ensure_future(engine.scraper.start_itemproc_async(item, response=None))
        self.tasks.add(task)
        task.add_done_callback(self._item_done)

    def _item_done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        self.items_in_flight -= 1
        if not task.cancelled() and task.exception() is not None:
            logger.error("An item of a held listing failed", exc_info=task.exception())

    def spider_idle(self) -> None:
        """Keep the spider open while held output is unread or its items in flight."""
        if self.pending or self.reading is not None or self.items_in_flight:
            self.release()
            raise DontCloseSpider

    def spider_closed(self, reason: str) -> None:
        if self.pending:
            # A crawl stopped early: what was not requested is fetched by the next run
            # (nothing was recorded about it).
            logger.info(
                "Crawl closed (%s) with the output of %d listings unread", reason, len(self.pending)
            )
            self.pending.clear()


async def _chained(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for output in rest:
        yield output


def _is_article_response(response: Response) -> bool:
    request = response.request
    return request is not None and bool(request.meta.get(ARTICLE_PAGE))
