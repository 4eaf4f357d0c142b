"""One module per site, named after its spider. Each exposes the same names:

``NAME``, ``ALLOWED_DOMAINS``, ``FEED_URLS``, ``canonical_url(url)``,
``feed_entries(body, url)``, ``is_list_url(url)``, ``extract(url, body, headers,
fetched_at, feed)`` and, for backfill, ``backfill_start_urls(sections)`` and
``next_page_url(url)``.
"""

from __future__ import annotations

from types import ModuleType

from news_archive.crawler.sites import maeil_ilbo, skt_insight

SITES: dict[str, ModuleType] = {module.NAME: module for module in (maeil_ilbo, skt_insight)}


def site_for(name: str) -> ModuleType:
    """The site module of a spider name; KeyError names the known sites."""
    try:
        return SITES[name]
    except KeyError:
        raise KeyError(f"unknown site {name!r}; known: {', '.join(sorted(SITES))}") from None
