"""매일일보: ``scrapy crawl maeil_ilbo``."""

from __future__ import annotations

from news_archive.crawler.sites import maeil_ilbo
from news_archive.crawler.spiders.base import ArchiveSpider


class MaeilIlboSpider(ArchiveSpider):
    name = maeil_ilbo.NAME
    site = maeil_ilbo
