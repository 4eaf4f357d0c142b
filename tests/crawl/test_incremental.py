"""Incremental scheduled runs on real crawls: what a second run fetches, conditional
revisits answered 304, and backfill stopping at what an earlier run archived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from news_archive.crawler.schedule import DEFAULT_SCHEDULE, next_visit, parse_schedule
from tests.crawl.crawling import SEEDS, crawl, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"


@pytest.mark.parametrize("spider", ["maeil_ilbo", "skt_insight"])
def test_second_run_over_unchanged_pages_fetches_only_the_feed(
    database_url: str, spider: str
) -> None:
    crawl(spider, SEEDS / spider, database_url)
    crawl(spider, SEEDS / spider, database_url)
    runs = snapshot(database_url).runs
    first, second = runs[0]["stats"], runs[1]["stats"]
    assert first["downloader/request_count"] >= 10
    # robots.txt and the feed; every article is known and not yet due
    assert second["downloader/request_count"] == 2
    assert second["archive/listing/pages"] == 1
    assert second["archive/skipped/not_due"] == 9
    assert "archive/stored/new" not in second


def test_due_revisits_are_conditional_and_a_304_counts_as_unchanged(sqlite_url: str) -> None:
    # Articles older than 30 days are due again at once; newer ones in a day.
    schedule = ("-s", "REVISIT_SCHEDULE=30d=1d,*=0s")
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, *schedule)
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, *schedule)
    archive = snapshot(sqlite_url)
    second = archive.runs[1]["stats"]
    # robots.txt, the feed, and the 2020 seed article, asked with If-None-Match
    assert second["downloader/request_count"] == 3
    assert second["archive/revisits/due"] == 1
    assert second["archive/revisits/conditional"] == 1
    assert second["replay/not_modified"] == 1
    assert second["archive/stored/unchanged"] == second["archive/not_modified"] == 1
    assert archive.versions[MAEIL.format(714398)] == 1
    seed = archive.articles[MAEIL.format(714398)]
    assert str(seed["last_seen_at"]) > str(seed["first_seen_at"])


def test_an_edited_page_answers_200_to_its_conditional_revisit(sqlite_url: str) -> None:
    schedule = ("-s", "REVISIT_SCHEDULE=*=0s")
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, *schedule)
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo_day2", sqlite_url, *schedule)
    stats = snapshot(sqlite_url).runs[1]["stats"]
    assert stats["archive/stored/changed"] == 1  # 800101: new ETag, new text
    assert stats["archive/stored/new"] == 1  # 800108
    # 800103 has a new ETag but only whitespace changed: fetched, stored unchanged
    assert stats["archive/stored/unchanged"] == 3 + 1
    assert stats["archive/not_modified"] == 3


def test_backfill_stops_at_articles_archived_by_an_earlier_run(sqlite_url: str) -> None:
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url)
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, "-a", "since=2020-06-01")
    archive = snapshot(sqlite_url)
    # list page 1 lists only archived articles: paging stops there
    assert archive.runs[1]["stats"]["archive/listing/pages"] == 2
    assert MAEIL.format(714001) not in archive.articles


def test_backfill_goes_past_archived_articles_when_asked(sqlite_url: str) -> None:
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url)
    crawl(
        "maeil_ilbo",
        SEEDS / "maeil_ilbo",
        sqlite_url,
        "-a",
        "since=2020-06-01",
        "-a",
        "past_archived=1",
    )
    archive = snapshot(sqlite_url)
    assert archive.runs[1]["stats"]["archive/listing/pages"] == 4
    assert MAEIL.format(714001) in archive.articles


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
