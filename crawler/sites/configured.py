"""Sites on a known CMS from configuration alone: the ``SITES_FILE`` setting names a
TOML file of entries, each an instance of a CMS profile (`news_archive.crawler.cms`).

    [[site]]
    name = "hangang_times"                  # the spider name: words of [a-z0-9] joined by single _
    cms = "ndsoft"                          # ndsoft | wordpress
    hosts = ["www.hangangtimes.example", "hangangtimes.example", "m.hangangtimes.example"]
    brands = ["한강타임즈"]                  # names, never authors (optional)
    time_zone = "Asia/Seoul"                # IANA, for dates printed without a zone
    feed_urls = ["https://..."]             # optional; the profile's feed on hosts[0]
    sample_article_id = "30127"             # optional; what `scrapy check` fetches
    title_brands = ["한강타임즈"]            # optional; stripped from titles (default brands)

The first host is the canonical one. Every mistake is one line naming the file and
the entry (`SitesFileError`): an unknown key or cms, missing or malformed hosts, a
name or host that clashes with another site (a name whose spider class name another
site's has, too), a time zone that is not an IANA zone name. The guide is ``docs/adding-a-site.md``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from news_archive.crawler.cms import CmsSite
from news_archive.crawler.cms.ndsoft import NDSoftSite
from news_archive.crawler.cms.wordpress import WordPressSite
from news_archive.crawler.extract.site import Site
from news_archive.zones import UnknownZone, parse_zone

PROFILES: dict[str, type[CmsSite]] = {
    profile.cms: profile for profile in (NDSoftSite, WordPressSite)
}
"""Profile name in an entry's ``cms`` → its class."""

REQUIRED = ("name", "cms", "hosts", "time_zone")
OPTIONAL = ("brands", "feed_urls", "sample_article_id", "title_brands")
# A spider name is also a replay directory's prefix (``<site>_day2``), a column value
# and, capitalised word by word, its spider's class name (`spider_class_name`): words
# of lower-case letters and digits joined by single underscores, so that no two
# spellings (``maeil__ilbo``, ``maeil_ilbo_``, ``maeil_ilbo``) make one class name.
NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
NAME_FORM = "[a-z][a-z0-9]*(_[a-z0-9]+)*"
HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


class SitesFileError(ValueError):
    """A sites file that cannot be used; the message is one line."""


def load_sites_file(path: Path, declared: Mapping[str, Site]) -> dict[str, Site]:
    """The sites `path` configures, by spider name, in file order; `declared` are the
    sites declared in code, whose names and hosts a configured site may not take."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise SitesFileError(f"sites file {path}: cannot be read: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SitesFileError(f"sites file {path}: not TOML: {error}") from None
    unknown = sorted(set(data) - {"site"})
    if unknown:
        raise SitesFileError(
            f"sites file {path}: unknown table {unknown[0]!r} (entries are [[site]])"
        )
    entries = data.get("site", [])
    if not isinstance(entries, list):
        raise SitesFileError(f"sites file {path}: 'site' must be an array of tables ([[site]])")
    sites: dict[str, Site] = {}
    owners = {host: site.name for site in declared.values() for host in site.hosts}
    for number, entry in enumerate(entries, start=1):
        where = f"sites file {path}, site {number}"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            where += f" ({entry['name']})"
        try:
            site = configured_site(entry)
        except SitesFileError as error:
            raise SitesFileError(f"{where}: {error}") from None
        if site.name in declared or site.name in sites:
            raise SitesFileError(f"{where}: the spider name {site.name!r} is taken by another site")
        # ``site_2`` and ``site2`` are both ``Site2Spider``: one would hide the other.
        twin = next(
            (
                other
                for other in (*declared, *sites)
                if spider_class_name(other) == spider_class_name(site.name)
            ),
            None,
        )
        if twin is not None:
            raise SitesFileError(
                f"{where}: the spider class name {spider_class_name(site.name)!r} is taken by"
                f" site {twin!r}"
            )
        for host in sorted(site.hosts):
            if host in owners:
                raise SitesFileError(f"{where}: host {host!r} belongs to site {owners[host]!r}")
            owners[host] = site.name
        sites[site.name] = site
    return sites


def configured_site(entry: Any) -> Site:
    """One entry of a sites file → an instance of its CMS profile."""
    if not isinstance(entry, dict):
        raise SitesFileError("an entry must be a table")
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise SitesFileError(f"unknown key {unknown[0]!r} (keys: {', '.join(REQUIRED + OPTIONAL)})")
    missing = [key for key in REQUIRED if key not in entry]
    if missing:
        raise SitesFileError(f"missing {', '.join(missing)}")
    name = _text(entry, "name")
    if not NAME.match(name):
        raise SitesFileError(
            f"name {name!r} is no spider name ({NAME_FORM}: lower-case words joined by single _)"
        )
    cms = _text(entry, "cms")
    if cms not in PROFILES:
        raise SitesFileError(f"unknown cms {cms!r} (known: {', '.join(sorted(PROFILES))})")
    hosts = _texts(entry, "hosts")
    if not hosts:
        raise SitesFileError("hosts is empty (the first host is the canonical one)")
    for host in hosts:
        if not HOST.match(host):
            raise SitesFileError(f"host {host!r} is no lowercase host name (no scheme, no path)")
    feed_urls = _texts(entry, "feed_urls") if "feed_urls" in entry else None
    for url in feed_urls or ():
        if urlsplit(url).scheme not in ("http", "https") or urlsplit(url).hostname not in hosts:
            raise SitesFileError(f"feed URL {url!r} is not an http(s) URL on one of the hosts")
    title_brands = _texts(entry, "title_brands") if "title_brands" in entry else None
    sample = entry.get("sample_article_id")
    if sample is not None and not (isinstance(sample, str | int) and str(sample).isdigit()):
        raise SitesFileError(f"sample_article_id {sample!r} is no article number")
    return PROFILES[cms].configured(
        name=name,
        hosts=hosts,
        brands=_texts(entry, "brands") if "brands" in entry else (),
        time_zone=_zone(_text(entry, "time_zone")),
        feed_urls=feed_urls,
        sample_article_id=None if sample is None else str(sample),
        title_brands=title_brands,
    )


def spider_class_name(name: str) -> str:
    """The class name of a site's spider (`news_archive.crawler.spiders.sites`):
    ``maeil_ilbo`` → ``MaeilIlboSpider``."""
    return "".join(part.capitalize() for part in name.split("_")) + "Spider"


def _zone(key: str) -> ZoneInfo:
    """The IANA zone `key` names (`news_archive.zones.parse_zone`)."""
    try:
        return parse_zone(key)
    except UnknownZone as error:
        raise SitesFileError(str(error)) from None


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise SitesFileError(f"{key} must be a non-empty string")
    return value.strip()


def _texts(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    value = entry[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SitesFileError(f"{key} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)
