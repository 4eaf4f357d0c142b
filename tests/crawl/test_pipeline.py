"""The archive pipeline with a real Scrapy crawler object and a real database:
an article the database refuses is recorded, and the rest of its batch is stored."""

from __future__ import annotations

import dataclasses

from sqlalchemy import create_engine, text

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.pipelines import ArchivePipeline
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.vocabulary import Article
from tests.crawl.crawling import project_crawler
from tests.golden import extract, fixture_pages


def _articles() -> list[Article]:
    pages = [p for p in fixture_pages() if p.path.parent.parent.name == "maeil_ilbo"]
    by_url: dict[str, Article] = {}
    for page in pages:
        result = extract(page)
        if isinstance(result, Article):
            by_url.setdefault(result.url, result)
    return list(by_url.values())


def test_a_refused_article_is_recorded_and_its_batch_is_stored(sqlite_url: str) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=sqlite_url, ARCHIVE_BATCH_SIZE=3)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    pipeline = ArchivePipeline.from_crawler(crawler)
    good = _articles()[:4]
    # A naive datetime is refused by the storage layer's UTC type, for good.
    bad = dataclasses.replace(good[1], published_at=good[1].published_at.replace(tzinfo=None))
    pipeline.open_spider()
    run.spider_opened(crawler.spider)
    for item in (good[0], bad, good[2], good[3]):
        pipeline.process_item(item)
    pipeline.close_spider()
    run.spider_closed(crawler.spider, "finished")
    run.engine_stopped()

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        stored = set(connection.execute(text("SELECT url FROM articles")).scalars())
        errors = connection.execute(text("SELECT url, reason FROM crawl_errors")).all()
        finish = connection.execute(text("SELECT finish_reason FROM crawl_runs")).scalar_one()
    engine.dispose()
    assert stored == {good[0].url, good[2].url, good[3].url}
    assert errors == [(bad.url, "store_failed")]
    assert crawler.stats.get_value("archive/failed/store_failed") == 1
    assert crawler.stats.get_value("archive/stored/new") == 3
    assert finish == "finished"
