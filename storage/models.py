"""The archive's tables as SQLAlchemy 2 typed models.

The constraint and index names come from `NAMING_CONVENTION`, so that Alembic
migrations can refer to them by a predictable name on every backend (SQLite's
batch mode needs named constraints to drop or alter them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import BigInteger, ForeignKey, Index, MetaData, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from news_archive.storage.types import CleanText, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base: every `str` is TEXT cleaned of control characters
    (`CleanText`) and every `datetime` is `UTCDateTime`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: CleanText(),
        datetime: UTCDateTime(),
    }


class ArticleRecord(Base):
    """One row per distinct article (canonical URL), holding its newest version."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(unique=True)
    title: Mapped[str]
    subtitle: Mapped[str | None]  # subtitle lines joined by "\n"
    author: Mapped[str | None]  # byline names joined by ", "
    published_at: Mapped[datetime] = mapped_column(index=True)
    published_raw: Mapped[str]
    modified_at: Mapped[datetime | None]
    modified_raw: Mapped[str | None]
    section: Mapped[str | None]
    language: Mapped[str | None]
    body: Mapped[str]
    content_hash: Mapped[str]
    fetched_url: Mapped[str]  # the URL last fetched for this article
    sources: Mapped[str | None]  # JSON object: field name -> signal it came from
    # Hashes of the learned boilerplate blocks dropped from `body`, space-separated
    # (NULL: none): the blocks' evidence counts them (BoilerplateBlock).
    dropped_blocks: Mapped[str | None]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    last_changed_at: Mapped[datetime]

    # A site's articles by publication time: its day counts and date ranges read
    # the index alone (migration 0009).
    __table_args__ = (Index(None, "site", "published_at"),)


class ArticleVersion(Base):
    """One row per distinct content version of an article, the first included."""

    __tablename__ = "article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]  # 1, 2, ... in capture order
    title: Mapped[str]
    subtitle: Mapped[str | None]
    author: Mapped[str | None]
    body: Mapped[str]
    content_hash: Mapped[str]
    published_at: Mapped[datetime]
    modified_at: Mapped[datetime | None]
    captured_at: Mapped[datetime]  # when this version was first fetched
    fetched_url: Mapped[str]
    note: Mapped[str | None]  # why the version exists beyond a crawl, e.g. "re-extraction"


class HeldVersion(Base):
    """A changed capture of an article held back as suspect (``suspect_truncation``):
    cut short in transfer, or its body lost more than half its length against the
    current version. Not in ``articles`` (whose row is always the current version)
    nor ``article_versions`` (versions that were current); published as a new version
    once a later fetch gives the same content. At most one per article: the newest
    suspect content replaces an older one."""

    __tablename__ = "held_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), unique=True
    )
    title: Mapped[str]
    body: Mapped[str]
    content_hash: Mapped[str]
    fetched_url: Mapped[str]
    captured_at: Mapped[datetime]  # when this content was first fetched
    last_seen_at: Mapped[datetime]
    reason: Mapped[str]  # why it is suspect


class ArticleTag(Base):
    """The tags of an article's newest version, in page order."""

    __tablename__ = "article_tags"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(index=True)


class ArticleImage(Base):
    """The images of an article's newest version, in page order."""

    __tablename__ = "article_images"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str]
    caption: Mapped[str | None]
    alt: Mapped[str | None]


