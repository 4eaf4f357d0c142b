"""Many workers, one crawl: real ``scrapy crawl`` processes (processes are the
point) sharing one Redis and one fresh PostgreSQL database, over a generated
replay corpus of distinct articles.

Each worker records when each of its requests was answered (`timing`), so that the
per-host spacing across workers and the number of fetches per URL are measured,
not taken from the workers' own accounts. `SeedOnceMiddleware`'s handing on of a
leased page's requests is tested in-process at the end."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from redis import Redis
from scrapy import Request
from scrapy.http import Response
from sqlalchemy import create_engine, text

import news_archive.crawler.settings as project_settings
from bench.run import generate
from news_archive.crawler.distributed.worker import LEASE, SeedOnceMiddleware
from news_archive.crawler.sites import SITES
from news_archive.vocabulary import FetchFailure
from tests.conftest import new_postgres_database
from tests.crawl.crawling import ROOT, snapshot, wait_until
from tests.distributed.conftest import REDIS_URL
from tests.distributed.timing import Answered, read_request_times

pytestmark = pytest.mark.postgres

SPIDER = "maeil_ilbo"
# Articles of the spider in the corpus (the generator alternates the two sites).
ARTICLES = 40
DELAY = 0.05
FEED = SITES[SPIDER].feed_urls[0]


@dataclass(frozen=True)
class Corpus:
    directory: Path
    urls: frozenset[str]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    directory = tmp_path_factory.mktemp("corpus")
    generated = generate(directory, 2 * ARTICLES)
    urls = frozenset(url for url, _, _ in generated[SPIDER])
    assert len(urls) == ARTICLES
    return Corpus(directory / SPIDER, urls)


@pytest.fixture
def database_url() -> Iterator[str]:
    with new_postgres_database() as url:
        yield url


class Workers:
    """The worker processes of one test, their logs and their request times."""

    def __init__(self, tmp_path: Path, corpus: Corpus, database_url: str, prefix: str) -> None:
        self.tmp_path = tmp_path
        self.corpus = corpus
        self.database_url = database_url
        self.prefix = prefix
        self.times = tmp_path / "times"
        self.times.mkdir()
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *settings: str, delay: float = DELAY) -> subprocess.Popen[bytes]:
        env = {key: value for key, value in os.environ.items() if key != "SITES_FILE"}
        env |= {
            "DATABASE_URL": self.database_url,
            "REPLAY_DIR": str(self.corpus.directory),
            "WARC_ENABLED": "0",
            "REDIS_URL": REDIS_URL,
        }
        addons = {**project_settings.ADDONS, "tests.distributed.timing.RecordRequestTimes": 1}
        options = {
            "REDIS_KEY_PREFIX": self.prefix,
            "DOWNLOAD_DELAY": str(delay),
            # AutoThrottle starts each worker's own slot at 1 s: the tests' delay is the
            # configured one, held across workers by the politeness middleware.
            "AUTOTHROTTLE_ENABLED": "False",
            "REDIS_HEARTBEAT_SECONDS": "0.5",
            "EXTRACTION_WORKERS": "1",
            "ADDONS": json.dumps(addons),
            "REQUEST_TIMES_DIR": str(self.times),
        }
        command = [sys.executable, "-m", "scrapy", "crawl", SPIDER]
        for name, value in options.items():
            command += ["-s", f"{name}={value}"]
        for setting in settings:
            command += ["-s", setting]
        with (self.tmp_path / f"worker-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def wait(self, expect: dict[int, int] | None = None, timeout: float = 120) -> None:
        """Wait for every worker; each exits 0 unless `expect` (index: code) says."""
        for index, process in enumerate(self.processes):
            code = process.wait(timeout=timeout)
            wanted = (expect or {}).get(index, 0)
            if code != wanted:
                log = (self.tmp_path / f"worker-{index}.log").read_text(errors="replace")
                raise AssertionError(f"worker {index} exited {code}, not {wanted}:\n{log[-6000:]}")

    def joined(self) -> int:
        """How many workers have said they joined a crawl."""
        return sum(
            "joined crawl" in path.read_text(errors="replace")
            for path in self.tmp_path.glob("worker-*.log")
        )

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def fetches(self) -> Counter[str]:
        """How many times each page was answered, robots.txt aside (each worker asks
        for it once: RobotsTxtMiddleware is per process)."""
        return Counter(
            answered.url
            for answered in read_request_times(self.times)
            if not answered.url.endswith("/robots.txt")
        )

    def assert_polite(self, delay: float) -> None:
        """Per host, across all workers: the slots were claimed (Redis's clock) at
        least `delay` apart, and no request was answered less than `delay` after the
        one before it was let go (its claim).  The time between a claim and the
        answer is the worker's own (the OS may pause a process on a busy machine):
        it delays the answer, never brings the next one closer than the delay to the
        claim before it."""
        by_host: dict[str, list[Answered]] = {}
        for answered in read_request_times(self.times):
            by_host.setdefault(answered.host, []).append(answered)
        for answers in by_host.values():
            claims = sorted(_us(answer.claimed_at) for answer in answers)
            assert all(claims), "a request was answered without a politeness claim"
            assert min(b - a for a, b in itertools.pairwise(claims)) >= _us(delay)
            ordered = sorted(answers, key=lambda answer: answer.claimed_at)
            for earlier, later in itertools.pairwise(ordered):
                assert _us(later.at) - _us(earlier.claimed_at) >= _us(delay), (earlier, later)
                assert earlier.at >= earlier.claimed_at


@pytest.fixture
def workers(tmp_path: Path, corpus: Corpus, database_url: str, prefix: str) -> Iterator[Workers]:
    started = Workers(tmp_path, corpus, database_url, prefix)
    try:
        yield started
    finally:
        started.kill_all()


def _stored(database_url: str) -> tuple[set[str], dict[str, int], list[dict[str, Any]]]:
    """The article URLs, the versions per article, and the crawl_runs rows (stats decoded)."""
    stored = snapshot(database_url)
    return set(stored.articles), stored.versions, stored.runs


def _us(seconds: float) -> int:
    """Whole microseconds: the claims' resolution, compared without float rounding."""
    return round(seconds * 1_000_000)


def _total(runs: list[dict[str, Any]], key: str) -> int:
    return sum(int(run["stats"].get(key, 0)) for run in runs)


def _crawl_keys(redis: Redis, prefix: str) -> list[bytes]:
    """The keys of crawls left in Redis (the hosts' politeness keys aside)."""
    return [key for key in redis.scan_iter(match=f"{prefix}:{SPIDER}:*")]


@pytest.mark.parametrize("count", [2, 3])
def test_workers_share_one_crawl(
    workers: Workers, corpus: Corpus, database_url: str, redis: Redis, prefix: str, count: int
) -> None:
    """Every article stored once, no page fetched twice, the delay held across the
    workers, one crawl_runs row per worker, and the crawl's keys gone at the end."""
    for _ in range(count):
        workers.start()
    workers.wait()

    urls, versions, runs = _stored(database_url)
    assert urls == corpus.urls
    assert set(versions.values()) == {1}
    fetches = workers.fetches()
    assert set(fetches) == corpus.urls | {FEED}
    assert max(fetches.values()) == 1
    # The workers' own accounts agree: the sum of their rows is one crawl.
    assert len(runs) == count
    assert len({run["crawl_id"] for run in runs}) == 1 and runs[0]["crawl_id"]
    assert len({run["worker"] for run in runs}) == count
    assert _total(runs, "scheduler/dequeued/redis") == ARTICLES + 1
    assert _total(runs, "archive/stored/new") == ARTICLES
    assert sum(bool(run["stats"].get("distributed/seeder")) for run in runs) == 1
    assert [run["exit_code"] for run in runs] == [0] * count
    assert sum(bool(run["stats"].get("scheduler/dequeued/redis")) for run in runs) >= 2
    workers.assert_polite(DELAY)
    assert _crawl_keys(redis, prefix) == []


def test_a_worker_killed_mid_crawl_loses_nothing(
    workers: Workers, corpus: Corpus, database_url: str, redis: Redis, prefix: str
) -> None:
    """kill -9 of a worker holding leases (requests in flight, articles waiting in its
    pipeline's batch): the others put its leases back in the queue once they expire
    and store every article.  The victim is stopped (SIGSTOP) once it holds leases,
    so that it cannot finish the crawl before the others have started on this busy
    machine, and killed once they have joined."""
    lease = "REDIS_LEASE_SECONDS=2"
    victim = workers.start(lease)

    def leases() -> int:
        return sum(redis.zcard(key) for key in redis.scan_iter(match=f"{prefix}:*:leases"))

    wait_until(lambda: leases() >= 2, "the first worker to lease requests", timeout=120)
    victim.send_signal(signal.SIGSTOP)
    held = leases()
    workers.start(lease)
    workers.start(lease)
    wait_until(lambda: workers.joined() == 3, "the other two workers to join", timeout=120)
    victim.send_signal(signal.SIGKILL)
    workers.wait(expect={0: -signal.SIGKILL})

    urls, versions, runs = _stored(database_url)
    assert urls == corpus.urls
    assert set(versions.values()) == {1}
    assert len({run["crawl_id"] for run in runs}) == 1
    survivors = [run for run in runs if run["finished_at"] is not None]
    assert len(survivors) == 2
    assert _total(survivors, "distributed/leases/reclaimed") >= held >= 2
    assert [run["exit_code"] for run in survivors] == [0, 0]
    assert _crawl_keys(redis, prefix) == []


def test_incremental_state_is_claimed_by_one_worker_per_url(
    workers: Workers, corpus: Corpus, database_url: str, redis: Redis, prefix: str
) -> None:
    """A second crawl of the same archive (a new crawl: fresh duplicate filter): the
    due revisits are read by the seeding worker only, every due page is fetched once
    (from the due list or the feed, whichever came first), and pages not due are
    skipped, whichever worker read the feed."""
    workers.start()
    workers.wait()
    due = sorted(corpus.urls)[:10]
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE url_state SET next_visit_at = now() - interval '1 day' WHERE url = ANY(:u)"
            ),
            {"u": due},
        )
    engine.dispose()
    for path in workers.times.glob("*.txt"):
        path.unlink()

    first_run_rows = 1
    workers.start()
    workers.start()
    workers.wait()

    _, versions, runs = _stored(database_url)
    second = runs[first_run_rows:]
    assert len(second) == 2 and len({run["crawl_id"] for run in second}) == 1
    assert second[0]["crawl_id"] != runs[0]["crawl_id"]
    readers = [run for run in second if "archive/revisits/due" in run["stats"]]
    assert len(readers) == 1 and readers[0]["stats"]["distributed/seeder"]
    assert readers[0]["stats"]["archive/revisits/due"] == len(due)
    fetches = workers.fetches()
    assert set(fetches) - {FEED} == set(due)
    assert max(fetches.values()) == 1
    # The feed's other 30 are not due; a due page this run already revisited before the
    # feed was read (articles go before listings) is not due by then either.
    assert ARTICLES - len(due) <= _total(second, "archive/skipped/not_due") <= ARTICLES
    assert set(versions.values()) == {1}  # the pages did not change
    assert _crawl_keys(redis, prefix) == []


