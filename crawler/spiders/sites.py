"""One spider per registered site, generated from the registry
(`news_archive.crawler.sites.SITES`): ``scrapy list`` lists them, ``scrapy crawl
<site name>`` runs one. A new site needs no spider module of its own.

Each class is named after its site's class (``MaeilIlbo`` → ``MaeilIlboSpider``)
and set into this module, where Scrapy's spider loader looks for them.
"""

from __future__ import annotations

from news_archive.crawler.extract.site import Site
from news_archive.crawler.sites import SITES
from news_archive.crawler.spiders.base import ArchiveSpider


def spider_class(site: Site) -> type[ArchiveSpider]:
    """An `ArchiveSpider` subclass crawling `site`, named after it."""
    name = f"{type(site).__name__}Spider"
    return type(
        name,
        (ArchiveSpider,),
        {
            "name": site.name,
            "site": site,
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"``scrapy crawl {site.name}``: {type(site).__doc__ or site.name}",
        },
    )


SPIDERS: dict[str, type[ArchiveSpider]] = {name: spider_class(site) for name, site in SITES.items()}
globals().update({spider.__name__: spider for spider in SPIDERS.values()})
