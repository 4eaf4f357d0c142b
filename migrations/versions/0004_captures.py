"""WARC capture index: one row per WARC record, linked to the version it produced.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spider", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("payload_digest", sa.Text(), nullable=False),
        sa.Column("record_type", sa.Text(), nullable=False),
        sa.Column("warc_file", sa.Text(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("article_version_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_version_id"],
            ["article_versions.id"],
            name=op.f("fk_captures_article_version_id_article_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
        sa.UniqueConstraint("warc_file", "offset", name=op.f("uq_captures_warc_file_offset")),
    )
    op.create_index(op.f("ix_captures_url_fetched_at"), "captures", ["url", "fetched_at"])
    op.create_index(op.f("ix_captures_payload_digest"), "captures", ["payload_digest"])
    op.create_index(op.f("ix_captures_article_version_id"), "captures", ["article_version_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_captures_article_version_id"), table_name="captures")
    op.drop_index(op.f("ix_captures_payload_digest"), table_name="captures")
    op.drop_index(op.f("ix_captures_url_fetched_at"), table_name="captures")
    op.drop_table("captures")
