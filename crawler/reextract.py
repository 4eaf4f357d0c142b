"""Re-run extraction over the stored WARC captures, without network, after a parser fix.

For each archived article the newest capture that produced it is read back
through `news_archive.crawler.warc.WarcArchive` (a revisit record answered with
the payload it refers to, ``Content-Encoding`` undone) and extracted again with
today's site module and each site's learned boilerplate as it applies now (so a
newly learned block leaves the stored bodies, and a block a reviewer kept as article
text comes back), in a pool of worker processes (extraction is pure and
CPU-bound; the main process only locates captures and writes). An article whose
extracted content differs gains a version with the note ``re-extraction``; an
unchanged one gains nothing, so a second run changes nothing. Pages that no
longer extract are counted ``rejected/<reason>``; articles whose capture cannot be
used are counted ``unusable`` and ``unusable/<why>``: no capture linked to any of
their versions (``no_link``), its WARC file gone (``missing_file``), its record
damaged or cut short (``unreadable``). Each is reported (one `Rejection` to
`on_failure`), never deleted.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from pathlib import Path

from tqdm import tqdm

from news_archive.crawler import settings
from news_archive.crawler.extract.site import Site
from news_archive.crawler.sites import SITES
from news_archive.crawler.warc import Capture, WarcArchive, WarcError
from news_archive.storage.archive import Archive, StoreFailures
from news_archive.storage.boilerplate import Thresholds
from news_archive.storage.captures import ReextractionTarget
from news_archive.vocabulary import Article, LearnedBoilerplate, Rejection

NOTE = "re-extraction"
BATCH = 100
# Why an article's capture cannot be used: the reason of its `Rejection` and its count.
UNUSABLE = "unusable"
NO_LINK = f"{UNUSABLE}/no_link"
MISSING_FILE = f"{UNUSABLE}/missing_file"
UNREADABLE = f"{UNUSABLE}/unreadable"
UNKNOWN_SITE = f"{UNUSABLE}/unknown_site"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """One article to extract again: its target, its capture (revisit resolved) and
    its site (declared or configured: the job carries it to the worker)."""

    target: ReextractionTarget
    warc_dir: Path
    capture: Capture
    site: Site
    boilerplate: LearnedBoilerplate | None = None  # the site's, as it applies now


def extract_capture(job: Job) -> Article | Rejection:
    """Read one capture (its headers and decoded payload) and extract it. Runs in a worker."""
    target = job.target
    try:
        response = WarcArchive(job.warc_dir).retrieve_response(job.capture, decode=True)
    except WarcError as error:
        return Rejection(target.site, target.url, UNREADABLE, str(error))
    headers = dict(response.headers)
    return job.site.extract(
        target.url, response.body, headers, target.fetched_at, boilerplate=job.boilerplate
    )


def boilerplate_thresholds() -> Thresholds | None:
    """The thresholds the crawls apply learned boilerplate with (the project's
    ``BOILERPLATE_*`` settings), or None when ``BOILERPLATE_ENABLED`` is off."""
    if not settings.BOILERPLATE_ENABLED:
        return None
    return Thresholds(settings.BOILERPLATE_MIN_ARTICLES, settings.BOILERPLATE_MIN_SHARE)


def log_failure(rejection: Rejection) -> None:
    """The default report of an article that could not be re-extracted: a warning."""
    logger.warning("%s: not re-extracted: %s %s", rejection.url, rejection.reason, rejection.detail)


def reextract(
    archive: Archive,
    warc_dir: Path,
    *,
    site: str | None = None,
    published_since: datetime | None = None,
    published_until: datetime | None = None,
    url: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    on_failure: Callable[[Rejection], None] = log_failure,
    learned: bool = True,
    sites: Mapping[str, Site] = SITES,
) -> Counter[str]:
    """Re-extract the matching articles; counts of ``targets`` (every matching
    article), ``changed``, ``unchanged``, ``rejected/<reason>`` and ``unusable``
    (with ``unusable/<why>``). Each article not re-extracted (a capture it cannot
    use, or a page today's extractor rejects) is passed to `on_failure` as it is met.

    `learned`: apply each site's learned boilerplate as the crawls do (the
    ``BOILERPLATE_*`` settings); False extracts without it.

    `sites` are the sites to extract with (the declared ones, or those of
    `news_archive.crawler.sites.sites_for` where a ``SITES_FILE`` configures more);
    an article of a site not among them is ``unusable/unknown_site``."""
    if site is not None and site not in sites:
        raise KeyError(f"unknown site {site!r}; known: {', '.join(sorted(sites))}")
    counts: Counter[str] = Counter()
    limits = {
        "site": site,
        "published_since": published_since,
        "published_until": published_until,
        "url": url,
    }
    targets = archive.captures.reextraction_targets(**limits)
    unlinked = [
        Rejection(article_site, article_url, NO_LINK, "no capture is linked to any of its versions")
        for article_site, article_url in archive.captures.articles_without_capture(**limits)
    ]
    counts["targets"] = len(targets) + len(unlinked)
    thresholds = boilerplate_thresholds() if learned else None
    boilerplate = {
        name: archive.boilerplate.applied(name, thresholds)
        for name in sorted({target.site for target in targets})
        if thresholds is not None
    }
    jobs, unusable = _jobs(targets, warc_dir, sites, boilerplate)
    batch: list[Article] = []
    bar = tqdm(total=counts["targets"], unit="page", disable=not progress, file=sys.stderr)
    results = _results(jobs, workers or os.cpu_count() or 1)
    for result in chain(unlinked, unusable, results):
        bar.update()
        if isinstance(result, Rejection):
            if result.reason.startswith(f"{UNUSABLE}/"):
                counts[UNUSABLE] += 1
                counts[result.reason] += 1
            else:
                counts[f"rejected/{result.reason}"] += 1
            on_failure(result)
            continue
        batch.append(result)
        if len(batch) >= BATCH:
            _store(archive, batch, counts, on_failure)
            batch = []
    if batch:
        _store(archive, batch, counts, on_failure)
    bar.close()
    return counts


def _store(
    archive: Archive,
    batch: list[Article],
    counts: Counter[str],
    on_failure: Callable[[Rejection], None],
) -> None:
    """Store a batch; an article the database refuses is a ``rejected/store_failed``."""
    try:
        counts.update(archive.articles.store(batch, note=NOTE))
    except StoreFailures as error:
        counts.update(outcome for outcome in error.outcomes if outcome is not None)
        for index, failure in error.failures:
            article = batch[index]
            counts["rejected/store_failed"] += 1
            on_failure(Rejection(article.site, article.url, "store_failed", str(failure)))


def _jobs(
    targets: list[ReextractionTarget],
    warc_dir: Path,
    sites: Mapping[str, Site],
    boilerplate: dict[str, LearnedBoilerplate],
) -> tuple[list[Job], list[Rejection]]:
    """A job per target whose capture is found (revisits resolved here, once, so the
    workers need no index of the archive), a rejection per target whose is not."""
    archive = WarcArchive(warc_dir)
    jobs: list[Job] = []
    unusable: list[Rejection] = []
    for target in targets:
        path = warc_dir / target.warc_file
        if target.site not in sites:
            detail = f"site {target.site!r} is neither declared nor configured (SITES_FILE)"
            unusable.append(Rejection(target.site, target.url, UNKNOWN_SITE, detail))
            continue
        if not path.is_file():
            unusable.append(Rejection(target.site, target.url, MISSING_FILE, f"no file {path}"))
            continue
        try:
            capture = archive.locate(target.warc_file, target.offset)
            site = sites[target.site]
            jobs.append(Job(target, warc_dir, capture, site, boilerplate.get(target.site)))
        except WarcError as error:
            unusable.append(Rejection(target.site, target.url, UNREADABLE, str(error)))
    return jobs, unusable


def _results(jobs: list[Job], workers: int) -> Iterator[Article | Rejection]:
    if workers <= 1 or len(jobs) < 2 * workers:
        yield from map(extract_capture, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(
            extract_capture, jobs, chunksize=max(1, min(32, len(jobs) // (4 * workers)))
        )
