"""The site contract: what a site declares, and the one extraction skeleton.

A site is a subclass of `Site` that declares, as class attributes, its URL rules
(`hosts`, `article_url`, the `article_id` hook), its feeds (`feed`), its brands,
its template versions (`templates`, explicit `Template` values named ``V1``,
``V2``...), where the body is (`containers`, optionally an `article_element`),
its furniture, and one signal chain per field (`crawler.extract.signals`).
`Site.extract` then runs the same steps for every site:

    decode → canonical URL → locate (template, container) → body → furniture → assemble

Hooks for genuine quirks: `article_id` (required), `is_article`, `is_list_url`,
`list_entries`, `next_page_url`, `backfill_start_urls`. Extraction stays pure:
``(url, body bytes, headers, fetched_at, feed entry)`` in, an `Article` or a
`Rejection` with its reason out; no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import ClassVar
from urllib.parse import SplitResult, urlsplit

from lxml.cssselect import CSSSelector

from news_archive.crawler.extract.body import body_lines, figures, lines_of, text_of
from news_archive.crawler.extract.body import without_furniture as drop_furniture
from news_archive.crawler.extract.dates import KOREA, parse_rfc822
from news_archive.crawler.extract.feeds import feed_entries as read_feed
from news_archive.crawler.extract.furniture import subtitle_elements
from news_archive.crawler.extract.metadata import unique
from news_archive.crawler.extract.page import (
    MIN_BODY_CHARACTERS,
    Page,
    assemble,
    language_of,
    load_page,
)
from news_archive.crawler.extract.signals import Chain, Context, Dated, pick
from news_archive.vocabulary import (
    UNKNOWN_TEMPLATE,
    Article,
    BodyMethod,
    BodySource,
    FeedEntry,
    Image,
    LearnedBoilerplate,
    Rejection,
)

# The longest title and body an article may have, in characters (docs/extraction.md).
# The seeds' longest are 48 and 1,866; a long Korean feature or interview runs to some
# 20,000. Past these a page is no article but a hostile or broken one: a `too_large`
# rejection, never a silently truncated article.
MAX_TITLE_CHARACTERS = 500
MAX_BODY_CHARACTERS = 100_000


@dataclass(frozen=True, slots=True)
class Template:
    """One version of a site's article layout, declared beside the older ones.

    `marker` recognises the version (the first version whose marker matches the
    document wins; None: the version is recognised by its body container alone).
    `title`, `subtitle` and `info` (byline and date items) are read from the whole
    document when declared. Subtitle elements inside the body container are found
    by class whatever the template (`crawler.extract.furniture.subtitle_elements`).
    """

    name: str
    marker: CSSSelector | None = None
    title: CSSSelector | None = None
    subtitle: CSSSelector | None = None
    info: CSSSelector | None = None


@dataclass(frozen=True, slots=True)
class Furniture:
    """Lines that are page furniture, never article text: whole lines equal to one
    of `exact`, starting with one of `prefixes` or containing one of `contains`."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()

    def remove(
        self, lines: Iterable[str], *, captions: Iterable[str] = (), subtitles: Iterable[str] = ()
    ) -> list[str]:
        """`lines` without furniture, photo captions and subtitle lines."""
        return drop_furniture(
            lines,
            exact=self.exact,
            prefixes=self.prefixes,
            contains=self.contains,
            captions=captions,
            subtitles=subtitles,
        )

    def is_furniture(self, line: str) -> bool:
        return not self.remove([line])


@dataclass(frozen=True, slots=True)
class Feed:
    """A site's default start URLs (its feeds) and how their ``pubDate`` reads."""

    urls: tuple[str, ...]
    parse_date: Callable[[str | None], datetime | None] = parse_rfc822


