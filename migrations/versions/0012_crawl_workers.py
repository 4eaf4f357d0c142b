"""A run is one worker of a crawl: ``crawl_runs.crawl_id`` and ``crawl_runs.worker``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

With ``REDIS_URL`` set, many ``scrapy crawl`` processes share one crawl
(docs/scaling.md); each writes its own ``crawl_runs`` row, carrying the id the
crawl was given in Redis and the worker's identity (``host:pid``).  A crawl's
totals are the sum of its rows (indexed by crawl).  Rows of single-process runs
keep both NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crawl_runs") as batch:
        batch.add_column(sa.Column("crawl_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("worker", sa.Text(), nullable=True))
        batch.create_index("ix_crawl_runs_crawl_id", ["crawl_id"])


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs") as batch:
        batch.drop_index("ix_crawl_runs_crawl_id")
        batch.drop_column("worker")
        batch.drop_column("crawl_id")
