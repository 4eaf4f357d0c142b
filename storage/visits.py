"""Revisit state of article URLs (table ``url_state``) and alias look-ups for discovery."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Insert,
    Table,
    bindparam,
    func,
    select,
    update,
)

from news_archive.storage import tables
from news_archive.storage.engine import READ_ONLY_OPTION, dialect_insert
from news_archive.storage.faults import write_rows
from news_archive.storage.types import require_key

# Keeps IN (...) lists well under SQLite's bound-parameter limit.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class VisitState:
    """What the archive knows of one canonical URL."""

    url: str
    etag: str | None
    last_modified: str | None
    published_at: datetime | None
    last_visit_at: datetime
    next_visit_at: datetime
    last_status: int | None

    def archived_before(self, moment: datetime) -> bool:
        """Fetched successfully (200 or 304) before `moment`."""
        return self.last_status in (200, 304) and self.last_visit_at < moment


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """One visit to write: the response's validators and when to come back."""

    site: str
    url: str
    status: int
    visited_at: datetime
    next_visit_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    published_at: datetime | None = None
    # False: the visit's validators replace the stored ones even when None, so the
    # next request is unconditional (a held, suspect change must be fetched whole).
    keep_validators: bool = True


def states(engine: Engine, urls: Iterable[str]) -> dict[str, VisitState]:
    """Visit state of each of `urls` that has one."""
    wanted = sorted(set(urls))
    found: dict[str, VisitState] = {}
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    with reader.connect() as connection:
        for start in range(0, len(wanted), _CHUNK):
            query = select(*_state_columns()).where(
                tables.url_state.c.url.in_(wanted[start : start + _CHUNK])
            )
            for row in connection.execute(query):
                found[row.url] = VisitState(*row)
    return found


def due(engine: Engine, site: str, now: datetime, limit: int) -> list[VisitState]:
    """Up to `limit` URLs of `site` whose next visit is due, most overdue first."""
    query = (
        select(*_state_columns())
        .where(tables.url_state.c.site == site, tables.url_state.c.next_visit_at <= now)
        .order_by(tables.url_state.c.next_visit_at)
        .limit(limit)
    )
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    with reader.connect() as connection:
        return [VisitState(*row) for row in connection.execute(query)]


def canonical_of(engine: Engine, urls: Iterable[str]) -> dict[str, str]:
    """Canonical URL of each of `urls` that is a known alias (e.g. a shortlink)."""
    wanted = sorted(set(urls))
    found: dict[str, str] = {}
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    with reader.connect() as connection:
        for start in range(0, len(wanted), _CHUNK):
            query = select(tables.aliases.c.url, tables.aliases.c.canonical_url).where(
                tables.aliases.c.url.in_(wanted[start : start + _CHUNK])
            )
            found.update({row.url: row.canonical_url for row in connection.execute(query)})
    return found


def record(engine: Engine, visits: Sequence[VisitRecord]) -> list[tuple[int, BaseException]]:
    """Upsert the visits in one transaction; a 304 keeps the stored validators and age.

    Return the visits the database refused (index, error), e.g. a URL too long
    for a key; the others are written (see `write_rows`).  An outage raises."""
    statements = _upserts(dialect_insert(engine))

    def upsert(connection: Connection, rows: Sequence[VisitRecord]) -> None:
        # One statement per run of rows of one kind, executed for all of them at once
        # (executemany), in a fixed lock order (by URL; repeats keep their order).
        ordered = sorted(rows, key=lambda v: v.url)
        for keep_validators, run in itertools.groupby(ordered, lambda v: v.keep_validators):
            connection.execute(
                statements[keep_validators],
                [
                    {
                        "url": require_key(visit.url, "visited URL"),
                        "site": visit.site,
                        "etag": visit.etag,
                        "last_modified": visit.last_modified,
                        "last_status": visit.status,
                        "published_at": visit.published_at,
                        "last_visit_at": visit.visited_at,
                        "next_visit_at": visit.next_visit_at,
                        "visits": 1,
                    }
                    for visit in run
                ],
            )
        # Not modified: the stored article was seen again, unchanged.
        seen_again = [
            {"seen_url": visit.url, "seen_at": visit.visited_at}
            for visit in ordered
            if visit.status == 304
        ]
        if seen_again:
            connection.execute(_SEEN_AGAIN, seen_again)

    return write_rows(engine, visits, upsert)


@functools.cache
def _upserts(insert: Callable[[Table], Insert]) -> dict[bool, Executable]:
    """The upsert of a visit by `keep_validators` (a 304 keeps the stored validators),
    built once per dialect (its `insert`): parameters vary, the statement does not."""
    statements: dict[bool, Executable] = {}
    for keep_validators in (True, False):
        statement = insert(tables.url_state)
        excluded = statement.excluded
        keep = tables.url_state.c
        statements[keep_validators] = statement.on_conflict_do_update(
            index_elements=[tables.url_state.c.url],
            set_={
                "etag": _coalesce(excluded.etag, keep.etag) if keep_validators else excluded.etag,
                "last_modified": _coalesce(excluded.last_modified, keep.last_modified)
                if keep_validators
                else excluded.last_modified,
                "last_status": excluded.last_status,
                "published_at": _coalesce(excluded.published_at, keep.published_at),
                "last_visit_at": excluded.last_visit_at,
                "next_visit_at": excluded.next_visit_at,
                "visits": keep.visits + 1,
            },
        )
    return statements


_SEEN_AGAIN = (
    update(tables.articles)
    .where(
        tables.articles.c.url == bindparam("seen_url"),
        tables.articles.c.last_seen_at < bindparam("seen_at"),
    )
    .values(last_seen_at=bindparam("seen_at"))
)


def _coalesce(new: ColumnElement[Any], old: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(new, old)


def _state_columns() -> tuple[ColumnElement[Any], ...]:
    c = tables.url_state.c
    return (
        c.url,
        c.etag,
        c.last_modified,
        c.published_at,
        c.last_visit_at,
        c.next_visit_at,
        c.last_status,
    )