class Site:
    """Base class of every site declaration; instances are registered in
    `news_archive.crawler.sites`. Subclasses set the class attributes below."""

    # --- identity and URL rules
    name: ClassVar[str]  # the spider name (``maeil_ilbo``)
    # The exact host names of the site: the only hosts the crawl fetches from (no
    # subdomains: ``evil.m-i.kr`` is off-site) and whose URLs may name an article.
    hosts: ClassVar[frozenset[str]]
    article_url: ClassVar[str]  # canonical article URL with an ``{id}`` field
    article_id_name: ClassVar[str] = "article id"  # for rejection messages
    # A live article that `scrapy check` fetches (its seed fixture replays it offline).
    sample_article_id: ClassVar[str | None] = None
    feed: ClassVar[Feed]
    brands: ClassVar[tuple[str, ...]] = ()  # never an author's name
    # Names stripped from either end of every title signal (with the page's own
    # ``og:site_name``); None: `brands`.
    title_brands: ClassVar[tuple[str, ...] | None] = None
    # The zone of dates the pages print without one (``승인 2020.06.21 09:00``).
    time_zone: ClassVar[tzinfo] = KOREA

    # --- layout
    templates: ClassVar[tuple[Template, ...]] = ()  # newest first
    article_element: ClassVar[CSSSelector | None] = None  # scope of `containers`
    containers: ClassVar[tuple[CSSSelector, ...]] = ()  # tried in order
    furniture: ClassVar[Furniture] = Furniture()
    not_article_detail: ClassVar[str] = "no article header, body or article metadata"

    # --- one chain per field, strongest signal first
    title: ClassVar[Chain[str]]
    published: ClassVar[Chain[Dated]]
    modified: ClassVar[Chain[Dated]] = ()
    authors: ClassVar[Chain[tuple[str, ...]]] = ()
    section: ClassVar[Chain[str]] = ()
    tags: ClassVar[Chain[tuple[str, ...]]] = ()

    REQUIRED: ClassVar[tuple[str, ...]] = (
        "name",
        "hosts",
        "article_url",
        "feed",
        "title",
        "published",
    )

    def __init__(self) -> None:
        missing = [attribute for attribute in self.REQUIRED if not hasattr(self, attribute)]
        if missing:
            raise TypeError(f"{type(self).__name__} declares no {', '.join(missing)}")
        # Names stripped from either end of a title (`crawler.extract.titles`).
        self._title_names = self.brands if self.title_brands is None else self.title_brands

    def __repr__(self) -> str:
        return f"<site {self.name}>"

    # ----------------------------------------------------------------- URL rules

    @property
    def feed_urls(self) -> tuple[str, ...]:
        return self.feed.urls

    def article_id(self, parts: SplitResult) -> int | None:
        """The article id a URL on one of `hosts` names, or None (hook)."""
        raise NotImplementedError

    def canonical_url(self, url: str) -> str | None:
        """The archive URL of the article `url` names (`article_url` with its id), or
        None when `url` names no article of this site."""
        parts = urlsplit(url.strip())
        if parts.hostname not in self.hosts:
            return None
        article_id = self.article_id(parts)
        return None if article_id is None else self.article_url.format(id=article_id)

    # ------------------------------------------------------------------ discovery

    def feed_entries(self, body: bytes, feed_url: str) -> list[FeedEntry]:
        """Entries of one of the site's RSS feeds (dates read with `feed.parse_date`)."""
        return read_feed(body, feed_url, parse_date=self.feed.parse_date, brands=self.brands)

    def is_list_url(self, url: str) -> bool:
        """True for an HTML list page that `list_entries` reads (hook; default none)."""
        return False

    def list_entries(self, text: str, list_page_url: str) -> list[FeedEntry]:
        """Items of an HTML list page (hook; only called when `is_list_url`)."""
        return []

    def next_page_url(self, url: str) -> str | None:
        """The page after a list or feed page, for backfill (hook; default none)."""
        return None

    def backfill_start_urls(self, sections: tuple[str, ...]) -> list[str]:
        """Extra start URLs of a backfill (hook; default: the feeds' own pages)."""
        return []

    # ----------------------------------------------------------------- extraction

    def extract(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        fetched_at: datetime,
        feed: FeedEntry | None = None,
        *,
        boilerplate: LearnedBoilerplate | None = None,
    ) -> Article | Rejection:
        """One page → `Article`, or a `Rejection` with its reason (pure).

        `boilerplate`: the site's learned boilerplate blocks, dropped from the body
        after the furniture (their hashes in `Article.dropped_blocks`); given as data
        by the caller (the crawl, re-extraction), never looked up here."""
        page = load_page(self.name, url, body, headers, fetched_at, feed)
        if isinstance(page, Rejection):
            return page
        canonical, conflict = self.identity(url, page.signals.canonical)
        if conflict is not None:
            return Rejection(self.name, url, "canonical_conflict", conflict)
        if canonical is None:
            return Rejection(self.name, url, "not_article", f"URL names no {self.article_id_name}")
        context = self.locate(page)
        if not self.is_article(context):
            return Rejection(self.name, url, "not_article", self.not_article_detail)
        lines, images, method = self.body(context)
        lines = self.furniture.remove(
            lines,
            captions=[image.caption for image in images if image.caption],
            subtitles=context.subtitles,
        )
        learned = boilerplate or LearnedBoilerplate(self.name)
        lines, dropped = learned.remove(lines, keep_characters=MIN_BODY_CHARACTERS)
        article = assemble(
            page,
            canonical_url=canonical,
            title=pick(self.title, context),
            body_lines=lines,
            body_source=BodySource(context.template_name or UNKNOWN_TEMPLATE, method),
            published=pick(self.published, context),
            modified=pick(self.modified, context),
            subtitles=context.subtitles,
            authors=pick(self.authors, context),
            section=pick(self.section, context),
            tags=pick(self.tags, context),
            images=images,
            language=language_of(page),
        )
        if isinstance(article, Article) and (cut := visibly_cut(page.text, body, headers)):
            article = replace(article, suspect=cut)
        if isinstance(article, Article) and dropped:
            article = replace(article, dropped_blocks=dropped)
        return within_bounds(article)

    def identity(self, url: str, claimed: str | None) -> tuple[str | None, str | None]:
        """Which article the page fetched from `url` is: ``(canonical URL, None)``, or
        ``(None, why)`` when the page's own `claimed` canonical URL names another
        article of this site than the URL rules give for `url`.

        Only the URL rules decide: a page can be served from anywhere and say
        anything about itself, so its ``rel=canonical`` may confirm the article its
        URL names, never choose one (a page elsewhere claiming an archived article's
        URL would otherwise overwrite it). A claim naming no article of this site (the
        home page, another site) says nothing about identity and is ignored."""
        canonical = self.canonical_url(url)
        named = self.canonical_url(claimed or "")
        if named is None or named == canonical:
            return canonical, None
        if canonical is None:
            claim = f"rel=canonical claims {named}"
            return None, f"{claim}, but the URL names no {self.article_id_name}"
        return None, f"rel=canonical claims {named}, but the URL names {canonical}"

    def locate(self, page: Page) -> Context:
        """Find the template version, the article element, the body container, the
        subtitle lines and the info items of `page`."""
        document = page.document
        scopes = self.article_element(document) if self.article_element is not None else []
        scope = scopes[0] if scopes else document
        container = next((found[0] for s in self.containers if (found := s(scope))), None)
        template = next(
            (
                t
                for t in self.templates
                if (t.marker(document) if t.marker is not None else container is not None)
            ),
            None,
        )
        titles = template.title(document) if template and template.title else []
        subtitles = template.subtitle(document) if template and template.subtitle else []
        # Subtitles recognised by element and class anywhere in the body container
        # (crawler/extract/furniture.py), after the template's own.
        if container is not None:
            inside = subtitle_elements(container)
            subtitles = [*subtitles, *(e for e in inside if e not in subtitles)]
        info = template.info(document) if template and template.info else []
        return Context(
            page=page,
            template_name=template.name if template else None,
            scope=scope,
            container=container,
            subtitles=unique(line for element in subtitles for line in lines_of(element)),
            info=tuple(text_of(element) for element in info),
            title_markup=text_of(titles[0]) if titles else None,
            brands=self.brands,
            title_names=self._title_names,
            time_zone=self.time_zone,
        )

    def is_article(self, context: Context) -> bool:
        """Whether the located page is an article at all (hook): a template version,
        a body container or article metadata (JSON-LD, ``og:type``) says so."""
        return (
            context.template_name is not None
            or context.container is not None
            or context.page.signals.is_article()
        )

    def body(self, context: Context) -> tuple[list[str], tuple[Image, ...], BodyMethod]:
        """Body lines and photos from the container; without one, trafilatura on the
        whole page (no photos: their captions could not be told from the text)."""
        if context.container is not None:
            lines = body_lines(context.container, whole_page=False)
            return lines, figures(context.container, context.page.url), BodyMethod.CONTAINER
        return body_lines(context.page.document, whole_page=True), (), BodyMethod.WHOLE_PAGE


