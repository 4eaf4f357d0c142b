"""Telling a database outage from a value the database refuses.

Every failed write is one of three kinds, and each asks for a different answer:

- ``OUTAGE``: the server cannot be reached or cannot answer (connection refused or
  lost, server shutting down or restarting, no answer within the deadline,
  statement timeout, out of connections or disk).  Nothing about the rows is
  wrong: keep them and try again later.
- ``CONTENTION``: another transaction is in the way (deadlock, serialization
  failure, lock not available, SQLite busy).  Trying the same thing again soon
  usually works.
- ``REFUSED``: the database refuses these values (data exception, constraint,
  index row too large, a value our own types reject).  Trying again never works:
  the row that carries the value is refused, the others must still be written.

PostgreSQL says which in the SQLSTATE of its error; SQLite in its error code.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

FaultKind = Literal["outage", "contention", "refused"]
OUTAGE: FaultKind = "outage"
CONTENTION: FaultKind = "contention"
REFUSED: FaultKind = "refused"

# SQLSTATE classes (first two characters) and codes, after the PostgreSQL manual's
# appendix A.  Class 08: connection exception; 53: insufficient resources (disk
# full, out of memory, too many connections); 57P: operator intervention (admin
# or crash shutdown, cannot connect now); 58: system error (I/O).
_OUTAGE_CLASSES = ("08", "53", "58", "57P")
# 57014 query_canceled: the statement timeout expired; 25006 read_only_sql_transaction:
# a standby answers (a failover in progress), the primary will again.
_OUTAGE_CODES = ("57014", "25006")
# 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available.
_CONTENTION_CODES = ("40001", "40P01", "55P03")

_SQLITE_CONTENTION = ("SQLITE_BUSY", "SQLITE_LOCKED")
# The file cannot be opened, read or grown: no row of any batch can be written.
_SQLITE_OUTAGE = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_NOMEM")


def fault_kind(error: BaseException) -> FaultKind:
    """Which kind of failure `error` (a SQLAlchemy, driver or other exception) is."""
    if getattr(error, "archive_fault", None) in (OUTAGE, CONTENTION):
        return error.archive_fault  # type: ignore[attr-defined, no-any-return]
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return OUTAGE
        return _driver_fault(error.orig)
    if isinstance(error, PoolTimeout):
        # Every pooled connection is busy (or hung): nothing about the rows is wrong.
        return OUTAGE
    if isinstance(error, sqlite3.Error) or _is_psycopg_error(error):
        return _driver_fault(error)
    # Not the database's answer: a value our own types refused (a naive datetime,
    # a key too long), or a bug; neither passes by trying again.
    return REFUSED


def is_transient(error: BaseException) -> bool:
    """Whether `error` may pass by itself (an outage or contention)."""
    return fault_kind(error) != REFUSED


def _driver_fault(error: BaseException) -> FaultKind:
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return _sqlstate_fault(sqlstate)
    if isinstance(error, sqlite3.Error):
        return _sqlite_fault(error)
    # psycopg raises errors without a SQLSTATE when no server answered them: a
    # connection that failed, broke or timed out (OperationalError, InterfaceError).
    # Its DataError without a SQLSTATE is a value it could not send.
    if _is_psycopg_error(error):
        import psycopg

        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return OUTAGE
    return REFUSED


def _sqlstate_fault(sqlstate: str) -> FaultKind:
    if sqlstate in _CONTENTION_CODES:
        return CONTENTION
    if sqlstate in _OUTAGE_CODES or sqlstate.startswith(_OUTAGE_CLASSES):
        return OUTAGE
    return REFUSED


def _sqlite_fault(error: sqlite3.Error) -> FaultKind:
    name = getattr(error, "sqlite_errorname", "") or ""
    message = str(error).lower()
    if name.startswith(_SQLITE_CONTENTION) or "locked" in message or "busy" in message:
        return CONTENTION
    if name.startswith(_SQLITE_OUTAGE) or "unable to open database" in message:
        return OUTAGE
    return REFUSED


def _is_psycopg_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("psycopg")


class PartialWrite(Exception):
    """An outage cut a row-by-row write short: the first `handled` rows were each
    committed or refused (`refused`: their indexes and errors), the rest were not
    tried.  Its cause is the outage's error."""

    archive_fault: FaultKind = OUTAGE

    def __init__(self, handled: int, refused: list[tuple[int, BaseException]]) -> None:
        super().__init__(f"outage after {handled} rows written one by one")
        self.handled = handled
        self.refused = refused


_Row = TypeVar("_Row")


def write_rows(
    engine: Engine,
    rows: Sequence[_Row],
    write: Callable[[Connection, Sequence[_Row]], None],
    *,
    attempts: int = 5,
    backoff: float = 0.05,
) -> list[tuple[int, BaseException]]:
    """Write `rows` with ``write(connection, rows)`` in one transaction; return the
    rows the database refused, as (index, error) pairs.

    Only when the batch fails with a refused value are the rows written one by
    one, each in a transaction of its own, so that the refused value costs its
    row alone; a batch is never committed row by row otherwise.  Contention is
    retried (`attempts` in all, waiting `backoff` seconds, doubled each time).  An
    outage raises: the batch's own error (nothing written), or `PartialWrite`
    when it came in the middle of the rows one by one.
    """
    if not rows:
        return []
    try:
        _attempt(engine, lambda connection: write(connection, rows), attempts, backoff)
        return []
    except Exception as error:
        if is_transient(error):
            raise
    refused: list[tuple[int, BaseException]] = []
    for index, row in enumerate(rows):
        try:
            _attempt(
                engine, lambda connection, row=row: write(connection, [row]), attempts, backoff
            )
        except Exception as error:
            if is_transient(error):
                raise PartialWrite(index, refused) from error
            refused.append((index, error))
    return refused


def _attempt(
    engine: Engine, work: Callable[[Connection], None], attempts: int, backoff: float
) -> None:
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                work(connection)
            return
        except Exception as error:
            if fault_kind(error) != CONTENTION or attempt == attempts - 1:
                raise
            time.sleep(backoff * 2**attempt)
