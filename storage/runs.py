"""The SQL of run records: a run's at-a-glance figures, its health and exit code,
and the previous runs of a spider that the health checks compare against.

The row itself is created and finished by `ArchiveRepository.start_run` and
`finish_run`; these functions fill the other columns of ``crawl_runs`` and may be
called before or after `finish_run` (they touch none of its columns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, or_, select, update

from news_archive.storage import tables
from news_archive.storage.engine import READ_ONLY_OPTION

# The columns `record_run_figures` may fill; `rejected_by_reason` is a mapping
# (reason -> count), stored as JSON.
FIGURE_COLUMNS = (
    "hostname",
    "pid",
    "requests",
    "responses_2xx",
    "responses_3xx",
    "responses_4xx",
    "responses_5xx",
    "bytes_downloaded",
    "articles_new",
    "articles_changed",
    "articles_unchanged",
    "articles_rejected",
    "articles_failed",
    "rejected_by_reason",
)

# What `previous_runs` returns of each run besides the figures.
_HISTORY_COLUMNS = ("id", "spider", "started_at", "finished_at", "finish_reason", "health_ok")


def record_run_figures(engine: Engine, run_id: int, figures: Mapping[str, Any]) -> None:
    """Fill the figure columns (`FIGURE_COLUMNS`) of crawl run `run_id`.

    Counts are integers (bytes for ``bytes_downloaded``); ``rejected_by_reason``
    is a mapping of reason slug to count. A key that is not a figure column is a
    programming error and raises `ValueError`.
    """
    unknown = set(figures) - set(FIGURE_COLUMNS)
    if unknown:
        raise ValueError(f"not crawl_runs figure columns: {', '.join(sorted(unknown))}")
    values = dict(figures)
    if "rejected_by_reason" in values:
        values["rejected_by_reason"] = _to_json(values["rejected_by_reason"])
    with engine.begin() as connection:
        connection.execute(update(tables.runs).where(tables.runs.c.id == run_id).values(**values))


def record_worker(engine: Engine, run_id: int, crawl_id: str, worker: str) -> None:
    """Record that run `run_id` is the worker `worker` (``host:pid``) of the crawl
    `crawl_id` shared through Redis (docs/scaling.md)."""
    with engine.begin() as connection:
        connection.execute(
            update(tables.runs)
            .where(tables.runs.c.id == run_id)
            .values(crawl_id=crawl_id, worker=worker)
        )


def record_health(
    engine: Engine,
    run_id: int,
    ok: bool,
    results: Sequence[Mapping[str, Any]],
    exit_code: int,
) -> None:
    """Record the outcome of the health checks of run `run_id`: `ok` (all passed),
    each check's result (a JSON list of objects) and the exit code it implies."""
    with engine.begin() as connection:
        connection.execute(
            update(tables.runs)
            .where(tables.runs.c.id == run_id)
            .values(health_ok=ok, health=_to_json(list(results)), exit_code=exit_code)
        )


def record_exit_code(engine: Engine, run_id: int, exit_code: int) -> None:
    """Record the exit code the ``scrapy crawl`` process of run `run_id` ends with."""
    with engine.begin() as connection:
        connection.execute(
            update(tables.runs).where(tables.runs.c.id == run_id).values(exit_code=exit_code)
        )


def previous_runs(
    engine: Engine,
    spider: str,
    limit: int,
    before_run_id: int,
    *,
    include_unhealthy: bool = False,
) -> list[dict[str, Any]]:
    """The last `limit` complete runs of `spider` before run `before_run_id`, newest
    first: the baseline the health checks compare a run against.

    Complete means finished with finish reason ``finished`` (a run cut short by a
    signal, a timeout or a lock says nothing about the site). Runs whose health
    checks failed are left out unless `include_unhealthy`, so a broken site never
    becomes the new normal. Each run is a dict of `_HISTORY_COLUMNS`, the
    `FIGURE_COLUMNS` (``rejected_by_reason`` decoded) and ``stats`` (the final Scrapy
    stats, decoded from JSON; ``{}`` when none were recorded).
    """
    columns = [tables.runs.c[name] for name in (*_HISTORY_COLUMNS, *FIGURE_COLUMNS, "stats")]
    query = (
        select(*columns)
        .where(
            tables.runs.c.spider == spider,
            tables.runs.c.id < before_run_id,
            tables.runs.c.finished_at.is_not(None),
            tables.runs.c.finish_reason == "finished",
        )
        .order_by(tables.runs.c.started_at.desc(), tables.runs.c.id.desc())
        .limit(limit)
    )
    if not include_unhealthy:
        query = query.where(
            or_(tables.runs.c.health_ok.is_(None), tables.runs.c.health_ok.is_(True))
        )
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    with reader.connect() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["stats"] = json.loads(row["stats"]) if row["stats"] else {}
        if row["rejected_by_reason"] is not None:
            row["rejected_by_reason"] = json.loads(row["rejected_by_reason"])
    return rows


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
