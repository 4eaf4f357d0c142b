"""One spider per site, generated from the registry: ``scrapy list`` lists them,
``scrapy crawl <site name>`` runs one. A new site needs no spider module of its own.

The declared sites' spiders (`news_archive.crawler.sites.SITES`) are classes of this
module, each named after its site (``maeil_ilbo`` → ``MaeilIlboSpider``), where
Scrapy's spider loader looks for them. The configured sites' spiders (the
``SITES_FILE`` setting) depend on the settings, so `SiteSpiderLoader`, the project's
``SPIDER_LOADER_CLASS``, adds them when it is built.
"""

from __future__ import annotations

from typing import Self

from scrapy.exceptions import UsageError
from scrapy.settings import BaseSettings
from scrapy.spiderloader import SpiderLoader

from news_archive.crawler.extract.site import Site
from news_archive.crawler.sites import SITES, SitesFileError, sites_for
from news_archive.crawler.sites.configured import spider_class_name
from news_archive.crawler.spiders.base import ArchiveSpider


def spider_class(site: Site) -> type[ArchiveSpider]:
    """An `ArchiveSpider` subclass crawling `site`, named after its spider name."""
    name = spider_class_name(site.name)
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


class SiteSpiderLoader(SpiderLoader):
    """Scrapy's spider loader, plus a generated spider per site that the settings'
    ``SITES_FILE`` configures.

    A sites file that cannot be used does not stop the loader from being built
    (Scrapy builds it before any command runs): `load` and `list` raise a
    `UsageError` with its one-line reason instead, which the ``crawl`` command turns
    into the configuration-error exit (78)."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.sites_error: SitesFileError | None = None
        try:
            sites = sites_for(settings)
        except SitesFileError as error:
            self.sites_error = error
            return
        for name, site in sites.items():
            if name not in SITES:
                self._found[name].append((__name__, site.name))
                self._spiders[name] = spider_class(site)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        return cls(settings)

    def _refuse_bad_configuration(self) -> None:
        if self.sites_error is not None:
            raise UsageError(str(self.sites_error), print_help=False)

    def load(self, spider_name: str) -> type[ArchiveSpider]:  # type: ignore[override]
        self._refuse_bad_configuration()
        return super().load(spider_name)  # type: ignore[return-value]

    def list(self) -> list[str]:
        self._refuse_bad_configuration()
        return super().list()
