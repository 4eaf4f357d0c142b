"""The crawl's owner, `ArchiveRun`: one engine and one migration per crawl, the run
record, the lock and the exit code.

In-process with a real crawler object and a real database, as Scrapy's own
component tests are written; one `scrapy crawl` subprocess where the count of
engines of a whole process is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.exceptions import CloseSpider

from news_archive.crawler.extensions.run import (
    ALREADY_RUNNING,
    ALREADY_RUNNING_EXIT_CODE,
    DATA_LOST_EXIT_CODE,
    HEALTH_FAILED_EXIT_CODE,
    ArchiveRun,
)
from news_archive.crawler.pipelines import ArchivePipeline
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from tests.crawl.crawling import ROOT, SEEDS, crawl_environment, project_crawler, snapshot

# Runs `scrapy crawl` in this process after counting every engine SQLAlchemy builds
# and every Alembic upgrade; writes the counts to $COUNTS_FILE at exit.
COUNTING_CRAWL = """
import atexit, json, os, sys
import alembic.command, sqlalchemy
counts = {"engines": 0, "migrations": 0}
create_engine, upgrade = sqlalchemy.create_engine, alembic.command.upgrade
def counted_engine(*args, **kwargs):
    counts["engines"] += 1
    return create_engine(*args, **kwargs)
def counted_upgrade(*args, **kwargs):
    counts["migrations"] += 1
    return upgrade(*args, **kwargs)
sqlalchemy.create_engine, alembic.command.upgrade = counted_engine, counted_upgrade
atexit.register(lambda: open(os.environ["COUNTS_FILE"], "w").write(json.dumps(counts)))
from scrapy.cmdline import execute
execute(["scrapy", "crawl", *sys.argv[1:]])
"""


def test_a_crawl_builds_one_engine_and_migrates_once(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    counts_file = tmp_path / "counts.json"
    env = {key: value for key, value in os.environ.items() if key != "REPLAY_DIR"}
    env |= crawl_environment(tmp_path / "warc")  # capture on: its index is in the database
    env |= {
        "DATABASE_URL": database_url,
        "REPLAY_DIR": str(SEEDS / "maeil_ilbo"),
        "COUNTS_FILE": str(counts_file),
    }
    result = subprocess.run(
        [sys.executable, "-c", COUNTING_CRAWL, "maeil_ilbo", "-L", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(counts_file.read_text()) == {"engines": 1, "migrations": 1}
    assert len(snapshot(database_url).site("maeil_ilbo")) == 5


def test_the_run_is_recorded_and_the_lock_held_until_the_spider_closes(
    database_url: str,
) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    run.spider_opened(crawler.spider)
    try:
        second = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
        second.stats.open_spider()
        blocked = second.get_extension(ArchiveRun)
        with pytest.raises(CloseSpider) as refused:
            blocked.spider_opened(second.spider)
        assert refused.value.reason == ALREADY_RUNNING
        blocked.spider_closed(second.spider, ALREADY_RUNNING)
        blocked.engine_stopped()
        assert blocked.exit_code == ALREADY_RUNNING_EXIT_CODE
        assert "pid" in second.stats.get_value("archive/lock/held_by")
    finally:
        run.spider_closed(crawler.spider, "finished")
        run.engine_stopped()
    runs = snapshot(database_url).runs
    assert [(r["finish_reason"], r["health_ok"]) for r in runs] == [
        ("finished", True),
        (ALREADY_RUNNING, None),
    ]
    assert run.exit_code == 0
    # Released: the next run takes the lock.
    third = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
    third.stats.open_spider()
    next_run = third.get_extension(ArchiveRun)
    next_run.spider_opened(third.spider)
    next_run.spider_closed(third.spider, "finished")
    next_run.engine_stopped()


def test_a_failed_health_check_makes_the_exit_code_3_and_is_recorded(
    database_url: str,
) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    run.spider_opened(crawler.spider)
    # The feed listed entries but no article was extracted.
    crawler.stats.set_value("archive/listing/entries", 6)
    run.spider_closed(crawler.spider, "finished")
    assert crawler.stats.get_value("archive/health/ok") is False
    assert run.exit_code == HEALTH_FAILED_EXIT_CODE
    run.record_exit_code(run.exit_code)
    (stored,) = snapshot(database_url).runs
    assert (stored["health_ok"], stored["exit_code"]) == (False, HEALTH_FAILED_EXIT_CODE)
    assert stored["stats"]["archive/health/ok"] is False


def test_every_component_shares_the_owners_archive(sqlite_url: str) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=sqlite_url)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    pipeline = ArchivePipeline.from_crawler(crawler)
    pipeline.open_spider()
    assert pipeline.archive is run.archive
    assert crawler.stats.get_value("archive/engines_built") == 1
    run.engine_stopped()


def test_what_is_lost_after_the_spider_closed_is_in_the_stored_run(database_url: str) -> None:
    """The WARC index's last retries run beside ``spider_closed``: a loss counted
    there still reaches ``crawl_runs`` (stats and exit code) once the engine stops."""
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url)
    crawler.stats.open_spider()
    run = crawler.get_extension(ArchiveRun)
    run.spider_opened(crawler.spider)
    crawler.stats.set_value("archive/listing/entries", 0)
    run.spider_closed(crawler.spider, "finished")
    crawler.stats.inc_value("archive/lost/links", 2)  # a later close handler's count
    run.engine_stopped()
    (stored,) = snapshot(database_url).runs
    assert stored["stats"]["archive/lost/links"] == 2
    assert stored["exit_code"] == run.exit_code == DATA_LOST_EXIT_CODE
