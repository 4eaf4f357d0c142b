"""The full-text index of articles: character bigrams (`news_archive.storage.tokens`)
in SQLite FTS5 or a PostgreSQL ``tsvector``, kept in step with ``articles`` by
the repository, and queries (`news_archive.storage.query`) compiled for it.

Both backends hold the same tokens in the same table, ``articles_search``
(migration 0010), so they find the same articles:

- SQLite: an FTS5 table ``articles_search(title, body)`` of token text (the
  ``unicode61`` tokenizer splits it on the spaces `tokens.index_text` puts
  between tokens), with a one-character prefix index for single syllables.
  Its rowid is the article's id; a trigger drops the entry of a deleted article.
- PostgreSQL: a table ``articles_search(id, tokens)``, ``tokens`` a
  ``tsvector`` built here (title positions weight A, then the body), with a GIN
  index; a foreign key with ``ON DELETE CASCADE`` follows deleted articles.

Tokens are made in Python, not by the database, so that both backends tokenise
alike and need no extension. Ranking is BM25 on SQLite (``bm25()``, the title
weighted `TITLE_WEIGHT` times the body) and ``ts_rank`` with the same title
weight on PostgreSQL, over the `RANK_WINDOW` most recently stored matches: a
word in most articles (정부, 기자) would otherwise cost a ranking of every one of
them on every search, about 1 µs each on SQLite and far more on PostgreSQL,
where each vector must be read from TOAST. Matching is exact at any size;
only the ranking is limited to that window (news: recent matters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    bindparam,
    column,
    delete,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects import postgresql

from news_archive.storage import tables, tokens
from news_archive.storage.query import Query, Term

INDEX_TABLE = "articles_search"
# One occurrence in the title outweighs this many in the body.
TITLE_WEIGHT = 5.0
# Matches ranked per search, the most recently stored first (see the module's doc).
RANK_WINDOW = 1000
# ts_rank's weights for D, C, B, A: the title (A) `TITLE_WEIGHT` times the body (D).
_PG_WEIGHTS = f"'{{{1 / TITLE_WEIGHT}, {1 / TITLE_WEIGHT}, {1 / TITLE_WEIGHT}, 1.0}}'::float4[]"
# PostgreSQL's tsvector limits: positions above 16383 are clamped (a phrase
# beyond it cannot match there; single tokens still do), 256 positions per
# token are kept, and a vector must stay under 1 MiB (we stop adding tokens
# well before).
PG_MAX_POSITION = 16383
PG_MAX_POSITIONS_PER_TOKEN = 255
PG_MAX_VECTOR_BYTES = 900_000

Sort = Literal["relevance", "newest"]

_SQLITE_INDEX = table(INDEX_TABLE, column("rowid", Integer))
_SQLITE_NAME = literal_column(INDEX_TABLE)
_PG_INDEX = table(INDEX_TABLE, column("id", Integer), column("tokens"))


# ------------------------------------------------------------------ writing


def index_articles(connection: Connection, rows: Sequence[tuple[int, str, str | None]]) -> None:
    """(Re)index articles given as (id, title, body): any entry they had is replaced."""
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        ids = [{"id": article_id} for article_id, _, _ in rows]
        connection.execute(text("DELETE FROM articles_search WHERE rowid = :id"), ids)
        connection.execute(
            text("INSERT INTO articles_search (rowid, title, body) VALUES (:id, :title, :body)"),
            [
                {"id": i, "title": tokens.index_text(title), "body": tokens.index_text(body or "")}
                for i, title, body in rows
            ],
        )
        return
    statement = postgresql.insert(_PG_INDEX).values(
        id=bindparam("id"), tokens=func.cast(bindparam("tokens"), postgresql.TSVECTOR)
    )
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"tokens": statement.excluded.tokens}
    )
    connection.execute(
        statement,
        [{"id": i, "tokens": tsvector_literal(title, body or "")} for i, title, body in rows],
    )


def unindex_articles(connection: Connection, ids: Sequence[int]) -> None:
    """Drop the index entries of these articles (deleting an article does it too)."""
    if connection.dialect.name == "sqlite":
        connection.execute(
            text("DELETE FROM articles_search WHERE rowid = :id"), [{"id": i} for i in ids]
        )
    else:
        connection.execute(delete(_PG_INDEX).where(_PG_INDEX.c.id.in_(ids)))


def index_all(connection: Connection, batch: int = 500) -> int:
    """Index every stored article (after the index was created or emptied), in
    batches of `batch`; return how many."""
    articles = tables.articles.c
    last, count = 0, 0
    while True:
        rows = connection.execute(
            select(articles.id, articles.title, articles.body)
            .where(articles.id > last)
            .order_by(articles.id)
            .limit(batch)
        ).all()
        if not rows:
            return count
        index_articles(connection, [(row.id, row.title, row.body) for row in rows])
        last, count = rows[-1].id, count + len(rows)


def tsvector_literal(title: str, body: str) -> str:
    """The ``tsvector`` of an article in PostgreSQL's literal syntax: each token
    with its positions, the title's weighted A; one position left empty between
    title and body so that no phrase spans them."""
    positions: dict[str, list[str]] = {}
    size = 0
    position = 0
    for part, weight in ((title, "A"), (body, "")):
        for token in tokens.index_tokens(part):
            position += 1
            seen = positions.get(token)
            if seen is None:
                size += len(token.encode()) + 8
                if size > PG_MAX_VECTOR_BYTES:
                    break
                positions[token] = seen = []
            if len(seen) < PG_MAX_POSITIONS_PER_TOKEN:
                seen.append(f"{min(position, PG_MAX_POSITION)}{weight}")
                size += 2
        position += 1
    return " ".join(f"{_quote(token)}:{','.join(places)}" for token, places in positions.items())


def _quote(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


# ------------------------------------------------------------------ matching


def term_tokens(term: Term) -> tuple[list[str], bool]:
    """The tokens a term must match in order, and whether the last is a prefix."""
    runs = term.runs()
    found: list[str] = []
    for index, (run, cjk) in enumerate(runs):
        found += tokens.word_tokens(run, cjk, last=index == len(runs) - 1)
    return found, tokens.is_prefix(*runs[-1])


def fts5_expression(groups: Sequence[Sequence[Term]], excluded: Sequence[Term] = ()) -> str:
    """An FTS5 query: every group (its terms ORed) ANDed, the excluded NOTed."""

    def phrase(term: Term) -> str:
        found, prefix = term_tokens(term)
        return '"' + " ".join(found) + '"' + (" *" if prefix else "")

    expression = " AND ".join(
        "(" + " OR ".join(phrase(term) for term in group) + ")" for group in groups
    )
    for term in excluded:
        expression += " NOT " + phrase(term)
    return expression


def tsquery_expression(groups: Sequence[Sequence[Term]], excluded: Sequence[Term] = ()) -> str:
    """The same query as a ``tsquery`` literal."""

    def phrase(term: Term) -> str:
        found, prefix = term_tokens(term)
        quoted = [_quote(token) for token in found]
        if prefix:
            quoted[-1] += ":*"
        return "(" + " <-> ".join(quoted) + ")"

    parts = ["(" + " | ".join(phrase(term) for term in group) + ")" for group in groups]
    parts += ["!" + phrase(term) for term in excluded]
    return " & ".join(parts)


def matching_ids(
    dialect: str, groups: Sequence[Sequence[Term]], excluded: Sequence[Term] = ()
) -> Select[Any]:
    """A SELECT of the ids of the articles matching every group and no excluded
    term (for IN / NOT IN on ``articles.id``)."""
    if dialect == "sqlite":
        expression = fts5_expression(groups, excluded)
        return select(_SQLITE_INDEX.c.rowid).where(_SQLITE_NAME.match(expression))
    return select(_PG_INDEX.c.id).where(_pg_matches(_PG_INDEX.c.tokens, groups, excluded))


def _pg_matches(
    vector: ColumnElement[Any], groups: Sequence[Sequence[Term]], excluded: Sequence[Term]
) -> ColumnElement[bool]:
    return vector.op("@@")(_pg_query(groups, excluded))


def _pg_query(groups: Sequence[Sequence[Term]], excluded: Sequence[Term]) -> ColumnElement[Any]:
    return func.cast(literal(tsquery_expression(groups, excluded)), postgresql.TSQUERY)


def ranked_ids(
    connection: Connection,
    query: Query,
    conditions: Sequence[ColumnElement[bool]],
    *,
    sort: Sort,
    limit: int,
    window: int | None = None,
) -> list[tuple[int, float | None]]:
    """Ids of the articles matching `query`'s words and `conditions` (on
    ``articles``), with their rank (higher is better; None when sorted by
    newest), at most `limit`, best or newest first; ranked among the `window`
    (default `RANK_WINDOW`) most recently stored matches. `query` must have words."""
    window = window or RANK_WINDOW
    articles = tables.articles
    dialect = connection.dialect.name
    if sort == "newest":
        statement = (
            select(articles.c.id, literal(None).label("rank"))
            .where(
                articles.c.id.in_(matching_ids(dialect, query.groups, query.excluded)),
                *conditions,
            )
            .order_by(articles.c.published_at.desc(), articles.c.id.desc())
            .limit(limit)
        )
        return [(row.id, None) for row in connection.execute(statement)]
    if dialect == "sqlite":
        index = _SQLITE_INDEX
        source: Any = index
        if conditions:
            source = index.join(articles, articles.c.id == index.c.rowid)
        score = -func.bm25(_SQLITE_NAME, TITLE_WEIGHT, 1.0)
        inner = (
            select(index.c.rowid.label("id"), score.label("rank"))
            .select_from(source)
            .where(_SQLITE_NAME.match(fts5_expression(query.groups, query.excluded)), *conditions)
            .order_by(index.c.rowid.desc())
            .limit(window)
            .subquery()
        )
        outer = select(inner.c.id, inner.c.rank)
    else:
        index = _PG_INDEX
        source = index
        if conditions:
            source = index.join(articles, articles.c.id == index.c.id)
        inner = (
            select(index.c.id, index.c.tokens)
            .select_from(source)
            .where(_pg_matches(index.c.tokens, query.groups, query.excluded), *conditions)
            .order_by(index.c.id.desc())
            .limit(window)
            .subquery()
        )
        # Ranked outside the window's query: there, PostgreSQL would rank every
        # match before sorting by id.
        rank = func.ts_rank(
            literal_column(_PG_WEIGHTS), inner.c.tokens, _pg_query(query.groups, query.excluded)
        )
        outer = select(inner.c.id, rank.label("rank"))
    statement = outer.order_by(literal_column("rank").desc(), inner.c.id.desc()).limit(limit)
    return [(row.id, float(row.rank)) for row in connection.execute(statement)]
