"""매일일보 (www.m-i.kr), an NDSoft newspaper CMS site: every rule about its pages.

URLs: ``/news/articleView.html?idxno=<id>`` (also ``articleViewAmp``, ``articlePrint``,
``m.m-i.kr``, ``http``, extra parameters) → ``https://www.m-i.kr/news/articleView.html?idxno=<id>``.
Feed: ``/rss/allArticle.xml``, NDSoft RSS, ``pubDate`` ``YYYY-MM-DD HH:MM:SS`` Korea time
without a zone. Backfill walks the section list pages ``/news/articleList.html``.

Template versions (the body is ``#article-view-content-div`` in both, preferably the
one marked ``itemprop=articleBody``, since the id also appears inside scripts):
- V1 (older): ``.article-head-title``, ``.article-head-sub``, ``.info-text li`` with
  ``승인 YYYY.MM.DD HH:MM``.
- V2 (newer): ``header h3.heading``, ``h4.subheading``, ``ul.infomation li`` with
  ``입력``/``수정``.
- V0 (oldest skin): ``div#article-view-content-div.view_con``, no headline element
  and no info items (title, date and author from the metas).

Precedence, strongest first (the name in ``Article.sources`` in brackets):
- title: the template's headline element [markup] → JSON-LD ``headline`` [json-ld] →
  ``og:title`` [og:title] → feed entry [feed] → ``<title>`` [html-title], each without
  the site's name at either end (`` - 매일일보``, ``| 매일일보``, ``[매일일보]``; the
  brands and the page's ``og:site_name``, crawler/extract/titles.py). Older pages
  without a headline element fall through to JSON-LD, ``og:title`` and ``<title>``.
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

from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from lxml import html as lxml_html
from lxml.cssselect import CSSSelector

from news_archive.crawler.extract.body import text_of
from news_archive.crawler.extract.bylines import byline_names
from news_archive.crawler.extract.dates import parse_korea_local
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
from news_archive.crawler.extract.site import Feed, Furniture, Site, Template
from news_archive.vocabulary import FeedEntry

LIST_URL = "https://www.m-i.kr/news/articleList.html"
# articleView (the article), articleViewAmp (AMP), articlePrint (print view).
ARTICLE_PATHS = frozenset(
    {"/news/articleView.html", "/news/articleViewAmp.html", "/news/articlePrint.html"}
)

V1 = Template(
    "V1",
    marker=CSSSelector(".article-head-title"),
    title=CSSSelector(".article-head-title"),
    subtitle=CSSSelector(".article-head-sub"),
    info=CSSSelector(".info-text li"),
)
# The older skin: no headline element at all (the title is only in ``og:title`` and
# ``<title>``), the body a ``div.view_con``, often ``<br>``-separated text.
V0 = Template("V0", marker=CSSSelector("#article-view-content-div.view_con"))
V2 = Template(
    "V2",
    marker=CSSSelector("header.article-view-header h3.heading"),
    title=CSSSelector("header.article-view-header h3.heading"),
    subtitle=CSSSelector("header.article-view-header h4.subheading"),
    info=CSSSelector("ul.infomation li"),
)

# The element, not the string: the id also appears inside <script> text.
BODY_PREFERRED = CSSSelector("[itemprop=articleBody]#article-view-content-div")
BODY = CSSSelector("#article-view-content-div")
PUBLISHED_LABELS = ("입력", "승인", "등록")
MODIFIED_LABELS = ("수정", "업데이트")
LIST_ITEMS = CSSSelector("#section-list li, .list-block, .type1 > li")
LIST_LINK = CSSSelector("h4.titles a, .list-titles a")
LIST_BYLINE = CSSSelector(".byline em, .list-dated")


class MaeilIlbo(Site):
    name = "maeil_ilbo"
    hosts = frozenset({"www.m-i.kr", "m-i.kr", "m.m-i.kr"})
    article_url = "https://www.m-i.kr/news/articleView.html?idxno={id}"
    article_id_name = "idxno"
    sample_article_id = "714398"
    feed = Feed(("https://www.m-i.kr/rss/allArticle.xml",), parse_date=parse_korea_local)
    brands = ("매일일보",)

    templates = (V2, V1, V0)
    containers = (BODY_PREFERRED, BODY)
    furniture = Furniture(
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

    title = (TEMPLATE_TITLE, JSON_LD_HEADLINE, OG_TITLE, FEED_TITLE, HTML_TITLE)
    published = (JSON_LD_PUBLISHED, META_PUBLISHED, info_date(PUBLISHED_LABELS), FEED_PUBLISHED)
    modified = (JSON_LD_MODIFIED, META_MODIFIED, info_date(MODIFIED_LABELS))
    authors = (INFO_BYLINES, JSON_LD_AUTHORS, FEED_AUTHORS, META_AUTHOR)
    section = (META_SECTION, JSON_LD_SECTION, FEED_SECTION)
    tags = (JSON_LD_KEYWORDS, NEWS_KEYWORDS)

    def article_id(self, parts: SplitResult) -> int | None:
        """The single numeric ``idxno`` of an article, AMP or print view."""
        if parts.path not in ARTICLE_PATHS:
            return None
        ids = parse_qs(parts.query).get("idxno", [])
        return int(ids[0]) if len(ids) == 1 and ids[0].isdigit() else None

    def is_list_url(self, url: str) -> bool:
        return urlsplit(url).path == "/news/articleList.html"

    def list_entries(self, text: str, list_page_url: str) -> list[FeedEntry]:
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
                    url=absolute_link(list_page_url, links[0].get("href", "")),
                    title=text_of(links[0]) or None,
                    published_at=parse_korea_local(raw_date),
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
        return list_url(int(query.get("page", "1")) + 1, query.get("sc_section_code"))

    def backfill_start_urls(self, sections: tuple[str, ...]) -> list[str]:
        """First list page of each section code (``S1N1``...), or of all articles."""
        return [list_url(1, section) for section in sections] or [list_url(1)]


def list_url(page: int, section: str | None = None) -> str:
    """A section list page (``view_type=sm``), newest first; all sections when None."""
    query = {"sc_section_code": section} if section else {}
    query |= {"view_type": "sm", "page": str(page)}
    return f"{LIST_URL}?{urlencode(query)}"
