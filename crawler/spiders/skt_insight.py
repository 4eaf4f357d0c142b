"""SKT 뉴스룸 (formerly SKT Insight): ``scrapy crawl skt_insight``."""

from __future__ import annotations

from news_archive.crawler.sites import skt_insight
from news_archive.crawler.spiders.base import ArchiveSpider


class SktInsightSpider(ArchiveSpider):
    name = skt_insight.NAME
    site = skt_insight
