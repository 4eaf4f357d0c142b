"""Benchmark: 1, 2 and 3 workers of one shared crawl (REDIS_URL) over the same
generated replay corpus, each count into a fresh PostgreSQL database.

    python bench/workers.py [--pages 5000] [--workers 1,2,3] [--capture]

Delays off (``DOWNLOAD_DELAY=0``, no AutoThrottle; the per-host concurrency across
workers is raised out of the way) and extraction in each worker's own process
(``EXTRACTION_WORKERS=0``), so that the workers are the only parallelism.  Prints,
per worker count, the pages stored, the wall time (process start-up included), the
crawl's span (first worker's start to last worker's end, from ``crawl_runs``),
pages/s over each, the speed-up over one worker and the efficiency (speed-up per
worker).  Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (as the
tests do); ``--postgres`` and ``--redis`` name others.  Timings vary by about ±30 %
on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from redis import Redis  # noqa: E402

from bench.run import generate  # noqa: E402
from news_archive.storage.archive import Archive  # noqa: E402

SPIDER = "maeil_ilbo"


@dataclass(frozen=True)
class Result:
    workers: int
    stored: int
    wall_seconds: float
    span_seconds: float

    @property
    def wall_rate(self) -> float:
        return self.stored / self.wall_seconds

    @property
    def span_rate(self) -> float:
        return self.stored / self.span_seconds


def run(workers: int, corpus: Path, postgres: str, redis_url: str, capture: Path | None) -> Result:
    """`workers` crawl processes of one crawl, into a new database dropped afterwards."""
    name = f"bench_workers_{secrets.token_hex(4)}"
    prefix = f"bench-{secrets.token_hex(4)}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            ).format(sql.Identifier(name))
        )
    url = psycopg.conninfo.make_conninfo(postgres, dbname=name)
    database_url = "postgresql+psycopg://" + _sqlalchemy_part(url)
    env = {
        **os.environ,
        "REPLAY_DIR": str(corpus),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WARC_ENABLED": "1" if capture else "0",
        "WARC_DIR": str(capture or ""),
    }
    settings = {
        "REDIS_KEY_PREFIX": prefix,
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "False",
        "CONCURRENT_REQUESTS": "32",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "256",
        "ARCHIVE_BATCH_SIZE": "100",
        "EXTRACTION_WORKERS": "0",
        "HEALTH_CHECKS_ENABLED": "False",
    }
    command = [sys.executable, "-m", "scrapy", "crawl", SPIDER, "-L", "WARNING"]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    try:
        # Migrated once before the clock starts, as a scheduled crawl finds it.
        Archive.open(database_url).close()
        started = time.perf_counter()
        processes = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(workers)]
        codes = [process.wait() for process in processes]
        wall = time.perf_counter() - started
        if any(codes):
            raise SystemExit(f"{workers} workers exited {codes}")
        with psycopg.connect(url) as connection:
            stored = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
            span = connection.execute(
                "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM crawl_runs"
            ).fetchone()[0]
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        server = Redis.from_url(redis_url)
        keys = list(server.scan_iter(match=f"{prefix}:*"))
        if keys:
            server.delete(*keys)
        server.close()
    return Result(workers, stored, wall, float(span))


def _sqlalchemy_part(conninfo: str) -> str:
    """user@host:port/dbname of a libpq conninfo string."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = params.get("user") or "postgres"
    return f"{user}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{params['dbname']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=5000, help="articles of the spider")
    parser.add_argument("--workers", default="1,2,3", help="worker counts, comma-separated")
    parser.add_argument("--capture", action="store_true", help="WARC capture on")
    parser.add_argument("--postgres", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        # The generator alternates the two sites: twice the pages, one site's half.
        generate(scratch / "corpus", 2 * args.pages)
        results = []
        for count in counts:
            warc = scratch / f"warc-{count}" if args.capture else None
            results.append(run(count, scratch / "corpus" / SPIDER, args.postgres, args.redis, warc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = next((result for result in results if result.workers == 1), results[0])
    print(
        f"{SPIDER}, {args.pages} pages, replay into PostgreSQL, delays off, "
        f"capture {'on' if args.capture else 'off'}, extraction in each worker's process"
    )
    print("workers  stored  wall s  pages/s (wall)  span s  pages/s (span)  speed-up  efficiency")
    for result in results:
        speed_up = result.span_rate / base.span_rate * base.workers
        print(
            f"{result.workers:7d}  {result.stored:6d}  {result.wall_seconds:6.1f}  "
            f"{result.wall_rate:14.1f}  {result.span_seconds:6.1f}  {result.span_rate:14.1f}  "
            f"{speed_up:7.2f}x  {speed_up / result.workers:10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
