"""SKT 뉴스룸 (news.sktelecom.com), formerly SKT Insight (www.sktinsight.com):
a WordPress site with Yoast SEO. Every rule about its pages lives here.

Template versions:
- V1: the WordPress theme — ``article.post`` with ``h1.entry-title``,
  ``.entry-content``, ``.cat-links``, ``.tags-links``, ``time.entry-date``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from lxml.cssselect import CSSSelector

from news_archive.crawler.extract.body import body_lines, figures, text_of, without_furniture
from news_archive.crawler.extract.bylines import byline_names
from news_archive.crawler.extract.dates import parse_iso, parse_korea_local, parse_rfc822
from news_archive.crawler.extract.feeds import feed_entries as read_feed
from news_archive.crawler.extract.metadata import Pick, first, unique
from news_archive.crawler.extract.page import Page, assemble, dated, language_of, load_page
from news_archive.vocabulary import Article, FeedEntry, Rejection

NAME = "skt_insight"
ALLOWED_DOMAINS = ("news.sktelecom.com", "sktinsight.com")
# The old SKT Insight host names the same post ids as the newsroom.
HOSTS = frozenset({"news.sktelecom.com", "www.sktinsight.com", "sktinsight.com"})
FEED_URLS = ("https://news.sktelecom.com/feed",)
BRANDS = ("SKT 뉴스룸", "SKT Insight", "SKT인사이트", "SK텔레콤")
ARTICLE_URL = "https://news.sktelecom.com/{id}"
# /129639, /129639/, /129639/amp, /129639/amp/ ; not /en/... (English edition, out of scope)
POST_PATH = re.compile(r"^/(\d+)(?:/amp)?/?$")

POST = CSSSelector("article.post, article[id^=post-]")
TITLE = CSSSelector("h1.entry-title")
BODY = CSSSelector(".entry-content")
CATEGORY = CSSSelector(".cat-links a")
TAGS = CSSSelector(".tags-links a[rel~=tag]")
AUTHOR = CSSSelector(".byline .author")
PUBLISHED_TIME = CSSSelector("time.entry-date.published, time.published")
MODIFIED_TIME = CSSSelector("time.updated")

FURNITURE_EXACT = frozenset(
    {"공유하기", "링크 복사", "태그", "관련 기사", "페이스북", "트위터", "카카오톡"}
)
FURNITURE_PREFIXES = ("Copyright ©", "SKT 뉴스룸 뉴스레터 구독")


def canonical_url(url: str) -> str | None:
    """``https://news.sktelecom.com/<post id>`` for a post URL on either host, AMP
    included; None for anything else (shortlinks ``?p=`` are resolved by following
    the site's redirect, since WordPress also numbers pages and attachments)."""
    parts = urlsplit(url.strip())
    match = POST_PATH.match(parts.path)
    if parts.hostname not in HOSTS or not match:
        return None
    return ARTICLE_URL.format(id=int(match.group(1)))


def feed_entries(body: bytes, feed_url: str) -> list[FeedEntry]:
    """Entries of the WordPress RSS 2.0 feed (RFC 822 ``pubDate``)."""
    return read_feed(body, feed_url, parse_date=parse_rfc822, brands=BRANDS)


def is_list_url(url: str) -> bool:
    """The site has no HTML list pages we read; its feed pages serve backfill."""
    return False


def backfill_start_urls(sections: tuple[str, ...]) -> list[str]:
    """Backfill walks the feed's own pages, which the default start URL begins."""
    return []


def next_page_url(feed_url: str) -> str | None:
    """WordPress pages its feed with ``?paged=N``."""
    parts = urlsplit(feed_url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["paged"] = str(int(query.get("paged", "1")) + 1)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def extract(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    fetched_at: datetime,
    feed: FeedEntry | None = None,
) -> Article | Rejection:
    """One SKT 뉴스룸 post page → `Article`, or a `Rejection` with its reason."""
    page = load_page(NAME, url, body, headers, fetched_at, feed)
    if isinstance(page, Rejection):
        return page
    canonical = canonical_url(url) or canonical_url(page.signals.canonical or "")
    if canonical is None:
        return Rejection(NAME, url, "not_article", "URL and rel=canonical name no post id")
    posts = POST(page.document)
    scope = posts[0] if posts else page.document
    containers = BODY(scope)
    if not posts and not page.signals.is_article():
        return Rejection(NAME, url, "not_article", "no post element or article metadata")
    if containers:
        lines = body_lines(containers[0], whole_page=False)
        body_source = "V1/container"
        images = figures(containers[0], url)
    else:
        lines = body_lines(page.document, whole_page=True)
        body_source = "unknown/trafilatura-page"
        images = ()
    lines = without_furniture(
        lines,
        exact=FURNITURE_EXACT,
        prefixes=FURNITURE_PREFIXES,
        captions=[image.caption for image in images if image.caption],
    )
    return assemble(
        page,
        canonical_url=canonical,
        title=_title(page),
        body_lines=lines,
        body_source=body_source,
        published=_published(page),
        modified=first(
            ("json-ld", lambda: dated(parse_iso, page.signals.ld_text("dateModified"))),
            (
                "article:modified_time",
                lambda: dated(parse_iso, page.signals.meta("article:modified_time")),
            ),
            ("markup", lambda: dated(parse_iso, _attribute(page, MODIFIED_TIME, "datetime"))),
        ),
        authors=first(
            (
                "markup",
                lambda: tuple(
                    n for a in AUTHOR(page.document) for n in byline_names(text_of(a), BRANDS)
                ),
            ),
            (
                "json-ld",
                lambda: tuple(
                    n for a in page.signals.ld_names("author") for n in byline_names(a, BRANDS)
                ),
            ),
            ("feed", lambda: page.feed.authors if page.feed else ()),
        ),
        section=first(
            ("markup", lambda: text_of(CATEGORY(scope)[0]) if CATEGORY(scope) else None),
            ("json-ld", lambda: page.signals.ld_text("articleSection")),
            ("article:section", lambda: page.signals.meta("article:section")),
            (
                "feed",
                lambda: page.feed.categories[0] if page.feed and page.feed.categories else None,
            ),
        ),
        tags=first(
            # The post's own tag links; never the sidebar tag cloud.
            ("markup", lambda: unique(text_of(a) for a in TAGS(scope))),
            ("json-ld", lambda: unique(page.signals.ld_names("keywords"))),
            ("article:tag", lambda: unique(page.signals.meta_all("article:tag"))),
        ),
        images=images,
        language=language_of(page),
    )


def _title(page: Page) -> Pick[str] | None:
    def strip_brand(title: str | None) -> str | None:
        if not title:
            return None
        return re.sub(r"\s*[-–|]\s*(?:SKT 뉴스룸|SKT Insight)\s*$", "", title) or None

    return first(
        ("json-ld", lambda: page.signals.ld_text("headline")),
        ("markup", lambda: text_of(TITLE(page.document)[0]) if TITLE(page.document) else None),
        ("og:title", lambda: strip_brand(page.signals.meta("og:title"))),
        ("feed", lambda: page.feed.title if page.feed else None),
        ("html-title", lambda: strip_brand(page.signals.html_title)),
    )


def _published(page: Page) -> Pick[tuple[datetime, str]] | None:
    def visible_date() -> tuple[datetime, str] | None:
        found = PUBLISHED_TIME(page.document)
        return dated(parse_korea_local, text_of(found[0])) if found else None

    return first(
        ("json-ld", lambda: dated(parse_iso, page.signals.ld_text("datePublished"))),
        (
            "article:published_time",
            lambda: dated(parse_iso, page.signals.meta("article:published_time")),
        ),
        ("markup", lambda: dated(parse_iso, _attribute(page, PUBLISHED_TIME, "datetime"))),
        (
            "feed",
            lambda: (
                (page.feed.published_at, page.feed.published_raw or "")
                if page.feed and page.feed.published_at
                else None
            ),
        ),
        # Date only ("2021. 03. 15"): midnight Korea time, the weakest signal.
        ("markup-date", visible_date),
    )


def _attribute(page: Page, selector: CSSSelector, name: str) -> str | None:
    found = selector(page.document)
    return found[0].get(name) if found else None
