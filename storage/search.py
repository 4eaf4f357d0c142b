"""Reading the archive for people: full-text search, export, one article's history, counts.

Search is substring search, the same on both backends: a query matches an
article whose title or body contains it (surrounding whitespace dropped, inner
runs of whitespace as one space, Latin letters in any case). Korean needs
substrings, not words: a word carries its particles (``카카오와``, ``카카오의``),
so ``카카오`` must match inside a longer run of syllables.

- SQLite, queries of 3+ characters: the FTS5 trigram table ``articles_fts``
  (migration 0003), ``MATCH`` on the query as one FTS5 string, ranked by
  ``bm25()`` with the title weighted `TITLE_WEIGHT` times the body, snippet by
  ``snippet()``.
- SQLite, shorter queries (``협력``, ``AI``): a trigram index cannot answer
  them (``MATCH`` finds nothing by design, and ``LIKE`` on the FTS table is wrong
  in SQLite 3.40), so ``instr()`` over ``articles`` — a full scan.
- PostgreSQL: ``ILIKE '%query%'`` on title and body (``LIKE`` when the query
  has no letter with case), served by the ``pg_trgm`` GIN indexes for 3+
  characters (shorter patterns scan every row).

Outside the FTS path the rank is the number of occurrences, each in the title
counting `TITLE_WEIGHT`; snippets are cut in Python around the first occurrence.
Higher ranks are better; they compare hits of one search only.

All reads run with `READ_ONLY_OPTION`, so on SQLite they never hold the write
lock against a running crawl.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Engine,
    Integer,
    Select,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    union_all,
)

from news_archive.storage import tables
from news_archive.storage.engine import READ_ONLY_OPTION

# The trigram tokenizer indexes every run of three characters; shorter queries
# have no trigram to look up.
MIN_FTS_QUERY_CHARS = 3
# One occurrence in the title outweighs this many in the body.
TITLE_WEIGHT = 5.0
# Marks around each occurrence in a snippet, and the sign of cut text.
HIGHLIGHT_START = "«"
HIGHLIGHT_END = "»"
ELLIPSIS = "…"
# Snippet length in characters (FTS5 counts tokens; a trigram token is one character).
SNIPPET_CHARS = 48

_FTS = table("articles_fts", column("rowid", Integer))
_FTS_NAME = literal_column("articles_fts")
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
    title or body around the query, occurrences between `HIGHLIGHT_START` and
    `HIGHLIGHT_END`, cuts marked `ELLIPSIS`; `rank`: higher is better.
    """

    id: int
    site: str
    url: str
    title: str
    published_at: datetime
    snippet: str
    rank: float


@dataclass(frozen=True)
class DailyCount:
    """Articles of one site published on one UTC calendar day."""

    site: str
    day: date
    articles: int


def normalize_query(query: str) -> str:
    """The query as searched: NFC (what the pages use; a macOS terminal may send
    decomposed Hangul), surrounding whitespace dropped, inner runs as one space
    (bodies are stored whitespace-normalised). Raises ValueError when empty."""
    normalized = " ".join(unicodedata.normalize("NFC", query).split())
    if not normalized:
        raise ValueError("empty search query")
    return normalized


