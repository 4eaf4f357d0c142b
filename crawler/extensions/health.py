"""Run records and health checks as a Scrapy extension.

When the spider closes, this extension writes the run's at-a-glance figures to
its ``crawl_runs`` row, runs the declarative checks of `crawler.health` against
the run's stats and the previous runs of the same spider, logs every failed
check as one ERROR line (``HEALTH CHECK FAILED: fill_rate[body] 0.00 < floor
1.00: ... (maeil_ilbo)``), sets the stats ``archive/health/ok`` and
``archive/health/failed/<check>`` and records the outcome in ``crawl_runs``.
The ``crawl`` command (`crawler.commands.crawl`) turns a failure into exit code 3.

The run is the pipeline's (``archive/run_id`` in stats). This handler writes
only columns the pipeline's own ``spider_closed`` handler leaves alone, and reads
only finished earlier runs, so the order of the two handlers does not matter.

Settings: ``HEALTH_CHECKS_ENABLED`` (False: figures are still recorded, no
check runs and ``health_ok`` stays NULL), the ``HEALTH_*`` thresholds
(`crawler.health.HEALTH_SETTINGS`) and ``DATABASE_URL``.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from news_archive.crawler.health import HEALTH_SETTINGS, RunInput, evaluate, run_figures
from news_archive.storage.engine import create_archive_engine
from news_archive.storage.runs import previous_runs, record_health, record_run_figures

logger = logging.getLogger(__name__)

# Exit code of a crawl whose health checks failed (see crawler.commands.crawl).
HEALTH_FAILED_EXIT_CODE = 3
# A run that never crawled (another one holds the lock) has nothing to judge.
UNJUDGED_FINISH_REASONS = frozenset({"already_running"})


class RunHealth:
    """Record the figures of the run and judge its health when the spider closes."""

    def __init__(
        self,
        crawler: Crawler,
        database_url: str,
        checks_enabled: bool,
        thresholds: dict[str, Any],
    ) -> None:
        self.crawler = crawler
        self.database_url = database_url
        self.checks_enabled = checks_enabled
        self.thresholds = thresholds

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunHealth:
        settings = crawler.settings
        database_url = settings.get("DATABASE_URL")
        if not database_url:
            raise NotConfigured("no DATABASE_URL: no run to record")
        checks_enabled = settings.getbool("HEALTH_CHECKS_ENABLED", True)
        thresholds: dict[str, Any] = {}
        if checks_enabled:
            missing = [name for name in HEALTH_SETTINGS if settings.get(name) is None]
            if missing:
                # A check without its threshold would judge against nothing: refuse to start.
                raise ValueError(f"health check settings missing: {', '.join(missing)}")
            thresholds = {name: _setting(settings, name) for name in HEALTH_SETTINGS}
        extension = cls(crawler, database_url, checks_enabled, thresholds)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_closed(self, spider: Spider, reason: str) -> None:
        stats = self.crawler.stats
        assert stats is not None
        run_id = stats.get_value("archive/run_id")
        if run_id is None:
            logger.warning("No crawl run was recorded for %s; health not checked", spider.name)
            return
        figures = {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            **run_figures(stats.get_stats()),
        }
        engine = create_archive_engine(self.database_url)
        try:
            record_run_figures(engine, run_id, figures)
            if not self.checks_enabled or reason in UNJUDGED_FINISH_REASONS:
                return
            previous = previous_runs(
                engine, spider.name, int(self.thresholds["HEALTH_HISTORY_RUNS"]), run_id
            )
            results = evaluate(RunInput(spider.name, stats.get_stats(), previous, self.thresholds))
            failed = [result for result in results if not result.ok]
            for result in failed:
                stats.inc_value(f"archive/health/failed/{result.name}")
                logger.error("HEALTH CHECK FAILED: %s (%s)", result.message, spider.name)
            stats.set_value("archive/health/ok", not failed)
            if failed:
                logger.error(
                    "%d of %d health checks failed for %s run %s; the crawl exits %d",
                    len(failed),
                    len(results),
                    spider.name,
                    run_id,
                    HEALTH_FAILED_EXIT_CODE,
                )
            else:
                logger.info("All %d health checks passed for %s", len(results), spider.name)
            record_health(
                engine,
                run_id,
                not failed,
                [result.as_dict() for result in results],
                HEALTH_FAILED_EXIT_CODE if failed else 0,
            )
        finally:
            engine.dispose()


def _setting(settings: Any, name: str) -> Any:
    """A threshold as the checks want it: a dict for per-spider mappings (given on
    the command line as JSON), a float otherwise."""
    value = settings.get(name)
    if isinstance(value, dict) or (isinstance(value, str) and value.lstrip().startswith("{")):
        return settings.getdict(name)
    return settings.getfloat(name)
