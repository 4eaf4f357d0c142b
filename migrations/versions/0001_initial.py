"""Initial schema: articles and their versions, tags, images, URL aliases, crawl runs and errors.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written by hand (checked against autogenerate).  Timestamps are plain
``DateTime(timezone=True)``: the UTC handling of `storage.types.UTCDateTime` lives
in Python, and a migration must not import the live models, which move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _article_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["article_id"],
        ["articles.id"],
        name=op.f(f"fk_{table}_article_id_articles"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("site"),
        _text("url"),
        _text("title"),
        _text("subtitle", nullable=True),
        _text("author", nullable=True),
        _timestamp("published_at"),
        _text("published_raw"),
        _timestamp("modified_at", nullable=True),
        _text("modified_raw", nullable=True),
        _text("section", nullable=True),
        _text("language", nullable=True),
        _text("body"),
        _text("content_hash"),
        _text("fetched_url"),
        _text("sources", nullable=True),
        _timestamp("first_seen_at"),
        _timestamp("last_seen_at"),
        _timestamp("last_changed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_articles")),
        sa.UniqueConstraint("url", name=op.f("uq_articles_url")),
    )
    op.create_index(op.f("ix_articles_site"), "articles", ["site"])
    op.create_index(op.f("ix_articles_published_at"), "articles", ["published_at"])

    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _text("title"),
        _text("subtitle", nullable=True),
        _text("author", nullable=True),
        _text("body"),
        _text("content_hash"),
        _timestamp("published_at"),
        _timestamp("modified_at", nullable=True),
        _timestamp("captured_at"),
        _text("fetched_url"),
        _text("note", nullable=True),
        _article_fk("article_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_versions")),
        sa.UniqueConstraint(
            "article_id", "version", name=op.f("uq_article_versions_article_id_version")
        ),
    )
    op.create_index(op.f("ix_article_versions_article_id"), "article_versions", ["article_id"])

    op.create_table(
        "article_tags",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _text("tag"),
        _article_fk("article_tags"),
        sa.PrimaryKeyConstraint("article_id", "position", name=op.f("pk_article_tags")),
    )
    op.create_index(op.f("ix_article_tags_tag"), "article_tags", ["tag"])

    op.create_table(
        "article_images",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _text("url"),
        _text("caption", nullable=True),
        _text("alt", nullable=True),
        _article_fk("article_images"),
        sa.PrimaryKeyConstraint("article_id", "position", name=op.f("pk_article_images")),
    )

    op.create_table(
        "url_aliases",
        _text("url"),
        _text("canonical_url"),
        _text("site"),
        _timestamp("first_seen_at"),
        _timestamp("last_seen_at"),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_url_aliases")),
    )
    op.create_index(op.f("ix_url_aliases_canonical_url"), "url_aliases", ["canonical_url"])

    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("spider"),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        _text("finish_reason", nullable=True),
        _text("settings", nullable=True),
        _text("stats", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_runs")),
    )

    op.create_table(
        "crawl_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        _text("spider"),
        _text("url"),
        sa.Column("status", sa.Integer(), nullable=True),
        _text("reason"),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        _timestamp("occurred_at"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["crawl_runs.id"],
            name=op.f("fk_crawl_errors_run_id_crawl_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_errors")),
    )
    op.create_index(
        op.f("ix_crawl_errors_spider_occurred_at"), "crawl_errors", ["spider", "occurred_at"]
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes with it.
    for table in (
        "crawl_errors",
        "crawl_runs",
        "url_aliases",
        "article_images",
        "article_tags",
        "article_versions",
        "articles",
    ):
        op.drop_table(table)
