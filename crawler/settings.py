"""Scrapy settings of the archive: the only module that reads the environment.

``DATABASE_URL`` and ``REPLAY_DIR`` may be given as environment variables;
``-s NAME=VALUE`` on the command line wins over both.
"""

from __future__ import annotations

import os

BOT_NAME = "news_archive"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# --- the archive -----------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or "sqlite:///archive.db"
REPLAY_DIR = os.environ.get("REPLAY_DIR") or None
# Articles written per transaction (see FINDINGS.md: per-row commits are 5x slower).
ARCHIVE_BATCH_SIZE = 50

ITEM_PIPELINES = {"crawler.pipelines.ArchivePipeline": 300}
DOWNLOADER_MIDDLEWARES = {
    # Downloader side of HttpCacheMiddleware (900): answered before any network I/O,
    # after redirect/retry/robots have seen the request.
    "crawler.middlewares.replay.ReplayMiddleware": 950,
}

# --- politeness: a daily crawl of two small sites needs no hurry --------------
USER_AGENT = "news-archive/0.1 (news archive crawler; scheduled daily; Scrapy)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
RETRY_TIMES = 2
DOWNLOAD_TIMEOUT = 30
# Feeds and article pages are small; refuse anything absurd rather than exhaust memory.
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
