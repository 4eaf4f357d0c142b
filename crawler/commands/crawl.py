"""``scrapy crawl``, as Scrapy's own, with exit codes a scheduler can act on.

Scrapy picks commands by module name, and those of ``COMMANDS_MODULE`` replace its
built-in ones (``scrapy.cmdline._get_commands_dict``), so this module is the
``crawl`` command of the project. Exit codes:

- 0: the crawl ran and its health checks passed (or were off);
- 1: the crawl could not start (Scrapy's bootstrap failure);
- 3: a health check failed (see ``crawler.health``);
- 75 (``EX_TEMPFAIL``): another crawl of the spider holds the run lock (finish
  reason ``already_running``); try again later.

The crawl's owner, `ArchiveRun`, decides the code; it is also stored in the run's
``crawl_runs.exit_code``.
"""

from __future__ import annotations

import argparse

from scrapy import Spider
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler

from news_archive.crawler.extensions.run import ArchiveRun


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
        if self.crawler is None or not hasattr(self.crawler, "extensions"):
            return  # the crawl never started (Scrapy has set the exit code)
        run = self.crawler.get_extension(ArchiveRun)
        if self.exitcode == 0:
            self.exitcode = run.exit_code
        run.record_exit_code(self.exitcode)