def search(
    engine: Engine,
    query: str,
    *,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """Articles whose title or body contains `query`, best first, at most `limit`.

    `site` is a spider name; `since` (inclusive) and `until` (exclusive) bound
    ``published_at`` and must be timezone-aware.
    """
    query = normalize_query(query)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    dialect = engine.dialect.name
    with _reader(engine).connect() as connection:
        if dialect == "sqlite" and len(query) >= MIN_FTS_QUERY_CHARS:
            return _search_fts5(connection, query, site, since, until, limit)
        # Folding case costs a pass over every matching body (most of the time of
        # a PostgreSQL search); Hangul has no case, so skip it when nothing could fold.
        fold = _identity if query.lower() == query.upper() else func.lower
        if dialect == "sqlite":
            matches = _contains_sqlite(query, fold)
        elif dialect == "postgresql":
            matches = _contains_postgresql(query, caseless=fold is _identity)
            if len(query) >= MIN_FTS_QUERY_CHARS:
                # The planner prices ILIKE like any cheap operator and does not
                # count detoasting long bodies, so it prefers a sequential scan
                # that is 10-100x slower than the trigram indexes (measured:
                # 650 ms against 4 ms on 20,000 articles). Shorter patterns give
                # no trigrams and scan either way, so they keep the planner's choice.
                connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        else:
            raise NotImplementedError(f"no search for the {dialect} dialect")
        needle = fold(literal(query))
        rank = TITLE_WEIGHT * _occurrences(fold(tables.articles.c.title), needle) + _occurrences(
            fold(tables.articles.c.body), needle
        )
        statement = _filtered(
            select(
                *_hit_columns(),
                tables.articles.c.body,
                rank.label("rank"),
            ).where(matches),
            site,
            since,
            until,
        )
        order = (rank.desc(), tables.articles.c.published_at.desc(), tables.articles.c.id)
        rows = connection.execute(statement.order_by(*order).limit(limit)).all()
    return [
        SearchHit(
            id=row.id,
            site=row.site,
            url=row.url,
            title=row.title,
            published_at=row.published_at,
            snippet=make_snippet(row.body if _contains(row.body, query) else row.title, query),
            rank=float(row.rank),
        )
        for row in rows
    ]


def _search_fts5(
    connection: Connection,
    query: str,
    site: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[SearchHit]:
    # bm25() is lower for better matches; weights are per column (title, body).
    bm25 = func.bm25(_FTS_NAME, TITLE_WEIGHT, 1.0)
    snippet = func.snippet(_FTS_NAME, -1, HIGHLIGHT_START, HIGHLIGHT_END, ELLIPSIS, SNIPPET_CHARS)
    statement = _filtered(
        select(*_hit_columns(), snippet.label("snippet"), (-bm25).label("rank"))
        .select_from(_FTS.join(tables.articles, tables.articles.c.id == _FTS.c.rowid))
        .where(_FTS_NAME.match(fts5_string(query))),
        site,
        since,
        until,
    )
    rows = connection.execute(
        statement.order_by(bm25, tables.articles.c.published_at.desc(), tables.articles.c.id).limit(
            limit
        )
    ).all()
    return [
        SearchHit(
            id=row.id,
            site=row.site,
            url=row.url,
            title=row.title,
            published_at=row.published_at,
            snippet=" ".join(row.snippet.split()),
            rank=float(row.rank),
        )
        for row in rows
    ]


def fts5_string(query: str) -> str:
    """`query` as one FTS5 string (a phrase), so that ``"``, ``*``, ``:``, ``-``,
    ``AND`` or ``NEAR`` in it are text, not query syntax."""
    return '"' + query.replace('"', '""') + '"'


def _identity(value: ColumnElement[str]) -> ColumnElement[str]:
    return value


def _contains_sqlite(
    query: str, fold: Callable[[ColumnElement[str]], ColumnElement[str]]
) -> ColumnElement[bool]:
    # The same SQL fold on both sides: SQLite's lower() folds ASCII only, so the
    # query must be folded by it, not by Python's str.lower().
    needle = fold(literal(query))
    return (func.instr(fold(tables.articles.c.title), needle) > 0) | (
        func.instr(fold(tables.articles.c.body), needle) > 0
    )


def _contains_postgresql(query: str, *, caseless: bool) -> ColumnElement[bool]:
    # (I)LIKE on the bare columns, so that the pg_trgm GIN indexes on them apply;
    # LIKE when the query has no letter with case, as it skips ILIKE's folding.
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query) + "%"
    if caseless:
        return tables.articles.c.title.like(pattern, escape="\\") | tables.articles.c.body.like(
            pattern, escape="\\"
        )
    return tables.articles.c.title.ilike(pattern, escape="\\") | tables.articles.c.body.ilike(
        pattern, escape="\\"
    )


def _occurrences(haystack: ColumnElement[str], needle: ColumnElement[str]) -> ColumnElement[Any]:
    """Non-overlapping occurrences of `needle` in `haystack`, in SQL both backends speak."""
    return (func.length(haystack) - func.length(func.replace(haystack, needle, ""))) / func.length(
        needle
    )


def _hit_columns() -> tuple[ColumnElement[Any], ...]:
    columns = tables.articles.c
    return (columns.id, columns.site, columns.url, columns.title, columns.published_at)


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


def _contains(text: str | None, query: str) -> bool:
    return text is not None and re.search(re.escape(query), text, re.IGNORECASE) is not None


def make_snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` (whitespace runs as one space) around the
    first occurrence of `query` (any case), every occurrence in it highlighted as
    ``snippet()`` does; the start of `text` when it does not contain `query`."""
    flat = " ".join(text.split())
    # A regex, not str.lower(): lowering can change a string's length ("İ"), and
    # with it every index into the original.
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    first = pattern.search(flat)
    if first is None:
        return flat[:width] + (ELLIPSIS if len(flat) > width else "")
    start = max(first.start() - (width - len(first.group(0))) // 2, 0)
    end = max(min(start + width, len(flat)), first.end())
    start = max(min(start, end - width), 0)  # near the end: take the room on the left
    window = pattern.sub(lambda m: HIGHLIGHT_START + m.group(0) + HIGHLIGHT_END, flat[start:end])
    return (ELLIPSIS if start > 0 else "") + window + (ELLIPSIS if end < len(flat) else "")


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
    engine: Engine, *, site: str | None = None, since: date | None = None
) -> list[DailyCount]:
    """Articles per site and UTC day of publication (the ``daily_counts`` view),
    newest day first; optionally of one site, from day `since` on."""
    statement = select(_DAILY_COUNTS.c.site, _DAILY_COUNTS.c.day, _DAILY_COUNTS.c.articles)
    if site is not None:
        statement = statement.where(_DAILY_COUNTS.c.site == site)
    if since is not None:
        statement = statement.where(_DAILY_COUNTS.c.day >= since)
    statement = statement.order_by(_DAILY_COUNTS.c.day.desc(), _DAILY_COUNTS.c.site)
    with _reader(engine).connect() as connection:
        return [DailyCount(*row) for row in connection.execute(statement)]


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
