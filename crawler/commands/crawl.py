"""``scrapy crawl``, as Scrapy's own, with exit codes a scheduler can act on.

Scrapy picks commands by module name, and those of ``COMMANDS_MODULE`` replace its
built-in ones (``scrapy.cmdline._get_commands_dict``), so this module is the
``crawl`` command of the project. Exit codes:

- 0: the crawl ran and its health checks passed (or were off);
- 1: the crawl could not start (Scrapy's bootstrap failure);
- 3: a health check failed (``archive/health/ok`` is False; see ``crawler.health``);
- 75 (``EX_TEMPFAIL``): another crawl of the spider holds the run lock (finish
  reason ``already_running``); try again later.

The exit code is also stored in the run's ``crawl_runs.exit_code``.
"""

from __future__ import annotations

import argparse
import logging

from scrapy import Spider
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler
from sqlalchemy.exc import SQLAlchemyError

from news_archive.crawler.extensions.health import HEALTH_FAILED_EXIT_CODE
from news_archive.storage.engine import create_archive_engine
from news_archive.storage.runs import record_exit_code

logger = logging.getLogger(__name__)

ALREADY_RUNNING_EXIT_CODE = 75  # EX_TEMPFAIL from sysexits.h: "try again later"
ALREADY_RUNNING = "already_running"


class Command(ScrapyCrawlCommand):
    """Scrapy's ``crawl``; afterwards, the exit code says how the run went."""

    crawler: Crawler | None = None

    def long_desc(self) -> str:
        return (
            "Run a spider of the current project, by name. Exits 3 when a health check "
            "failed, 75 when another crawl of the spider is running, 1 when the crawl "
            "could not start, 0 otherwise."
        )

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        # The built-in `run` creates exactly one crawler through here: keep it.
        self.crawler = super()._create_crawler(spidercls)
        return self.crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        super().run(args, opts)
        if self.crawler is None or self.crawler.stats is None:
            return
        stats = self.crawler.stats
        if stats.get_value("archive/health/ok") is False:
            self.exitcode = HEALTH_FAILED_EXIT_CODE
        elif stats.get_value("finish_reason") == ALREADY_RUNNING:
            self.exitcode = ALREADY_RUNNING_EXIT_CODE
        self._record_exit_code(stats.get_value("archive/run_id"))

    def _record_exit_code(self, run_id: int | None) -> None:
        assert self.crawler is not None
        if run_id is None:
            return
        engine = create_archive_engine(self.crawler.settings.get("DATABASE_URL"))
        try:
            record_exit_code(engine, run_id, self.exitcode)
        except SQLAlchemyError as error:
            # The exit code itself still reaches the scheduler; only the record is lost.
            logger.error(
                "Could not record exit code %d of run %s: %s", self.exitcode, run_id, error
            )
        finally:
            engine.dispose()
