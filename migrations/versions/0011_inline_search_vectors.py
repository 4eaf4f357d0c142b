"""PostgreSQL: the search vectors kept inside the table's own pages.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A ranked search tests the newest vectors of ``articles_search`` one by one when
its words are common (`news_archive.storage.fulltext`, ``_newest_matches``). A
vector averages 5 kB, so PostgreSQL stored each out of line, in TOAST, and
every test paid an index lookup and three chunk reads: 6 µs a vector, 3 ms for
a two-word search at 100,000 articles. Kept in the row (``STORAGE MAIN``, and a
``toast_tuple_target`` of a whole page so that PostgreSQL does not move it out
at 2 kB), a test costs about 1.5 µs; a vector over a page still goes to TOAST.

Changing the storage affects new rows only, so the table is rebuilt: its rows
copied into a new one, which takes the old one's name, key, foreign key and
GIN index (built once, after the rows are in), then analysed for the ranking's
statistics. Whether a search walks the newest vectors or asks the index depends
on how common its words are, read from those statistics: with PostgreSQL's
default target they name only the tokens in more than about 8 % of the
articles, and a word in 3 to 8 % was then taken for a rare one and had its
thousands of matches read through the index (12 ms at 100,000 articles). A
statistics target of 1000 names every token in more than about 1.5 % (ANALYZE
samples 300,000 rows: 2.5 s at 100,000 articles). SQLite's FTS5 index is
unchanged. Downgrading restores the default storage and target (rows already
inline stay so; only their place differs).

Frozen SQL, like every migration.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_UPGRADE = [
    """
    CREATE TABLE articles_search_inline (
        id integer NOT NULL,
        tokens tsvector NOT NULL
    ) WITH (toast_tuple_target = 8160)
    """,
    "ALTER TABLE articles_search_inline ALTER COLUMN tokens SET STORAGE MAIN",
    # `|| ''` makes a new value, stored by the new table's rules (a value copied
    # as it is would keep its TOAST pointer's layout).
    """
    INSERT INTO articles_search_inline (id, tokens)
    SELECT id, tokens || ''::tsvector FROM articles_search ORDER BY id
    """,
    "DROP TABLE articles_search",
    "ALTER TABLE articles_search_inline RENAME TO articles_search",
    "ALTER TABLE articles_search ADD CONSTRAINT articles_search_pkey PRIMARY KEY (id)",
    """
    ALTER TABLE articles_search ADD CONSTRAINT articles_search_id_fkey
        FOREIGN KEY (id) REFERENCES articles (id) ON DELETE CASCADE
    """,
    "CREATE INDEX ix_articles_search_tokens ON articles_search USING gin (tokens)",
    "ALTER TABLE articles_search ALTER COLUMN tokens SET STATISTICS 1000",
    "ANALYZE articles_search",
]
POSTGRES_DOWNGRADE = [
    "ALTER TABLE articles_search RESET (toast_tuple_target)",
    "ALTER TABLE articles_search ALTER COLUMN tokens SET STORAGE EXTENDED",
    "ALTER TABLE articles_search ALTER COLUMN tokens SET STATISTICS -1",
]


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for statement in POSTGRES_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for statement in POSTGRES_DOWNGRADE:
            op.execute(statement)
