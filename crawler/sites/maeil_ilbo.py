"""매일일보 (www.m-i.kr), an NDSoft newspaper CMS site: every rule about its pages.

Template versions:
- V1 (older): ``.article-head-title``, ``.article-head-sub``, ``.info-text li`` with
  ``승인 YYYY.MM.DD HH:MM``.
- V2 (newer): ``header h3.heading``, ``h4.subheading``, ``ul.infomation li`` with
  ``입력``/``수정``.
Both keep the body in ``#article-view-content-div`` (``itemprop=articleBody``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from lxml import html as lxml_html
from lxml.cssselect import CSSSelector

from news_archive.crawler.extract.body import (
    body_lines,
    figures,
    lines_of,
    text_of,
    without_furniture,
)
from news_archive.crawler.extract.bylines import byline_names
from news_archive.crawler.extract.dates import parse_iso, parse_korea_local
from news_archive.crawler.extract.feeds import feed_entries as read_feed
from news_archive.crawler.extract.metadata import Pick, first, unique
from news_archive.crawler.extract.page import Page, assemble, dated, language_of, load_page
from news_archive.vocabulary import Article, FeedEntry, Rejection

NAME = "maeil_ilbo"
ALLOWED_DOMAINS = ("m-i.kr",)
HOSTS = frozenset({"www.m-i.kr", "m-i.kr", "m.m-i.kr"})
FEED_URLS = ("https://www.m-i.kr/rss/allArticle.xml",)
BRANDS = ("매일일보",)
ARTICLE_URL = "https://www.m-i.kr/news/articleView.html?idxno={id}"
LIST_URL = "https://www.m-i.kr/news/articleList.html"
# articleView (the article), articleViewAmp (AMP), articlePrint (print view).
ARTICLE_PATHS = frozenset(
    {"/news/articleView.html", "/news/articleViewAmp.html", "/news/articlePrint.html"}
)


@dataclass(frozen=True, slots=True)
class Template:
    """Selectors of one header layout; the body container is shared by all."""

    name: str
    title: CSSSelector
    subtitle: CSSSelector
    info_items: CSSSelector


TEMPLATES = (
    Template(
        "V2",
        CSSSelector("header.article-view-header h3.heading"),
        CSSSelector("header.article-view-header h4.subheading"),
        CSSSelector("ul.infomation li"),
    ),
    Template(
        "V1",
        CSSSelector(".article-head-title"),
        CSSSelector(".article-head-sub"),
        CSSSelector(".info-text li"),
    ),
)

# The element, not the string: the id also appears inside <script> text.
BODY = CSSSelector("#article-view-content-div")
BODY_PREFERRED = CSSSelector("[itemprop=articleBody]#article-view-content-div")
PUBLISHED_LABELS = ("입력", "승인", "등록")
MODIFIED_LABELS = ("수정", "업데이트")
LIST_ITEMS = CSSSelector("#section-list li, .list-block, .type1 > li")
LIST_LINK = CSSSelector("h4.titles a, .list-titles a")
LIST_BYLINE = CSSSelector(".byline em, .list-dated")

FURNITURE_EXACT = frozenset(
    {
        "상태바",
        "이 기사를 공유합니다",
        "댓글삭제",
        "삭제한 댓글은 다시 복구할 수 없습니다.",
        "그래도 삭제하시겠습니까?",
        "댓글쓰기",
        "댓글을 남기실 수 있습니다.",
        "관련기사",
        "다른기사 보기",
        "AD",
    }
)
FURNITURE_PREFIXES = ("저작권자 ©", "저작권자©", "계정을 선택하시면", "댓글 ", "기사제보")
FURNITURE_CONTAINS = ("무단전재 및 재배포 금지",)


def canonical_url(url: str) -> str | None:
    """The archive URL of the article `url` names, or None if it names none.

    AMP and print views, the mobile host, ``http``, extra parameters and
    fragments all map to ``https://www.m-i.kr/news/articleView.html?idxno=<id>``.
    """
    parts = urlsplit(url.strip())
    if parts.hostname not in HOSTS or parts.path not in ARTICLE_PATHS:
        return None
    ids = parse_qs(parts.query).get("idxno", [])
    if len(ids) != 1 or not ids[0].isdigit():
        return None
    return ARTICLE_URL.format(id=int(ids[0]))


def feed_entries(body: bytes, feed_url: str) -> list[FeedEntry]:
    """Entries of an NDSoft RSS feed; ``pubDate`` is Korea time without a zone."""
    return read_feed(body, feed_url, parse_date=parse_korea_local, brands=BRANDS)


def list_url(page: int, section: str | None = None) -> str:
    """A section list page (``view_type=sm``), newest first; all sections when None."""
    query = {"sc_section_code": section} if section else {}
    query |= {"view_type": "sm", "page": str(page)}
    return f"{LIST_URL}?{urlencode(query)}"


def is_list_url(url: str) -> bool:
    return urlsplit(url).path == "/news/articleList.html"


def list_entries(text: str, list_page_url: str) -> list[FeedEntry]:
    """Items of a section list page: link, title, and the date of the byline line."""
    document = lxml_html.document_fromstring(text)
    entries = []
    for item in LIST_ITEMS(document):
        links = LIST_LINK(item)
        if not links or not links[0].get("href"):
            continue
        byline = [text_of(em) for em in LIST_BYLINE(item)]
        raw_date = next((t for t in byline if parse_korea_local(t)), None)
        entries.append(
            FeedEntry(
                url=urljoin(list_page_url, links[0].get("href", "")),
                title=text_of(links[0]) or None,
                published_at=parse_korea_local(raw_date),
                published_raw=raw_date,
                authors=tuple(n for t in byline for n in byline_names(t, BRANDS) if "기자" in t),
            )
        )
    return entries


def next_page_url(list_page_url: str) -> str | None:
    """The following page of the same section list (the RSS feed is not paged)."""
    if not is_list_url(list_page_url):
        return None
    query = {k: v[0] for k, v in parse_qs(urlsplit(list_page_url).query).items()}
    return list_url(int(query.get("page", "1")) + 1, query.get("sc_section_code"))


def backfill_start_urls(sections: tuple[str, ...]) -> list[str]:
    """First list page of each section code (``S1N1``...), or of all articles."""
    return [list_url(1, section) for section in sections] or [list_url(1)]


def extract(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    fetched_at: datetime,
    feed: FeedEntry | None = None,
) -> Article | Rejection:
    """One 매일일보 article page → `Article`, or a `Rejection` with its reason."""
    page = load_page(NAME, url, body, headers, fetched_at, feed)
    if isinstance(page, Rejection):
        return page
    canonical = canonical_url(url) or canonical_url(page.signals.canonical or "")
    if canonical is None:
        return Rejection(NAME, url, "not_article", "URL and rel=canonical name no idxno")
    template = next((t for t in TEMPLATES if t.title(page.document)), None)
    containers = BODY_PREFERRED(page.document) or BODY(page.document)
    if not containers and template is None and not page.signals.is_article():
        return Rejection(NAME, url, "not_article", "no article header, body or article metadata")

    subtitles = tuple(
        line
        for element in (template.subtitle(page.document) if template else [])
        for line in lines_of(element)
    )
    info = [text_of(li) for li in template.info_items(page.document)] if template else []
    if containers:
        lines = body_lines(containers[0], whole_page=False)
        body_source = "container"
        images = figures(containers[0], url)
    else:
        # Unknown layout: trafilatura on the whole page; the health checks watch this source.
        lines = body_lines(page.document, whole_page=True)
        body_source = "trafilatura-page"
        images = ()
    lines = without_furniture(
        lines,
        exact=FURNITURE_EXACT,
        prefixes=FURNITURE_PREFIXES,
        contains=FURNITURE_CONTAINS,
        captions=[image.caption for image in images if image.caption],
        subtitles=subtitles,
    )
    return assemble(
        page,
        canonical_url=canonical,
        title=_title(page, template),
        body_lines=lines,
        body_source=f"{template.name if template else 'unknown'}/{body_source}",
        published=_published(page, info),
        modified=_modified(page, info),
        subtitles=subtitles,
        authors=_authors(page, info),
        section=first(
            ("article:section", lambda: page.signals.meta("article:section")),
            ("json-ld", lambda: page.signals.ld_text("articleSection")),
            (
                "feed",
                lambda: page.feed.categories[0] if page.feed and page.feed.categories else None,
            ),
        ),
        tags=first(
            ("json-ld", lambda: unique(page.signals.ld_names("keywords"))),
            (
                "news_keywords",
                lambda: unique((page.signals.meta("news_keywords") or "").split(",")),
            ),
        ),
        images=images,
        language=language_of(page),
    )


def _title(page: Page, template: Template | None) -> Pick[str] | None:
    def markup() -> str | None:
        found = template.title(page.document) if template else []
        return text_of(found[0]) if found else None

    def html_title() -> str | None:
        title = page.signals.html_title or ""
        return re.sub(r"\s*[-|]\s*매일일보\s*$", "", title) or None

    return first(
        ("json-ld", lambda: page.signals.ld_text("headline")),
        ("og:title", lambda: page.signals.meta("og:title")),
        ("markup", markup),
        ("feed", lambda: page.feed.title if page.feed else None),
        ("html-title", html_title),
    )


def _labelled(info: list[str], labels: tuple[str, ...]) -> str | None:
    """The date in an info line that starts with one of `labels` (``승인 2020.06.21 09:00``)."""
    for line in info:
        if line.startswith(labels) and parse_korea_local(line):
            return line
    return None


def _published(page: Page, info: list[str]) -> Pick[tuple[datetime, str]] | None:
    return first(
        ("json-ld", lambda: dated(parse_iso, page.signals.ld_text("datePublished"))),
        (
            "article:published_time",
            lambda: dated(parse_iso, page.signals.meta("article:published_time")),
        ),
        ("markup", lambda: dated(parse_korea_local, _labelled(info, PUBLISHED_LABELS))),
        (
            "feed",
            lambda: (
                (page.feed.published_at, page.feed.published_raw or "")
                if page.feed and page.feed.published_at
                else None
            ),
        ),
    )


def _modified(page: Page, info: list[str]) -> Pick[tuple[datetime, str]] | None:
    return first(
        ("json-ld", lambda: dated(parse_iso, page.signals.ld_text("dateModified"))),
        (
            "article:modified_time",
            lambda: dated(parse_iso, page.signals.meta("article:modified_time")),
        ),
        ("markup", lambda: dated(parse_korea_local, _labelled(info, MODIFIED_LABELS))),
    )


def _authors(page: Page, info: list[str]) -> Pick[tuple[str, ...]] | None:
    def markup() -> tuple[str, ...]:
        bylines = [line for line in info if "기자" in line and not parse_korea_local(line)]
        return tuple(name for line in bylines for name in byline_names(line, BRANDS))

    return first(
        ("markup", markup),
        (
            "json-ld",
            lambda: tuple(
                n for a in page.signals.ld_names("author") for n in byline_names(a, BRANDS)
            ),
        ),
        ("feed", lambda: page.feed.authors if page.feed else ()),
        ("meta-author", lambda: byline_names(page.signals.meta("author"), BRANDS)),
    )
