"""``scrapy crawl``, as Scrapy's own, with exit codes a scheduler can act on.

Scrapy picks commands by module name, and those of ``COMMANDS_MODULE`` replace its
built-in ones (``scrapy.cmdline._get_commands_dict``), so this module is the
``crawl`` command of the project (``news-archive crawl`` runs it too).

The exit codes, most important first, are one table in docs/operations.md ("Exit
codes"): 78 configuration error · 5 data lost · 75 already running · 4 cut short ·
3 health check failed · 0 complete and healthy; 1 stays Scrapy's own "could not
start".  The crawl's owner, `ArchiveRun`, decides the code of a run that started
(`ArchiveRun.exit_code`), and it is stored in the run's ``crawl_runs.exit_code``.

A configuration error (a `UsageError` raised while the crawl starts: a spider
argument the spider refuses, `ConfigurationError` from `ArchiveRun`, a ``SITES_FILE``
the spider loader refuses) is one line on
stderr, without a traceback, and exit 78; so is a database that cannot be reached at
start, with exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from typing import Any

from scrapy import Spider, signals
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from news_archive.crawler.extensions.run import CONFIGURATION_ERROR_EXIT_CODE, ArchiveRun
from news_archive.storage.archive import DatabaseUnavailable

logger = logging.getLogger(__name__)

# Scrapy's code for a crawl that could not start.
COULD_NOT_START_EXIT_CODE = 1


class Command(ScrapyCrawlCommand):
    """Scrapy's ``crawl``; afterwards, the exit code says how the run went."""

    crawler: Crawler | None = None

    def long_desc(self) -> str:
        return (
            "Run a spider of the current project, by name. Exit codes, most important "
            "first: 78 configuration error, 5 data lost, 75 already running, 4 cut short, "
            "3 health check failed, 0 complete and healthy (1: could not start). "
            "See docs/operations.md, 'Exit codes'."
        )

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        # The built-in `run` creates exactly one crawler through here: keep it.
        self.crawler = super()._create_crawler(spidercls)
        self.crawler.signals.connect(freeze_start_up, signal=signals.engine_started)
        self.crawler.signals.connect(skip_unhandled_records, signal=signals.engine_started)
        self.crawler.signals.connect(hand_over_quickly, signal=signals.engine_started)
        return self.crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)  # Scrapy's own usage errors
            return
        assert self.crawler_process
        try:
            crawler = self._create_crawler(args[0])
        except UsageError as error:  # the spider loader refused the SITES_FILE
            self.exitcode = _report_start_failure(args[0], error)
            return
        started = self.crawler_process.crawl(crawler, **opts.spargs)
        failures: list[BaseException] = []
        _catch_start_failures(started, failures.append)
        self.crawler_process.start()
        if failures:
            self.exitcode = _report_start_failure(args[0], failures[0])
            return
        if self.crawler_process.bootstrap_failed or self.crawler is None:
            self.exitcode = COULD_NOT_START_EXIT_CODE
            return  # the crawl never started: no run to judge or record
        run = self.crawler.get_extension(ArchiveRun)
        if self.exitcode == 0:
            self.exitcode, why = run.outcome
            log = logger.info if self.exitcode == 0 else logger.error
            log("The crawl exits %d: %s", self.exitcode, why)
        run.record_exit_code(self.exitcode)


# New objects (allocations less deallocations of tracked objects) between two
# collections of the youngest generation, during a crawl (Python's default: 700).
YOUNG_OBJECTS = 10_000


