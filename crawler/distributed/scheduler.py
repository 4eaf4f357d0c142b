"""scrapy-redis's scheduler with leased requests and per-crawl keys.

`LeasedScheduler` is scrapy-redis's `Scheduler` (its priority queue of pickled
requests and its Redis duplicate filter) with three changes:

- its keys are the crawl's (`frontier.CrawlKeys`), known once the worker has
  joined the crawl (`CrawlWorker.join`, when the scheduler opens), so that each
  crawl starts with an empty queue and duplicate filter while
  ``SCHEDULER_PERSIST`` keeps one worker's close from deleting the others' queue;
- a request is not popped and forgotten but leased (`Frontier.pop`): its lease id
  travels in ``request.meta["lease"]`` and `CrawlWorker` acknowledges it once the
  request's work is stored;
- a leased request that comes back to the scheduler (a redirect, a retry) is
  pushed as a new request and its old lease acknowledged: the new one is in Redis;
- a request is marked seen and queued in one step (`ENQUEUE`, a Lua script), where
  scrapy-redis sends two commands: a worker killed between them left the request
  in the duplicate filter and nowhere else, so that no worker ever fetched it.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from news_archive.crawler.distributed.worker import LEASE, CrawlWorker

# KEYS: the duplicate filter's set, the queue; ARGV: the request's fingerprint ("" for
# a request not to filter), its score, its data. 1 when queued, 0 when seen before.
ENQUEUE = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


class LeasedQueue(PriorityQueue):
    """scrapy-redis's priority queue whose `pop` leases (see `Frontier.pop`)."""

    def __init__(self, worker: CrawlWorker, spider: Spider) -> None:
        super().__init__(worker.server, spider, worker.frontier.crawl.queue)
        self.worker = worker

    def pop(self, timeout: int = 0) -> Request | None:
        lease = self.worker.frontier.pop()
        if lease is None:
            return None
        request = self._decode_request(lease.data)
        request.meta[LEASE] = lease.id
        self.worker.leased(lease.id)
        return request


class LeasedScheduler(Scheduler):
    """The scheduler of a worker: scrapy-redis's, with the crawl's keys and leases."""

    def __init__(self, crawler: Crawler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crawler = crawler
        self.worker = crawler.get_extension(CrawlWorker)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeasedScheduler:
        worker = crawler.get_extension(CrawlWorker)
        scheduler = cls(
            crawler,
            server=worker.server,
            persist=True,
            idle_before_close=0,
        )
        scheduler.stats = crawler.stats
        return scheduler

    def open(self, spider: Spider) -> None:
        self.spider = spider
        self._enqueue = self.server.register_script(ENQUEUE)
        keys = self.worker.join(spider)
        self.queue = LeasedQueue(self.worker, spider)
        self.df = RFPDupeFilter(
            self.server,
            key=keys.dupefilter,
            debug=self.crawler.settings.getbool("DUPEFILTER_DEBUG"),
        )

    def close(self, reason: str) -> None:
        """Nothing to delete here: the last worker of the crawl does (`CrawlWorker`)."""

    def enqueue_request(self, request: Request) -> bool:
        old_lease = request.meta.pop(LEASE, None)  # a lease belongs to the popped copy
        fingerprint = "" if request.dont_filter else self.df.request_fingerprint(request)
        queued = bool(
            self._enqueue(
                keys=[self.df.key, self.queue.key],
                args=[fingerprint, -request.priority, self.queue._encode_request(request)],
            )
        )
        if queued:
            self.crawler.stats.inc_value("scheduler/enqueued/redis")
        else:
            self.df.log(request, self.spider)
        if old_lease is not None:
            # A redirect or retry of a leased request: what follows is in Redis now.
            self.worker.handed_on(old_lease)
        return queued

    def next_request(self) -> Request | None:
        request = self.queue.pop()
        if request is not None:
            self.crawler.stats.inc_value("scheduler/dequeued/redis")
        return request