# --- SeedOnceMiddleware in-process -------------------------------------------------


class _Engine:
    def __init__(self) -> None:
        self.crawled: list[Request] = []

    def crawl(self, request: Request) -> None:
        self.crawled.append(request)


class _Worker:
    def __init__(self) -> None:
        self.handed: list[str] = []
        self.awaiting: list[tuple[str, str]] = []

    def handed_on(self, lease: str) -> None:
        self.handed.append(lease)

    def awaits_visit(self, url: str, lease: str) -> None:
        self.awaiting.append((url, lease))


def test_a_leased_listing_hands_its_requests_to_the_queue_at_once() -> None:
    """The requests of a leased feed reach the shared queue as the feed's output is
    read, not as Scrapy takes each output while this worker crawls (the other workers
    found the queue nearly empty and idled); other output goes on to Scrapy."""
    engine, worker = _Engine(), _Worker()
    crawler = SimpleNamespace(engine=engine)
    middleware = SeedOnceMiddleware(worker, crawler)  # type: ignore[arg-type]
    feed = FEED.replace("rss", "rss?leased")
    response = Response(feed, request=Request(feed, meta={LEASE: "lease-1"}))
    articles = [Request(f"https://www.m-i.kr/news/articleView.html?idxno={i}") for i in range(250)]
    failure = FetchFailure("maeil_ilbo", feed, "bad_link", None, "too long")

    async def output() -> AsyncIterator[Any]:
        for request in articles:
            yield request
        yield failure

    async def first_and_rest() -> tuple[int, list[Any]]:
        passed_on = middleware.process_spider_output_async(response, output())
        first = await anext(passed_on)
        queued_by_then = len(engine.crawled)
        return queued_by_then, [first, *[item async for item in passed_on]]

    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the thread's loop
    try:
        queued_by_then, passed = loop.run_until_complete(first_and_rest())
    finally:
        loop.close()
    assert queued_by_then == 250 and engine.crawled == articles
    assert passed == [failure]
    assert worker.handed == ["lease-1"]  # a page without a visit: done once handed on
