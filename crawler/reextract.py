"""Re-run extraction over the stored WARC captures, without network, after a parser fix.

For each archived article the newest capture that produced it is read from its
WARC file and extracted again with today's site module, in a pool of worker
processes (extraction is pure and CPU-bound; the main process only writes). An
article whose extracted content differs gains a version with the note
``re-extraction``; an unchanged one gains nothing, so a second run changes
nothing. Pages that no longer extract are counted, never deleted.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tqdm import tqdm
from warcio.archiveiterator import ArchiveIterator

from news_archive.crawler.sites import SITES
from news_archive.storage.captures import ReextractionTarget, reextraction_targets
from news_archive.storage.engine import create_archive_engine
from news_archive.storage.repository import ArchiveRepository
from news_archive.vocabulary import Article, Rejection

NOTE = "re-extraction"
BATCH = 100


@dataclass(frozen=True, slots=True)
class Job:
    target: ReextractionTarget
    warc_path: str


def extract_capture(job: Job) -> Article | Rejection:
    """Read one capture (headers and exact payload) and extract it. Runs in a worker."""
    target = job.target
    try:
        with open(job.warc_path, "rb") as stream:
            stream.seek(target.offset)
            record = next(iter(ArchiveIterator(stream)))
            headers = dict(record.http_headers.headers) if record.http_headers else {}
            body = record.raw_stream.read()
    except (OSError, StopIteration, ValueError) as error:
        return Rejection(target.site, target.url, "capture_unreadable", repr(error))
    return SITES[target.site].extract(target.url, body, headers, target.fetched_at)


def reextract(
    database_url: str,
    warc_dir: Path,
    *,
    site: str | None = None,
    published_since: datetime | None = None,
    published_until: datetime | None = None,
    url: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Counter[str]:
    """Re-extract the matching articles; counts of ``changed``, ``unchanged`` and
    ``rejected/<reason>`` (plus ``targets``)."""
    if site is not None and site not in SITES:
        raise KeyError(f"unknown site {site!r}; known: {', '.join(sorted(SITES))}")
    engine = create_archive_engine(database_url)
    counts: Counter[str] = Counter()
    try:
        targets = reextraction_targets(
            engine,
            site=site,
            published_since=published_since,
            published_until=published_until,
            url=url,
        )
        counts["targets"] = len(targets)
        jobs = [Job(t, str(warc_dir / t.warc_file)) for t in targets]
        repository = ArchiveRepository(engine)
        batch: list[Article] = []
        bar = tqdm(total=len(jobs), unit="page", disable=not progress, file=sys.stderr)
        for result in _results(jobs, workers or os.cpu_count() or 1):
            bar.update()
            if isinstance(result, Rejection):
                counts[f"rejected/{result.reason}"] += 1
                continue
            batch.append(result)
            if len(batch) >= BATCH:
                counts.update(repository.store_articles(batch, note=NOTE))
                batch = []
        if batch:
            counts.update(repository.store_articles(batch, note=NOTE))
        bar.close()
    finally:
        engine.dispose()
    return counts


def _results(jobs: list[Job], workers: int) -> Iterator[Article | Rejection]:
    if workers <= 1 or len(jobs) < 2 * workers:
        yield from map(extract_capture, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(
            extract_capture, jobs, chunksize=max(1, min(32, len(jobs) // (4 * workers)))
        )