class UrlAlias(Base):
    """Another absolute URL found to name an article.

    `canonical_url` is deliberately not a foreign key: an alias (a redirect, a
    mobile URL, a feed link) may be learnt before the article row is stored.
    """

    __tablename__ = "url_aliases"

    url: Mapped[str] = mapped_column(primary_key=True)
    canonical_url: Mapped[str] = mapped_column(index=True)
    site: Mapped[str]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class CrawlRun(Base):
    """One spider run: when, how it ended, its settings and final stats (JSON)."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    spider: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    finish_reason: Mapped[str | None]
    settings: Mapped[str | None]  # JSON object
    stats: Mapped[str | None]  # JSON object
    # At-a-glance figures of the run (also in `stats`), filled when it finishes.
    hostname: Mapped[str | None]
    pid: Mapped[int | None]
    requests: Mapped[int | None]
    responses_2xx: Mapped[int | None]
    responses_3xx: Mapped[int | None]
    responses_4xx: Mapped[int | None]
    responses_5xx: Mapped[int | None]
    bytes_downloaded: Mapped[int | None] = mapped_column(BigInteger)
    articles_new: Mapped[int | None]
    articles_changed: Mapped[int | None]
    articles_unchanged: Mapped[int | None]
    articles_rejected: Mapped[int | None]
    articles_failed: Mapped[int | None]
    rejected_by_reason: Mapped[str | None]  # JSON object: reason -> count
    health_ok: Mapped[bool | None]  # None: checks not run
    health: Mapped[str | None]  # JSON list of check results
    exit_code: Mapped[int | None]


class CrawlError(Base):
    """A page that yielded no article or a request that failed, with its reason."""

    __tablename__ = "crawl_errors"
    __table_args__ = (Index(None, "spider", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    spider: Mapped[str]
    url: Mapped[str]
    status: Mapped[int | None]  # HTTP status, when there was a response
    reason: Mapped[str]  # short slug: http_404, no_body, not_article, ...
    detail: Mapped[str] = mapped_column(default="", server_default=text("''"))
    occurred_at: Mapped[datetime]


class UrlState(Base):
    """Revisit state of one canonical article URL: HTTP validators and when to look again.

    Kept apart from `articles` (no foreign key) because a URL is visited, and
    may answer 304, before or without an article row being written.
    """

    __tablename__ = "url_state"

    url: Mapped[str] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(index=True)
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]  # the HTTP Last-Modified header as sent
    last_status: Mapped[int | None]
    published_at: Mapped[datetime | None]  # drives the decaying revisit schedule
    last_visit_at: Mapped[datetime]
    next_visit_at: Mapped[datetime] = mapped_column(index=True)
    visits: Mapped[int] = mapped_column(server_default=text("0"))


class CrawlLock(Base):
    """At most one running crawl per spider and database: the row is the lock."""

    __tablename__ = "crawl_locks"

    spider: Mapped[str] = mapped_column(primary_key=True)
    run_id: Mapped[int | None]
    hostname: Mapped[str]
    pid: Mapped[int]
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    # The holder's process start time (storage.locks.process_start_time): with the pid,
    # it tells the holder from a later process given the same pid.
    process_start: Mapped[int | None] = mapped_column(BigInteger)


class Capture(Base):
    """One WARC record of a fetched response: where it is and what it produced."""

    __tablename__ = "captures"
    __table_args__ = (Index(None, "url", "fetched_at"), UniqueConstraint("warc_file", "offset"))

    id: Mapped[int] = mapped_column(primary_key=True)
    spider: Mapped[str]
    url: Mapped[str]
    fetched_at: Mapped[datetime]
    status: Mapped[int]
    payload_digest: Mapped[str] = mapped_column(index=True)  # WARC-Payload-Digest, sha1:BASE32
    record_type: Mapped[str]  # "response", or "revisit" for a payload stored before
    warc_file: Mapped[str]  # path relative to WARC_DIR
    offset: Mapped[int] = mapped_column(BigInteger)  # of the record in the (gzip) file
    length: Mapped[int] = mapped_column(BigInteger)  # compressed length of the record
    article_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("article_versions.id", ondelete="SET NULL"), index=True
    )


class BoilerplateBlock(Base):
    """A block of body text (one body line) that recurs verbatim in many articles of
    a site: learned boilerplate, with its evidence and a reviewer's verdict.

    Whether extraction drops it follows from the evidence and the thresholds
    (``BOILERPLATE_MIN_ARTICLES``, ``BOILERPLATE_MIN_SHARE``) unless a reviewer
    decided: docs/archive.md, "Learned boilerplate"."""

    __tablename__ = "boilerplate_blocks"

    site: Mapped[str] = mapped_column(primary_key=True)
    block_hash: Mapped[str] = mapped_column(primary_key=True)  # vocabulary.block_hash
    text: Mapped[str]  # the block, cut to BLOCK_TEXT_MAX characters
    # Distinct articles of the site carrying the block (in their body, or dropped from
    # it), the most any learning counted; and how many articles the last learning read.
    articles: Mapped[int]
    site_articles: Mapped[int]
    first_learned_at: Mapped[datetime]
    learned_at: Mapped[datetime]  # the last learning that counted it
    # NULL: automatic (the thresholds decide); "furniture": a reviewer confirmed it
    # (always dropped); "article": a reviewer says it is article text (never dropped).
    verdict: Mapped[str | None]
    verdict_at: Mapped[datetime | None]
