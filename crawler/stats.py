"""The crawl's stats collector: Scrapy's in-memory one, without the per-attribute
look-up Scrapy 2.19 wraps every access in.

Scrapy 2.19's `StatsCollector.__getattribute__` looks for a cached wrapper before
every attribute (``_stats`` inside each method included), raising and catching an
`AttributeError` each time, to warn when a caller still passes ``spider=``. A stat
costs 2 µs instead of 0.1, and a crawl updates about twenty-five stats a page on the
reactor thread. Here attributes are plain attributes again; callers that pass
``spider=`` are served as before, without the deprecation warning.
"""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector


class ArchiveStats(MemoryStatsCollector):
    """`MemoryStatsCollector` (the stats of the last run kept per spider name) with
    plain attribute access."""

    __getattribute__ = object.__getattribute__
