"""SKT 뉴스룸 (news.sktelecom.com), formerly SKT Insight (www.sktinsight.com): a
WordPress site with Yoast SEO; what is its own.

Everything WordPress posts share (``/<post id>`` URLs, the paged ``/feed``, the
theme shapes, the signal chains, share buttons) is the profile's,
`news_archive.crawler.cms.wordpress`. SKT 뉴스룸 adds:
- its hosts: the old SKT Insight host names name the same post ids as the newsroom;
- its brands (never authors: ``SKT 뉴스룸`` alone means no author), of which only
  the newsroom's names are stripped from titles (``SK텔레콤`` may begin a title);
- ``/en/...`` (the English edition) is out of scope: its paths name no post id;
- its furniture: the copyright line and the newsletter box.
"""

from __future__ import annotations

from news_archive.crawler.cms.wordpress import FURNITURE, WordPressSite
from news_archive.crawler.extract.site import Furniture


class SktInsight(WordPressSite):
    name = "skt_insight"
    hosts = frozenset({"news.sktelecom.com", "www.sktinsight.com", "sktinsight.com"})
    canonical_host = "news.sktelecom.com"
    sample_article_id = "129639"
    brands = ("SKT 뉴스룸", "SKT Insight", "SKT인사이트", "SK텔레콤")
    title_brands = ("SKT 뉴스룸", "SKT Insight")

    furniture = Furniture(
        exact=FURNITURE.exact,
        prefixes=("Copyright ©", "SKT 뉴스룸 뉴스레터 구독"),
    )
