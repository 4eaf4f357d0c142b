"""Korea days in the analysts' views: ``daily_counts`` counts by the Korea calendar
day, ``daily_counts_utc`` keeps the UTC days it counted before, and
``current_articles`` gains ``published_kst``, the publication time in Korea.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Storage stays UTC; these are readings of it. Korea has kept UTC+9 without daylight
saving since 1988, which is what SQLite's ``'+9 hours'`` assumes; PostgreSQL reads
``Asia/Seoul`` from its zone database, so the two agree on every day since 1988
(``published_kst`` on SQLite says ``+09:00`` in its text, so it names the right
instant for any year). ``news-archive stats`` counts days in the zone of the
``DISPLAY_TIME_ZONE`` setting through `news_archive.storage.search.daily_counts`,
not through this view.

An index on ``articles (site, published_at)`` serves the per-site day counts and
date ranges without reading the articles' rows.

The views are recreated whole (a view cannot gain a column in place on SQLite);
``downgrade()`` restores migration 0003's definitions. Frozen SQL, like every
migration: later code changes must not change what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0003: tags in page order as one string.
_TAGS = {
    "sqlite": """(SELECT group_concat(tag, ', ')
                  FROM (SELECT t.tag FROM article_tags t
                        WHERE t.article_id = a.id ORDER BY t.position))""",
    "postgresql": """(SELECT string_agg(t.tag, ', ' ORDER BY t.position)
                      FROM article_tags t WHERE t.article_id = a.id)""",
}
# The calendar day of published_at in UTC (0003's daily_counts) and in Korea.
_UTC_DAY = {
    "sqlite": "date(a.published_at)",
    "postgresql": "CAST(a.published_at AT TIME ZONE 'UTC' AS date)",
}
_KOREA_DAY = {
    "sqlite": "date(a.published_at, '+9 hours')",
    "postgresql": "CAST(a.published_at AT TIME ZONE 'Asia/Seoul' AS date)",
}
# published_at in Korea: ISO 8601 text with its offset on SQLite
# ('2026-11-24T08:30:00+09:00'), a timestamp (without zone) of Seoul's wall clock
# on PostgreSQL.
_KOREA_TIME = {
    "sqlite": "strftime('%Y-%m-%dT%H:%M:%S', a.published_at, '+9 hours') || '+09:00'",
    "postgresql": "a.published_at AT TIME ZONE 'Asia/Seoul'",
}


def _current_articles(dialect: str, *, korea_time: bool) -> str:
    """0003's ``current_articles``, with ``published_kst`` after ``published_at``
    when `korea_time`."""
    published_kst = f"{_KOREA_TIME[dialect]} AS published_kst, " if korea_time else ""
    return f"""
        CREATE VIEW current_articles AS
        SELECT a.id, a.site, a.url, a.title, a.subtitle, a.author,
               a.published_at, {published_kst}a.modified_at, a.section, a.language,
               {_TAGS[dialect]} AS tags,
               (SELECT count(*) FROM article_images i WHERE i.article_id = a.id) AS images,
               (SELECT i.url FROM article_images i
                WHERE i.article_id = a.id ORDER BY i.position LIMIT 1) AS first_image_url,
               (SELECT count(*) FROM article_versions v WHERE v.article_id = a.id) AS versions,
               a.body, a.content_hash, a.first_seen_at, a.last_seen_at, a.last_changed_at
        FROM articles a
        """


def _daily_counts(name: str, day: str) -> str:
    return f"""
        CREATE VIEW {name} AS
        SELECT a.site, {day} AS day, count(*) AS articles
        FROM articles a
        GROUP BY a.site, {day}
        """


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in (
        "DROP VIEW IF EXISTS daily_counts",
        "DROP VIEW IF EXISTS current_articles",
        _current_articles(dialect, korea_time=True),
        _daily_counts("daily_counts", _KOREA_DAY[dialect]),
        _daily_counts("daily_counts_utc", _UTC_DAY[dialect]),
    ):
        op.execute(statement)
    op.create_index(op.f("ix_articles_site_published_at"), "articles", ["site", "published_at"])


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    op.drop_index(op.f("ix_articles_site_published_at"), table_name="articles")
    for statement in (
        "DROP VIEW IF EXISTS daily_counts_utc",
        "DROP VIEW IF EXISTS daily_counts",
        "DROP VIEW IF EXISTS current_articles",
        _current_articles(dialect, korea_time=False),
        _daily_counts("daily_counts", _UTC_DAY[dialect]),
    ):
        op.execute(statement)
