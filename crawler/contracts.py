"""Contracts for ``scrapy check``, written once for every site.

The callbacks live on the shared `ArchiveSpider`, so their docstrings cannot name a
site's URL; these contracts take it from the spider's site declaration instead:

- ``@site_feed``: the request goes to the site's first feed URL;
- ``@site_article``: the request goes to the site's sample article
  (``Site.sample_article_id`` in its canonical ``article_url``).

With ``REPLAY_DIR=seeds/<site>`` the check runs offline against the seed fixtures.
"""

from __future__ import annotations

from typing import Any

from scrapy.contracts import Contract
from scrapy.exceptions import ContractFail


class SiteFeedContract(Contract):
    """``@site_feed``: fetch the spider's site's first feed."""

    name = "site_feed"

    def adjust_request_args(self, args: dict[str, Any]) -> dict[str, Any]:
        args["url"] = args["callback"].__self__.site.feed_urls[0]
        return args


class SiteArticleContract(Contract):
    """``@site_article``: fetch the spider's site's sample article."""

    name = "site_article"

    def adjust_request_args(self, args: dict[str, Any]) -> dict[str, Any]:
        site = args["callback"].__self__.site
        if site.sample_article_id is None:
            raise ContractFail(f"{site.name} declares no sample_article_id to check against")
        args["url"] = site.article_url.format(id=site.sample_article_id)
        return args
