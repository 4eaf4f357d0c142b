"""Extensions tests add to a real crawl (``-s EXTENSIONS=...``) to watch the engine
from inside; what they see ends in the run's stats (``crawl_runs.stats``)."""

from __future__ import annotations

from scrapy import Request, signals
from scrapy.crawler import Crawler


class SchedulerProbe:
    """Counts, in ``probe/scheduler_max``, the most requests the scheduler held at once
    (read as each request is scheduled, the new one included)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SchedulerProbe:
        probe = cls(crawler)
        crawler.signals.connect(probe.request_scheduled, signal=signals.request_scheduled)
        return probe

    def request_scheduled(self, request: Request) -> None:
        engine = self.crawler.engine
        assert engine is not None and engine.scheduler is not None
        # The signal is sent before the request is queued.
        held = len(engine.scheduler) + 1  # type: ignore[arg-type]
        self.crawler.stats.max_value("probe/scheduler_max", held)
