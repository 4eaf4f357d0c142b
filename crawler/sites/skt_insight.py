"""SKT 뉴스룸 (news.sktelecom.com), formerly SKT Insight (www.sktinsight.com):
a WordPress site with Yoast SEO. Every rule about its pages lives here.

URLs: ``/<post id>`` (``/amp``, trailing slash, the old SKT Insight hosts) →
``https://news.sktelecom.com/<post id>``; not ``/en/...`` (English edition, out of
scope) and not shortlinks ``?p=`` (WordPress also numbers pages and attachments:
those are resolved by following the site's redirect).
Feed: ``/feed``, WordPress RSS 2.0, RFC 822 ``pubDate``, paged with ``?paged=N``
(backfill walks those pages).

Template versions:
- V1: the WordPress theme — ``article.post`` with ``h1.entry-title``,
  ``.entry-content``, ``.cat-links``, ``.tags-links``, ``time.entry-date``. A page
  is V1 when its ``.entry-content`` is found (inside the post element when there is
  one); a page is an article when it has a post element or article metadata.

Precedence, strongest first (the name in ``Article.sources`` in brackets):
- title: ``h1.entry-title`` [markup] → JSON-LD ``headline`` [json-ld] → ``og:title``
  [og:title] → feed [feed] → ``<title>`` [html-title], each without the site's name
  at either end (Yoast appends `` - SKT 뉴스룸``; other themes `` | SKT 뉴스룸``; the
  title brands and the page's ``og:site_name``, crawler/extract/titles.py). Themes
  without ``h1.entry-title`` fall through to JSON-LD and ``og:title``.
- published: JSON-LD ``datePublished`` → ``article:published_time`` →
  ``time.published[datetime]`` [markup] → feed ``pubDate`` [feed] → the visible
  date ``2021. 03. 15``, midnight Korea time [markup-date]
- modified: JSON-LD ``dateModified`` → ``article:modified_time`` → ``time.updated[datetime]``
- authors: ``.byline .author`` [markup] → JSON-LD ``author`` → feed; the brand
  ``SKT 뉴스룸`` alone means no author
- section: the post's ``.cat-links`` [markup] → JSON-LD ``articleSection`` →
  ``article:section`` → feed category
- tags: the post's own ``.tags-links`` [markup] (never the sidebar tag cloud) →
  JSON-LD ``keywords`` → ``article:tag``
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from lxml.cssselect import CSSSelector

from news_archive.crawler.extract.dates import parse_rfc822
from news_archive.crawler.extract.signals import (
    FEED_AUTHORS,
    FEED_PUBLISHED,
    FEED_SECTION,
    FEED_TITLE,
    HTML_TITLE,
    JSON_LD_AUTHORS,
    JSON_LD_HEADLINE,
    JSON_LD_KEYWORDS,
    JSON_LD_MODIFIED,
    JSON_LD_PUBLISHED,
    JSON_LD_SECTION,
    META_MODIFIED,
    META_PUBLISHED,
    META_SECTION,
    META_TAGS,
    OG_TITLE,
    Context,
    markup_bylines,
    markup_iso_date,
    markup_local_date,
    markup_text,
    markup_texts,
    markup_title,
)
from news_archive.crawler.extract.site import Feed, Furniture, Site, Template

# /129639, /129639/, /129639/amp, /129639/amp/
POST_PATH = re.compile(r"^/(\d+)(?:/amp)?/?$")

V1 = Template("V1")  # recognised by its body container, `.entry-content`

POST = CSSSelector("article.post, article[id^=post-]")
TITLE = CSSSelector("h1.entry-title")
BODY = CSSSelector(".entry-content")
CATEGORY = CSSSelector(".cat-links a")
TAGS = CSSSelector(".tags-links a[rel~=tag]")
AUTHOR = CSSSelector(".byline .author")
PUBLISHED_TIME = CSSSelector("time.entry-date.published, time.published")
MODIFIED_TIME = CSSSelector("time.updated")


class SktInsight(Site):
    name = "skt_insight"
    # The old SKT Insight host names the same post ids as the newsroom.
    hosts = frozenset({"news.sktelecom.com", "www.sktinsight.com", "sktinsight.com"})
    article_url = "https://news.sktelecom.com/{id}"
    article_id_name = "post id"
    sample_article_id = "129639"
    feed = Feed(("https://news.sktelecom.com/feed",), parse_date=parse_rfc822)
    brands = ("SKT 뉴스룸", "SKT Insight", "SKT인사이트", "SK텔레콤")
    title_brands = ("SKT 뉴스룸", "SKT Insight")

    templates = (V1,)
    article_element = POST
    containers = (BODY,)
    furniture = Furniture(
        exact=frozenset(
            {"공유하기", "링크 복사", "태그", "관련 기사", "페이스북", "트위터", "카카오톡"}
        ),
        prefixes=("Copyright ©", "SKT 뉴스룸 뉴스레터 구독"),
    )
    not_article_detail = "no post element or article metadata"

    title = (markup_title(TITLE), JSON_LD_HEADLINE, OG_TITLE, FEED_TITLE, HTML_TITLE)
    published = (
        JSON_LD_PUBLISHED,
        META_PUBLISHED,
        markup_iso_date(PUBLISHED_TIME),
        FEED_PUBLISHED,
        # Date only ("2021. 03. 15"): midnight Korea time, the weakest signal.
        markup_local_date(PUBLISHED_TIME, source="markup-date"),
    )
    modified = (JSON_LD_MODIFIED, META_MODIFIED, markup_iso_date(MODIFIED_TIME))
    authors = (markup_bylines(AUTHOR), JSON_LD_AUTHORS, FEED_AUTHORS)
    section = (markup_text(CATEGORY, within="scope"), JSON_LD_SECTION, META_SECTION, FEED_SECTION)
    tags = (markup_texts(TAGS, within="scope"), JSON_LD_KEYWORDS, META_TAGS)

    def article_id(self, parts: SplitResult) -> int | None:
        match = POST_PATH.match(parts.path)
        return int(match.group(1)) if match else None

    def is_article(self, context: Context) -> bool:
        """The theme's post element is the evidence (a page without one may still
        carry ``.entry-content``, e.g. a WordPress page), else article metadata."""
        return context.scope is not context.page.document or context.page.signals.is_article()

    def next_page_url(self, url: str) -> str | None:
        """WordPress pages its feed with ``?paged=N``."""
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["paged"] = str(int(query.get("paged", "1")) + 1)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"
