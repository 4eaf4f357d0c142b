"""The registry: the only list of sites.

Two kinds of site:
- declared: one module per site, named after its spider, declares a `Site` subclass
  (usually of a CMS profile, `news_archive.crawler.cms`); its instance is in
  `REGISTERED`, and `SITES` maps the declared sites by name;
- configured: entries of the TOML file the ``SITES_FILE`` setting names, each an
  instance of a CMS profile (`news_archive.crawler.sites.configured`).

Everything that needs "every site" where a configuration can be present asks
`sites_for(settings)` (declared + configured): the spider loader
(`news_archive.crawler.spiders.sites`), ``crawl``/``reextract`` and the command
line's site checks, the golden tests (``tests/golden.py``). Adding a site is
adding its instance to `REGISTERED`, or an entry to the sites file (see
``docs/adding-a-site.md``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from news_archive.crawler.extract.site import Site
from news_archive.crawler.sites.configured import SitesFileError, load_sites_file
from news_archive.crawler.sites.maeil_ilbo import MaeilIlbo
from news_archive.crawler.sites.skt_insight import SktInsight

REGISTERED: tuple[Site, ...] = (MaeilIlbo(), SktInsight())

SITES: dict[str, Site] = {site.name: site for site in REGISTERED}
"""Spider name → declared site, in registration order."""


def all_sites(sites_file: str | os.PathLike[str] | None = None) -> dict[str, Site]:
    """Spider name → site: the declared ones, then those `sites_file` configures
    (none when None or empty). Raises `SitesFileError` (one line) for a bad file.

    The same file, unchanged, gives the same site instances (a spider's site and
    the site a worker extracts with are one object)."""
    if not sites_file:
        return dict(SITES)
    path = Path(sites_file).resolve()
    try:
        stat = path.stat()
    except OSError as error:
        raise SitesFileError(f"sites file {sites_file}: cannot be read: {error.strerror}") from None
    return {**SITES, **_configured(path, stat.st_mtime_ns, stat.st_size, tuple(SITES))}


@lru_cache(maxsize=8)
def _configured(path: Path, mtime_ns: int, size: int, declared: tuple[str, ...]) -> dict[str, Site]:
    # Keyed by the file's change time and size, and by the declared names (a test
    # may register a site for a while).
    return load_sites_file(path, SITES)


def sites_for(settings: Any) -> dict[str, Site]:
    """Declared + configured sites for Scrapy `settings` (anything with ``get``):
    the file of its ``SITES_FILE``."""
    return all_sites(settings.get("SITES_FILE"))


def site_for(name: str, sites: dict[str, Site] | None = None) -> Site:
    """The site of a spider name (among `sites`, default the declared ones); KeyError
    names the known sites."""
    known = SITES if sites is None else sites
    try:
        return known[name]
    except KeyError:
        raise KeyError(f"unknown site {name!r}; known: {', '.join(sorted(known))}") from None


def url_candidates(url: str, sites: Iterable[Site]) -> list[str]:
    """The URLs under which the article `url` may be archived, most literal first:
    `url` as given (``https://`` put in front when it names no scheme), then its
    canonical URL under each of `sites` whose rules recognise it (an ``http://``,
    AMP, print, old-host or tracking-parameter variant names the same article id),
    without repeats. The archive's alias table answers for the first ones too."""
    given = url.strip()
    if "://" not in given:
        given = f"https://{given}"
    candidates = [given]
    for site in sites:
        canonical = site.canonical_url(given)
        if canonical is not None and canonical not in candidates:
            candidates.append(canonical)
    return candidates


__all__ = [
    "REGISTERED",
    "SITES",
    "Site",
    "SitesFileError",
    "all_sites",
    "site_for",
    "sites_for",
    "url_candidates",
]
