"""Named signals and the chains sites build from them.

A `Signal` is one way of reading one field of a page: a name (what
``Article.sources`` records, e.g. ``"json-ld"``, ``"og:title"``, ``"markup"``,
``"feed"``) and a function of the located page (`Context`). A chain is a tuple of
signals in order of precedence; `pick` returns the first non-empty answer and its
name. The signals here are the reusable ones (JSON-LD, ``article:*``/Open Graph
metas, feed entry, markup read through a selector); a site module lines them up
in its own precedence and adds the few it needs of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Generic, Literal, TypeVar

from lxml import html as lxml_html
from lxml.cssselect import CSSSelector

from news_archive.crawler.extract.body import text_of
from news_archive.crawler.extract.bylines import byline_names
from news_archive.crawler.extract.dates import KOREA, parse_iso, parse_korea_local, parse_local
from news_archive.crawler.extract.metadata import Pick, unique
from news_archive.crawler.extract.page import Page, dated
from news_archive.crawler.extract.titles import clean_title as strip_site_name
from news_archive.crawler.extract.titles import page_names

T = TypeVar("T")
Dated = tuple[datetime, str]  # (UTC datetime, the raw text it was read from)
Within = Literal["document", "scope"]


@dataclass(frozen=True, slots=True)
class Context:
    """A decoded page with its parts located: what every signal reads.

    `template` is the declared version the page matched (None: no version
    matched); `scope` is the article element when the site declares one, else
    the document; `container` is the body container (None: not found);
    `subtitles` the template's subtitle lines, then those of subtitle elements inside
    the container; `info` the texts of the template's byline/date items; `brands`
    the site's brand names (never an author); `title_names` the names of the site
    that titles must not carry (`crawler.extract.titles`; the page's own
    ``og:site_name`` is added to them);
    `time_zone` is the site's, for dates printed without a zone.
    """

    page: Page
    template_name: str | None
    scope: lxml_html.HtmlElement
    container: lxml_html.HtmlElement | None
    subtitles: tuple[str, ...]
    info: tuple[str, ...]
    title_markup: str | None
    brands: tuple[str, ...]
    title_names: tuple[str, ...]
    time_zone: tzinfo = KOREA

    def root(self, within: Within) -> lxml_html.HtmlElement:
        return self.page.document if within == "document" else self.scope

    def parse_iso(self, value: str | None) -> datetime | None:
        """An ISO 8601 date to UTC, a zone-less one read in the site's `time_zone`
        (`crawler.extract.dates.parse_iso`)."""
        return parse_iso(value, self.time_zone)


@dataclass(frozen=True, slots=True)
class Signal(Generic[T]):
    """One named way of reading a field; `read` answers None (or empty) when the
    page does not carry it."""

    source: str
    read: Callable[[Context], T | None]


Chain = tuple[Signal[T], ...]


def pick(chain: Sequence[Signal[T]], context: Context) -> Pick[T] | None:
    """The first non-empty value along `chain`, with the name of its signal."""
    for signal in chain:
        value = signal.read(context)
        if value:
            return Pick(value, signal.source)
    return None


def _feed_published(c: Context) -> Dated | None:
    entry = c.page.feed
    if entry is None or entry.published_at is None:
        return None
    return entry.published_at, entry.published_raw or ""


def clean_title(c: Context, title: str | None) -> str | None:
    """`title` without the site's name at either end (the site's `title_names` and
    the names the page gives itself), `crawler.extract.titles.clean_title`."""
    return strip_site_name(title, (*c.title_names, *page_names(c.page.signals.metas)))


def title_signal(source: str, read: Callable[[Context], str | None]) -> Signal[str]:
    """A page-title-like signal (``<title>``, ``og:title``, JSON-LD ``headline``, the
    feed entry's title): `read`'s title, cleaned of the site's name. These are the
    signals a CMS decorates with the site's name (``헤드라인 - 매일일보``); the
    cleaning removes a name only behind a separator or in brackets at an end, so an
    undecorated one comes through unchanged."""
    return Signal(source, lambda c: clean_title(c, read(c)))


def headline_signal(source: str, read: Callable[[Context], str | None]) -> Signal[str]:
    """The headline element's text, whitespace collapsed and never cleaned of the
    site's name: it is the headline the reader sees, which no CMS decorates, so a
    name at its start is the headline's own (``매일일보-한국갤럽 여론조사``,
    ``매일일보·SK텔레콤 공동 캠페인``)."""
    return Signal(source, lambda c: " ".join((read(c) or "").split()) or None)


# ------------------------------------------------------------------ JSON-LD
JSON_LD_HEADLINE: Signal[str] = title_signal(
    "json-ld", lambda c: c.page.signals.ld_text("headline")
)
JSON_LD_PUBLISHED: Signal[Dated] = Signal(
    "json-ld", lambda c: dated(c.parse_iso, c.page.signals.ld_text("datePublished"))
)
JSON_LD_MODIFIED: Signal[Dated] = Signal(
    "json-ld", lambda c: dated(c.parse_iso, c.page.signals.ld_text("dateModified"))
)
JSON_LD_AUTHORS: Signal[tuple[str, ...]] = Signal(
    "json-ld",
    lambda c: tuple(
        name for a in c.page.signals.ld_names("author") for name in byline_names(a, c.brands)
    ),
)
JSON_LD_SECTION: Signal[str] = Signal("json-ld", lambda c: c.page.signals.ld_text("articleSection"))
JSON_LD_KEYWORDS: Signal[tuple[str, ...]] = Signal(
    "json-ld", lambda c: unique(c.page.signals.ld_names("keywords"))
)

# -------------------------------------------------- article:* / Open Graph metas
OG_TITLE: Signal[str] = title_signal("og:title", lambda c: c.page.signals.meta("og:title"))
META_PUBLISHED: Signal[Dated] = Signal(
    "article:published_time",
    lambda c: dated(c.parse_iso, c.page.signals.meta("article:published_time")),
)
META_MODIFIED: Signal[Dated] = Signal(
    "article:modified_time",
    lambda c: dated(c.parse_iso, c.page.signals.meta("article:modified_time")),
)
META_SECTION: Signal[str] = Signal(
    "article:section", lambda c: c.page.signals.meta("article:section")
)
META_TAGS: Signal[tuple[str, ...]] = Signal(
    "article:tag", lambda c: unique(c.page.signals.meta_all("article:tag"))
)
NEWS_KEYWORDS: Signal[tuple[str, ...]] = Signal(
    "news_keywords", lambda c: unique((c.page.signals.meta("news_keywords") or "").split(","))
)
META_AUTHOR: Signal[tuple[str, ...]] = Signal(
    "meta-author", lambda c: byline_names(c.page.signals.meta("author"), c.brands)
)
HTML_TITLE: Signal[str] = title_signal("html-title", lambda c: c.page.signals.html_title)

# ------------------------------------------------------------------ feed entry
FEED_TITLE: Signal[str] = title_signal("feed", lambda c: c.page.feed.title if c.page.feed else None)
FEED_PUBLISHED: Signal[Dated] = Signal("feed", _feed_published)
FEED_AUTHORS: Signal[tuple[str, ...]] = Signal(
    "feed", lambda c: c.page.feed.authors if c.page.feed else ()
)
FEED_SECTION: Signal[str] = Signal(
    "feed",
    lambda c: c.page.feed.categories[0] if c.page.feed and c.page.feed.categories else None,
)

# ---------------------------------------------------------------------- markup
TEMPLATE_TITLE: Signal[str] = headline_signal("markup", lambda c: c.title_markup)
"""The title element of the matched template version, as printed (`headline_signal`)."""


def _first(selector: CSSSelector, root: lxml_html.HtmlElement) -> lxml_html.HtmlElement | None:
    found = selector(root)
    return found[0] if found else None


def markup_text(selector: CSSSelector, within: Within = "document") -> Signal[str]:
    """The text of the first element `selector` finds."""

    def read(c: Context) -> str | None:
        element = _first(selector, c.root(within))
        return text_of(element) if element is not None else None

    return Signal("markup", read)


def markup_title(selector: CSSSelector, within: Within = "document") -> Signal[str]:
    """The headline in the first element `selector` finds, as printed: never cleaned
    of the site's name (`headline_signal`)."""
    return headline_signal("markup", markup_text(selector, within).read)


