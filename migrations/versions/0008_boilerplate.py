"""Learned boilerplate: blocks of body text recurring across a site's articles
(``boilerplate_blocks``), and the blocks dropped from each article's body
(``articles.dropped_blocks``), which keep counting as the blocks' evidence.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "boilerplate_blocks",
        sa.Column("site", sa.Text(), nullable=False),
        sa.Column("block_hash", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("articles", sa.Integer(), nullable=False),
        sa.Column("site_articles", sa.Integer(), nullable=False),
        sa.Column("first_learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=True),
        sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("site", "block_hash", name=op.f("pk_boilerplate_blocks")),
    )
    # A plain ADD COLUMN, not batch mode: SQLite's batch copy of `articles` would
    # break the views and the search triggers over it (migration 0003).
    op.add_column("articles", sa.Column("dropped_blocks", sa.Text(), nullable=True))


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35+), for the same reason.
    op.drop_column("articles", "dropped_blocks")
    op.drop_table("boilerplate_blocks")
