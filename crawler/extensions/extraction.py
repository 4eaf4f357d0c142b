"""Extraction off the reactor: `ExtractionPool`, the crawl's worker processes.

Extraction is pure (``Site.extract``: bytes in, `Article` or `Rejection` out) but
CPU-bound, and its cost grows faster than a page's size; run on the reactor, one
large page froze the crawl for minutes, signals included.  The pool runs it in
``EXTRACTION_WORKERS`` processes instead (the reactor only waits), which also puts
every core to work, and bounds the work one page may cost:

- a body over ``EXTRACTION_MAX_BYTES`` is a ``too_large`` `Rejection`, never parsed;
- a page still in extraction after ``EXTRACTION_TIMEOUT`` seconds is a ``timeout``
  `Rejection`: its worker is killed (SIGKILL: it holds nothing worth a clean exit;
  a running task cannot be cancelled otherwise) and replaced;
- a worker that dies under a page (out of memory, a crash in C code) makes the page
  an ``extraction_crashed`` `Rejection` and is replaced;
- an exception raised by extraction is raised again in the spider's callback, with
  the worker's traceback, as it would be in-process (Scrapy logs a spider error);
- once the crawl is stopping (SIGTERM, SIGINT) pages in extraction are abandoned:
  their workers are killed, their callbacks yield nothing (no visit is recorded, so
  the next run fetches them again), and the engine can close at once.

On Linux workers are forked from the crawl, so a worker, first or replacement, starts
in milliseconds with the site registry already loaded (a fork server or spawn would
re-import the program's main module in every worker, and take a second to start);
each worker then imports trafilatura (about 0.2 s) while the crawl goes on, so that
the crawl's own thread never does, and a crawl with nothing to extract never starts
a worker.  A worker only runs extraction: if a lock inherited from another thread of the
crawl ever blocked it, its time budget ends it like any slow page.  Elsewhere workers
are spawned.  The pool starts with the first page and is shut down at
``engine_stopped``; every component reaches it with `ExtractionPool.of`.
``EXTRACTION_WORKERS = 0`` extracts in the crawl's own process, without a time
budget (for debugging, and for tests that drive the components by hand).

Either way each page is extracted with the site's learned boilerplate, which the
crawl's owner loaded when the spider opened (`ArchiveRun.boilerplate`): it travels to
the worker with the page, as data.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
import sys
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from scrapy import signals
from scrapy.crawler import Crawler
from twisted.internet.task import LoopingCall

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.extract.body import load_trafilatura
from news_archive.crawler.extract.site import Site
from news_archive.storage.tokens import with_search_text
from news_archive.vocabulary import Article, FeedEntry, LearnedBoilerplate, Rejection

logger = logging.getLogger(__name__)

# Seconds between two looks at whether the crawl is stopping.
STOP_CHECK_SECONDS = 0.2
# Pages handed to a worker at once: the one it extracts, and those waiting in its
# pipe (as many as the pipe holds whole), so that it goes on from one to the next
# instead of idling until the crawl's reactor reads its answer and sends another.
# The reactor is busy at times for over 100 ms (a batch of articles written, a
# listing's requests scheduled): two pages a worker (12 ms of work) left the workers
# idle for 7-17 % of a crawl; sixteen made it 6 % faster (docs/benchmarks.md).
PAGES_PER_WORKER = 16
# Bytes a worker's page pipe holds (Linux; at most /proc/sys/fs/pipe-max-size, 1 MiB
# by default): the reactor writes a page of a few hundred KB and goes on, instead of
# blocking until the worker has read most of it (6 % of the reactor's time).
PIPE_BYTES = 1 << 20
# Bytes `Connection.send_bytes` writes before a message (its length), at most.
MESSAGE_HEADER = 12

Result = Article | Rejection


class ExtractionError(Exception):
    """Extraction raised in a worker; the message carries the worker's traceback."""


