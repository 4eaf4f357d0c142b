"""Run records and health checks through real ``scrapy crawl`` processes: a normal
seed crawl exits 0 with every figure of its run recorded; a site whose template
changed (``seeds/*_changed``: the body container renamed) exits 3 naming the failing
check and field; a run far smaller than the previous ones trips the drop check; a
crawl blocked by another's run lock exits 75."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from news_archive.storage.models import CrawlLock
from tests.crawl.crawling import SEEDS, crawl, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
HEALTH_FAILED = 3
EX_TEMPFAIL = 75


def _health(run: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(run["health"])


def test_a_normal_crawl_exits_0_with_its_figures_recorded(database_url: str) -> None:
    # A password in the URL (PostgreSQL trusts us and ignores it) must never be stored.
    if make_url(database_url).get_backend_name() == "postgresql":
        database_url = database_url.replace("postgres@", "postgres:s3cret@", 1)
    result = crawl("maeil_ilbo", SEEDS / "maeil_ilbo", database_url)
    assert "HEALTH CHECK FAILED" not in result.stderr
    (run,) = snapshot(database_url).runs
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
    assert "s3cret" not in run["settings"]
    assert settings["DATABASE_URL"] == make_url(database_url).render_as_string(hide_password=True)
    assert settings["INCREMENTAL"] is True and settings["REVISIT_SCHEDULE"]
    health = _health(run)
    assert all(check["ok"] for check in health)
    assert {"articles_parsed", "fill_rate", "body_source", "error_rate"} <= {
        check["name"] for check in health
    }


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


def test_health_checks_can_be_switched_off(sqlite_url: str) -> None:
    result = crawl(
        "skt_insight",
        SEEDS / "skt_insight_changed",
        sqlite_url,
        "-s",
        "HEALTH_CHECKS_ENABLED=False",
    )
    assert "HEALTH CHECK" not in result.stderr
    (run,) = snapshot(sqlite_url).runs
    assert run["health_ok"] is None and run["health"] is None
    assert run["exit_code"] == 0
    assert run["articles_new"] == 6  # the figures are recorded all the same


def test_a_thin_run_after_three_normal_ones_trips_the_drop_check(sqlite_url: str) -> None:
    for _ in range(3):
        crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url)
    result = crawl(
        "maeil_ilbo",
        SEEDS / "maeil_ilbo",
        sqlite_url,
        "-a",
        f"urls={MAEIL.format(714398)}",
        expect_exit=HEALTH_FAILED,
    )
    assert "HEALTH CHECK FAILED: article_drop[articles] 0." in result.stderr
    assert "over the previous 3 runs" in result.stderr
    runs = snapshot(sqlite_url).runs
    assert [run["exit_code"] for run in runs] == [0, 0, 0, HEALTH_FAILED]
    failed = [check["name"] for check in _health(runs[-1]) if not check["ok"]]
    assert failed == ["article_drop"]


def test_a_crawl_blocked_by_a_running_one_exits_75_unjudged(sqlite_url: str) -> None:
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url)
    # This test process, alive on this host, holds the spider's run lock.
    now = datetime.now(UTC)
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(
            insert(CrawlLock),
            {
                "spider": "maeil_ilbo",
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "acquired_at": now,
                "heartbeat_at": now,
            },
        )
    engine.dispose()
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, expect_exit=EX_TEMPFAIL)
    blocked = snapshot(sqlite_url).runs[-1]
    assert blocked["finish_reason"] == "already_running"
    assert blocked["exit_code"] == EX_TEMPFAIL
    assert blocked["health_ok"] is None
