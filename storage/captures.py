"""The WARC capture index (table ``captures``): one row per WARC record written.

A capture is named by where its record starts (``warc_file``, ``offset``: unique),
which the writer knows before any row exists; so rows can be written in batches,
late (after a database outage), and linked to the version they produced by that
name and the version's content hash, whenever the article itself is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, bindparam, func, select, update

from news_archive.storage import tables
from news_archive.storage.engine import READ_ONLY_OPTION, dialect_insert
from news_archive.storage.types import fit_key


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


@dataclass(frozen=True, slots=True)
class CaptureLink:
    """A capture (its record's file and offset) and the version it produced: the
    newest version with `content_hash` of the article at canonical `url`."""

    warc_file: str
    offset: int
    url: str
    content_hash: str


def write(engine: Engine, records: Sequence[CaptureRecord], links: Sequence[CaptureLink]) -> None:
    """Insert `records` and then apply `links` (to these rows or earlier ones), in
    one transaction: one statement each, however many rows.

    A record already indexed (a batch retried after its commit was not confirmed)
    is passed over; a link whose version does not exist sets no version."""
    captures = tables.captures
    with engine.begin() as connection:
        if records:
            insert = dialect_insert(engine)
            connection.execute(
                insert(captures).on_conflict_do_nothing(
                    index_elements=[captures.c.warc_file, captures.c.offset]
                ),
                # the URL is indexed: cut to a key's length (the WARC record has it whole)
                [{**asdict(record), "url": fit_key(record.url)} for record in records],
            )
        if links:
            version = (
                select(tables.versions.c.id)
                .join(tables.articles, tables.articles.c.id == tables.versions.c.article_id)
                .where(
                    tables.articles.c.url == bindparam("link_url"),
                    tables.versions.c.content_hash == bindparam("link_hash"),
                )
                .order_by(tables.versions.c.version.desc())
                .limit(1)
                .scalar_subquery()
            )
            connection.execute(
                update(captures)
                .where(
                    captures.c.warc_file == bindparam("link_file"),
                    captures.c.offset == bindparam("link_offset"),
                )
                .values(article_version_id=version),
                [
                    {
                        "link_file": link.warc_file,
                        "link_offset": link.offset,
                        "link_url": link.url,
                        "link_hash": link.content_hash,
                    }
                    for link in links
                ],
            )


# Built once: asked for every response a crawl captures.
_FIRST_WITH_DIGESTS = (
    select(tables.captures.c.payload_digest, tables.captures.c.url, tables.captures.c.fetched_at)
    .where(
        tables.captures.c.payload_digest.in_(bindparam("digests", expanding=True)),
        tables.captures.c.record_type == "response",
    )
    .order_by(tables.captures.c.id)
)


def first_with_digests(engine: Engine, digests: Sequence[str]) -> dict[str, StoredPayload]:
    """For each of `digests` that a full response record has, the first such record
    (one query for all: the WARC writer asks for a batch of responses at once)."""
    if not digests:
        return {}
    found: dict[str, StoredPayload] = {}
    with _reader(engine).connect() as connection:
        for row in connection.execute(_FIRST_WITH_DIGESTS, {"digests": sorted(set(digests))}):
            found.setdefault(row.payload_digest, StoredPayload(row.url, row.fetched_at))
    return found


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
    newest = _filtered(newest, site, published_since, published_until)
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
    with _reader(engine).connect() as connection:
        return [ReextractionTarget(*row) for row in connection.execute(query)]


def articles_without_capture(
    engine: Engine,
    *,
    site: str | None = None,
    published_since: datetime | None = None,
    published_until: datetime | None = None,
    url: str | None = None,
) -> list[tuple[str, str]]:
    """(site, canonical URL) of each archived article, filtered as
    `reextraction_targets` filters, that no 200 capture is linked to: one that
    cannot be extracted again."""
    linked = (
        select(tables.versions.c.article_id)
        .join(tables.captures, tables.captures.c.article_version_id == tables.versions.c.id)
        .where(tables.captures.c.status == 200)
    )
    query = select(tables.articles.c.site, tables.articles.c.url).where(
        tables.articles.c.id.not_in(linked)
    )
    query = _filtered(query, site, published_since, published_until)
    if url is not None:
        query = query.where(tables.articles.c.url == url)
    with _reader(engine).connect() as connection:
        return [
            (row.site, row.url) for row in connection.execute(query.order_by(tables.articles.c.id))
        ]


def _filtered(
    query: Select[Any],
    site: str | None,
    published_since: datetime | None,
    published_until: datetime | None,
) -> Select[Any]:
    if site is not None:
        query = query.where(tables.articles.c.site == site)
    if published_since is not None:
        query = query.where(tables.articles.c.published_at >= published_since)
    if published_until is not None:
        query = query.where(tables.articles.c.published_at < published_until)
    return query


def _reader(engine: Engine) -> Engine:
    """`engine` for reads: on SQLite a deferred ``BEGIN``, so that a look-up (the WARC
    writer's, from its own thread) never takes the write lock the crawl's writes wait
    for."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})