@dataclass(eq=False)
class _Task:
    site: Site
    url: str
    arguments: tuple[Any, ...]  # the rest of Site.extract's arguments
    boilerplate: LearnedBoilerplate | None
    future: asyncio.Future[Result | None]
    _message: bytes | None = field(default=None, repr=False)
    size: int = 0  # bytes sent to its worker (the message and its header)

    def message(self) -> bytes:
        """What is sent to a worker: the pickled page (kept until it is sent)."""
        if self._message is None:
            self._message = bytes(
                ForkingPickler.dumps((self.site, self.arguments, self.boilerplate))
            )
        return self._message

    def sent(self) -> None:
        assert self._message is not None
        self.size = len(self._message) + MESSAGE_HEADER
        self._message = None


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    pages: Connection  # the crawl's ends of the two pipes: pages out, answers in
    answers: Connection
    # Bytes its pages pipe holds: a page waits in it only if it fits whole, so that
    # sending it never blocks the reactor while the worker extracts (0: never waits).
    capacity: int
    # The pages handed to it, in order: the first in extraction, the rest waiting.
    tasks: deque[_Task] = field(default_factory=deque)
    # The first task's time budget, from when the worker started on it.
    deadline: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def task(self) -> _Task | None:
        """The page in extraction, if any."""
        return self.tasks[0] if self.tasks else None

    def fits(self, message: bytes) -> bool:
        """Whether `message` can wait in the pages pipe behind the pages already
        waiting there, all of them whole (an idle worker takes any page)."""
        if not self.tasks:
            return True
        waiting = sum(task.size for task in itertools.islice(self.tasks, 1, None))
        return waiting + len(message) + MESSAGE_HEADER <= self.capacity

    def kill(self) -> None:
        self.process.kill()  # type: ignore[attr-defined]
        self.process.join()
        self.pages.close()
        self.answers.close()


