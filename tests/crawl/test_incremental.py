"""Incremental scheduled runs: what a second run fetches, conditional revisits
answered 304, and backfill stopping at what an earlier run archived.

One real second run (``scrapy crawl`` twice: the default schedule, robots.txt and
the feed as a process sees them) and the seed archive's day 2; the rules
themselves in-process, the spider, the incremental middleware and the pipeline
driven by hand over the seed pages (`HandCrawl`), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from news_archive.crawler.schedule import DEFAULT_SCHEDULE, next_visit, parse_schedule
from news_archive.crawler.spiders.base import ArchiveSpider
from news_archive.crawler.spiders.sites import MaeilIlboSpider, SktInsightSpider
from tests.conftest import SeedArchive
from tests.crawl.crawling import SEEDS, HandCrawl, crawl, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"


# --- a real second run (the process is the point: the default schedule, robots, feed) ---


def test_second_run_over_unchanged_pages_fetches_only_the_feed(database_url: str) -> None:
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", database_url)
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", database_url)
    runs = snapshot(database_url).runs
    first, second = runs[0]["stats"], runs[1]["stats"]
    assert first["downloader/request_count"] >= 10
    # robots.txt and the feed; every article is known and not yet due
    assert second["downloader/request_count"] == 2
    assert second["archive/listing/pages"] == 1
    assert second["archive/skipped/not_due"] == 9
    assert "archive/stored/new" not in second


def test_http_errors_of_a_real_crawl_are_scheduled_for_a_retry(seed_archive: SeedArchive) -> None:
    """An HTTP error reaches the spider's errback, not its callback; the incremental
    middleware still schedules the URL: a 404 a day later, a 500 within the hour."""
    engine = create_engine(seed_archive.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT url, last_status, last_visit_at, next_visit_at FROM url_state "
                    "WHERE last_status >= 400 ORDER BY url"
                )
            ).all()
    finally:
        engine.dispose()
    retries = {url: (status, _utc(due) - _utc(visited)) for url, status, visited, due in rows}
    assert retries[MAEIL.format(800106)] == (404, timedelta(days=1))
    assert retries[MAEIL.format(800107)] == (500, timedelta(hours=1))


def _utc(moment: datetime | str) -> datetime:
    """A timestamp as either backend returns it through plain SQL, as aware UTC."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_an_edited_page_answers_200_to_its_conditional_revisit(seed_archive: SeedArchive) -> None:
    # The seed archive's day 2: every article due, so each is asked conditionally.
    (stats,) = [
        run["stats"] for run in seed_archive.day2.runs[-2:] if run["spider"] == "maeil_ilbo"
    ]
    assert stats["archive/stored/changed"] == 1  # 800101: new ETag, new text
    assert stats["archive/stored/new"] == 1  # 800108
    # 800103 has a new ETag but only whitespace changed: fetched, stored unchanged
    assert stats["archive/stored/unchanged"] == 3 + 1
    assert stats["archive/not_modified"] == 3


# --- the rules, in-process (the spider, the middleware and the pipeline by hand) ------


@pytest.mark.parametrize(("spidercls", "articles"), [(MaeilIlboSpider, 9), (SktInsightSpider, 9)])
def test_a_second_run_skips_every_article_of_the_feed_that_is_not_due(
    database_url: str, spidercls: type[ArchiveSpider], articles: int
) -> None:
    replay_dir = SEEDS / spidercls.name
    with HandCrawl(spidercls, replay_dir, database_url) as first:
        first.crawl(first.start())
    assert first.stats.get_value("archive/stored/new", 0) >= 5
    with HandCrawl(spidercls, replay_dir, database_url) as second:
        second.crawl(second.start())
    assert len(second.fetched) == 1  # the feed
    assert second.stats.get_value("archive/skipped/not_due") == articles
    assert second.stats.get_value("archive/revisits/due") == 0
    assert second.stats.get_value("archive/stored/new") is None


