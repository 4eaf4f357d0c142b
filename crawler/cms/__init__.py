"""CMS profiles: what every site on one content management system shares.

A profile is a `Site` subclass that knows one CMS's article pages — its template
versions, selectors, feed format, list pages, date formats, byline patterns,
furniture and URL rules — and leaves a site only what is really its own: its
spider name, hosts (the first, `canonical_host`, names the canonical URLs), brand
names, time zone and quirks. Two ways to be a site on a known CMS:

- a declared subclass (``class MaeilIlbo(NDSoftSite)``) in ``crawler/sites/``, for a
  site with quirks that need code (hooks, extra furniture, other chains);
- a configuration entry (``SITES_FILE``, see ``crawler/sites/configured.py`` and
  ``docs/adding-a-site.md``): `CmsSite.configured` makes an instance of the profile.

Profiles sit beneath the sites: they import the extraction machinery only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import Any, ClassVar, Self

from news_archive.crawler.extract.dates import KOREA
from news_archive.crawler.extract.site import Feed, Site


class CmsSite(Site):
    """A site on a known CMS. A subclass that declares `canonical_host` gets the
    profile's `article_url` and default `feed` for it unless it declares its own."""

    cms: ClassVar[str]  # the profile's name in a configuration entry (``ndsoft``)
    canonical_host: ClassVar[str]  # the host of canonical article URLs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "canonical_host" in cls.__dict__:
            if "article_url" not in cls.__dict__:
                cls.article_url = cls.article_url_for(cls.canonical_host)
            if "feed" not in cls.__dict__:
                cls.feed = cls.default_feed(cls.canonical_host, cls.time_zone)

    @classmethod
    def article_url_for(cls, host: str) -> str:
        """The canonical article URL on `host`, with an ``{id}`` field (profile hook)."""
        raise NotImplementedError

    @classmethod
    def default_feed(cls, host: str, time_zone: tzinfo, urls: Iterable[str] | None = None) -> Feed:
        """The CMS's feed on `host` (or `urls`), its dates read in `time_zone` where
        they carry no zone (profile hook)."""
        raise NotImplementedError

    @classmethod
    def configured(
        cls,
        *,
        name: str,
        hosts: tuple[str, ...],
        brands: tuple[str, ...] = (),
        time_zone: tzinfo = KOREA,
        feed_urls: tuple[str, ...] | None = None,
        sample_article_id: str | None = None,
        title_brands: tuple[str, ...] | None = None,
    ) -> Self:
        """An instance of the profile for a configured site: the first of `hosts` is
        the canonical one. Its own values are instance attributes of plain data
        (the profile's selectors and chains stay on the class), so it pickles as a
        declared site does: extraction workers receive sites by pickle."""
        site = cls.__new__(cls)
        values: dict[str, Any] = {
            "name": name,
            "hosts": frozenset(hosts),
            "canonical_host": hosts[0],
            "article_url": cls.article_url_for(hosts[0]),
            "feed": cls.default_feed(hosts[0], time_zone, feed_urls),
            "brands": brands,
            "title_brands": title_brands,
            "time_zone": time_zone,
            "sample_article_id": sample_article_id,
        }
        for attribute, value in values.items():
            setattr(site, attribute, value)
        site.__init__()  # type: ignore[misc]  # the contract's checks, the title suffix
        return site
