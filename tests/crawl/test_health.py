"""Run records and health checks as the crawl's owner (`ArchiveRun`) applies them.

- a normal seed crawl exits 0 with every figure of its run recorded: read from the
  session's seed archive (real ``scrapy crawl`` processes, both backends);
- a site whose template changed (``seeds/*_changed``: the body container renamed)
  exits 3 naming the failing check and field: a real crawl per site, because the
  process's exit code and log line are the point;
- switching the checks off, a run far smaller than the previous ones (the drop
  check), a crawl blocked by another's run lock (exit 75, unjudged), and a password
  in the database URL: in-process, a real crawler object and a real database, the
  run's stats set as a crawl leaves them.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from scrapy.exceptions import CloseSpider
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from news_archive.crawler.extensions.run import ALREADY_RUNNING, ArchiveRun
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.storage import tables
from tests.conftest import SeedArchive
from tests.crawl.crawling import SEEDS, crawl, project_crawler, snapshot
from tests.test_health_checks import HEALTHY as HEALTHY_RUN_STATS

HEALTH_FAILED = 3
EX_TEMPFAIL = 75

# The final stats of a healthy 매일일보 day-1 run (seeds/maeil_ilbo), trimmed.
HEALTHY: dict[str, Any] = {**HEALTHY_RUN_STATS, "archive/listing/pages": 1}
# `-a urls=` of the one seed article the archive already holds: one page, unchanged.
THIN: dict[str, Any] = {
    "archive/body_chars": 1200,
    "archive/body_source/V2/container": 1,
    "archive/extracted": 1,
    "archive/filled/author": 1,
    "archive/filled/body": 1,
    "archive/filled/published_at": 1,
    "archive/filled/title": 1,
    "archive/stored/unchanged": 1,
    "downloader/request_count": 2,
    "downloader/response_status_count/200": 2,
}


def _health(run: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(run["health"])


def _owned_run(database_url: str, stats: dict[str, Any], **settings: Any) -> ArchiveRun:
    """A whole run through `ArchiveRun` in-process: opened, `stats` set as the crawl
    would leave them, closed ``finished`` and its exit code recorded, as the crawl
    command does."""
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url, **settings)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    try:
        run.spider_opened(crawler.spider)
        for key, value in stats.items():
            crawler.stats.set_value(key, value)
        run.spider_closed(crawler.spider, "finished")
        run.record_exit_code(run.exit_code)
    finally:
        run.engine_stopped()
    return run


# --- a normal crawl (the session's seed archive) -------------------------------------


def test_a_normal_crawl_exits_0_with_its_figures_recorded(seed_archive: SeedArchive) -> None:
    # `crawl` raised unless the process exited 0.
    assert "HEALTH CHECK FAILED" not in seed_archive.logs["day1"]["maeil_ilbo"]
    run = next(run for run in seed_archive.day1.runs if run["spider"] == "maeil_ilbo")
    assert run["stats"]["archive/health/ok"] is True
    assert bool(run["health_ok"]) is True
    assert run["exit_code"] == 0
    assert run["finish_reason"] == "finished"
    assert run["hostname"] == socket.gethostname()
    assert run["pid"] > 0
    assert run["requests"] == run["stats"]["downloader/request_count"] >= 10
    assert run["responses_2xx"] >= 8
    assert run["responses_3xx"] == 0
    assert run["responses_4xx"] >= 1
    assert run["responses_5xx"] >= 1
    assert run["bytes_downloaded"] > 0
    assert (run["articles_new"], run["articles_changed"], run["articles_unchanged"]) == (5, 0, 0)
    assert run["articles_rejected"] == 1
    assert run["articles_failed"] == 2
    assert json.loads(run["rejected_by_reason"]) == {"not_article": 1}
    settings = json.loads(run["settings"])
    assert settings["DATABASE_URL"] == make_url(seed_archive.url).render_as_string(
        hide_password=True
    )
    assert settings["INCREMENTAL"] is True and settings["REVISIT_SCHEDULE"]
    health = _health(run)
    assert all(check["ok"] for check in health)
    assert {"articles_parsed", "fill_rate", "body_source", "error_rate"} <= {
        check["name"] for check in health
    }


def test_a_password_in_the_database_url_is_never_stored(database_url: str) -> None:
    # PostgreSQL trusts us and ignores the password; SQLite URLs have none.
    if make_url(database_url).get_backend_name() == "postgresql":
        database_url = database_url.replace("postgres@", "postgres:s3cret@", 1)
    run = _owned_run(database_url, HEALTHY)
    assert run.exit_code == 0
    (stored,) = snapshot(database_url).runs
    assert "s3cret" not in stored["settings"]
    assert "s3cret" not in json.dumps(stored["stats"])
    settings = json.loads(stored["settings"])
    assert settings["DATABASE_URL"] == make_url(database_url).render_as_string(hide_password=True)
    assert (stored["hostname"], stored["pid"]) == (socket.gethostname(), run.pid)


# --- a changed template (real crawls: the exit code is the point) ----------------------


@pytest.mark.parametrize(
    ("spider", "stored"),
    [("maeil_ilbo", 5), ("skt_insight", 6)],
)
def test_a_changed_template_fails_the_crawl_naming_check_and_field(
    sqlite_url: str, spider: str, stored: int
) -> None:
    result = crawl(spider, SEEDS / f"{spider}_changed", sqlite_url, expect_exit=HEALTH_FAILED)
    failures = [line for line in result.stderr.splitlines() if "HEALTH CHECK FAILED" in line]
    assert len(failures) == 1, result.stderr
    assert " ERROR: HEALTH CHECK FAILED: body_source[body] 1.00 > ceiling 0.00: " in failures[0]
    assert (
        f"{stored} of {stored} stored articles not read from the site's body container"
        in (failures[0])
    )
    assert failures[0].endswith(f"({spider})")
    (run,) = snapshot(sqlite_url).runs
    assert not run["health_ok"]
    assert run["exit_code"] == HEALTH_FAILED
    assert run["stats"]["archive/health/ok"] is False
    assert run["stats"]["archive/health/failed/body_source"] == 1
    (failed,) = [check for check in _health(run) if not check["ok"]]
    assert (failed["name"], failed["field"], failed["observed"]) == ("body_source", "body", 1.0)


# --- in-process: the owner's judgement -------------------------------------------------


def test_health_checks_can_be_switched_off(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Every body from the fallback: the changed template's figures, which would fail.
    unhealthy = {
        key: value for key, value in HEALTHY.items() if not key.startswith("archive/body_source/")
    }
    unhealthy["archive/body_source/fallback"] = 5
    with caplog.at_level(logging.INFO):
        run = _owned_run(sqlite_url, unhealthy, HEALTH_CHECKS_ENABLED=False)
    assert "HEALTH CHECK" not in caplog.text
    assert "health checks" not in caplog.text
    (stored,) = snapshot(sqlite_url).runs
    assert stored["health_ok"] is None and stored["health"] is None
    assert run.exit_code == stored["exit_code"] == 0
    assert stored["articles_new"] == 5  # the figures are recorded all the same
    # The same run judged fails: the switch is what kept it at 0.
    assert _owned_run(sqlite_url, unhealthy).exit_code == HEALTH_FAILED


def test_a_thin_run_after_three_normal_ones_trips_the_drop_check(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        assert _owned_run(database_url, HEALTHY).exit_code == 0
    with caplog.at_level(logging.ERROR):
        thin = _owned_run(database_url, THIN)
    assert thin.exit_code == HEALTH_FAILED
    assert "HEALTH CHECK FAILED: article_drop[articles] 0." in caplog.text
    assert "over the previous 3 runs" in caplog.text
    runs = snapshot(database_url).runs
    assert [run["exit_code"] for run in runs] == [0, 0, 0, HEALTH_FAILED]
    failed = [check["name"] for check in _health(runs[-1]) if not check["ok"]]
    assert failed == ["article_drop"]
    assert runs[-1]["stats"]["archive/health/failed/article_drop"] == 1


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process alive on this host (another crawl, as far as a lock knows)."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_a_crawl_blocked_by_a_running_one_exits_75_unjudged(
    database_url: str, live_pid: int
) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    try:
        # Another process alive on this host holds the spider's run lock.
        now = datetime.now(UTC)
        with run.archive.engine.begin() as connection:
            connection.execute(
                insert(tables.locks),
                {
                    "spider": "maeil_ilbo",
                    "hostname": socket.gethostname(),
                    "pid": live_pid,
                    "acquired_at": now,
                    "heartbeat_at": now,
                },
            )
        with pytest.raises(CloseSpider) as refused:
            run.spider_opened(crawler.spider)
        assert refused.value.reason == ALREADY_RUNNING
        # Figures that would fail every check: an unjudged run ignores them.
        crawler.stats.set_value("archive/listing/entries", 6)
        run.spider_closed(crawler.spider, ALREADY_RUNNING)
        assert run.exit_code == EX_TEMPFAIL
        run.record_exit_code(run.exit_code)
    finally:
        run.engine_stopped()
    assert crawler.stats.get_value("archive/lock/held_by").startswith(
        f"pid {live_pid} on host {socket.gethostname()} since "
    )
    (blocked,) = snapshot(database_url).runs
    assert blocked["finish_reason"] == ALREADY_RUNNING
    assert blocked["exit_code"] == EX_TEMPFAIL
    assert blocked["health_ok"] is None
    # The other crawl's lock is left alone.
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            holders = connection.exec_driver_sql("SELECT pid FROM crawl_locks").scalars().all()
    finally:
        engine.dispose()
    assert holders == [live_pid]
