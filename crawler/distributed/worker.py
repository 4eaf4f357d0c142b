"""One worker of a crawl shared through Redis: `CrawlWorker` and `SeedOnceMiddleware`.

`CrawlWorker` (an extension, on only with ``REDIS_URL``) is the worker's side of
the crawl (`frontier.Frontier`):

- it joins the spider's crawl when the scheduler opens, and records the crawl's id
  and its own identity (``host:pid``) in its ``crawl_runs`` row;
- it keeps the leases of the requests it popped and, every
  ``REDIS_HEARTBEAT_SECONDS``, renews them with its registration and puts expired
  ones (a dead worker's) back in the queue;
- it acknowledges a lease when the request's work is durable: an article page's
  when the pipeline reports its visit written (`visits_written`: the pipeline
  writes a page's article before its visit); a page that yields no visit (a feed,
  a list page) one heartbeat after its output was handed on (its requests are in
  Redis by then); anything else (a failed download) when the worker is idle and
  the pipeline has written everything it holds (`drain_requested`);
- on ``spider_idle`` it keeps the worker open (``DontCloseSpider``) while the
  crawl has requests queued or leased anywhere, or its seeding is still running;
- when the spider closes it gives its unfinished leases back to the queue and
  leaves the crawl; the last worker out of a finished crawl deletes its keys.

`SeedOnceMiddleware` (a spider middleware, outermost) lets only the worker that
claimed the seeding read the spider's start requests (and the due revisits the
incremental middleware adds to them); the others wait for the shared queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from redis import Redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.http import Response
from twisted.internet.task import LoopingCall

from news_archive.crawler.distributed.frontier import CrawlKeys, Frontier
from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.pipelines import (
    DATABASE_UNAVAILABLE,
    drain_requested,
    visits_written,
)
from news_archive.storage.archive import ArchiveError
from news_archive.vocabulary import PageVisit

logger = logging.getLogger(__name__)

# Meta key of a popped request's lease id.
LEASE = "lease"
# Seconds between looks at the shared queue while this worker waits for others.
IDLE_POLL_SECONDS = 0.25
# Requests of a leased page handed to the shared queue between two turns of the reactor.
HAND_ON_AT_ONCE = 100


class CrawlWorker:
    """Registration, leases, heartbeat and the end of a crawl, for one worker."""

    def __init__(self, crawler: Crawler, server: Redis) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.server = server
        self.prefix: str = settings["REDIS_KEY_PREFIX"]
        self.crawl_id: str | None = settings.get("REDIS_CRAWL_ID") or None
        self.heartbeat_seconds = settings.getfloat("REDIS_HEARTBEAT_SECONDS")
        self.lease_seconds = settings.getfloat("REDIS_LEASE_SECONDS")
        self.ttl_seconds = settings.getfloat("REDIS_CRAWL_TTL")
        self.retry_seconds = settings.getfloat("ARCHIVE_RETRY_SECONDS")
        # Since when the pipeline could not write what it holds, at idle (monotonic).
        self._undrained_since: float | None = None
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._frontier: Frontier | None = None
        # Leases this worker holds; of those, the ones waiting for their visit to be
        # written (by the visit's URL), and those whose output was handed on, by the
        # heartbeat they were seen at (acknowledged at the next one).
        self.leases: set[str] = set()
        self.awaiting_visit: dict[str, set[str]] = {}
        self.handed: list[str] = []
        self.handed_earlier: list[str] = []
        self._beat: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlWorker:
        url = crawler.settings.get("REDIS_URL")
        if not url:
            raise NotConfigured("REDIS_URL is not set: one process, no shared crawl")
        from scrapy_redis.connection import get_redis_from_settings

        server = get_redis_from_settings(crawler.settings)
        server.ping()  # an unreachable Redis stops the worker before it starts
        worker = cls(crawler, server)
        crawler.signals.connect(worker.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(worker.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(worker.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(worker.on_visits_written, signal=visits_written)
        return worker

    @property
    def frontier(self) -> Frontier:
        if self._frontier is None:
            raise RuntimeError("the worker has not joined a crawl")
        return self._frontier

    @property
    def seeder(self) -> bool:
        return self._frontier is not None and self._frontier.seeder

    # ------------------------------------------------------------------ the crawl

    def join(self, spider: Spider) -> CrawlKeys:
        """Join (or start) the spider's crawl; called when the scheduler opens."""
        self._frontier = Frontier(
            self.server,
            self.prefix,
            spider.name,
            self.name,
            lease_seconds=self.lease_seconds,
            registration_seconds=3 * self.heartbeat_seconds,
            ttl_seconds=self.ttl_seconds,
        )
        keys = self._frontier.join(self.crawl_id)
        self.crawl_id = keys.crawl_id
        stats = self.crawler.stats
        stats.set_value("distributed/crawl_id", keys.crawl_id)
        stats.set_value("distributed/worker", self.name)
        stats.set_value("distributed/seeder", self.seeder)
        logger.info(
            "Worker %s joined crawl %s of %s%s",
            self.name,
            keys.crawl_id,
            spider.name,
            " and seeds it" if self.seeder else "",
        )
        self._beat = LoopingCall(self.heartbeat)
        self._beat.start(self.heartbeat_seconds, now=False)
        return keys

    def spider_opened(self, spider: Spider) -> None:
        """Record the crawl and this worker in the run's row (ArchiveRun wrote it)."""
        run = self.crawler.get_extension(ArchiveRun)
        if run.run_id is None or self.crawl_id is None:
            return
        try:
            run.archive.runs.record_worker(run.run_id, self.crawl_id, self.name)
        except ArchiveError as error:
            logger.error("Could not record worker %s of run %s: %s", self.name, run.run_id, error)

    def seeding_done(self) -> None:
        self.frontier.seeding_done()
        logger.info("Seeded crawl %s", self.crawl_id)

    # ------------------------------------------------------------------ leases

    def leased(self, lease: str) -> None:
        """The scheduler popped a request under `lease`."""
        self.leases.add(lease)

    def handed_on(self, lease: str) -> None:
        """The lease's work is in Redis now (a child request, a redirect, a retry)."""
        if lease in self.leases:
            self.handed.append(lease)

    def awaits_visit(self, url: str, lease: str) -> None:
        """The lease is done once the visit of `url` is written."""
        self.awaiting_visit.setdefault(url, set()).add(lease)

    def on_visits_written(self, urls: Iterable[str]) -> None:
        done = [lease for url in urls for lease in self.awaiting_visit.pop(url, ())]
        self._ack(done)

    def _ack(self, leases: list[str]) -> None:
        leases = [lease for lease in leases if lease in self.leases]
        if not leases:
            return
        self.leases.difference_update(leases)
        held = self.frontier.ack(leases)
        stats = self.crawler.stats
        stats.inc_value("distributed/leases/acked", held)
        if held < len(leases):
            # Expired before their work was stored: another worker fetches them again.
            stats.inc_value("distributed/leases/expired_before_ack", len(leases) - held)

    def heartbeat(self) -> None:
        """Acknowledge what was handed on a beat ago, renew the registration and the
        leases, and put expired leases (a dead worker's) back in the queue."""
        try:
            self._ack(self.handed_earlier)
            self.handed_earlier, self.handed = self.handed, []
            self.frontier.heartbeat(sorted(self.leases))
            reclaimed = self.frontier.reclaim()
        except Exception:
            # Redis away for a beat: the leases last REDIS_LEASE_SECONDS; try again.
            logger.exception("Heartbeat of worker %s failed", self.name)
            return
        if reclaimed:
            self.crawler.stats.inc_value("distributed/leases/reclaimed", reclaimed)
            logger.warning("Put %d expired lease(s) back in the queue", reclaimed)

    # ------------------------------------------------------------------ the end

    def spider_idle(self, spider: Spider) -> None:
        """Nothing runs here: once the pipeline has written what it holds, every
        lease left is done.  Stay open while the crawl has work anywhere."""
        drained = all(
            result is True for _, result in self.crawler.signals.send_catch_log(drain_requested)
        )
        if drained:
            self._undrained_since = None
            self._ack(sorted(self.leases))
            self.awaiting_visit.clear()
            self.handed = self.handed_earlier = []
        elif self._undrained_since is None:
            self._undrained_since = time.monotonic()
        elif time.monotonic() - self._undrained_since > self.retry_seconds:
            # As a single crawl does after ARCHIVE_RETRY_SECONDS: close; the leases go
            # back to the queue, the pipeline's final flush counts what it could not write.
            logger.error(
                "Archive database unavailable for over %.0f s: worker %s closes",
                self.retry_seconds,
                self.name,
            )
            raise CloseSpider(DATABASE_UNAVAILABLE)
        reclaimed = self.frontier.reclaim()
        if reclaimed:
            self.crawler.stats.inc_value("distributed/leases/reclaimed", reclaimed)
        status = self.frontier.status()
        if status.seeding == "orphaned":
            self.crawler.stats.set_value("distributed/seeding_orphaned", True)
        if not status.finished:
            self._look_again_soon()
            raise DontCloseSpider

    def _look_again_soon(self) -> None:
        """Ask the engine to look at the shared queue again in `IDLE_POLL_SECONDS`:
        its own heartbeat after a ``DontCloseSpider`` is 5 s, and the other workers'
        requests (or expired leases) may be queued any moment.  Scrapy has no public
        call for it; without one, the engine's heartbeat still comes."""
        slot = getattr(self.crawler.engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule(IDLE_POLL_SECONDS)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """Hand unfinished leases back, then leave the crawl (the last one out of a
        finished crawl deletes its keys)."""
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        if self._frontier is None:
            return
        stats = self.crawler.stats
        try:
            self._ack(self.handed_earlier + self.handed)
            unfinished = sorted(self.leases)
            if unfinished:
                requeued = self.frontier.requeue(unfinished)
                self.leases.clear()
                stats.inc_value("distributed/leases/requeued", requeued)
                logger.warning("Gave %d unfinished request(s) back to the queue", requeued)
            if self.frontier.leave():
                stats.set_value("distributed/cleaned_up", True)
                logger.info("Last worker of crawl %s: its Redis keys are deleted", self.crawl_id)
        except Exception:
            # The keys expire after REDIS_CRAWL_TTL; the leases after REDIS_LEASE_SECONDS.
            logger.exception("Worker %s could not leave crawl %s cleanly", self.name, self.crawl_id)


class SeedOnceMiddleware:
    """Spider middleware (outermost): the start requests come from one worker, and
    each leased page's output tells `CrawlWorker` when the lease is done.

    A leased page's requests (a feed's or a list page's articles) go to the shared
    queue as the page's output is read, `HAND_ON_AT_ONCE` at a time between two
    turns of the reactor, rather than at the pace Scrapy takes output while this
    worker crawls too: the other workers found the queue nearly empty (0 to 8
    requests while 100 to 200 were leased) and idled."""

    def __init__(self, worker: CrawlWorker, crawler: Crawler) -> None:
        self.worker = worker
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeedOnceMiddleware:
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured("REDIS_URL is not set")
        return cls(crawler.get_extension(CrawlWorker), crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if not self.worker.seeder:
            return  # another worker seeds this crawl; the start is never read here
        async for item in start:
            yield item
        self.worker.seeding_done()

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        lease = self._lease(response)
        visited = False
        for item in result:
            if lease is not None and isinstance(item, PageVisit):
                self.worker.awaits_visit(item.url, lease)
                visited = True
            yield item
        if lease is not None and not visited:
            self.worker.handed_on(lease)

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        lease = self._lease(response)
        engine = self.crawler.engine
        visited = False
        handed = 0
        async for item in result:
            if lease is not None and isinstance(item, PageVisit):
                self.worker.awaits_visit(item.url, lease)
                visited = True
            if lease is not None and engine is not None and isinstance(item, Request):
                engine.crawl(item)  # what Scrapy does with a request, now
                handed += 1
                if handed % HAND_ON_AT_ONCE == 0:
                    await asyncio.sleep(0)  # a turn of the reactor
                continue
            yield item
        if lease is not None and not visited:
            self.worker.handed_on(lease)

    @staticmethod
    def _lease(response: Response) -> str | None:
        request = response.request
        return request.meta.get(LEASE) if request is not None else None