def visibly_cut(text: str, body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why a page looks cut short in transfer, or None: fewer body bytes than its
    ``Content-Length`` promised, or neither a closing ``</body>`` nor ``</html>``
    (HTML lets a page omit both, but the sites' templates never do; a page that
    stops mid-body does). Storage holds such a capture back when it would change
    the stored article (`Article.suspect`)."""
    declared = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
    if declared is not None and declared.strip().isdigit() and len(body) < int(declared):
        return f"{len(body)} of {int(declared)} bytes (Content-Length)"
    if not any(tag in text for tag in _CLOSING_TAGS) and not _CLOSING_TAG.search(text):
        return "no closing </body> or </html>"
    return None


# The usual spellings first (a plain search: a page's text lowered, or searched
# ignoring case, cost half a millisecond a page), then any mix of cases.
_CLOSING_TAGS = ("</body", "</html", "</BODY", "</HTML")
_CLOSING_TAG = re.compile(r"</(?:body|html)", re.IGNORECASE)


def within_bounds(result: Article | Rejection) -> Article | Rejection:
    """`result`, or a ``too_large`` `Rejection` when its title or body is longer than
    `MAX_TITLE_CHARACTERS` / `MAX_BODY_CHARACTERS`."""
    if isinstance(result, Rejection):
        return result
    for name, value, limit in (
        ("title", result.title, MAX_TITLE_CHARACTERS),
        ("body", result.body, MAX_BODY_CHARACTERS),
    ):
        if len(value) > limit:
            detail = f"{name} of {len(value)} characters, over the maximum of {limit}"
            return Rejection(result.site, result.fetched_url, "too_large", detail)
    return result
