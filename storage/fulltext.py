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
alike and need no extension.

Ranking (`ranked_ids`) is the same Python on both: BM25 (k1 1.2, b 0.75, each
occurrence in the title counting `TITLE_WEIGHT` times) over the `RANK_WINDOW`
most recently stored matches, their text read once. Neither database's own
ranking fits in milliseconds: FTS5's ``bm25()`` counts every match of each
phrase for its IDF (18 ms for 삼성전자 at 100,000 articles), PostgreSQL's
``ts_rank`` reads every ranked vector from TOAST. The IDF of a word comes from
an estimate of how many articles have it (`_idf`). Matching is exact at any
size; only the ranking is limited to the window (news: recent matters), and
``--sort newest`` and filters see every match.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    bindparam,
    column,
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
# One occurrence in the title counts as this many in the body.
TITLE_WEIGHT = 5.0
# BM25's term-frequency saturation and length normalisation (Lucene's defaults).
BM25_K1 = 1.2
BM25_B = 0.75
# Matches ranked per search, the most recently stored first (see the module's doc).
RANK_WINDOW = 100
# Matches of each word whose span of ids estimates how many articles have it (IDF).
IDF_SAMPLE = 50
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


def tsquery_expression(
    groups: Sequence[Sequence[Term]], excluded: Sequence[Term] = (), *, phrases: bool = True
) -> str:
    """The same query as a ``tsquery`` literal; without `phrases`, the tokens of
    each word or phrase of `groups` need only all be there (``&``, not ``<->``):
    the GIN index answers that alone, without reading a single vector."""

    def phrase(term: Term, joint: str = " <-> ") -> str:
        found, prefix = term_tokens(term)
        quoted = [_quote(token) for token in found]
        if prefix:
            quoted[-1] += ":*"
        return "(" + joint.join(quoted) + ")"

    joint = " <-> " if phrases else " & "
    parts = ["(" + " | ".join(phrase(term, joint) for term in group) + ")" for group in groups]
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
    vector: ColumnElement[Any],
    groups: Sequence[Sequence[Term]],
    excluded: Sequence[Term],
    *,
    phrases: bool = True,
) -> ColumnElement[bool]:
    expression = tsquery_expression(groups, excluded, phrases=phrases)
    return vector.op("@@")(func.cast(literal(expression), postgresql.TSQUERY))


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
    newest), at most `limit`, best or newest first; ranked (`bm25_scores`) among
    the `window` (default `RANK_WINDOW`) most recently stored matches. `query`
    must have words."""
    articles = tables.articles
    dialect = connection.dialect.name
    if sort == "newest":
        statement = (
            select(articles.c.id)
            .where(
                articles.c.id.in_(matching_ids(dialect, query.groups, query.excluded)),
                *conditions,
            )
            .order_by(articles.c.published_at.desc(), articles.c.id.desc())
            .limit(limit)
        )
        return [(article_id, None) for article_id in connection.scalars(statement)]
    window = window or RANK_WINDOW
    candidates = _newest_matches(connection, query.groups, query.excluded, conditions, window)
    rows = _in_order(connection, query, candidates)
    if len(rows) < limit and len(candidates) == window and len(rows) < len(candidates):
        # PostgreSQL: articles with a word's tokens out of order filled the window.
        # Rare; then the database checks the order itself, at the cost of reading
        # the candidates' vectors.
        candidates = _newest_matches(
            connection, query.groups, query.excluded, conditions, window, in_order=True
        )
        rows = _in_order(connection, query, candidates)
    if not rows:
        return []
    terms = query.terms
    total = connection.scalar(select(func.max(articles.c.id))) or len(rows)
    # One term's weight orders nothing.
    idf = _idf(connection, terms, total) if len(terms) > 1 else {term: 1.0 for term in terms}
    scores = bm25_scores(rows, idf)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], -item[0]))
    return [(article_id, score) for article_id, score in ranked[:limit]]


def _in_order(
    connection: Connection, query: Query, candidates: Sequence[int]
) -> list[tuple[int, str, str]]:
    """(id, title, body) of the `candidates` that have every group's words, their
    runs in order (PostgreSQL's candidates need only have the tokens)."""
    if not candidates:
        return []
    articles = tables.articles.c
    found = connection.execute(
        select(articles.id, articles.title, articles.body).where(articles.id.in_(candidates))
    ).all()
    return [
        (row.id, row.title, row.body or "")
        for row in found
        if has_every_group(query.groups, row.title, row.body or "")
    ]


def _newest_matches(
    connection: Connection,
    groups: Sequence[Sequence[Term]],
    excluded: Sequence[Term],
    conditions: Sequence[ColumnElement[bool]],
    count: int,
    *,
    in_order: bool = False,
) -> list[int]:
    """Ids of the `count` most recently stored articles that match (newest first).

    Cheap on both backends: the index yields matches in id order, and the scan
    stops at `count`. On PostgreSQL, unless `in_order`, a word needs only all its
    tokens (their order is checked by `has_every_group` on the text): checking
    the order means reading each candidate's vector, and its planner, which
    cannot tell how many candidates a phrase has, may choose to read tens of
    thousands."""
    articles = tables.articles
    if connection.dialect.name == "sqlite":
        key = _SQLITE_INDEX.c.rowid
        match = _SQLITE_NAME.match(fts5_expression(groups, excluded))
        source: Any = _SQLITE_INDEX
    else:
        key = _PG_INDEX.c.id
        match = _pg_matches(_PG_INDEX.c.tokens, groups, excluded, phrases=in_order)
        source = _PG_INDEX
    if conditions:
        source = source.join(articles, articles.c.id == key)
    statement = select(key).select_from(source).where(match, *conditions)
    return list(connection.scalars(statement.order_by(key.desc()).limit(count)))


def _idf(connection: Connection, terms: Sequence[Term], total: int) -> dict[Term, float]:
    """BM25's inverse document frequency of each term, from an estimate of how many
    articles have it: counting every match of a common word would cost more than
    the search.

    SQLite: from the span of ids its `IDF_SAMPLE` newest matches cover (exact
    when it has fewer). PostgreSQL: from ANALYZE's statistics of the vector
    column (the most common tokens and their shares; a token outside them is
    rarer than the least common of them), a term as common as its rarest token.
    """
    if connection.dialect.name == "sqlite":
        shares = {}
        for term in terms:
            ids = _newest_matches(connection, [[term]], (), (), IDF_SAMPLE)
            span = max(ids[0] - ids[-1] + 1, 1) if ids else 1
            found = len(ids) if len(ids) < IDF_SAMPLE else IDF_SAMPLE * total / span
            shares[term] = found / max(total, 1)
    else:
        row = connection.execute(
            text(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE tablename = 'articles_search' AND attname = 'tokens'"
            )
        ).first()
        if row is None or row[0] is None:
            return {term: 1.0 for term in terms}  # never analysed: weigh terms alike
        common = dict(zip(row[0], row[1], strict=False))
        rare = min(row[1][: len(row[0])]) / 2
        shares = {term: _pg_share(term, common, rare) for term in terms}
    return {
        term: math.log(1 + (1 - share + 0.5 / total) / (share + 0.5 / total))
        for term, share in shares.items()
    }


def _pg_share(term: Term, common: dict[str, float], rare: float) -> float:
    """The share of articles with `term`: that of its rarest token; a one-syllable
    prefix, that of the commonest token it begins."""
    found, prefix = term_tokens(term)
    if prefix:
        begun = (share for token, share in common.items() if token[0] == found[0])
        return max(begun, default=rare)
    return min(common.get(token, rare) for token in found)


def has_every_group(groups: Sequence[Sequence[Term]], title: str, body: str) -> bool:
    """Whether the title or the body has a term of every group, its runs in order
    (`tokens.text_pattern`)."""
    return all(
        any(
            pattern.search(title) or pattern.search(body)
            for pattern in (_pattern(term) for term in group)
        )
        for group in groups
    )


@functools.lru_cache(maxsize=256)
def _pattern(term: Term) -> re.Pattern[str]:
    """Where `term` occurs in a text (built once per term: a search checks it on
    every ranked article)."""
    return re.compile(tokens.text_pattern(term.text), re.IGNORECASE)


def bm25_scores(rows: Sequence[tuple[int, str, str]], idf: dict[Term, float]) -> dict[int, float]:
    """BM25 of each (id, title, body) for the terms of `idf` (with their weights):
    a term's frequency counts each occurrence in the title `TITLE_WEIGHT` times,
    lengths are in characters, their average that of `rows`."""
    patterns = {term: _pattern(term) for term in idf}
    lengths = {article_id: len(title) + len(body) for article_id, title, body in rows}
    average = sum(lengths.values()) / max(len(lengths), 1) or 1.0
    scores = {}
    for article_id, title, body in rows:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[article_id] / average)
        score = 0.0
        for term, weight in idf.items():
            pattern = patterns[term]
            frequency = TITLE_WEIGHT * len(pattern.findall(title)) + len(pattern.findall(body))
            score += weight * frequency * (BM25_K1 + 1) / (frequency + norm)
        scores[article_id] = score
    return scores
