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
  index; a foreign key with ``ON DELETE CASCADE`` follows deleted articles. The
  vectors are kept in the row, not in TOAST (migration 0011), so that testing
  the newest of them one by one is cheap (`_newest_matches`).

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
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Pool,
    Row,
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
# PostgreSQL (`_newest_matches`): a query in at least SCAN_MIN_SHARE of the
# articles (by ANALYZE's statistics) is answered by testing the newest vectors
# one by one (about 1.5 us each), one in at least SPAN_MIN_SHARE by intersecting
# its GIN lists with the newest ids (about 0.2 us a match, and 3 us a match in
# the span), each over a span of ids that should hold SCAN_SPAN times the matches
# wanted; a rarer one by the GIN index alone (about 2 us a match, every match
# read). Measured at 100,000 articles: the walk wins above about 4.5 %.
SCAN_MIN_SHARE = 0.05
SPAN_MIN_SHARE = 0.01
SCAN_SPAN = 3
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


@functools.cache
def _pg_walked() -> ColumnElement[Any]:
    """The vector through an expression, which the GIN index cannot serve: the planner
    then walks the primary key down from the newest id (`_newest_matches`). Built on
    first use: PostgreSQL's dialect is not imported by a process on SQLite."""
    from sqlalchemy.dialects import postgresql

    return func.coalesce(_PG_INDEX.c.tokens, func.cast("", postgresql.TSVECTOR))


# ------------------------------------------------------------------ writing


