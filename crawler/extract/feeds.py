"""RSS 2.0 reading: safe, and honest about feeds that parse only partly.

The parser never resolves entities, reads the network or builds huge trees (no
XXE, no billion laughs: libxml2 stops entity amplification). It runs in recovery
mode, so that one bad entity or a cut-off tail costs at most the broken item, not
the feed; but any error the parser met is reported (`PartialFeed`), never
swallowed: a feed that is truncated, wrongly declared (encoding) or an entity bomb
is a recorded ``bad_feed`` even when some items could be read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from w3lib.url import safe_url_string

from news_archive.crawler.extract.bylines import byline_names
from news_archive.vocabulary import FeedEntry


class FeedError(ValueError):
    """The document is not a feed we can read (not XML, or no channel)."""


class PartialFeed(FeedError):
    """The document parsed only partly: the message is the parser's first error,
    `found` what could be trusted of it (`RawItem`s from `read_rss`, `FeedEntry`s
    from `feed_entries`): every item with a link except the one the first error
    broke in (the last item starting on or before the error's line), whose link or
    text may be cut. Its items' text is not trusted either: `feed_entries` keeps
    only their links."""

    def __init__(self, message: str, found: list[Any]) -> None:
        super().__init__(message)
        self.found = found


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

    A document without a ``<channel>`` raises `FeedError` with the parser's reason;
    one the parser met errors in raises `PartialFeed` with the items it trusts.

    Read item by item, each item's elements dropped once it is read: a feed naming
    100,000 articles (14 MB) never stands as one tree, which took about 150 MB.
    """
    context = etree.iterparse(
        BytesIO(body),
        events=("end",),
        tag="item",
        recover=True,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
    )
    # (the line an item starts on, the item) for each channel/item, in feed order
    read: list[tuple[int | None, RawItem]] = []
    try:
        for _, element in context:
            channel = element.getparent()
            if not _is_channel(channel):
                continue  # an <item> nested elsewhere: not one of the feed's
            read.append((element.sourceline, _item(element)))
            element.clear()
            while element.getprevious() is not None:
                del channel[0]
    except etree.XMLSyntaxError as error:
        raise FeedError(f"not XML: {error}") from error
    errors = list(context.error_log)
    root = getattr(context, "root", None)
    if root is None or root.find("channel") is None:
        reason = _describe(errors[0]) if errors else "no <channel>"
        raise FeedError(f"not an RSS feed: {reason}")
    if not errors:
        return [item for _, item in read]
    first = errors[0]
    broken = [i for i, (line, _) in enumerate(read) if line is not None and line <= first.line]
    trusted = [item for i, (_, item) in enumerate(read) if not (broken and i == broken[-1])]
    raise PartialFeed(
        f"feed parsed only partly ({len(errors)} parser errors, {len(read)} items read, "
        f"{len(trusted)} trusted): {_describe(first)}",
        trusted,
    )


def _is_channel(element: etree._Element | None) -> bool:
    """`element` is the document's ``<channel>`` (a child of the root)."""
    if element is None or element.tag != "channel":
        return False
    parent = element.getparent()
    return parent is not None and parent.getparent() is None


def _describe(error: Any) -> str:
    """One parser error as one line: ``line 57: CData section not finished``."""
    message = " ".join(str(error.message).split())[:200]
    return f"line {error.line}: {message}"


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
    brand in `brands` is no author). Items without a link are skipped; a link that
    cannot be made absolute is kept as written (the spider judges links).

    Raises `PartialFeed` (its `found`: entries with a link only, since the text of
    a feed the parser choked on may be cut or wrongly decoded) and `FeedError`."""
    brands = tuple(brands)
    try:
        items = read_rss(body)
    except PartialFeed as partial:
        trusted = [FeedEntry(url=absolute_link(feed_url, i.link)) for i in partial.found if i.link]
        raise PartialFeed(str(partial), trusted) from partial
    return [
        FeedEntry(
            url=absolute_link(feed_url, item.link),
            title=item.title,
            published_at=parse_date(item.pub_date),
            published_raw=item.pub_date,
            authors=tuple(name for a in item.authors for name in byline_names(a, brands)),
            categories=item.categories,
            summary=item.description,
        )
        for item in items
        if item.link
    ]


def absolute_link(base: str, link: str) -> str:
    """`link` made absolute against `base`, or as written when it cannot be."""
    try:
        return urljoin(base, link)
    except ValueError:  # e.g. an unclosed IPv6 bracket: a bad link, not a bad feed
        return link


def link_problem(url: str, hosts: Collection[str], max_length: int) -> str | None:
    """Why the link `url` of a feed or list page must not be followed, or None.

    Too long (over `max_length` characters once percent-encoded, as it would be
    requested), malformed (no http(s) scheme or host, a bad port, whitespace or
    control characters inside) or off-site (a host not in `hosts`, exactly)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "malformed link: whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
        length = len(safe_url_string(url))
    except ValueError as error:
        return f"malformed link: {error}"
    if length > max_length:
        return f"link of {length} characters, over the limit of {max_length}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "malformed link: not an absolute http(s) URL"
    if parts.hostname not in hosts:
        return f"off-site link: host {parts.hostname!r} is not one of the site's hosts"
    return None