class ExtractionPool:
    """Extract pages in worker processes with a size and a time budget per page."""

    def __init__(
        self, workers: int, timeout: float, max_bytes: int, crawler: Crawler | None = None
    ) -> None:
        self.worker_count = max(0, workers)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.crawler = crawler
        # True once the crawl is stopping: pages still coming are not extracted.
        self.stopping = False
        self._workers: list[_Worker] = []
        self._queue: deque[_Task] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPool:
        settings = crawler.settings
        pool = cls(
            workers=settings.getint("EXTRACTION_WORKERS"),
            timeout=settings.getfloat("EXTRACTION_TIMEOUT"),
            max_bytes=settings.getint("EXTRACTION_MAX_BYTES"),
            crawler=crawler,
        )
        crawler.signals.connect(pool.engine_started, signal=signals.engine_started)
        crawler.signals.connect(pool.close, signal=signals.engine_stopped)
        return pool

    @classmethod
    def of(cls, crawler: Crawler) -> ExtractionPool:
        """The crawl's pool (the extension enabled in ``EXTENSIONS``)."""
        pool = crawler.get_extension(cls)
        if pool is None:
            raise RuntimeError(f"{cls.__module__}.{cls.__name__} is not enabled in EXTENSIONS")
        return pool

    # ------------------------------------------------------------------ extraction

    async def extract(
        self,
        site: Site,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        fetched_at: datetime,
        entry: FeedEntry | None = None,
    ) -> Result | None:
        """``site.extract(url, body, headers, fetched_at, entry)`` within the budgets;
        None when the crawl stopped before the page was extracted."""
        if len(body) > self.max_bytes:
            detail = f"{len(body)} bytes, over EXTRACTION_MAX_BYTES ({self.max_bytes}): not parsed"
            return Rejection(site.name, url, "too_large", detail)
        boilerplate = self.boilerplate(site)
        if self.worker_count == 0:
            return site.extract(
                url, body, dict(headers), fetched_at, entry, boilerplate=boilerplate
            )
        if self.stopping:
            self._abandoned(url)
            return None
        loop = asyncio.get_running_loop()
        self._start(loop)
        arguments = (url, body, dict(headers), fetched_at, entry)
        task = _Task(site, url, arguments, boilerplate, loop.create_future())
        task.future.add_done_callback(lambda _: self._forget(task))
        self._queue.append(task)
        self._dispatch()
        return await task.future

    def boilerplate(self, site: Site) -> LearnedBoilerplate | None:
        """The learned boilerplate of `site` the crawl's owner loaded, if any."""
        run = self.crawler.get_extension(ArchiveRun) if self.crawler is not None else None
        learned = run.boilerplate if run is not None else None
        return learned if learned is not None and learned.site == site.name else None

    def abandon(self) -> None:
        """Give up every page queued or in extraction (the crawl is stopping): their
        callbacks get None at once, and the busy workers are killed."""
        self.stopping = True
        while self._queue:
            task = self._queue.popleft()
            if not task.future.done():
                self._abandoned(task.url)
                task.future.set_result(None)
        for worker in [w for w in self._workers if w.tasks]:
            self._replace(worker)
            for task in worker.tasks:
                if not task.future.done():
                    self._abandoned(task.url)
                    task.future.set_result(None)

    # -------------------------------------------------------------------- workers

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._workers:
            return
        self._loop = loop
        for _ in range(self.worker_count):
            self._spawn()
        logger.info("Extraction in %d worker processes", self.worker_count)

    def _spawn(self) -> _Worker:
        assert self._loop is not None
        context = _context()
        pages_in, pages = context.Pipe(duplex=False)
        answers, answers_out = context.Pipe(duplex=False)
        capacity = _widen(pages)
        process = context.Process(
            target=_serve, args=(pages_in, answers_out), name="extraction worker", daemon=True
        )
        process.start()
        pages_in.close()
        answers_out.close()
        worker = _Worker(process, pages, answers, capacity)
        self._workers.append(worker)
        self._loop.add_reader(answers.fileno(), self._receive, worker)
        return worker

    def _dispatch(self) -> None:
        """Hand queued pages to the workers, idle ones first, up to `PAGES_PER_WORKER`
        each; a worker's first page gets its deadline."""
        while self._queue:
            worker = min(self._workers, key=lambda w: len(w.tasks), default=None)
            if worker is None or len(worker.tasks) >= PAGES_PER_WORKER:
                return
            task = self._queue[0]
            if task.future.done():  # its callback was cancelled
                self._queue.popleft()
                continue
            message = task.message()
            if not worker.fits(message):
                return  # it waits for room in a pipe
            self._queue.popleft()
            worker.tasks.append(task)
            try:
                worker.pages.send_bytes(message)
            except OSError:  # the worker died: this page never ran
                worker.tasks.pop()
                self._queue.appendleft(task)
                self._crashed(worker)  # replaced, and its pages handed on
                continue
            task.sent()
            if len(worker.tasks) == 1:
                self._start_clock(worker)

    def _start_clock(self, worker: _Worker) -> None:
        """The time budget of the page `worker` now extracts."""
        assert self._loop is not None
        worker.deadline = self._loop.call_later(self.timeout, self._expire, worker)

    def _receive(self, worker: _Worker) -> None:
        """A worker's answer, to its first page (or its end: EOF on the pipe)."""
        try:
            ok, value = worker.answers.recv()
        except (EOFError, OSError):
            self._crashed(worker)
            return
        if worker.deadline is not None:
            worker.deadline.cancel()
            worker.deadline = None
        task = worker.tasks.popleft() if worker.tasks else None
        if worker.tasks:  # it went on with the next page as it answered
            self._start_clock(worker)
        if task is not None and not task.future.done():
            if ok:
                task.future.set_result(value)
            else:
                task.future.set_exception(ExtractionError(f"{task.url}:\n{value}"))
        self._dispatch()

    def _expire(self, worker: _Worker) -> None:
        task = worker.task
        if task is None:
            return
        self._replace(worker)
        self._count("extraction/timeout")
        if not task.future.done():
            detail = f"extraction took over EXTRACTION_TIMEOUT ({self.timeout:g} s); stopped"
            task.future.set_result(Rejection(task.site.name, task.url, "timeout", detail))

    def _crashed(self, worker: _Worker) -> None:
        task = worker.task
        self._replace(worker)
        exit_code = worker.process.exitcode
        self._count("extraction/crashed")
        if task is not None and not task.future.done():
            detail = f"extraction worker died (exit code {exit_code})"
            task.future.set_result(
                Rejection(task.site.name, task.url, "extraction_crashed", detail)
            )

    def _forget(self, task: _Task) -> None:
        """A finished task's future: if its callback was cancelled while a worker ran
        it, that worker is stopped (its answer is no longer wanted); a page still
        waiting in a worker's pipe is run, its answer dropped."""
        if task.future.cancelled():
            for worker in self._workers:
                if worker.task is task:
                    self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` (whatever it is doing) and start another in its place; the
        pages waiting behind its first go back to the front of the queue (they never
        ran). Its first page is the caller's to answer."""
        if worker not in self._workers:
            return
        self._retire(worker)
        if not self.stopping:
            waiting = list(worker.tasks)[1:]
            self._queue.extendleft(reversed(waiting))
            self._count("extraction/workers_replaced")
            self._spawn()
            self._dispatch()

    def _retire(self, worker: _Worker) -> None:
        assert self._loop is not None
        if worker.deadline is not None:
            worker.deadline.cancel()
        self._workers.remove(worker)
        if not self._loop.is_closed():
            self._loop.remove_reader(worker.answers.fileno())
        worker.kill()

    # ------------------------------------------------------------------ lifecycle

    def engine_started(self) -> None:
        """Watch for the crawl stopping: a stop (SIGTERM, SIGINT) waits for every
        page in progress, so those in extraction are abandoned at once."""
        self._watch = LoopingCall(self._check_stopping)
        self._watch.start(STOP_CHECK_SECONDS, now=False)

    def _check_stopping(self) -> None:
        if self.crawler is not None and not self.crawler.crawling and not self.stopping:
            self.abandon()

    def close(self) -> None:
        """Stop every worker (``engine_stopped``)."""
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        self.stopping = True
        self.abandon()
        for worker in list(self._workers):
            self._retire(worker)

    # ---------------------------------------------------------------------- stats

    def _abandoned(self, url: str) -> None:
        self._count("extraction/abandoned")
        logger.info("Extraction of %s abandoned: the crawl is stopping", url)

    def _count(self, key: str) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)


def _context() -> BaseContext:
    """Fork on Linux (fast, and safe for a process that only extracts); spawn
    elsewhere (macOS system libraries do not survive a fork)."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def _widen(pipe: Connection) -> int:
    """Let `pipe` hold `PIPE_BYTES` where the system allows; the bytes it holds (0
    where that cannot be known: no page then waits in a pipe)."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None)
    size = getattr(fcntl, "F_GETPIPE_SZ", None)
    if resize is None or size is None:  # not Linux
        return 0
    with contextlib.suppress(OSError):  # over the system's maximum: its default size
        fcntl.fcntl(pipe.fileno(), resize, PIPE_BYTES)
    return fcntl.fcntl(pipe.fileno(), size)


def _serve(pages: Connection, answers: Connection) -> None:
    """A worker: extract each page it is sent on `pages` (``(site, arguments,
    boilerplate)``), answer ``(True, result)`` or ``(False, traceback)`` on `answers`,
    until the pages pipe closes."""
    # Ctrl-C, or a SIGTERM sent to the whole process group (a service manager), reaches
    # the workers too: the crawl decides what stops, and stops workers with SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A forked worker must not wake the crawl's event loop with signals of its own.
    signal.set_wakeup_fd(-1)
    # Here, as the worker starts, rather than in the crawl before the fork: the
    # crawl's one thread goes on with the feed meanwhile, and nothing of trafilatura
    # is shared copy-on-write with it (docs/benchmarks.md: a crawl took 0.92 of the
    # time). A crawl with nothing new to extract starts no worker and never imports it.
    load_trafilatura()
    while True:
        try:
            site, arguments, boilerplate = pages.recv()
        except EOFError:
            return
        try:
            result = site.extract(*arguments, boilerplate=boilerplate)
            if isinstance(result, Article):  # its search text too, off the crawl's thread
                result = with_search_text(result)
            answer: tuple[bool, Any] = (True, result)
        except Exception:
            answer = (False, traceback.format_exc())
        answers.send(answer)
