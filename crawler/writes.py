"""The crawl's database writes off the reactor: `WriteThread`, one thread
(``archive-writer``) that runs them in the order they are handed in.

The pipeline's batches of articles, aliases, visits and problems and the capture
index's rows and links go through it, so that a write never stops the reactor and
the crawl's two writers never wait for each other's lock (SQLite). A capture is
linked to its version only after the version's batch is committed: the pipeline
announces the links once that batch is taken in, and the one thread keeps that
order. What a write made of its rows (stats, problems, signals) is taken in on the
reactor thread, by the caller's callback. Without a running event loop (components
driven by hand, in tests) a write runs at once, where it is asked for.

`ArchiveRun` owns the crawl's one `WriteThread` (``ArchiveRun.writes``) and ends it
at ``engine_stopped``, after the components' last writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class WriteThread:
    """Run database writes one at a time in a thread of their own."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None  # made with the first write

    def submit(self, job: Callable[[], None], done: Callable[[Future[None]], None]) -> Future[None]:
        """Run `job` in the thread, then ``done(future)`` on the event loop's thread;
        both at once, here, without a running event loop. Whoever waits for the
        future (a close, a drain) may call `done` first: it must take a result in
        once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven by hand: no reactor to keep going
            future: Future[None] = Future()
            try:
                job()
            except Exception as error:
                future.set_exception(error)
            else:
                future.set_result(None)
            done(future)
            return future
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="archive-writer")
        future = self._executor.submit(job)
        future.add_done_callback(lambda _: call_soon(loop, done, future))
        return future

    def close(self) -> None:
        """End the thread, once the writes handed in are done."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None


def call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """`callback(*args)` on `loop`'s thread, unless the loop is closed (nobody waits)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
