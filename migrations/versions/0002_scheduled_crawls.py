"""Scheduled crawls: run figures and health on crawl_runs, URL revisit state, run locks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ("hostname", sa.Text()),
    ("pid", sa.Integer()),
    ("requests", sa.Integer()),
    ("responses_2xx", sa.Integer()),
    ("responses_3xx", sa.Integer()),
    ("responses_4xx", sa.Integer()),
    ("responses_5xx", sa.Integer()),
    ("bytes_downloaded", sa.BigInteger()),
    ("articles_new", sa.Integer()),
    ("articles_changed", sa.Integer()),
    ("articles_unchanged", sa.Integer()),
    ("articles_rejected", sa.Integer()),
    ("articles_failed", sa.Integer()),
    ("rejected_by_reason", sa.Text()),
    ("health_ok", sa.Boolean()),
    ("health", sa.Text()),
    ("exit_code", sa.Integer()),
]


def upgrade() -> None:
    with op.batch_alter_table("crawl_runs") as batch:
        for name, type_ in RUN_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "url_state",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("site", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_visit_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_visit_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visits", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_url_state")),
    )
    op.create_index(op.f("ix_url_state_site"), "url_state", ["site"])
    op.create_index(op.f("ix_url_state_next_visit_at"), "url_state", ["next_visit_at"])
    op.create_table(
        "crawl_locks",
        sa.Column("spider", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("spider", name=op.f("pk_crawl_locks")),
    )


def downgrade() -> None:
    op.drop_table("crawl_locks")
    op.drop_index(op.f("ix_url_state_next_visit_at"), table_name="url_state")
    op.drop_index(op.f("ix_url_state_site"), table_name="url_state")
    op.drop_table("url_state")
    with op.batch_alter_table("crawl_runs") as batch:
        for name, _ in reversed(RUN_COLUMNS):
            batch.drop_column(name)
