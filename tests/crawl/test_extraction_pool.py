"""The extraction pool on its own, over an asyncio loop: worker results equal
in-process ones, several workers run at once, and every way a page can go wrong in
a worker (an exception, a dead worker, a stop) reaches the caller. The budgets are
the hostile suite's (tests/hostile/test_bounds.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from news_archive.crawler.extensions import extraction
from news_archive.crawler.extensions.extraction import ExtractionError, ExtractionPool
from news_archive.crawler.sites import SITES
from news_archive.crawler.sites.maeil_ilbo import MaeilIlbo
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.storage import tokens
from news_archive.vocabulary import Article, Rejection
from tests.crawl.crawling import SEEDS, project_crawler
from tests.hostile.test_bounds import HTML, page_with, short_paragraphs

MAEIL = SITES["maeil_ilbo"]
FETCHED_AT = datetime(2026, 11, 22, 2, 5, tzinfo=UTC)
PAGE = "https://www.m-i.kr/news/articleView.html?idxno={}"
# The sample article's URL: pages built on it must be asked for there (its rel=canonical).
SAMPLE = PAGE.format("714398")
SEED_PAGES = ("714398", "800101", "800103", "800104")


class Exploding(MaeilIlbo):
    """A site whose extraction has a bug (picklable: the workers import this module)."""

    def extract(self, *arguments: Any, **keywords: Any) -> Article | Rejection:
        raise ValueError("a bug in extraction")


def _pool(workers: int = 2, **settings: object) -> ExtractionPool:
    crawler = project_crawler(MaeilIlboSpider, EXTRACTION_WORKERS=workers, **settings)
    return ExtractionPool.from_crawler(crawler)


def _run(pool: ExtractionPool, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """`coroutine` on a loop of its own (asyncio.run would unset the reactor's loop),
    the pool closed after it."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        pool.close()
        loop.close()


def _page(article_id: str) -> bytes:
    return (SEEDS / "maeil_ilbo" / "pages" / f"{article_id}.html").read_bytes()


def test_workers_extract_what_the_crawl_process_would() -> None:
    pool = _pool(workers=2)

    async def extract_all() -> list[Article | Rejection | None]:
        return list(
            await asyncio.gather(
                *(
                    pool.extract(MAEIL, PAGE.format(i), _page(i), HTML, FETCHED_AT)
                    for i in SEED_PAGES
                )
            )
        )

    results = _run(pool, extract_all())

    expected = [MAEIL.extract(PAGE.format(i), _page(i), HTML, FETCHED_AT) for i in SEED_PAGES]
    assert results == expected
    assert all(isinstance(result, Article) for result in results[1:])
    # each with its search text, made in the worker: the crawl's process need not
    for result in results:
        assert isinstance(result, Article)
        assert result.search_text == tokens.search_text(result.title, result.body)


def test_workers_run_pages_side_by_side() -> None:
    """Pages wait in the pool's queue, never on the reactor: with two workers, two
    pages are in extraction at once (timings on a shared machine would be noise)."""
    pool = _pool(workers=2)
    slow = page_with(short_paragraphs(300_000))

    async def three_pages() -> tuple[int, int, list[Any]]:
        pages = [
            asyncio.ensure_future(pool.extract(MAEIL, SAMPLE, slow, HTML, FETCHED_AT))
            for i in range(3)
        ]
        await asyncio.sleep(0.05)
        busy = len({worker.process.pid for worker in pool._workers if worker.task is not None})
        waiting = len(pool._queue) + sum(len(w.tasks) - 1 for w in pool._workers if w.tasks)
        return busy, waiting, list(await asyncio.gather(*pages))

    busy, waiting, results = _run(pool, three_pages())

    assert (busy, waiting) == (2, 1)
    # each page answered (its body is over the maximum length: a too_large rejection)
    assert [getattr(result, "reason", None) for result in results] == ["too_large"] * 3


def test_an_exception_in_extraction_is_raised_with_the_workers_traceback() -> None:
    pool = _pool(workers=1)
    with pytest.raises(
        ExtractionError, match=r"(?s)idxno=714398:.*ValueError: a bug in extraction"
    ):
        _run(pool, pool.extract(Exploding(), SAMPLE, _page("714398"), HTML, FETCHED_AT))


def test_a_worker_that_dies_under_a_page_is_recorded_and_replaced() -> None:
    pool = _pool(workers=1)
    slow = page_with(short_paragraphs(500_000))

    async def kill_the_worker() -> list[Article | Rejection | None]:
        asyncio.get_running_loop().call_later(0.2, _kill_busy_worker, pool)
        crashed = await pool.extract(MAEIL, SAMPLE, slow, HTML, FETCHED_AT)
        after = await pool.extract(MAEIL, SAMPLE, _page("714398"), HTML, FETCHED_AT)
        return [crashed, after]

    crashed, after = _run(pool, kill_the_worker())

    assert isinstance(crashed, Rejection) and crashed.reason == "extraction_crashed"
    assert "exit code -9" in crashed.detail
    assert isinstance(after, Article)


def test_a_page_handed_to_a_worker_that_died_idle_goes_to_its_replacement() -> None:
    """The page never ran in the dead worker: it is no ``extraction_crashed``."""
    pool = _pool(workers=1)

    async def kill_the_idle_worker() -> Article | Rejection | None:
        await pool.extract(MAEIL, SAMPLE, _page("714398"), HTML, FETCHED_AT)
        (idle,) = pool._workers
        idle.process.kill()  # type: ignore[attr-defined]
        idle.process.join()
        return await pool.extract(MAEIL, SAMPLE, _page("714398"), HTML, FETCHED_AT)

    assert isinstance(_run(pool, kill_the_idle_worker()), Article)


def _kill_busy_worker(pool: ExtractionPool) -> None:
    (busy,) = [worker for worker in pool._workers if worker.task is not None]
    assert busy.process.pid is not None
    os.kill(busy.process.pid, signal.SIGKILL)


def test_a_stop_abandons_pages_queued_and_in_extraction_at_once() -> None:
    pool = _pool(workers=1, EXTRACTION_TIMEOUT=600)
    slow = page_with(short_paragraphs(2_000_000))

    async def stop_while_busy() -> tuple[list[Any], float]:
        pages = [
            asyncio.ensure_future(pool.extract(MAEIL, SAMPLE, slow, HTML, FETCHED_AT))
            for i in range(2)
        ]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        pool.abandon()
        results = list(await asyncio.gather(*pages))
        late = await pool.extract(MAEIL, SAMPLE, _page("714398"), HTML, FETCHED_AT)
        return [*results, late], time.monotonic() - started

    workers = []
    pool_start = pool._start

    def remember_workers(loop: asyncio.AbstractEventLoop) -> None:
        pool_start(loop)
        workers.extend(worker.process for worker in pool._workers)

    pool._start = remember_workers  # type: ignore[method-assign]
    results, waited = _run(pool, stop_while_busy())

    assert results == [None, None, None]
    assert waited < 1
    assert workers and not any(process.is_alive() for process in workers)
    assert pool.crawler.stats.get_value("extraction/abandoned") == 3  # type: ignore[union-attr]


def test_a_page_waiting_in_a_pipe_is_extracted_when_the_page_before_it_fails() -> None:
    """A worker holds its next pages in its pipe (`PAGES_PER_WORKER`): when the page
    it extracts times out or its worker dies, the next never ran, and the
    replacement extracts it."""
    pool = _pool(workers=1, EXTRACTION_TIMEOUT=0.5)
    slow = page_with(short_paragraphs(1_000_000))  # about 2 s

    async def after(failure: str) -> list[Article | Rejection | None]:
        pages = [
            asyncio.ensure_future(pool.extract(MAEIL, SAMPLE, body, HTML, FETCHED_AT))
            for body in (slow, _page("714398"))
        ]
        await asyncio.sleep(0.1)
        (worker,) = pool._workers
        assert (len(worker.tasks), len(pool._queue)) == (2, 0)  # the next one waits in its pipe
        if failure == "crash":
            _kill_busy_worker(pool)
        return list(await asyncio.gather(*pages))

    timed_out, extracted = _run(pool, after("timeout"))
    assert isinstance(timed_out, Rejection) and timed_out.reason == "timeout"
    assert isinstance(extracted, Article)
    pool = _pool(workers=1, EXTRACTION_TIMEOUT=60)
    crashed, extracted = _run(pool, after("crash"))
    assert isinstance(crashed, Rejection) and crashed.reason == "extraction_crashed"
    assert isinstance(extracted, Article)


def test_a_busy_worker_holds_as_many_pages_as_its_pipe_holds_whole() -> None:
    """Pages wait in a busy worker's pipe while they fit in it whole (so sending one
    never blocks the reactor); the rest wait in the pool's queue, and all are
    extracted."""
    pool = _pool(workers=1, EXTRACTION_TIMEOUT=60)
    slow = page_with(short_paragraphs(1_000_000))  # about 2 s

    async def behind_a_slow_page() -> tuple[list[int], int, int, list[Any]]:
        pages = [
            asyncio.ensure_future(pool.extract(MAEIL, SAMPLE, body, HTML, FETCHED_AT))
            for body in (slow, *[_page("714398")] * 10)
        ]
        await asyncio.sleep(0.1)
        (worker,) = pool._workers
        waiting = [task.size for task in list(worker.tasks)[1:]]
        return waiting, worker.capacity, len(pool._queue), list(await asyncio.gather(*pages))

    waiting, capacity, queued, results = _run(pool, behind_a_slow_page())
    if capacity == 0:
        pytest.skip("the pipe's size cannot be known here (not Linux)")
    assert len(waiting) >= 2  # several pages wait (a 130 KB page, a 1 MiB pipe)...
    assert sum(waiting) <= capacity  # ...all of them whole...
    assert sum(waiting) + waiting[0] > capacity  # ...and the next did not fit
    assert queued == 10 - len(waiting)
    assert all(isinstance(result, Article) for result in results[1:])


def test_a_page_larger_than_the_pipe_waits_for_an_idle_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sending a page the pipe cannot hold whole would block the reactor until the
    worker finished the page before it, past its time budget if it hangs: such a
    page waits in the pool's queue instead, and the budget still ends the hang."""
    monkeypatch.setattr(extraction, "PIPE_BYTES", 4096)  # the smallest pipe: a page
    pool = _pool(workers=1, EXTRACTION_TIMEOUT=0.5)
    slow = page_with(short_paragraphs(1_000_000))  # about 2 s

    async def behind_a_slow_page() -> tuple[int, list[Article | Rejection | None]]:
        pages = [
            asyncio.ensure_future(pool.extract(MAEIL, SAMPLE, body, HTML, FETCHED_AT))
            for body in (slow, _page("714398"))
        ]
        await asyncio.sleep(0.1)
        return len(pool._queue), list(await asyncio.gather(*pages))

    queued, (timed_out, extracted) = _run(pool, behind_a_slow_page())
    assert queued == 1
    assert isinstance(timed_out, Rejection) and timed_out.reason == "timeout"
    assert isinstance(extracted, Article)


def test_no_workers_extracts_in_process() -> None:
    pool = _pool(workers=0)
    result = _run(pool, pool.extract(MAEIL, SAMPLE, _page("714398"), HTML, FETCHED_AT))
    assert isinstance(result, Article)
    assert not pool._workers
