"""The WARC capture index (table ``captures``): one row per WARC record written."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from news_archive.storage import tables


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    spider: str
    url: str
    fetched_at: datetime
    status: int
    payload_digest: str
    record_type: str
    warc_file: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """Where a payload with a given digest was first written, for a revisit record."""

    url: str
    fetched_at: datetime


def add(engine: Engine, record: CaptureRecord) -> int:
    """Insert one capture row; its id."""
    with engine.begin() as connection:
        return connection.execute(
            tables.captures.insert().values(**asdict(record)).returning(tables.captures.c.id)
        ).scalar_one()


def first_with_digest(engine: Engine, digest: str) -> StoredPayload | None:
    """The first full response record with this payload digest, if any."""
    query = (
        select(tables.captures.c.url, tables.captures.c.fetched_at)
        .where(
            tables.captures.c.payload_digest == digest, tables.captures.c.record_type == "response"
        )
        .order_by(tables.captures.c.id)
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return StoredPayload(row.url, row.fetched_at) if row else None


def link_to_version(engine: Engine, links: list[tuple[int, str]]) -> None:
    """Point each capture id at the newest version of the article at the canonical URL."""
    if not links:
        return
    with engine.begin() as connection:
        for capture_id, canonical_url in links:
            newest = (
                select(tables.versions.c.id)
                .join(tables.articles, tables.articles.c.id == tables.versions.c.article_id)
                .where(tables.articles.c.url == canonical_url)
                .order_by(tables.versions.c.version.desc())
                .limit(1)
                .scalar_subquery()
            )
            connection.execute(
                update(tables.captures)
                .where(tables.captures.c.id == capture_id)
                .values(article_version_id=newest)
            )


@dataclass(frozen=True, slots=True)
class ReextractionTarget:
    """The newest capture that produced an archived article: what to extract again."""

    capture_id: int
    site: str
    url: str  # as fetched
    canonical_url: str
    fetched_at: datetime
    warc_file: str
    offset: int


def reextraction_targets(
    engine: Engine,
    *,
    site: str | None = None,
    published_since: datetime | None = None,
    published_until: datetime | None = None,
    url: str | None = None,
) -> list[ReextractionTarget]:
    """For each archived article (filtered by site, publication time range, or its
    canonical or captured URL), its newest full-response capture linked to a version."""
    versions = tables.versions
    newest = (
        select(
            tables.articles.c.id.label("article_id"),
            func.max(tables.captures.c.id).label("capture_id"),
        )
        .join(versions, versions.c.article_id == tables.articles.c.id)
        .join(tables.captures, tables.captures.c.article_version_id == versions.c.id)
        .where(tables.captures.c.status == 200)
        .group_by(tables.articles.c.id)
    )
    if site is not None:
        newest = newest.where(tables.articles.c.site == site)
    if published_since is not None:
        newest = newest.where(tables.articles.c.published_at >= published_since)
    if published_until is not None:
        newest = newest.where(tables.articles.c.published_at < published_until)
    if url is not None:
        newest = newest.where((tables.articles.c.url == url) | (tables.captures.c.url == url))
    chosen = newest.subquery()
    query = (
        select(
            tables.captures.c.id,
            tables.articles.c.site,
            tables.captures.c.url,
            tables.articles.c.url,
            tables.captures.c.fetched_at,
            tables.captures.c.warc_file,
            tables.captures.c.offset,
        )
        .join(chosen, chosen.c.capture_id == tables.captures.c.id)
        .join(tables.articles, tables.articles.c.id == chosen.c.article_id)
        .order_by(tables.captures.c.id)
    )
    with engine.connect() as connection:
        return [ReextractionTarget(*row) for row in connection.execute(query)]
