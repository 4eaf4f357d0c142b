"""The run lock as a Scrapy extension: a second crawl of a spider that is
already running against the same database exits at once, writing nothing.

The check runs on ``spider_opened``: the pipeline has migrated the database and
recorded the run (``archive/run_id`` in stats) by then, and Scrapy has not yet
started the engine, so raising `CloseSpider` there closes the spider before a
single start request is read.  The run ends with the finish reason
``already_running`` (the ``crawl`` command turns it into exit code 75).

Settings: ``RUN_LOCK_ENABLED`` (bool), ``RUN_LOCK_STALE_AFTER`` (seconds without a
heartbeat after which another host's lock counts as dead), ``RUN_LOCK_HEARTBEAT``
(seconds between heartbeats); the database is ``DATABASE_URL``.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, NotConfigured
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.task import LoopingCall

from news_archive.storage.engine import create_archive_engine
from news_archive.storage.locks import acquire_run_lock, heartbeat, release_run_lock

logger = logging.getLogger(__name__)

ALREADY_RUNNING = "already_running"


class RunLock:
    """Hold the spider's row in ``crawl_locks`` for the whole crawl."""

    def __init__(
        self,
        crawler: Crawler,
        database_url: str,
        stale_after: timedelta,
        heartbeat_seconds: float,
    ) -> None:
        self.crawler = crawler
        self.database_url = database_url
        self.stale_after = stale_after
        self.heartbeat_seconds = heartbeat_seconds
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.engine: Engine | None = None
        self.held = False
        self.beat: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunLock:
        settings = crawler.settings
        if not settings.getbool("RUN_LOCK_ENABLED", True):
            raise NotConfigured("RUN_LOCK_ENABLED is off")
        extension = cls(
            crawler,
            settings.get("DATABASE_URL"),
            timedelta(seconds=settings.getfloat("RUN_LOCK_STALE_AFTER", 600)),
            settings.getfloat("RUN_LOCK_HEARTBEAT", 30),
        )
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Spider) -> None:
        """Take the lock, or close the spider as ``already_running``."""
        stats = self.crawler.stats
        assert stats is not None
        self.engine = create_archive_engine(self.database_url)
        result = acquire_run_lock(
            self.engine,
            spider.name,
            stats.get_value("archive/run_id"),
            self.hostname,
            self.pid,
            datetime.now(UTC),
            self.stale_after,
        )
        holder = result.holder or {}
        if not result.acquired:
            held_by = (
                f"pid {holder.get('pid')} on host {holder.get('hostname')} "
                f"since {_iso(holder.get('acquired_at'))}"
            )
            stats.set_value("archive/lock/held_by", held_by)
            logger.warning("Another %s crawl is running (%s); exiting", spider.name, held_by)
            raise CloseSpider(ALREADY_RUNNING)
        self.held = True
        if result.taken_over is not None:
            dead = result.taken_over
            stats.set_value(
                "archive/lock/taken_over", f"pid {dead['pid']} on host {dead['hostname']}"
            )
            logger.warning(
                "Took over the %s run lock of a dead crawl (pid %s on host %s, last heartbeat %s)",
                spider.name,
                dead["pid"],
                dead["hostname"],
                _iso(dead["heartbeat_at"]),
            )
        self.beat = LoopingCall(self._heartbeat, spider.name)
        self.beat.start(self.heartbeat_seconds, now=False)

    def _heartbeat(self, spider_name: str) -> None:
        assert self.engine is not None
        try:
            still_held = heartbeat(
                self.engine, spider_name, self.pid, datetime.now(UTC), hostname=self.hostname
            )
        except SQLAlchemyError as error:
            # A database outage must not stop the LoopingCall: the next beat may pass,
            # and the lock only goes stale after RUN_LOCK_STALE_AFTER.
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
        """Stop the heartbeat and give the lock back."""
        if self.beat is not None and self.beat.running:
            self.beat.stop()
        if self.engine is None:
            return
        try:
            if self.held:
                release_run_lock(self.engine, spider.name, self.pid, hostname=self.hostname)
        except SQLAlchemyError as error:
            # Not fatal: our pid is gone after exit, so the next run here takes it over.
            logger.warning("Could not release the %s run lock: %s", spider.name, error)
        finally:
            self.held = False
            self.engine.dispose()


def _iso(value: object) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
