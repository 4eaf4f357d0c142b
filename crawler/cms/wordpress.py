"""WordPress posts (a newsroom or blog on WordPress, often with Yoast SEO): the
profile every WordPress site is an instance of.

URLs: ``/<post id>`` (``/amp``, trailing slash) on any of the site's hosts →
``https://<canonical host>/<post id>``; not shortlinks ``?p=`` (WordPress also numbers
pages and attachments: those are resolved by following the site's redirect).
Feed: ``/feed``, WordPress RSS 2.0, RFC 822 ``pubDate``, paged with ``?paged=N``
(backfill walks those pages).

Template versions (the post element, ``article.post`` or ``article[id^=post-]``,
scopes the body container when there is one):
- V2 (``post-*`` themes): ``.post-content`` with ``.post-title``, ``.post-author``,
  ``time.post-date``, ``.post-category``, ``.post-tags``.
- V1 (``entry-*`` themes, the WordPress default shapes): ``.entry-content`` with
  ``h1.entry-title``, ``.byline .author``, ``time.entry-date``, ``.cat-links``,
  ``.tags-links``. A page is V1 when its container is found.
A page is an article when it has a post element or article metadata.

Precedence, strongest first (the name in ``Article.sources`` in brackets):
- title: the theme's headline (``h1.entry-title``, ``h1.post-title``) [markup], as
  printed → JSON-LD ``headline`` [json-ld] → ``og:title`` [og:title] → feed [feed] →
  ``<title>`` [html-title], the four last without the site's name at either end
  (Yoast appends `` - <brand>``; other themes `` | <brand>``; the title brands and
  the page's ``og:site_name``, crawler/extract/titles.py). Themes without a headline element
  fall through to JSON-LD and ``og:title``.
- published: JSON-LD ``datePublished`` → ``article:published_time`` →
  ``<time datetime>`` of the post [markup] → feed ``pubDate`` [feed] → the visible
  date ``2021. 03. 15``, midnight in the site's time zone [markup-date]
- modified: JSON-LD ``dateModified`` → ``article:modified_time`` → ``time.updated``
- authors: the theme's author element [markup] → JSON-LD ``author`` → feed; a brand
  alone means no author
- section: the post's category links [markup] → JSON-LD ``articleSection`` →
  ``article:section`` → feed category
- tags: the post's own tag links [markup] (never a sidebar tag cloud) → JSON-LD
  ``keywords`` → ``article:tag``
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import tzinfo
from typing import ClassVar
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from lxml.cssselect import CSSSelector

from news_archive.crawler.cms import CmsSite
from news_archive.crawler.extract.dates import Rfc822Time
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
from news_archive.crawler.extract.site import Feed, Furniture, Template

# /129639, /129639/, /129639/amp, /129639/amp/
POST_PATH = re.compile(r"^/(\d+)(?:/amp)?/?$")
FEED_PATH = "/feed"

V2 = Template("V2", marker=CSSSelector(".post-content"))
V1 = Template("V1")  # recognised by its body container, `.entry-content`

POST = CSSSelector("article.post, article[id^=post-]")
TITLE = CSSSelector("h1.entry-title, h1.post-title")
BODY = CSSSelector(".entry-content")
POST_BODY = CSSSelector(".post-content")
CATEGORY = CSSSelector(".cat-links a, .post-category a")
TAGS = CSSSelector(".tags-links a[rel~=tag], .post-tags a[rel~=tag]")
AUTHOR = CSSSelector(".byline .author, .post-author .author-name")
PUBLISHED_TIME = CSSSelector("time.entry-date.published, time.published, time.post-date")
MODIFIED_TIME = CSSSelector("time.updated")

# Share buttons and the subscription box themes and plugins print into posts.
FURNITURE = Furniture(
    exact=frozenset(
        {"공유하기", "링크 복사", "태그", "관련 기사", "페이스북", "트위터", "카카오톡"}
    )
)


class WordPressSite(CmsSite):
    """A site on WordPress. A site declares (or configures) its name, hosts,
    `canonical_host`, brands and sample post; the rest is here."""

    cms: ClassVar[str] = "wordpress"
    article_id_name = "post id"

    templates = (V2, V1)
    article_element = POST
    containers = (BODY, POST_BODY)
    furniture = FURNITURE
    not_article_detail = "no post element or article metadata"

    title = (markup_title(TITLE), JSON_LD_HEADLINE, OG_TITLE, FEED_TITLE, HTML_TITLE)
    published = (
        JSON_LD_PUBLISHED,
        META_PUBLISHED,
        markup_iso_date(PUBLISHED_TIME),
        FEED_PUBLISHED,
        # Date only ("2021. 03. 15"): midnight local time, the weakest signal.
        markup_local_date(PUBLISHED_TIME, source="markup-date"),
    )
    modified = (JSON_LD_MODIFIED, META_MODIFIED, markup_iso_date(MODIFIED_TIME))
    authors = (markup_bylines(AUTHOR), JSON_LD_AUTHORS, FEED_AUTHORS)
    section = (markup_text(CATEGORY, within="scope"), JSON_LD_SECTION, META_SECTION, FEED_SECTION)
    tags = (markup_texts(TAGS, within="scope"), JSON_LD_KEYWORDS, META_TAGS)

    @classmethod
    def article_url_for(cls, host: str) -> str:
        return f"https://{host}/{{id}}"

    @classmethod
    def default_feed(cls, host: str, time_zone: tzinfo, urls: Iterable[str] | None = None) -> Feed:
        """``/feed``: RFC 822 dates carry their zone; one without (``-0000``) is read
        in `time_zone`."""
        return Feed(
            tuple(urls or (f"https://{host}{FEED_PATH}",)), parse_date=Rfc822Time(time_zone)
        )

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
