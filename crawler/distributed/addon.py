"""The switch: with ``REDIS_URL`` set, the crawl is shared with every worker given
the same URL; unset, nothing changes (one process, Scrapy's own scheduler).

A Scrapy add-on (``ADDONS``): `update_settings` runs once the settings of the
project, the spider and the command line are known, before any component is
built.  It imports nothing of Redis: a single-process crawl never loads it.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

_PACKAGE = "news_archive.crawler.distributed"


class Distributed:
    """Turn on the shared crawl when ``REDIS_URL`` is set."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.get("REDIS_URL"):
            return
        settings.set("SCHEDULER", f"{_PACKAGE}.scheduler.LeasedScheduler", priority="addon")
        settings.set("DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter", priority="addon")
        # scrapy-redis with persist off deletes the shared queue when any worker
        # closes (FINDINGS.md); our workers delete a crawl's keys when the last leaves.
        settings.set("SCHEDULER_PERSIST", True, priority="addon")
        # Each worker registers in Redis; the single-process lock would refuse the second.
        # "project": over the project's default, under the command line's -s.
        settings.set("RUN_LOCK_ENABLED", False, priority="project")
        # A worker's share of a crawl is whatever it popped: the count checks are the
        # crawl's (the sum of its workers' rows), not one worker's (docs/scaling.md).
        settings.set("HEALTH_MIN_ARTICLES", 0, priority="project")
        settings.set("HEALTH_MIN_ARTICLE_RATIO", 0, priority="project")
        # Redis is the frontier: a listing's requests go to the shared queue at once
        # (in Redis's memory, not a worker's), where any worker can take them and none
        # is lost with the worker that read the listing; held in one worker's memory
        # (crawler/middlewares/frontier.py), they would die with it.
        settings.set("FRONTIER_BATCH_SIZE", 0, priority="project")
        # Imported only now: a single-process crawl never loads Redis.
        from news_archive.crawler.distributed.politeness import GlobalPolitenessMiddleware
        from news_archive.crawler.distributed.worker import CrawlWorker, SeedOnceMiddleware

        settings.set_in_component_priority_dict("EXTENSIONS", CrawlWorker, 110)
        # Outermost: sees the start before any other middleware reads it, and each
        # page's final output.
        settings.set_in_component_priority_dict("SPIDER_MIDDLEWARES", SeedOnceMiddleware, 5)
        # Before the replay middleware (950) answers: replayed crawls are polite too.
        settings.set_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", GlobalPolitenessMiddleware, 940
        )