def test_due_revisits_are_conditional_and_a_304_counts_as_unchanged(database_url: str) -> None:
    # Articles older than 30 days are due again at once; newer ones in a day.
    schedule = "30d=1d,*=0s"
    replay_dir = SEEDS / "maeil_ilbo"
    with HandCrawl(MaeilIlboSpider, replay_dir, database_url, REVISIT_SCHEDULE=schedule) as run:
        run.crawl(run.start())
    with HandCrawl(MaeilIlboSpider, replay_dir, database_url, REVISIT_SCHEDULE=schedule) as run:
        output = run.start()
        due = [request for request in output if request.url == MAEIL.format(714398)]
        run.crawl(output)
    # the feed, and the 2020 seed article asked with If-None-Match
    assert run.fetched == ["https://www.m-i.kr/rss/allArticle.xml", MAEIL.format(714398)]
    assert due and due[-1].headers.get("If-None-Match")
    second = run.stats.get_stats()
    assert second["archive/revisits/due"] == 1
    assert second["archive/revisits/conditional"] == 1
    assert second["replay/not_modified"] == 1
    assert second["archive/stored/unchanged"] == second["archive/not_modified"] == 1
    archive = snapshot(database_url)
    assert archive.versions[MAEIL.format(714398)] == 1
    seed = archive.articles[MAEIL.format(714398)]
    assert str(seed["last_seen_at"]) > str(seed["first_seen_at"])


def _backfill_after_a_feed_run(database_url: str, **arguments: str) -> HandCrawl:
    replay_dir = SEEDS / "maeil_ilbo"
    with HandCrawl(MaeilIlboSpider, replay_dir, database_url) as run:
        run.crawl(run.start())
    backfill = {"since": "2020-06-01", **arguments}
    with HandCrawl(MaeilIlboSpider, replay_dir, database_url, backfill) as run:
        run.crawl(run.start())
    return run


def test_backfill_stops_at_articles_archived_by_an_earlier_run(database_url: str) -> None:
    run = _backfill_after_a_feed_run(database_url)
    # list page 1 lists only archived articles: paging stops there
    assert run.stats.get_value("archive/listing/pages") == 2
    assert run.stats.get_value("archive/backfill/stopped_at_archived") == 1
    assert not any("page=2" in url for url in run.fetched)
    assert MAEIL.format(714001) not in snapshot(database_url).articles


def test_backfill_goes_past_archived_articles_when_asked(database_url: str) -> None:
    run = _backfill_after_a_feed_run(database_url, past_archived="1")
    # the feed and list pages 1-3; page 3 reaches 2020-05 items: no page 4
    assert run.stats.get_value("archive/listing/pages") == 4
    assert run.stats.get_value("archive/backfill/stopped_at_archived") is None
    assert MAEIL.format(714001) in snapshot(database_url).articles


def test_the_schedule_decays_with_age() -> None:
    schedule = parse_schedule(DEFAULT_SCHEDULE)
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert next_visit(now - timedelta(hours=2), now, schedule) == now + timedelta(hours=3)
    assert next_visit(now - timedelta(days=3), now, schedule) == now + timedelta(days=1)
    assert next_visit(now - timedelta(days=20), now, schedule) == now + timedelta(days=7)
    assert next_visit(now - timedelta(days=400), now, schedule) == now + timedelta(days=90)
    assert next_visit(None, now, schedule) == now + timedelta(days=1)
    assert next_visit(now, now, schedule, status=503) == now + timedelta(hours=1)
    assert next_visit(now, now, schedule, status=404) == now + timedelta(days=1)


@pytest.mark.parametrize("text", ["", "1d", "1d=3x", "x=1d", "1d=3h,"])
def test_bad_schedules_are_errors(text: str) -> None:
    if text == "1d=3h,":
        assert parse_schedule(text)[0].interval == timedelta(hours=3)
        return
    with pytest.raises(ValueError):
        parse_schedule(text)
