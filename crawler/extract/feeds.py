"""RSS 2.0 reading, tolerant of the malformed XML feeds sometimes serve."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from lxml import etree

from news_archive.crawler.extract.bylines import byline_names
from news_archive.vocabulary import FeedEntry


class FeedError(ValueError):
    """The document is not a feed we can read (not XML, or no channel)."""


@dataclass(frozen=True, slots=True)
class RawItem:
    """One ``<item>`` as strings; sites turn it into a `FeedEntry` (their own date format)."""

    link: str | None
    title: str | None
    pub_date: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    description: str | None
    guid: str | None


_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"


def read_rss(body: bytes) -> list[RawItem]:
    """Items of an RSS 2.0 document, in feed order.

    The XML parser runs in recovery mode so that one bad entity or stray ``&``
    costs at most the broken item, not the feed; a document without a
    ``<channel>`` raises `FeedError` with the parser's reason.
    """
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        raise FeedError(f"not XML: {error}") from error
    if root is None or root.find("channel") is None:
        reason = parser.error_log.last_error if len(parser.error_log) else "no <channel>"
        raise FeedError(f"not an RSS feed: {reason}")
    return [_item(element) for element in root.iterfind("channel/item")]


def _item(element: etree._Element) -> RawItem:
    def text(tag: str) -> str | None:
        found = element.find(tag)
        value = found.text if found is not None else None
        return value.strip() if value and value.strip() else None

    authors = [
        (node.text or "").strip()
        for node in (*element.iterfind("author"), *element.iterfind(_DC_CREATOR))
    ]
    categories = [(node.text or "").strip() for node in element.iterfind("category")]
    return RawItem(
        link=text("link"),
        title=text("title"),
        pub_date=text("pubDate"),
        authors=tuple(a for a in authors if a),
        categories=tuple(c for c in categories if c),
        description=text("description"),
        guid=text("guid"),
    )


def feed_entries(
    body: bytes,
    feed_url: str,
    *,
    parse_date: Callable[[str | None], datetime | None],
    brands: Iterable[str] = (),
) -> list[FeedEntry]:
    """The items of an RSS feed as `FeedEntry` values: links made absolute, the
    ``pubDate`` read with the site's `parse_date`, authors reduced to names (a
    brand in `brands` is no author). Items without a link are skipped."""
    brands = tuple(brands)
    return [
        FeedEntry(
            url=urljoin(feed_url, item.link),
            title=item.title,
            published_at=parse_date(item.pub_date),
            published_raw=item.pub_date,
            authors=tuple(name for a in item.authors for name in byline_names(a, brands)),
            categories=item.categories,
            summary=item.description,
        )
        for item in read_rss(body)
        if item.link
    ]
