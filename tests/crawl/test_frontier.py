"""A feed naming many articles: its requests reach the scheduler as it drains
(`FrontierMiddleware`), so the crawl's memory does not grow with the feed's URLs;
every article is still stored. A real crawl: the scheduler and its signals are the
point. No timing."""

from __future__ import annotations

import json
from pathlib import Path

import news_archive.crawler.settings as project_settings
from bench.memory import generate
from tests.crawl.crawling import crawl, snapshot

PROBE = "tests.crawl.probes.SchedulerProbe"


def test_a_big_feed_reaches_the_scheduler_a_batch_at_a_time(
    tmp_path: Path, sqlite_url: str
) -> None:
    pages, batch = 1200, 50
    generate(tmp_path / "corpus", pages, smallest=True)
    extensions = {**project_settings.EXTENSIONS, PROBE: 0}
    crawl(
        "maeil_ilbo",
        tmp_path / "corpus",
        sqlite_url,
        "-s", f"EXTENSIONS={json.dumps(extensions)}",
        "-s", f"FRONTIER_BATCH_SIZE={batch}",
        "-s", "CONCURRENT_REQUESTS=16",
        "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16",
        "-s", "DOWNLOAD_DELAY=0",
        "-s", "AUTOTHROTTLE_ENABLED=0",
    )  # fmt: skip
    archive = snapshot(sqlite_url)
    assert len(archive.articles) == pages
    stats = archive.runs[-1]["stats"]
    assert stats["frontier/held"] == 1
    assert stats["frontier/released"] == pages
    # Without the frontier the scheduler held every article of the feed (1,200).
    assert stats["probe/scheduler_max"] <= batch + 1
