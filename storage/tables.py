"""The table catalogue: each table of the archive as a SQLAlchemy Core `Table`,
defined once here on `metadata` and imported by every module that writes SQL
against it (and by `migrations/env.py`, whose autogenerate compares it with the
migrated database).

Every text column is `CleanText` (TEXT cleaned of control characters) and every
timestamp `UTCDateTime`.  A column is NOT NULL unless it says `nullable=True`.

The constraint and index names come from `NAMING_CONVENTION`, so that Alembic
migrations can refer to them by a predictable name on every backend (SQLite's
batch mode needs named constraints to drop or alter them).

Plain Core, no ORM: importing `sqlalchemy.orm` and mapping declarative classes
cost every command's start-up a tenth of a second, and nothing queries through
a `Session`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    text,
)

from news_archive.storage.types import CleanText, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# One row per distinct article (canonical URL), holding its newest version.
articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", CleanText(), nullable=False, index=True),
    Column("url", CleanText(), nullable=False, unique=True),
    Column("title", CleanText(), nullable=False),
    Column("subtitle", CleanText(), nullable=True),  # subtitle lines joined by "\n"
    Column("author", CleanText(), nullable=True),  # byline names joined by ", "
    Column("published_at", UTCDateTime(), nullable=False, index=True),
    Column("published_raw", CleanText(), nullable=False),
    Column("modified_at", UTCDateTime(), nullable=True),
    Column("modified_raw", CleanText(), nullable=True),
    Column("section", CleanText(), nullable=True),
    Column("language", CleanText(), nullable=True),
    Column("body", CleanText(), nullable=False),
    Column("content_hash", CleanText(), nullable=False),
    # The URL last fetched for this article.
    Column("fetched_url", CleanText(), nullable=False),
    # JSON object: field name -> signal it came from.
    Column("sources", CleanText(), nullable=True),
    # Hashes of the learned boilerplate blocks dropped from `body`, space-separated
    # (NULL: none): the blocks' evidence counts them (`boilerplate`).
    Column("dropped_blocks", CleanText(), nullable=True),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("last_changed_at", UTCDateTime(), nullable=False),
    # A site's articles by publication time: its day counts and date ranges read
    # the index alone (migration 0009).
    Index(None, "site", "published_at"),
)

# One row per distinct content version of an article, the first included.
versions = Table(
    "article_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("version", Integer, nullable=False),  # 1, 2, ... in capture order
    Column("title", CleanText(), nullable=False),
    Column("subtitle", CleanText(), nullable=True),
    Column("author", CleanText(), nullable=True),
    Column("body", CleanText(), nullable=False),
    Column("content_hash", CleanText(), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("modified_at", UTCDateTime(), nullable=True),
    # When this version was first fetched.
    Column("captured_at", UTCDateTime(), nullable=False),
    Column("fetched_url", CleanText(), nullable=False),
    # Why the version exists beyond a crawl, e.g. "re-extraction".
    Column("note", CleanText(), nullable=True),
    UniqueConstraint("article_id", "version"),
)

# A changed capture of an article held back as suspect (``suspect_truncation``):
# cut short in transfer, or its body lost more than half its length against the
# current version. Not in ``articles`` (whose row is always the current version)
# nor ``article_versions`` (versions that were current); published as a new version
# once a later fetch gives the same content. At most one per article: the newest
# suspect content replaces an older one.
held = Table(
    "held_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "article_id",
        Integer,
        ForeignKey("articles.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("title", CleanText(), nullable=False),
    Column("body", CleanText(), nullable=False),
    Column("content_hash", CleanText(), nullable=False),
    Column("fetched_url", CleanText(), nullable=False),
    # When this content was first fetched.
    Column("captured_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("reason", CleanText(), nullable=False),  # why it is suspect
)

# The tags of an article's newest version, in page order.
tags = Table(
    "article_tags",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("tag", CleanText(), nullable=False, index=True),
)

# The images of an article's newest version, in page order.
images = Table(
    "article_images",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("url", CleanText(), nullable=False),
    Column("caption", CleanText(), nullable=True),
    Column("alt", CleanText(), nullable=True),
)

# Another absolute URL found to name an article.
#
# `canonical_url` is deliberately not a foreign key: an alias (a redirect, a
# mobile URL, a feed link) may be learnt before the article row is stored.
aliases = Table(
    "url_aliases",
    metadata,
    Column("url", CleanText(), primary_key=True),
    Column("canonical_url", CleanText(), nullable=False, index=True),
    Column("site", CleanText(), nullable=False),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
)

# One spider run: when, how it ended, its settings and final stats (JSON).
runs = Table(
    "crawl_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("spider", CleanText(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("finish_reason", CleanText(), nullable=True),
    Column("settings", CleanText(), nullable=True),  # JSON object
    Column("stats", CleanText(), nullable=True),  # JSON object
    # At-a-glance figures of the run (also in `stats`), filled when it finishes.
    Column("hostname", CleanText(), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("requests", Integer, nullable=True),
    Column("responses_2xx", Integer, nullable=True),
    Column("responses_3xx", Integer, nullable=True),
    Column("responses_4xx", Integer, nullable=True),
    Column("responses_5xx", Integer, nullable=True),
    Column("bytes_downloaded", BigInteger, nullable=True),
    Column("articles_new", Integer, nullable=True),
    Column("articles_changed", Integer, nullable=True),
    Column("articles_unchanged", Integer, nullable=True),
    Column("articles_rejected", Integer, nullable=True),
    Column("articles_failed", Integer, nullable=True),
    # JSON object: reason -> count.
    Column("rejected_by_reason", CleanText(), nullable=True),
    Column("health_ok", Boolean, nullable=True),  # NULL: checks not run
    Column("health", CleanText(), nullable=True),  # JSON list of check results
    Column("exit_code", Integer, nullable=True),
    # A worker of a crawl shared through Redis (docs/scaling.md): the crawl's id, the
    # same in the rows of all its workers, and this worker's identity (host:pid).
    # NULL for a single-process run.
    Column("crawl_id", CleanText(), nullable=True, index=True),
    Column("worker", CleanText(), nullable=True),
)

# A page that yielded no article or a request that failed, with its reason.
errors = Table(
    "crawl_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("crawl_runs.id", ondelete="SET NULL"), nullable=True),
    Column("spider", CleanText(), nullable=False),
    Column("url", CleanText(), nullable=False),
    # HTTP status, when there was a response.
    Column("status", Integer, nullable=True),
    # Short slug: http_404, no_body, not_article, ...
    Column("reason", CleanText(), nullable=False),
    Column("detail", CleanText(), nullable=False, default="", server_default=text("''")),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Index(None, "spider", "occurred_at"),
)

# Revisit state of one canonical article URL: HTTP validators and when to look again.
#
# Kept apart from `articles` (no foreign key) because a URL is visited, and
# may answer 304, before or without an article row being written.
url_state = Table(
    "url_state",
    metadata,
    Column("url", CleanText(), primary_key=True),
    Column("site", CleanText(), nullable=False, index=True),
    Column("etag", CleanText(), nullable=True),
    # The HTTP Last-Modified header as sent.
    Column("last_modified", CleanText(), nullable=True),
    Column("last_status", Integer, nullable=True),
    # Drives the decaying revisit schedule.
    Column("published_at", UTCDateTime(), nullable=True),
    Column("last_visit_at", UTCDateTime(), nullable=False),
    Column("next_visit_at", UTCDateTime(), nullable=False, index=True),
    Column("visits", Integer, nullable=False, server_default=text("0")),
)

# At most one running crawl per spider and database: the row is the lock.
locks = Table(
    "crawl_locks",
    metadata,
    Column("spider", CleanText(), primary_key=True),
    Column("run_id", Integer, nullable=True),
    Column("hostname", CleanText(), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    # The holder's process start time (storage.locks.process_start_time): with the pid,
    # it tells the holder from a later process given the same pid.
    Column("process_start", BigInteger, nullable=True),
)

# One WARC record of a fetched response: where it is and what it produced.
captures = Table(
    "captures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("spider", CleanText(), nullable=False),
    Column("url", CleanText(), nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),
    Column("status", Integer, nullable=False),
    # WARC-Payload-Digest, sha1:BASE32.
    Column("payload_digest", CleanText(), nullable=False, index=True),
    # "response", or "revisit" for a payload stored before.
    Column("record_type", CleanText(), nullable=False),
    Column("warc_file", CleanText(), nullable=False),  # path relative to WARC_DIR
    # Of the record in the (gzip) file.
    Column("offset", BigInteger, nullable=False),
    # Compressed length of the record.
    Column("length", BigInteger, nullable=False),
    Column(
        "article_version_id",
        Integer,
        ForeignKey("article_versions.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Index(None, "url", "fetched_at"),
    UniqueConstraint("warc_file", "offset"),
)

# A block of body text (one body line) that recurs verbatim in many articles of
# a site: learned boilerplate, with its evidence and a reviewer's verdict.
#
# Whether extraction drops it follows from the evidence and the thresholds
# (``BOILERPLATE_MIN_ARTICLES``, ``BOILERPLATE_MIN_SHARE``) unless a reviewer
# decided: docs/archive.md, "Learned boilerplate".
boilerplate = Table(
    "boilerplate_blocks",
    metadata,
    Column("site", CleanText(), primary_key=True),
    Column("block_hash", CleanText(), primary_key=True),  # vocabulary.block_hash
    # The block, cut to BLOCK_TEXT_MAX characters.
    Column("text", CleanText(), nullable=False),
    # Distinct articles of the site carrying the block (in their body, or dropped from
    # it), the most any learning counted; and how many articles the last learning read.
    Column("articles", Integer, nullable=False),
    Column("site_articles", Integer, nullable=False),
    Column("first_learned_at", UTCDateTime(), nullable=False),
    # The last learning that counted it.
    Column("learned_at", UTCDateTime(), nullable=False),
    # NULL: automatic (the thresholds decide); "furniture": a reviewer confirmed it
    # (always dropped); "article": a reviewer says it is article text (never dropped).
    Column("verdict", CleanText(), nullable=True),
    Column("verdict_at", UTCDateTime(), nullable=True),
)
