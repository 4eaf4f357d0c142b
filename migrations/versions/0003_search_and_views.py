"""Korean full-text search on articles' title and body, and views for analysts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

SQLite: an FTS5 table ``articles_fts`` with the ``trigram`` tokenizer (any substring
of three or more characters matches, which suits Korean, whose words carry their
particles: ``카카오`` must find ``카카오와``), kept in sync with ``articles`` by
triggers. It is an external-content table (the text is stored once, in
``articles``), declared as ``content="articles"`` in double quotes because that
is the spelling Datasette looks for to offer its search box on ``articles``.

PostgreSQL: ``pg_trgm`` GIN indexes on ``articles.title`` and ``articles.body``,
which serve ``ILIKE '%query%'``. They only index Hangul in a database whose
``LC_CTYPE`` is UTF-8 (e.g. ``C.UTF-8``); under ``LC_CTYPE=C`` queries stay correct
but scan every row.

Views on both: ``current_articles``, ``article_history``, ``daily_counts``. None of
these objects is in the models' metadata; ``migrations/env.py`` keeps them out of
autogenerate's comparison.

Any later migration that rebuilds ``articles`` with ``batch_alter_table`` on SQLite
(copy, drop, rename) loses the triggers and trips over the views: it must drop
them first and recreate them after (``downgrade()`` / ``upgrade()`` here show how).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FTS = [
    """
    CREATE VIRTUAL TABLE articles_fts USING fts5(
        title, body,
        content="articles", content_rowid="id", tokenize="trigram"
    )
    """,
    # External content: FTS5 stores no copy of the text, so each change must be
    # told to it; a 'delete' must pass the old values so their trigrams can go.
    """
    CREATE TRIGGER articles_fts_after_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
    END
    """,
    """
    CREATE TRIGGER articles_fts_after_delete AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
    END
    """,
    # Only when the text changes: a re-crawl of an unchanged article updates
    # last_seen_at and metadata, and should not rewrite its index entries.
    """
    CREATE TRIGGER articles_fts_after_update AFTER UPDATE OF id, title, body ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
        INSERT INTO articles_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
    END
    """,
    # Index the articles stored before this migration.
    "INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')",
]
SQLITE_FTS_DROP = [
    "DROP TRIGGER IF EXISTS articles_fts_after_update",
    "DROP TRIGGER IF EXISTS articles_fts_after_delete",
    "DROP TRIGGER IF EXISTS articles_fts_after_insert",
    "DROP TABLE IF EXISTS articles_fts",
]

POSTGRES_TRIGRAM = [
    # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_articles_title_trgm ON articles USING gin (title gin_trgm_ops)",
    "CREATE INDEX ix_articles_body_trgm ON articles USING gin (body gin_trgm_ops)",
]
POSTGRES_TRIGRAM_DROP = [
    "DROP INDEX IF EXISTS ix_articles_body_trgm",
    "DROP INDEX IF EXISTS ix_articles_title_trgm",
    # Other objects of the database may use pg_trgm too; then it stays.
    """
    DO $$
    BEGIN
        DROP EXTENSION IF EXISTS pg_trgm;
    EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE NOTICE 'pg_trgm kept: other objects depend on it';
    END
    $$
    """,
]

# Tags in page order as one string. SQLite 3.40 has no ORDER BY inside an
# aggregate, but group_concat keeps the order of an ordered subquery.
_TAGS = {
    "sqlite": """(SELECT group_concat(tag, ', ')
                  FROM (SELECT t.tag FROM article_tags t
                        WHERE t.article_id = a.id ORDER BY t.position))""",
    "postgresql": """(SELECT string_agg(t.tag, ', ' ORDER BY t.position)
                      FROM article_tags t WHERE t.article_id = a.id)""",
}
# The UTC calendar date of published_at: SQLite stores UTC text
# 'YYYY-MM-DD HH:MM:SS.ffffff'; PostgreSQL a timestamptz, read here in UTC.
_UTC_DAY = {
    "sqlite": "date(a.published_at)",
    "postgresql": "CAST(a.published_at AT TIME ZONE 'UTC' AS date)",
}


def _views(dialect: str) -> list[str]:
    return [
        f"""
        CREATE VIEW current_articles AS
        SELECT a.id, a.site, a.url, a.title, a.subtitle, a.author,
               a.published_at, a.modified_at, a.section, a.language,
               {_TAGS[dialect]} AS tags,
               (SELECT count(*) FROM article_images i WHERE i.article_id = a.id) AS images,
               (SELECT i.url FROM article_images i
                WHERE i.article_id = a.id ORDER BY i.position LIMIT 1) AS first_image_url,
               (SELECT count(*) FROM article_versions v WHERE v.article_id = a.id) AS versions,
               a.body, a.content_hash, a.first_seen_at, a.last_seen_at, a.last_changed_at
        FROM articles a
        """,
        """
        CREATE VIEW article_history AS
        SELECT a.site, a.url, v.version, v.captured_at, v.title, v.content_hash, v.note,
               v.article_id, v.author, v.published_at, v.modified_at, v.fetched_url,
               length(v.body) AS body_chars, v.body
        FROM article_versions v JOIN articles a ON a.id = v.article_id
        """,
        f"""
        CREATE VIEW daily_counts AS
        SELECT a.site, {_UTC_DAY[dialect]} AS day, count(*) AS articles
        FROM articles a
        GROUP BY a.site, {_UTC_DAY[dialect]}
        """,
    ]


VIEWS_DROP = [
    "DROP VIEW IF EXISTS daily_counts",
    "DROP VIEW IF EXISTS article_history",
    "DROP VIEW IF EXISTS current_articles",
]


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        statements = SQLITE_FTS
    elif dialect == "postgresql":
        statements = POSTGRES_TRIGRAM
    else:
        raise NotImplementedError(f"no full-text search for the {dialect} dialect")
    for statement in [*statements, *_views(dialect)]:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    statements = SQLITE_FTS_DROP if dialect == "sqlite" else POSTGRES_TRIGRAM_DROP
    for statement in [*VIEWS_DROP, *statements]:
        op.execute(statement)
