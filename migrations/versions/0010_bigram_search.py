"""Korean search by character bigrams on both backends: ``articles_search``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

Replaces 0003's trigram search, which could not answer one- and two-syllable
queries from an index (most Korean content words have two syllables), with a
bigram index built from the same tokens on both backends
(`news_archive.storage.fulltext`, whose module documentation describes it):

- SQLite: the FTS5 table ``articles_search(title, body)`` of token text, a
  one-character prefix index, and a trigger that drops a deleted article's entry;
  0003's ``articles_fts`` and its triggers are dropped.
- PostgreSQL: the table ``articles_search(id, tokens tsvector)`` with a GIN
  index, following ``articles`` by ``ON DELETE CASCADE``; 0003's ``pg_trgm``
  indexes are dropped (the extension stays: other objects may use it).

The articles stored before are indexed here, in batches, by the same Python
code the crawl writes with. Downgrading restores 0003's objects.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

from news_archive.storage import fulltext

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

SQLITE_CREATE = [
    # Tokens are words of letters and digits separated by spaces: unicode61 splits
    # them as they are; no diacritics folding, which would change Hangul-free tokens only.
    """
    CREATE VIRTUAL TABLE articles_search USING fts5(
        title, body, tokenize="unicode61 remove_diacritics 0", prefix='1'
    )
    """,
    """
    CREATE TRIGGER articles_search_after_delete AFTER DELETE ON articles BEGIN
        DELETE FROM articles_search WHERE rowid = old.id;
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS articles_search_after_delete",
    "DROP TABLE IF EXISTS articles_search",
]
POSTGRES_CREATE = [
    """
    CREATE TABLE articles_search (
        id integer PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
        tokens tsvector NOT NULL
    )
    """,
]
# Built after the rows are in: one pass, not one insertion per row.
POSTGRES_INDEX = "CREATE INDEX ix_articles_search_tokens ON articles_search USING gin (tokens)"
POSTGRES_DROP = ["DROP TABLE IF EXISTS articles_search"]
TRIGRAM_INDEXES_DROP = [
    "DROP INDEX IF EXISTS ix_articles_body_trgm",
    "DROP INDEX IF EXISTS ix_articles_title_trgm",
]


def _search_0003() -> object:
    return importlib.import_module("news_archive.migrations.versions.0003_search_and_views")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for statement in [*_search_0003().SQLITE_FTS_DROP, *SQLITE_CREATE]:  # type: ignore[attr-defined]
            op.execute(statement)
    else:
        for statement in [*TRIGRAM_INDEXES_DROP, *POSTGRES_CREATE]:
            op.execute(statement)
    fulltext.index_all(op.get_bind(), BATCH)
    if dialect == "postgresql":
        op.execute(POSTGRES_INDEX)
        # The token statistics ranking reads (storage/fulltext.py, `_idf`).
        op.execute("ANALYZE articles_search")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    old = _search_0003()
    if dialect == "sqlite":
        statements = [*SQLITE_DROP, *old.SQLITE_FTS]  # type: ignore[attr-defined]
    else:
        statements = [*POSTGRES_DROP, *old.POSTGRES_TRIGRAM[1:]]  # type: ignore[attr-defined]
    for statement in statements:
        op.execute(statement)
