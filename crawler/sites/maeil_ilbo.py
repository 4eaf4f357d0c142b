"""매일일보 (www.m-i.kr), a newspaper on the NDSoft CMS: what is its own.

Everything NDSoft pages share (URL rules, the RSS feed, list pages, the V1/V2/V3
templates, the signal chains, the comment widget and share bar) is the profile's,
`news_archive.crawler.cms.ndsoft`. 매일일보 adds its hosts (``www.m-i.kr``, the bare
``m-i.kr`` and the mobile ``m.m-i.kr``), its name, and a live sample article for
``scrapy check``.
"""

from __future__ import annotations

from news_archive.crawler.cms.ndsoft import NDSoftSite


class MaeilIlbo(NDSoftSite):
    name = "maeil_ilbo"
    hosts = frozenset({"www.m-i.kr", "m-i.kr", "m.m-i.kr"})
    canonical_host = "www.m-i.kr"
    sample_article_id = "714398"
    brands = ("매일일보",)
