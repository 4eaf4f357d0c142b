"""SKT 뉴스룸 (formerly SKT Insight): ``scrapy crawl skt_insight``."""

from __future__ import annotations

from crawler.sites import skt_insight
from crawler.spiders.base import ArchiveSpider


class SktInsightSpider(ArchiveSpider):
    name = skt_insight.NAME
    site = skt_insight
