"""The one owner of a crawl: `ArchiveRun`, a Scrapy extension.

It builds the crawl's one `Archive` (one engine, one migration check), records
the run in ``crawl_runs``, holds the run lock with a heartbeat, judges the run's
health when the spider closes and decides the exit code.  Every other component
(the pipeline, the spider, the capture middleware, the ``crawl`` command) reaches
it with ``crawler.get_extension(ArchiveRun)``: none builds an engine of its own,
none finds the run through stats or the order of signal handlers.

Life of a run:

- ``from_crawler`` (before Scrapy builds the engine): the engine is built and the
  schema brought to head; a URL that cannot work (`ConfigurationError`) stops the
  crawl before it starts, and the ``crawl`` command exits 78 with one line;
- ``spider_opened``: the run row is written, then the lock taken; a lock held by a
  live crawl closes the spider at once with the finish reason ``already_running``
  (before any start request is read) and the exit code is 75; then the site's
  learned boilerplate is loaded (`boilerplate`, handed to extraction as data);
- every ``RUN_LOCK_HEARTBEAT`` seconds: the lock's heartbeat;
- ``spider_closed`` (after the pipeline's final flush): when the run finished and
  stored new or changed articles, the site's boilerplate is learned again (a failure there is one
  log line and the stat ``archive/boilerplate/learn_failed``: nothing stored is
  touched, the exit code stays as it is); the run's finish reason, stats and figures
  are recorded, the health checks of `crawler.health` run against
  the previous runs, the lock is released;
- the ``crawl`` command then asks `exit_code` and records it with `record_exit_code`
  (the table of exit codes: docs/operations.md, "Exit codes").

Settings (defaults in `crawler.settings`): ``DATABASE_URL``, the ``DATABASE_*_TIMEOUT``
and ``DATABASE_KEEPALIVE_*`` bounds on a PostgreSQL server, ``RUN_LOCK_ENABLED``,
``RUN_LOCK_STALE_AFTER``, ``RUN_LOCK_HEARTBEAT``, ``HEALTH_CHECKS_ENABLED``, the
``HEALTH_*`` thresholds and the ``BOILERPLATE_*`` settings.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, UsageError
from scrapy.settings import BaseSettings
from twisted.internet.task import LoopingCall

from news_archive.crawler.health import (
    FINISHED,
    HEALTH_SETTINGS,
    RunInput,
    evaluate,
    lost_counts,
    run_figures,
)
from news_archive.crawler.writes import WriteThread
from news_archive.storage.archive import (
    Archive,
    ArchiveError,
    ConnectionTimeouts,
    DatabaseRefused,
)
from news_archive.storage.boilerplate import Thresholds
from news_archive.storage.engine import SchemaNotUpgradableError, mask_url
from news_archive.vocabulary import LearnedBoilerplate

logger = logging.getLogger(__name__)

# Finish reason of a run that found another crawl of its spider holding the lock.
ALREADY_RUNNING = "already_running"
# Exit codes the `crawl` command ends with (also stored in crawl_runs.exit_code), most
# important first: when several apply, the first wins. One table: docs/operations.md.
CONFIGURATION_ERROR_EXIT_CODE = 78  # EX_CONFIG from sysexits.h; the run never starts
DATA_LOST_EXIT_CODE = 5  # something extracted was not written (archive/lost/*)
ALREADY_RUNNING_EXIT_CODE = 75  # EX_TEMPFAIL from sysexits.h: "try again later"
CUT_SHORT_EXIT_CODE = 4  # any finish reason but "finished": a signal, closespider_*
HEALTH_FAILED_EXIT_CODE = 3
HEALTHY_EXIT_CODE = 0


class ConfigurationError(UsageError):
    """The crawl cannot run as configured: a DATABASE_URL that does not parse or
    names a database that does not exist, a setting that is not a number.

    A `UsageError`, as a bad spider argument is: raised before the engine starts,
    it reaches the ``crawl`` command, which prints it as one line and exits
    `CONFIGURATION_ERROR_EXIT_CODE`."""


# Settings worth keeping with each run, to explain its figures later.
RECORDED_SETTINGS = (
    "DATABASE_URL",
    "REPLAY_DIR",
    "ARCHIVE_BATCH_SIZE",
    "USER_AGENT",
    "ROBOTSTXT_OBEY",
    "DOWNLOAD_DELAY",
    "AUTOTHROTTLE_ENABLED",
    "INCREMENTAL",
    "REVISIT_SCHEDULE",
    "REVISIT_LIMIT",
    "WARC_ENABLED",
    "WARC_DIR",
    "DOWNLOAD_MAXSIZE",
    "EXTRACTION_WORKERS",
    "EXTRACTION_TIMEOUT",
    "EXTRACTION_MAX_BYTES",
    "ARCHIVE_BUFFER_LIMIT",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT",
    "BOILERPLATE_ENABLED",
    "BOILERPLATE_MIN_ARTICLES",
    "BOILERPLATE_MIN_SHARE",
)


class ArchiveRun:
    """The archive, the run record, the lock, the health and the exit code of a crawl."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.database_url: str = settings["DATABASE_URL"]
        try:
            self.timeouts = ConnectionTimeouts.from_settings(settings.get)
            self.lock_enabled = settings.getbool("RUN_LOCK_ENABLED")
            self.stale_after = timedelta(seconds=settings.getfloat("RUN_LOCK_STALE_AFTER"))
            self.heartbeat_seconds = settings.getfloat("RUN_LOCK_HEARTBEAT")
            self.checks_enabled = settings.getbool("HEALTH_CHECKS_ENABLED")
            self.thresholds = _thresholds(settings) if self.checks_enabled else {}
            self.learning = BoilerplateSettings.from_settings(settings)
        except ValueError as error:
            raise ConfigurationError(f"bad setting: {error}") from None
        self.recorded_settings = {name: settings.get(name) for name in RECORDED_SETTINGS}
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.run_id: int | None = None
        self.health_ok: bool | None = None
        self.finish_reason: str | None = None
        self._archive: Archive | None = None
        # The thread that writes to the archive off the reactor (crawler/writes.py).
        self.writes = WriteThread()
        # The spider's site's learned boilerplate, loaded when the spider opens; None:
        # none (BOILERPLATE_ENABLED off, or not loaded).
        self.boilerplate: LearnedBoilerplate | None = None
        self._lock_held = False
        self._beat: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveRun:
        run = cls(crawler)
        # Now, before Scrapy builds the engine: a database that cannot work stops the
        # crawl with one line, not halfway through opening the spider.
        run.open_archive()
        crawler.signals.connect(run.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(run.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(run.engine_stopped, signal=signals.engine_stopped)
        return run

    # ------------------------------------------------------------------ the archive

    @property
    def archive(self) -> Archive:
        """The crawl's archive, built and migrated once (see `open_archive`)."""
        if self._archive is None:
            self.open_archive()
        assert self._archive is not None
        return self._archive

    def open_archive(self) -> None:
        """Build the engine and bring the schema to head, once.  A URL or database
        that can never work raises `ConfigurationError`; an outage raises
        `DatabaseUnavailable` (the crawl could not start)."""
        if self._archive is not None:
            return
        try:
            self._archive = Archive.open(self.database_url, timeouts=self.timeouts)
        except DatabaseRefused as error:
            raise ConfigurationError(
                f"DATABASE_URL {mask_url(self.database_url)}: {error.reason}"
            ) from None
        except SchemaNotUpgradableError as error:
            raise ConfigurationError(str(error)) from None
        self.crawler.stats.inc_value("archive/engines_built")

    # ------------------------------------------------------------------ signals

    def spider_opened(self, spider: Spider) -> None:
        """Record the run, then take the lock (or close as ``already_running``)."""
        settings = dict(self.recorded_settings, DATABASE_URL=self.archive.url)
        self.run_id = self.archive.runs.start(spider.name, settings)
        # For people reading the stats; no component reads it back.
        self.crawler.stats.set_value("archive/run_id", self.run_id)
        if self.lock_enabled:
            self._take_lock(spider.name)
        if self.learning is not None:
            self._load_boilerplate(spider.name)

    def _load_boilerplate(self, site: str) -> None:
        """The site's applied boilerplate, for extraction. Unreadable: the crawl goes
        on without it (bodies keep the blocks; one log line, one stat)."""
        assert self.learning is not None
        stats = self.crawler.stats
        try:
            self.boilerplate = self.archive.boilerplate.applied(site, self.learning.thresholds)
        except ArchiveError as error:
            stats.inc_value("archive/boilerplate/load_failed")
            logger.warning("Could not load the learned boilerplate of %s: %s", site, error.reason)
            return
        stats.set_value("archive/boilerplate/applied", len(self.boilerplate))

    def _learn_boilerplate(self, site: str) -> None:
        """Learn the site's boilerplate again after a run that stored new or changed
        articles. A failure changes nothing stored and not the exit code: the next
        run learns again, and `news-archive boilerplate learn` does it by hand."""
        assert self.learning is not None
        stats = self.crawler.stats
        if not (stats.get_value("archive/stored/new") or stats.get_value("archive/stored/changed")):
            return
        try:
            learning = self.archive.boilerplate.learn(
                site,
                window=self.learning.window,
                min_articles=self.learning.thresholds.min_articles,
                min_characters=self.learning.min_characters,
                now=_now(),
            )
        except ArchiveError as error:
            stats.inc_value("archive/boilerplate/learn_failed")
            logger.error("Could not learn the boilerplate of %s: %s", site, error.reason)
            return
        except Exception:
            # A bug must not cost the run its record and its lock: said and counted.
            stats.inc_value("archive/boilerplate/learn_failed")
            logger.exception("Could not learn the boilerplate of %s", site)
            return
        stats.set_value("archive/boilerplate/learned", learning.blocks)
        stats.set_value("archive/boilerplate/learned_new", learning.new)
        logger.info(
            "Learned boilerplate of %s: %d block(s) in at least %d of its newest %d articles "
            "(%d new)",
            site,
            learning.blocks,
            self.learning.thresholds.min_articles,
            learning.site_articles,
            learning.new,
        )

    def _take_lock(self, spider_name: str) -> None:
        stats = self.crawler.stats
        result = self.archive.locks.acquire(
            spider_name, self.run_id, self.hostname, self.pid, _now(), self.stale_after
        )
        if not result.acquired:
            held_by = f"{result.holder} since {_iso(result.holder.acquired_at)}"
            stats.set_value("archive/lock/held_by", held_by)
            logger.warning("Another %s crawl is running (%s); exiting", spider_name, held_by)
            raise CloseSpider(ALREADY_RUNNING)
        self._lock_held = True
        if result.taken_over is not None:
            dead = result.taken_over
            stats.set_value("archive/lock/taken_over", str(dead))
            logger.warning(
                "Took over the %s run lock of a dead crawl (%s, last heartbeat %s)",
                spider_name,
                dead,
                _iso(dead.heartbeat_at),
            )
        self._beat = LoopingCall(self._heartbeat, spider_name)
        self._beat.start(self.heartbeat_seconds, now=False)

    def _heartbeat(self, spider_name: str) -> None:
        try:
            still_held = self.archive.locks.heartbeat(
                spider_name, self.pid, _now(), hostname=self.hostname
            )
        except ArchiveError as error:
            # An outage must not stop the LoopingCall: the next beat may pass, and the
            # lock only goes stale after RUN_LOCK_STALE_AFTER.
            logger.warning("Run lock heartbeat failed: %s", error)
            return
        if not still_held:
            self.crawler.stats.inc_value("archive/lock/lost")
            logger.error(
                "The %s run lock was taken over by another crawl (no heartbeat for %s?)",
                spider_name,
                self.stale_after,
            )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """Record how the run ended, judge its health, give the lock back."""
        self.finish_reason = reason
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        try:
            # A run cut short (a signal, a limit) ends at once; the next one learns.
            if self.learning is not None and reason == FINISHED:
                self._learn_boilerplate(spider.name)
            if self.run_id is not None:
                self._record_end(spider.name, reason)
        finally:
            self._release_lock(spider.name)

    def _record_end(self, spider_name: str, reason: str) -> None:
        """Figures and health first, so that the stats stored last include the verdict."""
        assert self.run_id is not None
        stats = self.crawler.stats
        try:
            figures = {"hostname": self.hostname, "pid": self.pid, **run_figures(stats.get_stats())}
            self.archive.runs.record_figures(self.run_id, figures)
            if self.checks_enabled and reason != ALREADY_RUNNING:
                self._judge_health(spider_name)
            self.archive.runs.finish(self.run_id, reason, stats.get_stats(), _now())
        except ArchiveError as error:
            logger.error("Could not record the end of run %s: %s", self.run_id, error)

    def _judge_health(self, spider_name: str) -> None:
        assert self.run_id is not None
        stats = self.crawler.stats
        history = int(self.thresholds["HEALTH_HISTORY_RUNS"])
        previous = self.archive.runs.previous(spider_name, history, self.run_id)
        run = RunInput(
            spider_name, stats.get_stats(), previous, self.thresholds, self.finish_reason
        )
        results = evaluate(run)
        failed = [result for result in results if not result.ok]
        for result in failed:
            stats.inc_value(f"archive/health/failed/{result.name}")
            logger.error("HEALTH CHECK FAILED: %s (%s)", result.message, spider_name)
        self.health_ok = not failed
        stats.set_value("archive/health/ok", self.health_ok)
        if failed:
            logger.error(
                "%d of %d health checks failed for %s run %s; the crawl exits %d",
                len(failed),
                len(results),
                spider_name,
                self.run_id,
                HEALTH_FAILED_EXIT_CODE,
            )
        else:
            logger.info("All %d health checks passed for %s", len(results), spider_name)
        self.archive.runs.record_health(
            self.run_id, self.health_ok, [result.as_dict() for result in results], self.exit_code
        )

    def _release_lock(self, spider_name: str) -> None:
        if not self._lock_held:
            return
        try:
            self.archive.locks.release(spider_name, self.pid, hostname=self.hostname)
        except ArchiveError as error:
            # Not fatal: our pid is gone after exit, so the next run here takes it over.
            logger.warning("Could not release the %s run lock: %s", spider_name, error)
        finally:
            self._lock_held = False

    def engine_stopped(self) -> None:
        """After every component's close work (the pipeline's and the WARC index's
        last retries run beside ``spider_closed``): store the run's stats as they
        ended and the exit code they give, so that what was lost at the very end is
        in ``crawl_runs`` too, whichever runner started the crawl."""
        self.writes.close()  # after the pipeline's and the WARC index's last writes
        if self._archive is None:
            return
        try:
            if self.run_id is not None and self.finish_reason is not None:
                stats = self.crawler.stats.get_stats()
                finished_at = stats.get("finish_time") or _now()
                self._archive.runs.finish(self.run_id, self.finish_reason, stats, finished_at)
                self._archive.runs.record_exit_code(self.run_id, self.exit_code)
        except ArchiveError as error:
            logger.error("Could not record the final stats of run %s: %s", self.run_id, error)
        finally:
            self._archive.close()

    # ------------------------------------------------------------------ the outcome

    @property
    def exit_code(self) -> int:
        """What the crawl process should exit with, most important first: 5 when
        anything was lost (any ``archive/lost/*`` stat above 0), 75 when another crawl
        held the lock, 4 when the run was cut short (a finish reason other than
        ``finished``: SIGTERM/SIGINT, a closespider limit; or a listing not read to
        its end, ``frontier/errors``), 3 when a health check
        failed, else 0.  (78, a configuration error, never gets this far.)"""
        return self.outcome[0]

    @property
    def outcome(self) -> tuple[int, str]:
        """`exit_code` and why, in words for the log."""
        lost = lost_counts(self.crawler.stats.get_stats())
        if lost:
            shown = ", ".join(f"{key} {count}" for key, count in sorted(lost.items()))
            return DATA_LOST_EXIT_CODE, f"data lost ({shown})"
        if self.finish_reason == ALREADY_RUNNING:
            return ALREADY_RUNNING_EXIT_CODE, "another crawl of the spider is running"
        if self.finish_reason != FINISHED:
            return CUT_SHORT_EXIT_CODE, f"cut short (finish reason {self.finish_reason})"
        if dropped := self.crawler.stats.get_value("frontier/errors"):
            # A listing whose rest could not be read: its articles were never seen.
            return CUT_SHORT_EXIT_CODE, f"cut short ({dropped} listings not read to their end)"
        if self.health_ok is False:
            return HEALTH_FAILED_EXIT_CODE, "a health check failed"
        return HEALTHY_EXIT_CODE, "complete and healthy"

    def record_exit_code(self, exit_code: int) -> None:
        """Store the exit code the process ends with in the run's row."""
        if self.run_id is None:
            return
        try:
            self.archive.runs.record_exit_code(self.run_id, exit_code)
        except ArchiveError as error:
            # The exit code itself still reaches the scheduler; only the record is lost.
            logger.error(
                "Could not record exit code %d of run %s: %s", exit_code, self.run_id, error
            )
        finally:
            self.archive.close()


@dataclass(frozen=True, slots=True)
class BoilerplateSettings:
    """The ``BOILERPLATE_*`` settings of a crawl."""

    thresholds: Thresholds
    window: int
    min_characters: int

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> BoilerplateSettings | None:
        """The settings, or None when ``BOILERPLATE_ENABLED`` is off."""
        if not settings.getbool("BOILERPLATE_ENABLED"):
            return None
        thresholds = Thresholds(
            settings.getint("BOILERPLATE_MIN_ARTICLES"), settings.getfloat("BOILERPLATE_MIN_SHARE")
        )
        if thresholds.min_articles < 2:
            raise ValueError("BOILERPLATE_MIN_ARTICLES must be at least 2")
        return cls(
            thresholds,
            settings.getint("BOILERPLATE_WINDOW"),
            settings.getint("BOILERPLATE_MIN_CHARACTERS"),
        )


def _thresholds(settings: BaseSettings) -> dict[str, Any]:
    missing = [name for name in HEALTH_SETTINGS if settings.get(name) is None]
    if missing:
        # A check without its threshold would judge against nothing: refuse to start.
        raise ConfigurationError(f"health check settings missing: {', '.join(missing)}")
    return {name: threshold_setting(settings, name) for name in HEALTH_SETTINGS}


def threshold_setting(settings: BaseSettings, name: str) -> Any:
    """A threshold as the checks want it: a dict for per-spider mappings (given on
    the command line as JSON), 1.0/0.0 for a flag (``True``/``False``, as text too),
    a float otherwise."""
    value = settings.get(name)
    if isinstance(value, dict) or (isinstance(value, str) and value.lstrip().startswith("{")):
        return settings.getdict(name)
    if isinstance(value, bool) or str(value).strip().lower() in ("true", "false"):
        return float(settings.getbool(name))
    try:
        return settings.getfloat(name)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
