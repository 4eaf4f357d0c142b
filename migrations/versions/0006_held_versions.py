"""Held versions: suspect captures kept back from ``articles`` until confirmed.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30

A revisit whose page looks cut short (no closing tags, fewer bytes than
``Content-Length``) or whose body lost more than half its length does not replace
the current version; its content waits in ``held_versions`` (one row per article)
until a later fetch gives the same content hash.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("fetched_url", sa.Text(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_held_versions_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_versions")),
        sa.UniqueConstraint("article_id", name=op.f("uq_held_versions_article_id")),
    )


def downgrade() -> None:
    op.drop_table("held_versions")
