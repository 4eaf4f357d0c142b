"""Reading the archive for people: full-text search, export, one article's history, counts.

Search reads the bigram index of `news_archive.storage.fulltext` with a query
in the language of `news_archive.storage.query` (words ANDed, ``"phrases"``,
``OR``, ``-exclusions``, ``site:`` ``author:`` ``section:`` ``tag:`` ``since:``
``until:``). Any word of one or more characters is found inside longer words
(``카카오`` in ``카카오와``), Latin words as whole words in any case; the same
on SQLite and PostgreSQL. Hits come ranked (BM25 with the title weighted) or
newest first; a query of filters alone lists newest first. Snippets are cut
in Python from the stored text around the first word found, every word
highlighted.

All reads run with `READ_ONLY_OPTION`, so on SQLite they never hold the write
lock against a running crawl.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Engine,
    Row,
    Select,
    case,
    cast,
    column,
    exists,
    func,
    or_,
    select,
    table,
    type_coerce,
    union_all,
)

from news_archive.storage import fulltext, tables, tokens
from news_archive.storage.engine import READ_ONLY_OPTION
from news_archive.storage.fulltext import Sort
from news_archive.storage.query import KOREA, Query, parse

# Marks around each occurrence in a snippet, and the sign of cut text.
HIGHLIGHT_START = "«"
HIGHLIGHT_END = "»"
ELLIPSIS = "…"
# Snippet length in characters.
SNIPPET_CHARS = 48
SORTS: tuple[Sort, ...] = ("relevance", "newest")

# What a hit shows beside the id, title and body.
_HIT_COLUMNS = (
    tables.articles.c.site,
    tables.articles.c.url,
    tables.articles.c.author,
    tables.articles.c.published_at,
)
_DAILY_COUNTS = table("daily_counts", column("site"), column("day", Date()), column("articles"))

EXPORT_COLUMNS = (
    "id",
    "site",
    "url",
    "title",
    "subtitle",
    "author",
    "published_at",
    "modified_at",
    "section",
    "language",
    "body",
    "content_hash",
    "first_seen_at",
    "last_seen_at",
    "last_changed_at",
)
RUN_COLUMNS = (
    "id",
    "spider",
    "started_at",
    "finished_at",
    "finish_reason",
    "requests",
    "articles_new",
    "articles_changed",
    "articles_unchanged",
    "articles_rejected",
    "articles_failed",
    "health_ok",
    "exit_code",
)


@dataclass(frozen=True)
class SearchHit:
    """One article found by `search`.

    `published_at` is UTC; `snippet` is about `SNIPPET_CHARS` characters of the
    title or body around the first word of the query found, every occurrence of
    its words between `HIGHLIGHT_START` and `HIGHLIGHT_END`, cuts marked
    `ELLIPSIS`; `rank`: higher is better, comparable within one search only
    (None when sorted by newest).
    """

    id: int
    site: str
    url: str
    title: str
    author: str | None
    published_at: datetime
    snippet: str
    rank: float | None


@dataclass(frozen=True)
class DailyCount:
    """Articles of one site published on one calendar day of the zone counted in."""

    site: str
    day: date
    articles: int


def search(
    engine: Engine,
    query: str | Query,
    *,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    sort: Sort = "relevance",
    zone: tzinfo = KOREA,
) -> list[SearchHit]:
    """Articles matching `query` (text in the query language, days of ``since:``
    and ``until:`` in `zone`; or a parsed `Query`), best or newest first (`sort`),
    at most `limit`.

    `site` (a spider name), `since` (inclusive) and `until` (exclusive, both
    aware) narrow it further, as the query's own filters do. Raises
    `QuerySyntaxError` (a ValueError) for a query that cannot be read.
    """
    parsed = parse(query, zone=zone) if isinstance(query, str) else query
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    if site is not None:
        parsed = replace(parsed, filters={**parsed.filters, "site": (site,)})
    if since is not None and (parsed.since is None or since > parsed.since):
        parsed = replace(parsed, since=since)
    if until is not None and (parsed.until is None or until < parsed.until):
        parsed = replace(parsed, until=until)
    with _reader(engine).connect() as connection:
        conditions = _conditions(connection.dialect.name, parsed)
        if parsed.groups:
            found = fulltext.ranked_rows(
                connection, parsed, conditions, columns=_HIT_COLUMNS, sort=sort, limit=limit
            )
        else:
            found = _newest(connection, conditions, limit)
    pattern = _highlight_pattern(parsed)
    hits = []
    for row, rank in found:
        source = row.body if row.body and pattern.search(row.body) else row.title
        hits.append(
            SearchHit(
                id=row.id,
                site=row.site,
                url=row.url,
                title=row.title,
                author=row.author,
                published_at=row.published_at,
                snippet=make_snippet(source or "", pattern),
                rank=rank,
            )
        )
    return hits


def _conditions(dialect: str, query: Query) -> list[ColumnElement[bool]]:
    """The query's filters (and, for a query without words, its exclusions) as
    conditions on ``articles``."""
    articles = tables.articles.c
    conditions: list[ColumnElement[bool]] = []
    for name, values in query.filters.items():
        if name == "site":
            conditions.append(articles.site.in_(values))
        elif name in ("author", "section"):
            conditions.append(
                or_(*(articles[name].icontains(value, autoescape=True) for value in values))
            )
        elif name == "tag":
            tags = tables.tags.c
            conditions.append(
                exists().where(
                    tags.article_id == articles.id,
                    func.lower(tags.tag).in_([value.lower() for value in values]),
                )
            )
        else:
            raise AssertionError(f"unknown filter {name!r}")
    if query.since is not None:
        conditions.append(articles.published_at >= query.since)
    if query.until is not None:
        conditions.append(articles.published_at < query.until)
    if query.excluded and not query.groups:
        conditions.append(~articles.id.in_(fulltext.matching_ids(dialect, [query.excluded])))
    return conditions


def _newest(
    connection: Connection, conditions: Sequence[ColumnElement[bool]], limit: int
) -> list[tuple[Row[Any], float | None]]:
    articles = tables.articles.c
    statement = (
        select(articles.id, articles.title, articles.body, *_HIT_COLUMNS)
        .where(*conditions)
        .order_by(articles.published_at.desc(), articles.id.desc())
        .limit(limit)
    )
    return [(row, None) for row in connection.execute(statement)]


def _highlight_pattern(query: Query) -> re.Pattern[str]:
    texts = sorted({term.text for term in query.terms}, key=len, reverse=True)
    if not texts:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(tokens.text_pattern(text) for text in texts), re.IGNORECASE)


def make_snippet(text: str, pattern: re.Pattern[str] | str, width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` (whitespace runs as one space) around the
    first match of `pattern` (a compiled expression, or a query's text: its words
    as `tokens.text_pattern` finds them), every match in it highlighted; the start
    of `text` when nothing matches."""
    if isinstance(pattern, str):
        pattern = _highlight_pattern(parse(pattern, zone=KOREA))
    flat = " ".join(text.split())
    first = pattern.search(flat)
    if first is None:
        return flat[:width] + (ELLIPSIS if len(flat) > width else "")
    start = max(first.start() - (width - len(first.group(0))) // 2, 0)
    end = max(min(start + width, len(flat)), first.end())
    start = max(min(start, end - width), 0)  # near the end: take the room on the left
    window = pattern.sub(lambda m: HIGHLIGHT_START + m.group(0) + HIGHLIGHT_END, flat[start:end])
    return (ELLIPSIS if start > 0 else "") + window + (ELLIPSIS if end < len(flat) else "")


def _filtered(
    statement: Select[Any], site: str | None, since: datetime | None, until: datetime | None
) -> Select[Any]:
    if site is not None:
        statement = statement.where(tables.articles.c.site == site)
    if since is not None:
        statement = statement.where(tables.articles.c.published_at >= since)
    if until is not None:
        statement = statement.where(tables.articles.c.published_at < until)
    return statement


def iter_articles(
    engine: Engine,
    *,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = 500,
) -> Iterator[dict[str, Any]]:
    """Every stored article (newest version), oldest publication first, as a dict of
    `EXPORT_COLUMNS` (datetimes UTC-aware) plus ``tags`` (list of str) and ``images``
    (list of dicts with ``url``, ``caption``, ``alt``); filters as in `search`.

    Streams: PostgreSQL reads through a server-side cursor, `batch_size` rows at a
    time, and tags and images are fetched per batch; memory does not grow with
    the archive. The connection stays open until the iterator is exhausted or closed.
    """
    statement = _filtered(
        select(*(tables.articles.c[name] for name in EXPORT_COLUMNS)), site, since, until
    ).order_by(tables.articles.c.published_at, tables.articles.c.id)
    with _reader(engine).connect() as connection:
        result = connection.execution_options(yield_per=batch_size).execute(statement)
        for batch in result.mappings().partitions():
            ids = [row["id"] for row in batch]
            tags = _tags_by_article(connection, ids)
            images = _images_by_article(connection, ids)
            for row in batch:
                yield {**row, "tags": tags.get(row["id"], []), "images": images.get(row["id"], [])}


def _tags_by_article(connection: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    for article_id, tag in connection.execute(
        select(tables.tags.c.article_id, tables.tags.c.tag)
        .where(tables.tags.c.article_id.in_(ids))
        .order_by(tables.tags.c.article_id, tables.tags.c.position)
    ):
        tags.setdefault(article_id, []).append(tag)
    return tags


def _images_by_article(
    connection: Connection, ids: Sequence[int]
) -> dict[int, list[dict[str, str | None]]]:
    images: dict[int, list[dict[str, str | None]]] = {}
    for row in connection.execute(
        select(
            tables.images.c.article_id,
            tables.images.c.url,
            tables.images.c.caption,
            tables.images.c.alt,
        )
        .where(tables.images.c.article_id.in_(ids))
        .order_by(tables.images.c.article_id, tables.images.c.position)
    ):
        images.setdefault(row.article_id, []).append(
            {"url": row.url, "caption": row.caption, "alt": row.alt}
        )
    return images


def article_with_versions(engine: Engine, url_or_id: str | int) -> dict[str, Any] | None:
    """One article by id (an int, or a string of digits), canonical URL or any URL
    known in ``url_aliases``: its columns (``sources`` left as JSON text), ``tags``,
    ``images`` (as in `iter_articles`) and ``versions``, the ``article_versions``
    rows oldest first as dicts. None when no article matches."""
    if not isinstance(url_or_id, int) and not url_or_id.isdigit():
        return article_by_urls(engine, [url_or_id])
    with _reader(engine).connect() as connection:
        row = (
            connection.execute(
                select(tables.articles).where(tables.articles.c.id == int(url_or_id))
            )
            .mappings()
            .first()
        )
        return None if row is None else _with_history(connection, row)


def article_by_urls(engine: Engine, urls: Sequence[str]) -> dict[str, Any] | None:
    """The article (as `article_with_versions` gives it) stored under one of `urls`,
    as its canonical URL or as an alias URL (``url_aliases``), all looked up in one
    query; when they name several articles, the one of the earliest URL in `urls`.
    None when none does."""
    if not urls:
        return None
    direct = select(
        tables.articles.c.url.label("asked"), tables.articles.c.url.label("target")
    ).where(tables.articles.c.url.in_(urls))
    aliased = select(
        tables.aliases.c.url.label("asked"), tables.aliases.c.canonical_url.label("target")
    ).where(tables.aliases.c.url.in_(urls))
    matches = union_all(direct, aliased).subquery()
    statement = select(tables.articles, matches.c.asked.label("_asked")).join(
        matches, tables.articles.c.url == matches.c.target
    )
    with _reader(engine).connect() as connection:
        rows = connection.execute(statement).mappings().all()
        if not rows:
            return None
        best = min(rows, key=lambda row: urls.index(row["_asked"]))
        return _with_history(connection, {k: v for k, v in best.items() if k != "_asked"})


def _with_history(connection: Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``articles`` row with its ``tags``, ``images`` and ``versions``."""
    article = dict(row)
    article["tags"] = _tags_by_article(connection, [row["id"]]).get(row["id"], [])
    article["images"] = _images_by_article(connection, [row["id"]]).get(row["id"], [])
    article["versions"] = [
        dict(version)
        for version in connection.execute(
            select(tables.versions)
            .where(tables.versions.c.article_id == row["id"])
            .order_by(tables.versions.c.version)
        ).mappings()
    ]
    return article


def daily_counts(
    engine: Engine, *, zone: ZoneInfo, site: str | None = None, since: date | None = None
) -> list[DailyCount]:
    """Articles per site and calendar day of publication in `zone` (the display time
    zone: a Korea day for ``Asia/Seoul``), newest day first; optionally of one site,
    from day `since` (a day of `zone`) on.

    Counted in SQL on both backends: PostgreSQL reads `zone` from its own zone
    database (``AT TIME ZONE``); SQLite, which knows no zones, gets the zone's UTC
    offsets over the span of the articles as a ``CASE`` on ``published_at``
    (`offset_periods`). The ``daily_counts`` view (migration 0009) is the same count
    for ``Asia/Seoul``."""
    published = tables.articles.c.published_at
    conditions: list[ColumnElement[bool]] = []
    if site is not None:
        conditions.append(tables.articles.c.site == site)
    if since is not None:
        conditions.append(published >= datetime.combine(since, time(), zone).astimezone(UTC))
    with _reader(engine).connect() as connection:
        if engine.dialect.name == "postgresql":
            day: ColumnElement[Any] = cast(func.timezone(zone.key, published), Date)
        else:
            first, last = connection.execute(
                select(func.min(published), func.max(published)).where(*conditions)
            ).one()
            if first is None:
                return []
            day = _local_day_sqlite(published, offset_periods(zone, first, last))
        days = select(tables.articles.c.site, day.label("day")).where(*conditions).subquery()
        statement = (
            select(days.c.site, days.c.day, func.count().label("articles"))
            .group_by(days.c.site, days.c.day)
            .order_by(days.c.day.desc(), days.c.site)
        )
        return [DailyCount(*row) for row in connection.execute(statement)]


def offset_periods(zone: tzinfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets of `zone` between the instants `first` and `last` (aware):
    ``(start, seconds)`` pairs, the first starting at `first`, each in force until
    the next one's start. Found a day at a time, each change to the second (zones
    change offset at most a few times a year)."""

    def offset(moment: datetime) -> int:
        shift = moment.astimezone(zone).utcoffset()
        return int(shift.total_seconds()) if shift is not None else 0

    periods = [(first, offset(first))]
    moment = first
    while moment < last:
        following = min(moment + timedelta(days=1), last)
        if offset(following) != periods[-1][1]:
            low, high = moment, following  # the change is after low, at or before high
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) != periods[-1][1] else (middle, high)
            periods.append((high.replace(microsecond=0), offset(high)))
        moment = following
    return periods


def _local_day_sqlite(
    published: ColumnElement[datetime], periods: list[tuple[datetime, int]]
) -> ColumnElement[Any]:
    # SQLite stores UTC text; date(text, '+N seconds') is the calendar day N seconds
    # later. A CASE picks each article's offset by the period it falls in.
    def day(seconds: int) -> ColumnElement[Any]:
        return func.date(published, f"{seconds:+d} seconds")

    whens = [(published < start, day(seconds)) for (_, seconds), (start, _) in pairwise(periods)]
    last = day(periods[-1][1])
    return type_coerce(case(*whens, else_=last) if whens else last, Date())


def site_totals(engine: Engine) -> list[dict[str, Any]]:
    """Per site (spider name): ``articles``, ``versions``, ``first_published_at``,
    ``last_published_at`` and ``last_seen_at`` (UTC), by site name."""
    versions = (
        select(tables.articles.c.site, func.count().label("versions"))
        .select_from(tables.versions.join(tables.articles))
        .group_by(tables.articles.c.site)
        .subquery()
    )
    statement = (
        select(
            tables.articles.c.site,
            func.count().label("articles"),
            versions.c.versions,
            func.min(tables.articles.c.published_at).label("first_published_at"),
            func.max(tables.articles.c.published_at).label("last_published_at"),
            func.max(tables.articles.c.last_seen_at).label("last_seen_at"),
        )
        .join(versions, versions.c.site == tables.articles.c.site)
        .group_by(tables.articles.c.site, versions.c.versions)
        .order_by(tables.articles.c.site)
    )
    with _reader(engine).connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def last_runs(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The `limit` most recently started crawl runs, newest first, as dicts of
    `RUN_COLUMNS` (times UTC; figures None until a run has finished)."""
    statement = (
        select(*(tables.runs.c[name] for name in RUN_COLUMNS))
        .order_by(tables.runs.c.started_at.desc(), tables.runs.c.id.desc())
        .limit(limit)
    )
    with _reader(engine).connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def _reader(engine: Engine) -> Engine:
    return engine.execution_options(**{READ_ONLY_OPTION: True})
