"""The NDSoft newspaper CMS (Korean papers: ``/news/articleView.html?idxno=N``): the
profile every NDSoft site is an instance of.

URLs: ``/news/articleView.html?idxno=<id>`` (also ``articleViewAmp``, ``articlePrint``,
any of the site's hosts incl. the mobile one, ``http``, extra parameters) →
``https://<canonical host>/news/articleView.html?idxno=<id>``.
Feed: ``/rss/allArticle.xml``, NDSoft RSS, ``pubDate`` ``YYYY-MM-DD HH:MM:SS`` in the
site's time zone without a zone. Backfill walks the section list pages
``/news/articleList.html`` (``sc_section_code``, ``view_type=sm``, ``page``).

Template versions (the body is ``#article-view-content-div`` in all, preferably the
one marked ``itemprop=articleBody``, since the id also appears inside scripts):
- V1 (older): ``.article-head-title``, ``.article-head-sub``, ``.info-text li`` with
  ``승인 YYYY.MM.DD HH:MM``.
- V2 (newer): ``header.article-view-header h3.heading``, ``h4.subheading``,
  ``ul.infomation li`` with ``입력``/``수정``.
- V3 (the responsive skin): ``.article-view-head`` holding ``h1.titles``,
  ``h2.sub-titles`` and ``ul.infos li`` (``입력``/``수정``/``기자``).
- V0 (oldest skin): ``div#article-view-content-div.view_con``, no headline element
  and no info items (title, date and author from the metas).

Precedence, strongest first (the name in ``Article.sources`` in brackets):
- title: the template's headline element [markup], as printed → JSON-LD ``headline``
  [json-ld] → ``og:title`` [og:title] → feed entry [feed] → ``<title>`` [html-title],
  the four last without the site's name at either end (`` - 매일일보``,
  ``| 매일일보``, ``[매일일보]``; the brands and the page's ``og:site_name``,
  crawler/extract/titles.py). Older pages without a headline element fall through
  to JSON-LD, ``og:title`` and ``<title>``.
- published: JSON-LD ``datePublished`` [json-ld] → ``article:published_time`` →
  info item ``입력``/``승인``/``등록`` [markup] → feed ``pubDate`` [feed]; never ``수정``
- modified: JSON-LD ``dateModified`` → ``article:modified_time`` → info ``수정``/``업데이트``
- authors: info items with ``기자`` [markup] (JSON-LD names the brand more often than the
  reporter) → JSON-LD ``author`` → feed → ``<meta name=author>`` [meta-author]
- section: ``article:section`` → JSON-LD ``articleSection`` → feed category
- tags: JSON-LD ``keywords`` → ``<meta name=news_keywords>`` [news_keywords]
- subtitles: the template's subheading lines, then subtitle elements anywhere in the
  body container (``h2.subheading``, ``.subtitle``, 부제...), kept out of the body
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import ClassVar
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from lxml import html as lxml_html
from lxml.cssselect import CSSSelector

from news_archive.crawler.cms import CmsSite
from news_archive.crawler.extract.body import text_of
from news_archive.crawler.extract.bylines import byline_names
from news_archive.crawler.extract.dates import LocalTime, parse_local
from news_archive.crawler.extract.feeds import absolute_link
from news_archive.crawler.extract.signals import (
    FEED_AUTHORS,
    FEED_PUBLISHED,
    FEED_SECTION,
    FEED_TITLE,
    HTML_TITLE,
    INFO_BYLINES,
    JSON_LD_AUTHORS,
    JSON_LD_HEADLINE,
    JSON_LD_KEYWORDS,
    JSON_LD_MODIFIED,
    JSON_LD_PUBLISHED,
    JSON_LD_SECTION,
    META_AUTHOR,
    META_MODIFIED,
    META_PUBLISHED,
    META_SECTION,
    NEWS_KEYWORDS,
    OG_TITLE,
    TEMPLATE_TITLE,
    info_date,
)
from news_archive.crawler.extract.site import Feed, Furniture, Template
from news_archive.vocabulary import FeedEntry

ARTICLE_PATH = "/news/articleView.html"
LIST_PATH = "/news/articleList.html"
FEED_PATH = "/rss/allArticle.xml"
# articleView (the article), articleViewAmp (AMP), articlePrint (print view).
ARTICLE_PATHS = frozenset({ARTICLE_PATH, "/news/articleViewAmp.html", "/news/articlePrint.html"})

V1 = Template(
    "V1",
    marker=CSSSelector(".article-head-title"),
    title=CSSSelector(".article-head-title"),
    subtitle=CSSSelector(".article-head-sub"),
    info=CSSSelector(".info-text li"),
)
V2 = Template(
    "V2",
    marker=CSSSelector("header.article-view-header h3.heading"),
    title=CSSSelector("header.article-view-header h3.heading"),
    subtitle=CSSSelector("header.article-view-header h4.subheading"),
    info=CSSSelector("ul.infomation li"),
)
# The older skin: no headline element at all (the title is only in ``og:title`` and
# ``<title>``), the body a ``div.view_con``, often ``<br>``-separated text.
V0 = Template("V0", marker=CSSSelector("#article-view-content-div.view_con"))
# Recognised by its header block, so that a page of it without a headline element
# is still V3 (its info items give date and byline).
V3 = Template(
    "V3",
    marker=CSSSelector(".article-view-head"),
    title=CSSSelector(".article-view-head .titles"),
    subtitle=CSSSelector(".article-view-head .sub-titles"),
    info=CSSSelector(".article-view-head ul.infos li"),
)

# The element, not the string: the id also appears inside <script> text.
BODY_PREFERRED = CSSSelector("[itemprop=articleBody]#article-view-content-div")
BODY = CSSSelector("#article-view-content-div")
PUBLISHED_LABELS = ("입력", "승인", "등록")
MODIFIED_LABELS = ("수정", "업데이트")
LIST_ITEMS = CSSSelector("#section-list li, .list-block, .type1 > li")
LIST_LINK = CSSSelector("h4.titles a, .list-titles a")
LIST_BYLINE = CSSSelector(".byline em, .list-dated")

# What every NDSoft skin prints around and inside the body container: the share bar,
# the comment widget, the copyright line, related-article headings.
FURNITURE = Furniture(
    exact=frozenset(
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
    ),
    prefixes=("저작권자 ©", "저작권자©", "계정을 선택하시면", "댓글 ", "기사제보"),
    contains=("무단전재 및 재배포 금지",),
)


class NDSoftSite(CmsSite):
    """A newspaper on the NDSoft CMS. A site declares (or configures) its name,
    hosts, `canonical_host`, brands and sample article; the rest is here."""

    cms: ClassVar[str] = "ndsoft"
    article_id_name = "idxno"

    templates = (V2, V1, V0, V3)
    containers = (BODY_PREFERRED, BODY)
    furniture = FURNITURE

    title = (TEMPLATE_TITLE, JSON_LD_HEADLINE, OG_TITLE, FEED_TITLE, HTML_TITLE)
    published = (JSON_LD_PUBLISHED, META_PUBLISHED, info_date(PUBLISHED_LABELS), FEED_PUBLISHED)
    modified = (JSON_LD_MODIFIED, META_MODIFIED, info_date(MODIFIED_LABELS))
    authors = (INFO_BYLINES, JSON_LD_AUTHORS, FEED_AUTHORS, META_AUTHOR)
    section = (META_SECTION, JSON_LD_SECTION, FEED_SECTION)
    tags = (JSON_LD_KEYWORDS, NEWS_KEYWORDS)

    @classmethod
    def article_url_for(cls, host: str) -> str:
        return f"https://{host}{ARTICLE_PATH}?idxno={{id}}"

    @classmethod
    def default_feed(cls, host: str, time_zone: tzinfo, urls: Iterable[str] | None = None) -> Feed:
        """``/rss/allArticle.xml``; its ``pubDate`` is local time without a zone."""
        return Feed(tuple(urls or (f"https://{host}{FEED_PATH}",)), parse_date=LocalTime(time_zone))

    def article_id(self, parts: SplitResult) -> int | None:
        """The single numeric ``idxno`` of an article, AMP or print view."""
        if parts.path not in ARTICLE_PATHS:
            return None
        ids = parse_qs(parts.query).get("idxno", [])
        return int(ids[0]) if len(ids) == 1 and ids[0].isdigit() else None

    def is_list_url(self, url: str) -> bool:
        return urlsplit(url).path == LIST_PATH

    def list_entries(self, text: str, list_page_url: str) -> list[FeedEntry]:
        """Items of a section list page: link, title, and the date of the byline line."""
        document = lxml_html.document_fromstring(text)
        entries = []
        for item in LIST_ITEMS(document):
            links = LIST_LINK(item)
            if not links or not links[0].get("href"):
                continue
            byline = [text_of(em) for em in LIST_BYLINE(item)]
            raw_date = next((t for t in byline if parse_local(t, self.time_zone)), None)
            entries.append(
                FeedEntry(
                    url=absolute_link(list_page_url, links[0].get("href", "")),
                    title=text_of(links[0]) or None,
                    published_at=parse_local(raw_date, self.time_zone),
                    published_raw=raw_date,
                    authors=tuple(
                        n for t in byline for n in byline_names(t, self.brands) if "기자" in t
                    ),
                )
            )
        return entries

    def next_page_url(self, url: str) -> str | None:
        """The following page of the same section list (the RSS feed is not paged)."""
        if not self.is_list_url(url):
            return None
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        return self.list_url(int(query.get("page", "1")) + 1, query.get("sc_section_code"))

    def backfill_start_urls(self, sections: tuple[str, ...]) -> list[str]:
        """First list page of each section code (``S1N1``...), or of all articles."""
        return [self.list_url(1, section) for section in sections] or [self.list_url(1)]

    def list_url(self, page: int, section: str | None = None) -> str:
        """A section list page (``view_type=sm``) on the canonical host, newest first;
        all sections when None."""
        query = {"sc_section_code": section} if section else {}
        query |= {"view_type": "sm", "page": str(page)}
        return f"https://{self.canonical_host}{LIST_PATH}?{urlencode(query)}"
