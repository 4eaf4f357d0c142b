"""Scrapy settings of the archive: the only module that reads the environment.

``DATABASE_URL``, ``REPLAY_DIR``, ``WARC_DIR``, ``WARC_ENABLED``, ``INCREMENTAL``,
``SITES_FILE``, ``DISPLAY_TIME_ZONE`` and ``REDIS_URL`` may be given as environment variables
(shared/INTERFACE.md); ``-s NAME=VALUE`` on the command line wins over the environment.
Every default is written here once: components read their settings without defaults
of their own.
"""

from __future__ import annotations

import os


def _environment_flag(name: str, default: bool) -> bool:
    """A boolean setting given as an environment variable (``0``/``false``/``no``/``off``
    are False), else `default`."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


BOT_NAME = "news_archive"
SPIDER_MODULES = ["news_archive.crawler.spiders"]
NEWSPIDER_MODULE = "news_archive.crawler.spiders"
# Sites on a known CMS from configuration alone: a TOML file of [[site]] entries
# (docs/adding-a-site.md); unset, only the sites declared in crawler/sites/. The
# spider loader adds a spider per configured site.
SITES_FILE = os.environ.get("SITES_FILE") or None
SPIDER_LOADER_CLASS = "news_archive.crawler.spiders.sites.SiteSpiderLoader"

# --- the archive -----------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or "sqlite:///archive.db"
REPLAY_DIR = os.environ.get("REPLAY_DIR") or None
# The time zone people read dates in (IANA name): the days of `news-archive stats`,
# the dates of --since/--until, and the times the command line and exports print.
# The archive stores UTC whatever this says (docs/archive.md#time-zone).
DISPLAY_TIME_ZONE = os.environ.get("DISPLAY_TIME_ZONE") or "Asia/Seoul"
# Articles written per transaction (see FINDINGS.md: per-row commits are 5x slower).
ARCHIVE_BATCH_SIZE = 50
# Seconds the pipeline keeps retrying writes (exponential backoff) while the database
# is unreachable, e.g. a PostgreSQL restart, before it gives buffered articles up as lost.
ARCHIVE_RETRY_SECONDS = 120

# --- learned boilerplate (docs/archive.md#learned-boilerplate) ---------------------
# Body lines recurring verbatim in many articles of a site are learned at the end of
# each crawl that stored new articles, and dropped by extraction once their evidence
# reaches both thresholds (or a reviewer confirms them). Read from the environment
# too, so that `news-archive boilerplate` and `reextract` judge as the crawls do.
BOILERPLATE_ENABLED = _environment_flag("BOILERPLATE_ENABLED", True)
# Lines shorter than this many characters are never blocks (list markers, one word).
BOILERPLATE_MIN_CHARACTERS = int(os.environ.get("BOILERPLATE_MIN_CHARACTERS") or 10)
# A learning reads the bodies of the site's newest this many articles.
BOILERPLATE_WINDOW = int(os.environ.get("BOILERPLATE_WINDOW") or 1000)
# A block is learned (and may apply) once in at least this many distinct articles...
BOILERPLATE_MIN_ARTICLES = int(os.environ.get("BOILERPLATE_MIN_ARTICLES") or 5)
# ...and applies without review only in at least this share (0..1) of those read.
BOILERPLATE_MIN_SHARE = float(os.environ.get("BOILERPLATE_MIN_SHARE") or 0.2)
# --- end learned boilerplate ---------------------------------------------------------

# --- database faults: timeouts and outages --------------------------------------
# PostgreSQL: seconds to open a connection; seconds a statement may run (the server
# cancels it; a crawl's statements are small batches, well under a second) -- the
# client also gives up on any answer 5 s after that, so a hung server is an outage
# within seconds (docs/operations.md#database-faults), never a frozen crawl.
DATABASE_CONNECT_TIMEOUT = 10
DATABASE_STATEMENT_TIMEOUT = 15
# TCP keepalives: a vanished peer is noticed within idle + interval x count seconds.
DATABASE_KEEPALIVE_IDLE = 10
DATABASE_KEEPALIVE_INTERVAL = 5
DATABASE_KEEPALIVE_COUNT = 3
# During an outage the pipeline keeps what it could not write; once this many rows
# wait, the crawl is paused (no new downloads) until the database is back.
ARCHIVE_BUFFER_LIMIT = 1000
# --- end database faults ---------------------------------------------------------

# Incremental crawls: fetch feeds, new articles and due revisits only (README).
INCREMENTAL = _environment_flag("INCREMENTAL", True)
# AGE=INTERVAL steps by article age; see crawler/schedule.py.
REVISIT_SCHEDULE = "1d=3h,7d=1d,30d=7d,*=90d"
# At most this many due revisits per run, most overdue first.
REVISIT_LIMIT = 500

# Raw capture: every response into gzip WARC files under WARC_DIR (README).
WARC_ENABLED = _environment_flag("WARC_ENABLED", True)
WARC_DIR = os.environ.get("WARC_DIR") or "warc"
WARC_MAX_BYTES = 100 * 1024 * 1024

# --- WARC capture index -------------------------------------------------------------
# The captures table is written in batches of WARC_INDEX_BATCH_SIZE rows (and right after
# each article write, with the links of captures to the versions they produced). While
# the database is unreachable, up to WARC_INDEX_MAX_PENDING rows and as many links wait
# in memory (about 300 bytes each); beyond that the oldest are counted archive/lost/*.
WARC_INDEX_BATCH_SIZE = 100
WARC_INDEX_MAX_PENDING = 100_000

SPIDER_MIDDLEWARES = {
    # In replay: a damaged WARC record is a bad_replay problem at start.
    "news_archive.crawler.middlewares.replay.ReplayDamageMiddleware": 500,
    # Skip what is not due, conditional revisits, due revisits, the next visit.
    "news_archive.crawler.middlewares.incremental.IncrementalMiddleware": 550,
    # Next to the engine: a listing's requests reach the scheduler as it drains.
    "news_archive.crawler.middlewares.frontier.FrontierMiddleware": 100,
}
# --- bounded memory over big feeds (crawler/middlewares/frontier.py) ----------------
# A feed or list page's article requests are handed to the scheduler this many at a
# time, each time it runs dry, instead of all at once: memory does not grow with the
# URLs a feed names. 0: all at once (Scrapy's default behaviour).
FRONTIER_BATCH_SIZE = 100
# --- end bounded memory over big feeds ------------------------------------------------
# `scrapy check`: the callbacks' contracts take each site's URLs from its declaration.
SPIDER_CONTRACTS = {
    "news_archive.crawler.contracts.SiteFeedContract": 10,
    "news_archive.crawler.contracts.SiteArticleContract": 10,
}
ITEM_PIPELINES = {"news_archive.crawler.pipelines.ArchivePipeline": 300}
DOWNLOADER_MIDDLEWARES = {
    # Exact hosts, guarded redirects and meta refreshes read only where a page may
    # hold one, in place of Scrapy's own (see the block "identity and discovery" below).
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "news_archive.crawler.middlewares.offsite.ExactHostOffsiteMiddleware": 50,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "news_archive.crawler.middlewares.offsite.GuardedRedirectMiddleware": 600,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "news_archive.crawler.middlewares.offsite.MetaRefreshMiddleware": 580,
    # Downloader side of HttpCacheMiddleware (900): answered before any network I/O,
    # after redirect/retry/robots have seen the request.
    "news_archive.crawler.middlewares.replay.ReplayMiddleware": 950,
    # Downloader side of replay: sees every response as it came, before decompression.
    "news_archive.crawler.middlewares.capture.WarcCaptureMiddleware": 960,
}

# --- run lock ---------------------------------------------------------------
# At most one crawl per spider and database (a row in crawl_locks); a second run exits
# with finish reason already_running.  A lock whose process died on this host, or whose
# heartbeat is older than RUN_LOCK_STALE_AFTER seconds (another host), is taken over.
RUN_LOCK_ENABLED = True
RUN_LOCK_STALE_AFTER = 600
RUN_LOCK_HEARTBEAT = 30
# The crawl's owner (crawler/extensions/run.py): the one engine, the run record, the
# lock, the health checks and the exit code; every other component reaches it.
EXTENSIONS = {
    "news_archive.crawler.extensions.run.ArchiveRun": 100,
    # `-O articles.jsonl` exports articles, not the pipeline's bookkeeping records.
    "scrapy.extensions.feedexport.FeedExporter": None,
    "news_archive.crawler.extensions.feeds.ArticleFeedExporter": 0,
    # Extraction off the reactor, in worker processes (the block "bounded work per page").
    "news_archive.crawler.extensions.extraction.ExtractionPool": 200,
}
# --- end run lock -------------------------------------------------------------

# --- run records and health checks -------------------------------------------
# Our `crawl` replaces Scrapy's: exit 3 when a health check fails, 75 when already running.
COMMANDS_MODULE = "news_archive.crawler.commands"
# ArchiveRun fills the crawl_runs figures and runs the checks when the spider closes.
# False: figures are still recorded, checks are not run (crawl_runs.health_ok NULL).
HEALTH_CHECKS_ENABLED = True
# A run cut short (SIGTERM/SIGINT, a closespider limit: any finish reason but
# "finished") fails its health: what it did is partial. False: judged on what it did.
HEALTH_REQUIRE_FINISHED = True
# Feeds or list pages that did not parse (archive/failed/bad_feed) at most this many.
HEALTH_MAX_BAD_FEEDS = 0
# Replayed responses that could not be served (archive/failed/bad_replay: a damaged
# WARC record, a manifest file outside REPLAY_DIR) at most this many.
HEALTH_MAX_BAD_REPLAYS = 0
# Articles parsed at least this many when the feed or list pages had entries to fetch.
HEALTH_MIN_ARTICLES = 1
# Lowest share (0..1) of extracted articles having each field; a spider's entries win
# over "default". Most SKT posts name no author, so its author floor is 0.
HEALTH_FILL_FLOORS = {
    "default": {"title": 1.0, "published_at": 1.0, "body": 1.0, "author": 0.5},
    "skt_insight": {"author": 0.0},
}
# Highest share of stored articles whose body did not come from the site's body
# container (whole-page fallback, unknown template): any means the template changed.
HEALTH_MAX_FALLBACK_SHARE = 0.0
# Lowest mean body length, in characters (the seeds' articles average ~700).
HEALTH_MIN_MEAN_BODY_CHARS = 200
# Lowest mean body length as a share of the previous runs' mean: a collapse.
HEALTH_MIN_BODY_RATIO = 0.5
# Highest share of pages attempted that were rejected or failed.
HEALTH_MAX_ERROR_RATE = 0.5
# Lowest count of articles stored or skipped as not due, as a share of the median of
# the previous runs: the feed shrank or extraction stopped.
HEALTH_MIN_ARTICLE_RATIO = 0.5
# Fewer articles (pages, for the error rate) than this: rates and means are noise,
# e.g. a one-URL `-a urls=` fetch, and are not judged.
HEALTH_MIN_SAMPLE = 5
# Previous runs of the spider (finished, healthy) that make the baseline...
HEALTH_HISTORY_RUNS = 5
# ...and how many at least before the drop and collapse checks compare at all.
HEALTH_MIN_HISTORY_RUNS = 3
# --- end run records and health checks ---------------------------------------

# --- identity and discovery ---------------------------------------------------
# Requests go only to a site's exact `hosts` (crawler/middlewares/offsite.py): a
# subdomain the site does not list is off-site. A redirect off those hosts is recorded
# as offsite_redirect, one back into its own chain as redirect_loop.
# Longest link a feed or list page may give, in characters of the URL as requested
# (percent-encoded): longer ones are recorded as bad_link, not followed. Browsers and
# servers commonly stop near 2,000; the archive's URL keys stay well under the
# 2,704-byte B-tree row limit of PostgreSQL.
MAX_LINK_LENGTH = 2000
# --- end identity and discovery -----------------------------------------------

# --- bounded work per page ----------------------------------------------------
# No page may freeze the crawl, exhaust memory or fill the archive (docs/extraction.md).
# A response over DOWNLOAD_MAXSIZE bytes is cancelled (live) or refused (replay) and
# recorded as too_large; over DOWNLOAD_WARNSIZE a warning is logged.  Real article pages
# are about 140 KB (the largest seed page 130 KB).  Per request: meta download_maxsize.
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
# Extraction runs in this many worker processes, off the reactor (0: in the crawl's own
# process, with no time budget: for debugging).  Default: one per core.
EXTRACTION_WORKERS = os.cpu_count() or 1
# Seconds one page may take to extract before its worker is killed and replaced and the
# page recorded as a timeout problem (a real page takes about 0.02 s).
EXTRACTION_TIMEOUT = 10.0
# A page body over this many bytes is recorded as too_large without being parsed: cost
# grows faster than size (a 2 MB page of short paragraphs takes about 4 s).
EXTRACTION_MAX_BYTES = 2 * 1024 * 1024
# --- end bounded work per page ------------------------------------------------

# --- throughput ----------------------------------------------------------------
# Items of one response processed at once. Scrapy starts this many asyncio tasks for
# every response whatever it yields (default 100: 12 % of a crawl's time); an article
# page yields at most three items (alias, article, visit), a feed's requests need no
# concurrency, and the pipeline does not wait on I/O per item.
CONCURRENT_ITEMS = 4
# Scrapy's in-memory stats without 2.19's costly per-attribute hook (crawler/stats.py).
STATS_CLASS = "news_archive.crawler.stats.ArchiveStats"
# --- end throughput ------------------------------------------------------------

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
COOKIES_ENABLED = False

# --- no remote endpoints: nothing listens, nothing is left behind -------------
# Scrapy's telnet console, and its remote control (2.19: an HTTP server on 127.0.0.1
# that runs any Python code sent with its token, which it writes with its port to a
# job file under the user's state directory, ~/.local/state/scrapy/job_files; a
# killed crawl leaves the file behind). A scheduled crawl needs neither.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
# --- end no remote endpoints ------------------------------------------------------

# --- many workers, one crawl (docs/scaling.md) ---------------------------------------
# Set: this process is one worker of a crawl shared with every worker given the same
# URL (redis://host:6379/0): scrapy-redis's scheduler and duplicate filter, leased
# requests, seeding once, per-worker crawl_runs rows, politeness across workers.
# Unset: one process, as before (the add-on below then changes nothing).
REDIS_URL = os.environ.get("REDIS_URL") or None
# Prefix of every Redis key the crawls write (several archives may share one Redis).
REDIS_KEY_PREFIX = "news_archive"
# Given: the workers join this crawl id (e.g. one per scheduled day); unset: the
# spider's current crawl, or a new one when none runs.
REDIS_CRAWL_ID = None
# Seconds a popped request stays leased without its worker's heartbeat; then it goes
# back to the queue for another worker (its worker died).
REDIS_LEASE_SECONDS = 120
# Seconds between a worker's heartbeats (leases, registration, expired leases back to
# the queue); a worker is registered for three heartbeats.
REDIS_HEARTBEAT_SECONDS = 10
# Seconds a crawl's keys outlive its last heartbeat (every worker killed): a crawl
# restarted within it resumes its queue; after it, the next crawl starts fresh.
REDIS_CRAWL_TTL = 24 * 3600
# --- end many workers, one crawl ------------------------------------------------

# Scrapy add-ons, run in this order before any component is loaded: the switch to a
# shared crawl when REDIS_URL is set (crawler/distributed/); then what a crawl imports
# as it starts: components that are off are not imported, Scrapy's HTTP(S) handler
# only when a request reaches the network (crawler/startup.py).
ADDONS = {
    "news_archive.crawler.distributed.Distributed": 0,
    "news_archive.crawler.startup.LeanStartup": 10,
}

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
