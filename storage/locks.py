"""The run lock: at most one running crawl per spider and database.

The lock is the spider's row in ``crawl_locks``.  A crawl inserts it at start,
refreshes ``heartbeat_at`` while it runs and deletes it at the end.  A row left
behind by a crawl that died (``kill -9``, a crashed host) must not block the next
run forever, so a row is taken over when its holder is provably dead: it ran on
this host and its process is gone, or a process with its pid runs but started at
another time than the holder (the pid was reused), or its heartbeat is older than
`stale_after`.

A process is known by its pid *and* its start time (`process_start_time`: Linux's
``/proc/<pid>/stat``, in clock ticks since boot); where the start time cannot be
read (another system, a row written before it was recorded) the pid alone decides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select, update

from news_archive.storage import tables
from news_archive.storage.engine import READ_ONLY_OPTION, dialect_insert


@dataclass(frozen=True, slots=True)
class LockHolder:
    """A row of ``crawl_locks``: which crawl holds a spider's lock (times UTC-aware)."""

    spider: str
    run_id: int | None
    hostname: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    # When the holder's process started (`process_start_time`); None where unknown.
    process_start: int | None = None

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.hostname}"


@dataclass(frozen=True, slots=True)
class LockResult:
    """Outcome of `acquire_run_lock`: `holder` is ours when `acquired`, the live
    holder when not; `taken_over` is the dead holder the lock was taken from."""

    acquired: bool
    holder: LockHolder
    taken_over: LockHolder | None = None


_COLUMNS = ("spider", "run_id", "hostname", "pid", "acquired_at", "heartbeat_at", "process_start")


def acquire_run_lock(
    engine: Engine,
    spider: str,
    run_id: int | None,
    hostname: str,
    pid: int,
    now: datetime,
    stale_after: timedelta | float,
) -> LockResult:
    """Take the run lock of `spider` for process `pid` on `hostname`, run `run_id`.

    `now` is an aware datetime; `stale_after` a `timedelta` or seconds.  Returns
    ``acquired=False`` with the holder's row when a live crawl holds the lock.  The
    start time of process `pid` (on this host: the caller is the crawl itself) is
    recorded with it, so that a later process given the same pid is not mistaken
    for this one.
    """
    if not isinstance(stale_after, timedelta):
        stale_after = timedelta(seconds=stale_after)
    ours = LockHolder(
        spider,
        run_id,
        hostname,
        pid,
        acquired_at=now,
        heartbeat_at=now,
        process_start=process_start_time(pid),
    )
    values = {name: getattr(ours, name) for name in _COLUMNS if name != "spider"}
    insert = dialect_insert(engine)
    # Two rounds: the holder may release between our INSERT and our SELECT.
    for _ in range(2):
        with engine.begin() as connection:
            inserted = connection.execute(
                insert(tables.locks)
                .values(spider=spider, **values)
                # The primary key decides who is first, even between two hosts.
                .on_conflict_do_nothing(index_elements=[tables.locks.c.spider])
                .returning(tables.locks.c.spider)
            ).scalar_one_or_none()
            if inserted is not None:
                return LockResult(True, ours)
            row = (
                connection.execute(select(tables.locks).where(tables.locks.c.spider == spider))
                .mappings()
                .one_or_none()
            )
        if row is not None:
            break
    else:
        raise RuntimeError(f"the run lock of {spider!r} was taken and released twice")
    holder = LockHolder(**row)
    if not _holder_is_dead(holder, hostname, now, stale_after):
        return LockResult(False, holder)
    with engine.begin() as connection:
        # Compare-and-swap on the row as we read it: of two runs that both saw the
        # same dead holder, only one matches here; the other sees rowcount 0.
        taken = connection.execute(
            update(tables.locks)
            .where(
                tables.locks.c.spider == spider,
                tables.locks.c.hostname == holder.hostname,
                tables.locks.c.pid == holder.pid,
                tables.locks.c.heartbeat_at == holder.heartbeat_at,
            )
            .values(**values)
        ).rowcount
    if taken == 1:
        return LockResult(True, ours, taken_over=holder)
    # Another run took it over in between: report who holds it now.
    return LockResult(False, read_run_lock(engine, spider) or holder)


def heartbeat(
    engine: Engine, spider: str, pid: int, now: datetime, *, hostname: str | None = None
) -> bool:
    """Record that the crawl `pid` (on `hostname`, if given) still runs; `now` is
    an aware datetime.  False when it no longer holds the lock (taken over as stale)."""
    with engine.begin() as connection:
        return (
            connection.execute(
                update(tables.locks)
                .where(*_holder_clauses(spider, pid, hostname))
                .values(heartbeat_at=now)
            ).rowcount
            == 1
        )


def release_run_lock(engine: Engine, spider: str, pid: int, *, hostname: str | None = None) -> bool:
    """Delete the lock of `spider` if process `pid` (on `hostname`, if given) holds
    it; True when a row was deleted."""
    with engine.begin() as connection:
        return (
            connection.execute(
                delete(tables.locks).where(*_holder_clauses(spider, pid, hostname))
            ).rowcount
            == 1
        )


def read_run_lock(engine: Engine, spider: str) -> LockHolder | None:
    """Who holds the lock of `spider`, or None when no crawl does."""
    # A reader: on SQLite it must not take (or wait for) the write lock.
    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
        row = (
            connection.execute(select(tables.locks).where(tables.locks.c.spider == spider))
            .mappings()
            .one_or_none()
        )
    return LockHolder(**row) if row is not None else None


def process_exists(pid: int) -> bool:
    """Whether a process `pid` exists on this host (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists, it just belongs to another user.
        return True
    return True


def process_start_time(pid: int) -> int | None:
    """When process `pid` of this host started, in clock ticks since boot (field 22
    of Linux's ``/proc/<pid>/stat``); None when it does not exist or the system has
    no ``/proc``.  With the pid, it names one process: a pid is reused, the pair is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii", errors="replace")
    except OSError:
        return None
    # Field 2, the command name in parentheses, may hold spaces and ")": the fields
    # after it start at the last ")".  Field 22 is the 20th after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _holder_is_dead(
    holder: LockHolder, hostname: str, now: datetime, stale_after: timedelta
) -> bool:
    if holder.hostname == hostname:
        if not process_exists(holder.pid):
            return True
        started = process_start_time(holder.pid)
        if None not in (holder.process_start, started) and started != holder.process_start:
            return True  # the pid now belongs to another process: the holder is gone
    # Another host's process cannot be probed: only a silent heartbeat tells.
    return now - holder.heartbeat_at > stale_after


def _holder_clauses(spider: str, pid: int, hostname: str | None) -> list[Any]:
    clauses = [tables.locks.c.spider == spider, tables.locks.c.pid == pid]
    if hostname is not None:
        clauses.append(tables.locks.c.hostname == hostname)
    return clauses
