"""The registry: the only list of sites.

One module per site, named after its spider, declares a `Site` subclass (the
contract and the extraction skeleton are in `news_archive.crawler.extract.site`).
Everything that needs "every site" iterates `SITES`: the spiders
(`news_archive.crawler.spiders.sites`), the golden tests (`tests/golden.py`), the
benchmark (`bench/run.py`) and the command line's site checks. Adding a site is
adding its instance to `REGISTERED` (see ``docs/adding-a-site.md``).
"""

from __future__ import annotations

from news_archive.crawler.extract.site import Site
from news_archive.crawler.sites.maeil_ilbo import MaeilIlbo
from news_archive.crawler.sites.skt_insight import SktInsight

REGISTERED: tuple[Site, ...] = (MaeilIlbo(), SktInsight())

SITES: dict[str, Site] = {site.name: site for site in REGISTERED}
"""Spider name → site, in registration order."""


def site_for(name: str) -> Site:
    """The site of a spider name; KeyError names the known sites."""
    try:
        return SITES[name]
    except KeyError:
        raise KeyError(f"unknown site {name!r}; known: {', '.join(sorted(SITES))}") from None


__all__ = ["SITES", "Site", "site_for"]
