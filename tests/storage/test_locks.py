"""The run lock (``crawl_locks``) on both backends: one holder per spider, a dead
holder's row taken over exactly once, heartbeats and releases only by the holder."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from news_archive.storage import tables
from news_archive.storage.locks import (
    acquire_run_lock,
    heartbeat,
    process_exists,
    process_start_time,
    read_run_lock,
    release_run_lock,
)

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
STALE = timedelta(minutes=10)
HOST = "crawler-1"


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(child.stdout)
    assert not process_exists(pid)
    return pid


def test_the_first_run_takes_the_lock_and_a_live_holder_keeps_it(archive_engine: Engine) -> None:
    mine = os.getpid()
    first = acquire_run_lock(archive_engine, "maeil_ilbo", 1, HOST, mine, NOW, STALE)
    second = acquire_run_lock(archive_engine, "maeil_ilbo", 2, HOST, mine + 1, NOW, STALE)
    other_spider = acquire_run_lock(archive_engine, "skt_insight", 3, HOST, mine + 1, NOW, STALE)

    assert first.acquired and first.taken_over is None
    assert not second.acquired
    assert second.holder is not None
    assert (second.holder.pid, second.holder.run_id) == (mine, 1)
    assert second.holder.acquired_at == NOW
    assert other_spider.acquired


def test_a_dead_process_on_this_host_loses_its_lock(archive_engine: Engine) -> None:
    dead = _dead_pid()
    acquire_run_lock(archive_engine, "maeil_ilbo", 1, HOST, dead, NOW, STALE)

    # A minute later: the heartbeat is fresh, but the process is gone (kill -9).
    later = NOW + timedelta(minutes=1)
    result = acquire_run_lock(archive_engine, "maeil_ilbo", 2, HOST, os.getpid(), later, STALE)

    assert result.acquired
    assert result.taken_over is not None and result.taken_over.pid == dead
    lock = read_run_lock(archive_engine, "maeil_ilbo")
    assert lock is not None
    assert (lock.pid, lock.run_id, lock.acquired_at) == (os.getpid(), 2, later)


def test_a_lock_whose_pid_was_reused_by_another_process_is_taken_over(
    archive_engine: Engine,
) -> None:
    """The holder died and its pid now belongs to another live process (here: this
    test's own): its start time differs from the one recorded, so the lock is dead
    at once, not after RUN_LOCK_STALE_AFTER."""
    alive = os.getpid()
    started = process_start_time(alive)
    assert started is not None, "no /proc: the start time cannot be read here"
    first = acquire_run_lock(archive_engine, "maeil_ilbo", 1, HOST, alive, NOW, STALE)
    assert first.acquired and first.holder.process_start == started
    # Another incarnation of the same pid holds it: the one that died.
    with archive_engine.begin() as connection:
        connection.execute(update(tables.locks).values(process_start=started - 1))

    later = NOW + timedelta(seconds=5)  # heartbeat fresh, pid alive
    result = acquire_run_lock(archive_engine, "maeil_ilbo", 2, HOST, alive, later, STALE)

    assert result.acquired
    assert result.taken_over is not None and result.taken_over.process_start == started - 1
    lock = read_run_lock(archive_engine, "maeil_ilbo")
    assert lock is not None and (lock.run_id, lock.process_start) == (2, started)


def test_a_live_holder_with_its_own_start_time_keeps_the_lock(archive_engine: Engine) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        acquire_run_lock(archive_engine, "maeil_ilbo", 1, HOST, child.pid, NOW, STALE)
        holder = read_run_lock(archive_engine, "maeil_ilbo")
        assert holder is not None and holder.process_start == process_start_time(child.pid)
        later = NOW + timedelta(minutes=1)
        result = acquire_run_lock(archive_engine, "maeil_ilbo", 2, HOST, os.getpid(), later, STALE)
        assert not result.acquired
        # A row without a start time (written before it was recorded): the pid decides.
        with archive_engine.begin() as connection:
            connection.execute(update(tables.locks).values(process_start=None))
        assert not acquire_run_lock(
            archive_engine, "maeil_ilbo", 3, HOST, os.getpid(), later, STALE
        ).acquired
    finally:
        child.kill()
        child.wait()


def test_process_start_time_names_one_process() -> None:
    mine = process_start_time(os.getpid())
    assert mine is not None and mine > 0
    assert process_start_time(os.getpid()) == mine
    assert process_start_time(_dead_pid()) is None


def test_another_hosts_lock_is_taken_over_only_when_its_heartbeat_is_stale(
    archive_engine: Engine,
) -> None:
    acquire_run_lock(archive_engine, "maeil_ilbo", 1, "crawler-2", 4242, NOW, STALE)

    fresh = acquire_run_lock(archive_engine, "maeil_ilbo", 2, HOST, os.getpid(), NOW + STALE, STALE)
    stale = acquire_run_lock(
        archive_engine,
        "maeil_ilbo",
        3,
        HOST,
        os.getpid(),
        NOW + STALE + timedelta(seconds=1),
        STALE,
    )

    assert not fresh.acquired
    assert stale.acquired
    assert stale.taken_over is not None and stale.taken_over.hostname == "crawler-2"


def test_a_heartbeat_keeps_a_lock_from_going_stale(archive_engine: Engine) -> None:
    acquire_run_lock(archive_engine, "maeil_ilbo", 1, "crawler-2", 4242, NOW, STALE)
    assert heartbeat(archive_engine, "maeil_ilbo", 4242, NOW + STALE, hostname="crawler-2")

    result = acquire_run_lock(
        archive_engine, "maeil_ilbo", 2, HOST, os.getpid(), NOW + STALE * 1.5, STALE
    )

    assert not result.acquired
    # Not the holder: its heartbeat changes nothing and says so.
    assert not heartbeat(archive_engine, "maeil_ilbo", 4242, NOW, hostname=HOST)


def test_only_the_holder_releases(archive_engine: Engine) -> None:
    acquire_run_lock(archive_engine, "maeil_ilbo", 1, HOST, 4242, NOW, STALE)

    assert not release_run_lock(archive_engine, "maeil_ilbo", 4243, hostname=HOST)
    assert not release_run_lock(archive_engine, "maeil_ilbo", 4242, hostname="crawler-2")
    assert read_run_lock(archive_engine, "maeil_ilbo") is not None
    assert release_run_lock(archive_engine, "maeil_ilbo", 4242, hostname=HOST)
    assert read_run_lock(archive_engine, "maeil_ilbo") is None
    assert acquire_run_lock(archive_engine, "maeil_ilbo", 2, HOST, 4243, NOW, STALE).acquired


def test_a_dead_holder_is_taken_over_exactly_once(archive_engine: Engine) -> None:
    acquire_run_lock(archive_engine, "maeil_ilbo", 1, "gone", 4242, NOW, STALE)
    later = NOW + STALE * 2

    def contend(number: int) -> bool:
        return acquire_run_lock(
            archive_engine,
            "maeil_ilbo",
            10 + number,
            f"crawler-{number}",
            100 + number,
            later,
            STALE,
        ).acquired

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(contend, range(8)))

    assert outcomes.count(True) == 1
    lock = read_run_lock(archive_engine, "maeil_ilbo")
    assert lock is not None and lock.hostname == f"crawler-{outcomes.index(True)}"
