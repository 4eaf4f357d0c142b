"""The crawl's write thread (``crawler/writes.py``)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from news_archive.crawler.writes import WriteThread


def test_writes_run_in_order_in_one_thread_and_are_taken_in_on_the_loop() -> None:
    writes = WriteThread()
    ran: list[tuple[int, str]] = []
    taken: list[tuple[int, str]] = []

    def job(number: int) -> None:
        ran.append((number, threading.current_thread().name))

    def done(number: int, future: Future[None]) -> None:
        assert future.done() and future.exception() is None
        taken.append((number, threading.current_thread().name))

    async def crawl() -> None:
        for number in range(3):
            writes.submit(lambda n=number: job(n), lambda f, n=number: done(n, f))
        while len(taken) < 3:
            await asyncio.sleep(0.01)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(crawl(), 10))
    finally:
        loop.close()
        writes.close()
    assert [number for number, _ in ran] == [0, 1, 2]
    assert {name for _, name in ran} == {"archive-writer_0"}
    assert taken == [(number, threading.current_thread().name) for number in range(3)]


def test_without_a_running_loop_a_write_runs_at_once_and_its_fault_is_handed_over() -> None:
    writes = WriteThread()
    taken: list[Future[None]] = []

    def broken() -> None:
        raise RuntimeError("a bug")

    future = writes.submit(broken, taken.append)
    assert taken == [future]
    assert isinstance(future.exception(), RuntimeError)
    writes.close()
