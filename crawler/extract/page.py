"""The steps every site shares: bytes → parsed page, and picked fields → `Article`.

Site modules sit between the two, choosing signals in their own precedence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lxml import etree
from lxml import html as lxml_html

from news_archive.crawler.extract.decode import DecodeError, decode_html
from news_archive.crawler.extract.metadata import Pick, Signals
from news_archive.vocabulary import Article, BodySource, FeedEntry, Image, Rejection

HTML_TYPES = ("text/html", "application/xhtml+xml")
MIN_BODY_CHARACTERS = 40


@dataclass(frozen=True, slots=True)
class Page:
    """A decoded, parsed HTML page and what is known about it before extraction."""

    site: str
    url: str
    text: str
    encoding: str
    document: lxml_html.HtmlElement
    signals: Signals
    fetched_at: datetime
    feed: FeedEntry | None


def load_page(
    site: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    fetched_at: datetime,
    feed: FeedEntry | None = None,
) -> Page | Rejection:
    """Decode and parse `body`; a `Rejection` says why when that is impossible."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if content_type and not content_type.lower().startswith(HTML_TYPES):
        return Rejection(site, url, "not_html", f"Content-Type {content_type}")
    if not body or body.isspace():  # (not body.strip(): a copy of the page)
        return Rejection(site, url, "empty_page", "empty response body")
    try:
        text, encoding = decode_html(body, headers)
    except DecodeError as error:
        return Rejection(site, url, "undecodable", str(error))
    try:
        document = lxml_html.document_fromstring(text, base_url=url)
    except (etree.ParserError, ValueError) as error:
        return Rejection(site, url, "unparsable", str(error))
    return Page(
        site=site,
        url=url,
        text=text,
        encoding=encoding,
        document=document,
        signals=Signals.from_document(document),
        fetched_at=fetched_at,
        feed=feed,
    )


def assemble(
    page: Page,
    *,
    canonical_url: str,
    title: Pick[str] | None,
    body_lines: list[str],
    body_source: BodySource,
    published: Pick[tuple[datetime, str]] | None,
    modified: Pick[tuple[datetime, str]] | None = None,
    subtitles: tuple[str, ...] = (),
    authors: Pick[tuple[str, ...]] | None = None,
    section: Pick[str] | None = None,
    tags: Pick[tuple[str, ...]] | None = None,
    images: tuple[Image, ...] = (),
    language: str | None = None,
) -> Article | Rejection:
    """Check the required fields and build the `Article`, recording each field's source."""
    if title is None:
        return Rejection(page.site, page.url, "no_title", "no headline in any signal")
    body = "\n".join(body_lines)
    if len(body.replace("\n", "")) < MIN_BODY_CHARACTERS:
        return Rejection(page.site, page.url, "no_body", f"{len(body)} characters of body text")
    if published is None:
        return Rejection(page.site, page.url, "no_date", "no publication date in any signal")
    sources = {"title": title.source, "body": str(body_source), "published_at": published.source}
    for name, pick in (
        ("modified_at", modified),
        ("authors", authors),
        ("section", section),
        ("tags", tags),
    ):
        if pick is not None:
            sources[name] = pick.source
    return Article(
        site=page.site,
        url=canonical_url,
        fetched_url=page.url,
        fetched_at=page.fetched_at,
        title=title.value,
        body=body,
        published_at=published.value[0],
        published_raw=published.value[1],
        subtitles=subtitles,
        authors=authors.value if authors else (),
        modified_at=modified.value[0] if modified else None,
        modified_raw=modified.value[1] if modified else None,
        section=section.value if section else None,
        tags=tags.value if tags else (),
        images=images,
        language=language,
        sources=sources,
    )


def dated(parser: Callable[[str], datetime | None], raw: str | None) -> tuple[datetime, str] | None:
    """``(parsed, raw)`` when `raw` parses with `parser`, else None."""
    parsed = parser(raw) if raw else None
    return (parsed, raw.strip()) if parsed and raw else None


def language_of(page: Page) -> str:
    """The page's language: ``<html lang>``, else ``og:locale``, else Korean."""
    locale = page.signals.meta("og:locale")
    return page.signals.language or (locale.split("_")[0] if locale else "ko")