def markup_texts(selector: CSSSelector, within: Within = "document") -> Signal[tuple[str, ...]]:
    """The texts of every element `selector` finds, without repeats."""
    return Signal("markup", lambda c: unique(text_of(e) for e in selector(c.root(within))))


def markup_bylines(selector: CSSSelector) -> Signal[tuple[str, ...]]:
    """Person names in the elements `selector` finds (role words and brands dropped)."""
    return Signal(
        "markup",
        lambda c: tuple(
            name for e in selector(c.page.document) for name in byline_names(text_of(e), c.brands)
        ),
    )


def markup_iso_date(selector: CSSSelector, attribute: str = "datetime") -> Signal[Dated]:
    """An ISO 8601 date in an attribute (``<time datetime=...>``); without an offset,
    in the site's time zone."""

    def read(c: Context) -> Dated | None:
        element = _first(selector, c.page.document)
        return dated(c.parse_iso, element.get(attribute)) if element is not None else None

    return Signal("markup", read)


def markup_local_date(selector: CSSSelector, source: str = "markup") -> Signal[Dated]:
    """A date in an element's text in the site's time zone (``2021. 03. 15``;
    midnight if no time)."""

    def read(c: Context) -> Dated | None:
        element = _first(selector, c.page.document)
        if element is None:
            return None
        return dated(lambda value: parse_local(value, c.time_zone), text_of(element))

    return Signal(source, read)


def info_date(labels: tuple[str, ...]) -> Signal[Dated]:
    """The local date (the site's time zone) of the first info item that starts with
    one of `labels` (``승인 2020.06.21 09:00``, ``입력 2026.11.22 09:30``)."""

    def read(c: Context) -> Dated | None:
        line = next((t for t in c.info if t.startswith(labels) and parse_korea_local(t)), None)
        return dated(lambda value: parse_local(value, c.time_zone), line)

    return Signal("markup", read)


INFO_BYLINES: Signal[tuple[str, ...]] = Signal(
    "markup",
    lambda c: tuple(
        name
        for line in c.info
        if "기자" in line and not parse_korea_local(line)
        for name in byline_names(line, c.brands)
    ),
)
"""Names in the info items that carry ``기자`` and no date (``박효길 기자``)."""