def freeze_start_up() -> None:
    """Leave the objects of the crawl's start-up (modules, classes, settings: some
    100,000, alive until the process ends) out of every later garbage collection
    (``gc.freeze``): the collector no longer walks them again and again during the
    crawl nor several times as the interpreter shuts down, which cost a crawl of a
    near-empty corpus 0.6 s of its 2.5 s of CPU.  The extraction workers forked later
    then share these objects' memory instead of copying it (Python's documentation of
    ``gc.freeze``).  Hardly any of them is garbage at this point (about 10 objects),
    so nothing worth collecting is kept.

    Then the collector runs after `YOUNG_OBJECTS` new objects instead of Python's
    700: a crawl makes and drops a few hundred tracked objects per response
    (requests, deferreds, tasks, rows), nearly all freed at once by reference
    counting, and the frequent collections that found almost nothing to free cost
    the reactor thread 12 % of its time (0.5 s instead of 3 s on 5,000 pages)."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, middle, oldest)


# Seconds a thread waiting for the interpreter lock waits before it asks the holder
# to let go (Python's default: 0.005).
SWITCH_INTERVAL = 0.001


def hand_over_quickly() -> None:
    """Let the reactor thread have the interpreter lock back within 1 ms instead of
    5: every read, write or commit it makes releases the lock, and the WARC writer
    thread, busy building records, then kept it for up to the switch interval
    (``sys.setswitchinterval``) while the reactor waited: about 5 % of a crawl's
    time with capture on."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def skip_unhandled_records() -> None:
    """Raise the level of the root logger, and of any logger set below it, to the
    lowest level any handler takes: Scrapy leaves the root at NOTSET, sets its own
    ``scrapy`` logger to DEBUG, and filters in its handler (``LOG_LEVEL``), so every
    DEBUG call of the crawl built a record nobody would handle ("Crawled (200)" per
    response, "Scraped from" per item: 3 % of a crawl's time).  A handler at DEBUG
    anywhere (``-L DEBUG``, one of the user's) keeps every record."""
    root = logging.getLogger()
    loggers = [
        root,
        *(
            each
            for each in logging.Logger.manager.loggerDict.values()
            if isinstance(each, logging.Logger)
        ),
    ]
    levels = [
        handler.level
        for each in loggers
        for handler in each.handlers
        if not isinstance(handler, logging.NullHandler)  # libraries' "no output"
    ]
    lowest = min(levels, default=logging.NOTSET)
    if lowest == logging.NOTSET:
        return
    for each in loggers:
        if each.level < lowest and (each.level != logging.NOTSET or each is root):
            each.setLevel(lowest)


# Failures of a crawl's start that are the user's to fix or wait out, not a bug:
# reported in one line, without a traceback.
_EXPECTED = (UsageError, DatabaseUnavailable)


def _catch_start_failures(started: Any, record: Any) -> None:
    """Call `record` with the exception that stopped the crawl from starting, when it
    is one of `_EXPECTED`; any other keeps its traceback.

    `started` is what ``crawler_process.crawl`` returned: an asyncio task (Scrapy's
    AsyncCrawlerProcess) or a Deferred (CrawlerProcess)."""
    if isinstance(started, Deferred):

        def errback(failure: Failure) -> Failure | None:
            if failure.check(*_EXPECTED):
                record(failure.value)
                return None  # handled: no "Unhandled error in Deferred"
            return failure

        started.addErrback(errback)
    elif isinstance(started, asyncio.Future):

        def done(task: asyncio.Future[Any]) -> None:
            # Retrieving the exception stops asyncio from logging it at exit, so
            # anything unexpected is logged here, with its traceback.
            error = None if task.cancelled() else task.exception()
            if isinstance(error, _EXPECTED):
                record(error)
            elif error is not None:
                logger.critical("The crawl could not start", exc_info=error)

        started.add_done_callback(done)


def _report_start_failure(spider: str, error: BaseException) -> int:
    """One line on stderr, and the exit code."""
    if isinstance(error, UsageError):
        print(f"crawl {spider}: configuration error: {error}", file=sys.stderr)
        return CONFIGURATION_ERROR_EXIT_CODE
    print(f"crawl {spider}: could not start: {error}", file=sys.stderr)
    return COULD_NOT_START_EXIT_CODE
