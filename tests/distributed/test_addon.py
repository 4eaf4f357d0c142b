"""The switch, in-process: unset, REDIS_URL changes nothing; set, the add-on turns
on the shared crawl for any spider (its scheduler, duplicate filter, worker,
seeding and politeness) and the run lock becomes a per-worker registration."""

from __future__ import annotations

from pathlib import Path

from redis import Redis
from scrapy.utils.misc import load_object

from news_archive.crawler.distributed.politeness import GlobalPolitenessMiddleware
from news_archive.crawler.distributed.scheduler import LeasedScheduler
from news_archive.crawler.distributed.worker import CrawlWorker, SeedOnceMiddleware
from news_archive.crawler.spiders.sites import MaeilIlboSpider, SktInsightSpider
from tests.crawl.crawling import project_crawler
from tests.distributed.conftest import REDIS_URL


def _components(crawler: object, name: str) -> dict[type, int]:
    settings = crawler.settings  # type: ignore[attr-defined]
    return {
        load_object(path) if isinstance(path, str) else path: order
        for path, order in settings.get_component_priority_dict_with_base(name).items()
        if order is not None
    }


def test_without_redis_url_nothing_changes(tmp_path: Path) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}")
    settings = crawler.settings
    assert settings["REDIS_URL"] is None
    assert settings["SCHEDULER"] == "scrapy.core.scheduler.Scheduler"
    assert settings.getbool("RUN_LOCK_ENABLED")
    assert CrawlWorker not in _components(crawler, "EXTENSIONS")
    assert SeedOnceMiddleware not in _components(crawler, "SPIDER_MIDDLEWARES")
    assert GlobalPolitenessMiddleware not in _components(crawler, "DOWNLOADER_MIDDLEWARES")
    assert settings.getint("FRONTIER_BATCH_SIZE") > 0


def test_with_redis_url_any_spider_is_a_worker(tmp_path: Path, redis: Redis, prefix: str) -> None:
    for spider in (MaeilIlboSpider, SktInsightSpider):
        crawler = project_crawler(
            spider,
            DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}",
            REDIS_URL=REDIS_URL,
            REDIS_KEY_PREFIX=prefix,
        )
        settings = crawler.settings
        assert load_object(settings["SCHEDULER"]) is LeasedScheduler
        assert settings["DUPEFILTER_CLASS"] == "scrapy_redis.dupefilter.RFPDupeFilter"
        assert settings.getbool("SCHEDULER_PERSIST")
        assert not settings.getbool("RUN_LOCK_ENABLED")
        assert settings.getint("HEALTH_MIN_ARTICLES") == 0
        # Redis holds the frontier: no listing's requests wait in one worker's memory.
        assert settings.getint("FRONTIER_BATCH_SIZE") == 0
        assert isinstance(crawler.get_extension(CrawlWorker), CrawlWorker)
        spider_middlewares = _components(crawler, "SPIDER_MIDDLEWARES")
        assert spider_middlewares[SeedOnceMiddleware] == min(spider_middlewares.values())
        downloader = _components(crawler, "DOWNLOADER_MIDDLEWARES")
        replay = load_object("news_archive.crawler.middlewares.replay.ReplayMiddleware")
        assert downloader[GlobalPolitenessMiddleware] < downloader[replay]