def index_articles(connection: Connection, rows: Sequence[tuple[int, tokens.SearchText]]) -> None:
    """(Re)index articles given as (id, search text: `tokens.search_text` of its title
    and body): any entry they had is replaced."""
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        ids = [{"id": article_id} for article_id, _ in rows]
        connection.execute(text("DELETE FROM articles_search WHERE rowid = :id"), ids)
        connection.execute(
            text("INSERT INTO articles_search (rowid, title, body) VALUES (:id, :title, :body)"),
            [{"id": i, "title": title, "body": body} for i, (title, body) in rows],
        )
        return
    from sqlalchemy.dialects import postgresql

    statement = postgresql.insert(_PG_INDEX).values(
        id=bindparam("id"), tokens=func.cast(bindparam("tokens"), postgresql.TSVECTOR)
    )
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"tokens": statement.excluded.tokens}
    )
    connection.execute(
        statement,
        [{"id": i, "tokens": tsvector_literal(searched)} for i, searched in rows],
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
        index_articles(
            connection, [(row.id, tokens.search_text(row.title, row.body)) for row in rows]
        )
        last, count = rows[-1].id, count + len(rows)


def tsvector_literal(searched: tokens.SearchText) -> str:
    """The ``tsvector`` of an article's search text (`tokens.search_text`: the tokens
    of its title and of its body, space-separated) in PostgreSQL's literal syntax:
    each token with its positions, the title's weighted A; one position left empty
    between title and body so that no phrase spans them."""
    positions: dict[str, list[str]] = {}
    size = 0
    position = 0
    for part, weight in zip(searched, ("A", ""), strict=True):
        for token in part.split():
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
    from sqlalchemy.dialects import postgresql

    expression = tsquery_expression(groups, excluded, phrases=phrases)
    return vector.op("@@")(func.cast(literal(expression), postgresql.TSQUERY))


def ranked_rows(
    connection: Connection,
    query: Query,
    conditions: Sequence[ColumnElement[bool]],
    *,
    columns: Sequence[ColumnElement[Any]] = (),
    sort: Sort,
    limit: int,
    window: int | None = None,
) -> list[tuple[Row[Any], float | None]]:
    """The articles matching `query`'s words and `conditions` (on ``articles``),
    at most `limit`, best or newest first, each as a row of its ``id``, ``title``,
    ``body`` and `columns` (of ``articles``), with its rank (higher is better;
    None when sorted by newest). Ranked (`bm25_scores`) among the `window`
    (default `RANK_WINDOW`) most recently stored matches. `query` must have words.
    """
    articles = tables.articles.c
    selected = (articles.id, articles.title, articles.body, *columns)
    dialect = connection.dialect.name
    if sort == "newest":
        matching = matching_ids(dialect, query.groups, query.excluded)
        statement = (
            select(*selected)
            .where(articles.id.in_(matching), *conditions)
            .order_by(articles.published_at.desc(), articles.id.desc())
            .limit(limit)
        )
        return [(row, None) for row in connection.execute(statement)]
    window = window or RANK_WINDOW
    shares = token_shares(connection) if dialect == "postgresql" else None
    candidates = _newest_matches(
        connection, query, conditions, window, shares=shares, selected=selected
    )
    rows = _in_order(connection, query, candidates)
    if len(rows) < limit and len(candidates) == window and len(rows) < len(candidates):
        # PostgreSQL: articles with a word's tokens out of order filled the window.
        # Rare; then the database checks the order itself, at the cost of reading
        # the candidates' vectors.
        candidates = _newest_matches(
            connection, query, conditions, window, in_order=True, selected=selected
        )
        rows = _in_order(connection, query, candidates)
    if not rows:
        return []
    terms = query.terms
    # One term's weight orders nothing.
    idf = _idf(connection, terms, shares) if len(terms) > 1 else {term: 1.0 for term in terms}
    scores = bm25_scores([(row.id, row.title, row.body or "") for row in rows], idf)
    best = sorted(rows, key=lambda row: (-scores[row.id], -row.id))[:limit]
    return [(row, scores[row.id]) for row in best]


def _in_order(connection: Connection, query: Query, candidates: list[Row[Any]]) -> list[Row[Any]]:
    """The `candidates` that match: on PostgreSQL, whose candidates need only have
    each word's tokens, those with every group's words, their runs in order
    (`has_every_group`); on SQLite, whose index matched the phrases exactly, all."""
    if connection.dialect.name != "postgresql":
        return candidates
    # A group of words of one token each matched exactly.
    groups = [group for group in query.groups if any(_several_tokens(term) for term in group)]
    if not groups:
        return candidates
    return [row for row in candidates if has_every_group(groups, row.title, row.body or "")]


def _several_tokens(term: Term) -> bool:
    """Whether `term` has several tokens, whose order the index, asked only for
    all of them, did not check."""
    return len(term_tokens(term)[0]) > 1


def _newest_matches(
    connection: Connection,
    query: Query,
    conditions: Sequence[ColumnElement[bool]],
    count: int,
    *,
    shares: TokenShares | None = None,
    in_order: bool = False,
    selected: Sequence[ColumnElement[Any]] = (),
) -> list[Any]:
    """The `count` most recently stored articles that match: their ids, newest
    first; or, given columns of ``articles`` to select, their rows in any order,
    read in the same statement.

    SQLite: the FTS5 index yields matches in id order, and the scan stops at `count`.

    PostgreSQL: unless `in_order`, a word needs only all its tokens (their order
    is checked by `has_every_group` on the text): checking the order means reading
    each candidate's vector, and its planner, which cannot tell how many
    candidates a phrase has, may choose to read tens of thousands. A query that
    ANALYZE's `shares` say is common (`SCAN_MIN_SHARE`) is answered by walking
    the newest ids down and testing each vector (kept in the row by migration
    0011: about 1.5 µs each), over a span of ids that should hold `SCAN_SPAN`
    times `count` matches; a less common one (`SPAN_MIN_SHARE`) by the GIN index
    within that span; only if the span holds fewer does the index look further
    back. The planner, which multiplies the shares of a query's tokens as if they
    were independent, would otherwise read every match through the index (words
    of one topic come together: 삼성전자 반도체 has 16,000 matches at 100,000
    articles, 10 ms, against 2 ms for the newest 100), and walk for a word in 3 %
    of the articles (5 ms, against 2.5 ms within the span).
    """
    articles = tables.articles
    sqlite = connection.dialect.name == "sqlite"
    key = _SQLITE_INDEX.c.rowid if sqlite else _PG_INDEX.c.id
    source: Any = _SQLITE_INDEX if sqlite else _PG_INDEX
    if conditions:
        source = source.join(articles, articles.c.id == key)
    statement = select(key.label("id")).select_from(source).where(*conditions).order_by(key.desc())

    def matching() -> ColumnElement[bool]:
        if sqlite:
            return _SQLITE_NAME.match(fts5_expression(query.groups, query.excluded))
        return _pg_matches(_PG_INDEX.c.tokens, query.groups, query.excluded, phrases=in_order)

    def read(ids: Select[Any]) -> list[Any]:
        if not selected:
            return list(connection.scalars(ids))
        found = ids.subquery()
        rows = select(*selected).join_from(articles, found, articles.c.id == found.c.id)
        return list(connection.execute(rows).all())

    share = shares.of_query(query) if shares is not None else 0.0
    if conditions or in_order or share < SPAN_MIN_SHARE:
        return read(statement.where(matching()).limit(count))
    assert shares is not None
    floor = shares.newest - math.ceil(SCAN_SPAN * count / share)
    if share >= SCAN_MIN_SHARE:
        walked = _pg_matches(_pg_walked(), query.groups, query.excluded, phrases=False)
        recent = read(statement.where(walked, key > floor).limit(count))
    else:
        # Without ORDER BY and LIMIT (kept outside by the OFFSET) the planner does
        # not walk: it intersects the GIN lists with the span (a BitmapAnd) and
        # reads only the matches in the span.
        spanned = select(key.label("id")).where(matching(), key > floor).offset(0).subquery()
        recent = read(select(spanned.c.id).order_by(spanned.c.id.desc()).limit(count))
    if len(recent) == count:
        return recent
    return recent + read(statement.where(matching(), key <= floor).limit(count - len(recent)))


@dataclass(frozen=True)
class TokenShares:
    """ANALYZE's statistics of PostgreSQL's index: the share of articles holding
    each of the most common tokens, the share assumed for any other (half the
    least common's), and how many articles are indexed; with the newest id
    indexed when they were read (where `_newest_matches` measures its spans
    from: articles stored since only widen a span)."""

    common: dict[str, float]
    rare: float
    articles: float
    newest: int

    def of_term(self, term: Term) -> float:
        """The share of articles with `term`, at most: that of its rarest token; a
        one-syllable prefix, that of the commonest token it begins."""
        found, prefix = term_tokens(term)
        if prefix:
            begun = (share for token, share in self.common.items() if token[0] == found[0])
            return max(begun, default=self.rare)
        return min(self.common.get(token, self.rare) for token in found)

    def of_query(self, query: Query) -> float:
        """The share of articles matching `query`, at most: that of its rarest group
        (words of one topic come together, so no product of shares)."""
        return min(
            (min(sum(self.of_term(term) for term in group), 1.0) for group in query.groups),
            default=0.0,
        )


# How long a process reuses `token_shares` (they change only when ANALYZE runs).
SHARES_SECONDS = 300.0
_shares: weakref.WeakKeyDictionary[Pool, tuple[float, TokenShares | None]] = (
    weakref.WeakKeyDictionary()
)


def token_shares(connection: Connection) -> TokenShares | None:
    """The `TokenShares` of the PostgreSQL archive `connection` reads (None before
    its first ANALYZE), read at most once per `SHARES_SECONDS` per engine: the
    ``pg_stats`` row (3,600 tokens at 100,000 articles, under migration 0011's
    statistics target) costs 20 ms to read, more than three searches."""
    pool = connection.engine.pool
    cached = _shares.get(pool)
    if cached is not None and time.monotonic() < cached[0]:
        return cached[1]
    row = connection.execute(
        text(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples, "
            "(SELECT max(id) FROM articles_search) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_stats s ON s.schemaname = n.nspname "
            "AND s.tablename = c.relname AND s.attname = 'tokens' "
            "WHERE c.oid = CAST(:table AS regclass)"
        ),
        {"table": INDEX_TABLE},
    ).first()
    shares = None
    if row is not None and row[0]:
        elements, frequencies, articles, newest = row
        # The frequencies end with three figures of their own (min, max, nulls).
        rare = min(frequencies[: len(elements)]) / 2
        common = dict(zip(elements, frequencies, strict=False))
        shares = TokenShares(common, rare, articles, newest or 0)
    _shares[pool] = (time.monotonic() + SHARES_SECONDS, shares)
    return shares


def _idf(
    connection: Connection, terms: Sequence[Term], shares: TokenShares | None
) -> dict[Term, float]:
    """BM25's inverse document frequency of each term, from an estimate of how many
    articles have it: counting every match of a common word would cost more than
    the search.

    SQLite: from the span of ids its `IDF_SAMPLE` newest matches cover (exact
    when it has fewer). PostgreSQL: from ANALYZE's statistics (`TokenShares`), a
    term as common as its rarest token.
    """
    if connection.dialect.name == "sqlite":
        total = connection.scalar(select(func.max(tables.articles.c.id))) or 1
        found = {}
        for term in terms:
            ids = _newest_matches(connection, Query(groups=((term,),)), (), IDF_SAMPLE)
            span = max(ids[0] - ids[-1] + 1, 1) if ids else 1
            found[term] = (len(ids) if len(ids) < IDF_SAMPLE else IDF_SAMPLE * total / span) / total
    elif shares is None:
        return {term: 1.0 for term in terms}  # never analysed: weigh terms alike
    else:
        total = max(int(shares.articles), 1)
        found = {term: shares.of_term(term) for term in terms}
    return {
        term: math.log(1 + (1 - share + 0.5 / total) / (share + 0.5 / total))
        for term, share in found.items()
    }


def has_every_group(groups: Sequence[Sequence[Term]], title: str, body: str) -> bool:
    """Whether the title or the body has a term of every group, its runs in order
    (`tokens.text_pattern`; Latin words in any case)."""
    folded: tuple[str, str] | None = None
    for group in groups:
        for term in group:
            word, pattern, fold = _matcher(term)
            if word is not None:
                if word in title or word in body:
                    break
            elif fold:
                folded = folded or (title.casefold(), body.casefold())
                if pattern.search(folded[0]) or pattern.search(folded[1]):
                    break
            elif pattern.search(title) or pattern.search(body):
                break
        else:
            return False
    return True


@functools.lru_cache(maxsize=256)
def _matcher(term: Term) -> tuple[str | None, re.Pattern[str], bool]:
    """How to find `term` in a text, built once per term (a search looks for it in
    every ranked article): its text when it is one CJK run (most Korean words),
    which occurs wherever that text does, for ``in`` and ``str.count``; its
    pattern (`tokens.text_pattern`); and whether the pattern is of case-folded
    text, to search case-folded text with (a term with Latin letters: without
    ``re.IGNORECASE``, under which ``re`` cannot look for a literal start quickly).
    CJK has no case."""
    runs = term.runs()
    word = runs[0][0] if len(runs) == 1 and runs[0][1] else None
    fold = not all(cjk for _, cjk in runs)
    return word, re.compile(tokens.text_pattern(term.text.casefold() if fold else term.text)), fold


def bm25_scores(rows: Sequence[tuple[int, str, str]], idf: dict[Term, float]) -> dict[int, float]:
    """BM25 of each (id, title, body) for the terms of `idf` (with their weights):
    a term's frequency counts each occurrence in the title `TITLE_WEIGHT` times,
    lengths are in characters, their average that of `rows`."""
    matchers = [(weight, *_matcher(term)) for term, weight in idf.items()]
    fold = any(folds for *_, folds in matchers)
    lengths = {article_id: len(title) + len(body) for article_id, title, body in rows}
    average = sum(lengths.values()) / max(len(lengths), 1) or 1.0
    scores = {}
    for article_id, title, body in rows:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[article_id] / average)
        folded = (title.casefold(), body.casefold()) if fold else (title, body)
        score = 0.0
        for weight, word, pattern, folds in matchers:
            if word is not None:
                in_title, in_body = title.count(word), body.count(word)
            else:
                texts = folded if folds else (title, body)
                in_title, in_body = len(pattern.findall(texts[0])), len(pattern.findall(texts[1]))
            frequency = TITLE_WEIGHT * in_title + in_body
            score += weight * frequency * (BM25_K1 + 1) / (frequency + norm)
        scores[article_id] = score
    return scores
