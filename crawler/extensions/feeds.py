"""Feed exports of articles only: ``scrapy crawl SPIDER -O articles.jsonl``.

The spider and the incremental middleware also yield bookkeeping records (aliases,
rejections, fetch failures, visits) that the archive pipeline stores; they are
items to Scrapy, but not what a user exporting a crawl asks for. This is Scrapy's
`FeedExporter` with one change: a feed that names no ``item_classes`` and no
``item_filter`` of its own gets ``item_classes = [Article]``. A feed that does
(``FEEDS = {"all.jsonl": {"format": "jsonlines", "item_classes": [...]}}``) keeps
its own choice.
"""

from __future__ import annotations

from typing import Any

from scrapy.extensions.feedexport import FeedExporter, ItemFilter

from news_archive.vocabulary import Article


class ArticleFeedExporter(FeedExporter):
    """Scrapy's feed exporter; feeds export `Article` items unless told otherwise."""

    def _load_filter(self, feed_options: dict[str, Any]) -> ItemFilter:
        if "item_classes" not in feed_options and "item_filter" not in feed_options:
            feed_options = {**feed_options, "item_classes": [Article]}
        return super()._load_filter(feed_options)
