"""Validate → store. Thin: every SQL statement lives in `storage`.

Articles are written in batches (one transaction each); rejections and fetch
failures go to ``crawl_errors`` and to stats (``archive/rejected/<reason>``,
``archive/failed/<reason>``); each run is a ``crawl_runs`` row.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from crawler.extract.article import AliasSeen, Article, FetchFailure, Rejection
from storage.engine import create_archive_engine, mask_url, upgrade_to_head
from storage.repository import ArchiveRepository, BatchStoreError

logger = logging.getLogger(__name__)

# Settings worth keeping with each run, to explain its figures later.
RECORDED_SETTINGS = (
    "DATABASE_URL",
    "REPLAY_DIR",
    "ARCHIVE_BATCH_SIZE",
    "USER_AGENT",
    "ROBOTSTXT_OBEY",
    "DOWNLOAD_DELAY",
    "AUTOTHROTTLE_ENABLED",
)


# Fields whose fill rate a run reports (``archive/filled/<field>``).
TRACKED_FIELDS = (
    "title",
    "author",
    "published_at",
    "body",
    "subtitle",
    "section",
    "tags",
    "images",
    "modified_at",
)


class ArchivePipeline:
    """Store articles, aliases and problems of one crawl in the archive database."""

    def __init__(self, crawler: Crawler, database_url: str, batch_size: int) -> None:
        self.crawler = crawler
        self.database_url = database_url
        self.batch_size = max(1, batch_size)
        self.articles: list[Article] = []
        self.aliases: list[AliasSeen] = []
        self.problems: list[Rejection | FetchFailure] = []
        self.repository: ArchiveRepository | None = None
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        pipeline = cls(
            crawler,
            crawler.settings.get("DATABASE_URL"),
            crawler.settings.getint("ARCHIVE_BATCH_SIZE", 50),
        )
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    def open_spider(self) -> None:
        engine = create_archive_engine(self.database_url)
        # The first crawl on an empty SQLite file just works: schema to head first.
        upgrade_to_head(engine)
        self.repository = ArchiveRepository(engine)
        settings = {name: self.crawler.settings.get(name) for name in RECORDED_SETTINGS}
        settings["DATABASE_URL"] = mask_url(self.database_url)
        self.run_id = self.repository.start_run(self._spider_name(), settings)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Article):
            self._count_fields(item)
            self.articles.append(item)
            if len(self.articles) >= self.batch_size:
                self.flush()
        elif isinstance(item, AliasSeen):
            self.aliases.append(item)
        elif isinstance(item, Rejection):
            self.stats.inc_value(f"archive/rejected/{item.reason}")
            logger.warning("Rejected %s: %s (%s)", item.url, item.reason, item.detail)
            self.problems.append(item)
        elif isinstance(item, FetchFailure):
            self.stats.inc_value(f"archive/failed/{item.reason}")
            logger.warning("Failed %s: %s (%s)", item.url, item.reason, item.detail)
            self.problems.append(item)
        else:
            raise DropItem(f"not an archive item: {type(item).__name__}")
        return item

    def _count_fields(self, article: Article) -> None:
        """Fill-rate inputs for the health checks: ``archive/extracted``,
        ``archive/filled/<field>`` and ``archive/body_chars``."""
        self.stats.inc_value("archive/extracted")
        self.stats.inc_value("archive/body_chars", len(article.body))
        for field in TRACKED_FIELDS:
            if getattr(article, field):
                self.stats.inc_value(f"archive/filled/{field}")

    def flush(self) -> None:
        """Write what is buffered.

        An article the database refuses for good (a constraint, bad data) is
        recorded in ``crawl_errors`` as ``store_failed`` and the others are kept;
        on a transient error (connection lost, lock timeout) the articles stay
        buffered for the next flush, so a passing outage loses nothing extracted.
        """
        assert self.repository is not None
        now = datetime.now(UTC)
        try:
            if self.articles:
                self._store_articles()
            if self.aliases:
                self.repository.record_aliases(self.aliases, now)
                self.stats.inc_value("archive/aliases", len(self.aliases))
                self.aliases = []
            if self.problems:
                self.repository.record_errors(self.run_id, self._spider_name(), self.problems, now)
                self.problems = []
        except SQLAlchemyError as error:
            self.stats.inc_value("archive/store_error")
            logger.error(
                "Archive write failed, %d articles kept for retry: %s", len(self.articles), error
            )

    def _store_articles(self) -> None:
        assert self.repository is not None
        try:
            outcomes: list[str | None] = list(self.repository.store_articles(self.articles))
            failures: list[tuple[int, BaseException]] = []
        except BatchStoreError as error:
            outcomes, failures = list(error.outcomes), error.failures
        kept: list[Article] = []
        for index, failure in failures:
            article = self.articles[index]
            if isinstance(failure, OperationalError | InterfaceError):
                kept.append(article)
                continue
            self.stats.inc_value("archive/failed/store_failed")
            logger.error("Could not store %s: %s", article.url, failure)
            self.problems.append(
                FetchFailure(article.site, article.url, "store_failed", None, str(failure))
            )
        for article, outcome in zip(self.articles, outcomes, strict=True):
            if outcome is None:
                continue
            self.stats.inc_value(f"archive/stored/{outcome}")
            self.stats.inc_value(f"archive/body_source/{article.sources.get('body')}")
            logger.debug("Stored %s: %s", article.url, outcome)
        self.articles = kept
        if kept:
            self.stats.inc_value("archive/store_error")
            logger.error("%d articles kept for retry after transient errors", len(kept))

    def close_spider(self) -> None:
        self.flush()
        if self.articles:
            # A second failure at close: say loudly what is lost.
            self.stats.inc_value("archive/lost", len(self.articles))
            logger.error(
                "Could not store %d articles: %s",
                len(self.articles),
                ", ".join(a.url for a in self.articles),
            )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.repository is None or self.run_id is None:
            return
        try:
            self.repository.finish_run(
                self.run_id, reason, self.stats.get_stats(), datetime.now(UTC)
            )
        finally:
            self.repository.engine.dispose()

    def _spider_name(self) -> str:
        spider = self.crawler.spider
        return spider.name if spider is not None else "?"
