"""crawler/stats.py: the crawl's stats collector keeps Scrapy's behaviour without its
per-attribute hook."""

from __future__ import annotations

import warnings

from scrapy.statscollectors import MemoryStatsCollector

from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.crawler.stats import ArchiveStats
from tests.crawl.crawling import project_crawler


def test_the_project_collects_stats_with_archive_stats() -> None:
    crawler = project_crawler(MaeilIlboSpider)
    assert type(crawler.stats) is ArchiveStats


def test_methods_are_plain_bound_methods_not_wrappers() -> None:
    # Scrapy 2.19's hook hands out a wrapper per method name (warning about spider=),
    # found through a raised and caught AttributeError at every access.
    stats = project_crawler(MaeilIlboSpider).stats
    assert isinstance(stats, ArchiveStats)
    assert stats.inc_value.__func__ is MemoryStatsCollector.inc_value  # type: ignore[attr-defined]
    assert stats.get_value.__func__ is MemoryStatsCollector.get_value  # type: ignore[attr-defined]


def test_counts_as_scrapy_does_and_keeps_the_last_run_per_spider() -> None:
    crawler = project_crawler(MaeilIlboSpider)
    stats = crawler.stats
    assert stats is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning for spider=
        stats.open_spider(crawler.spider)
        stats.inc_value("pages")
        stats.inc_value("pages", 2, spider=crawler.spider)
        stats.max_value("largest", 5)
        stats.max_value("largest", 3)
        stats.min_value("smallest", 5)
        stats.min_value("smallest", 3)
        stats.set_value("name", "x")
        assert stats.get_value("missing", 7) == 7
        counted = {"pages": 3, "largest": 5, "smallest": 3, "name": "x"}
        assert stats.get_stats().items() >= counted.items()
        stats.close_spider(crawler.spider, reason="finished")
    assert stats.spider_stats["maeil_ilbo"]["pages"] == 3
