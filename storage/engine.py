"""Building engines for the archive and bringing its schema up to date.

Nothing here runs at import time; callers (the crawler's pipeline, tests,
scripts) build an engine from the ``DATABASE_URL`` setting they were given.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # wait up to 30 s for another writer's lock
    "PRAGMA foreign_keys=ON",  # SQLite ignores ON DELETE CASCADE without it
    "PRAGMA synchronous=NORMAL",  # safe with WAL, much cheaper than FULL
)
_WAL_SWITCH_SECONDS = 30.0

# Execution option for connections that only read: on SQLite they begin with a
# plain (deferred) BEGIN and so do not hold the write lock against crawlers;
# e.g. ``engine.execution_options(archive_read_only=True)``.
READ_ONLY_OPTION = "archive_read_only"


def create_archive_engine(url: str | URL, **kw: Any) -> Engine:
    """Create an engine for the archive at `url` (``sqlite:///PATH`` or
    ``postgresql+psycopg://...``); extra keyword arguments go to `create_engine`.

    SQLite connections get WAL, foreign keys, a 30 s busy timeout, and
    transactions that start with ``BEGIN IMMEDIATE``: a deferred ``BEGIN``
    takes the write lock only at the first write, and two processes that both
    read first then deadlock on the upgrade ("database is locked") instead of
    waiting for each other.  Connections with the `READ_ONLY_OPTION` execution
    option keep a deferred ``BEGIN``.  PostgreSQL connections are pinged before use so a
    restarted server costs a reconnect, not a failed batch.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, **kw)


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Stop the sqlite3 module from issuing its own (deferred) BEGIN; `_begin_immediate`
    # issues ours.  This also keeps it from committing implicitly before DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """WAL: readers never block the writer nor the writer them.  The mode is
    stored in the file, so this is a cheap no-op once any connection has set it.

    Setting it on a new file needs an exclusive lock, and SQLite answers "database
    is locked" at once, without the busy handler, when another process is doing
    the same; two crawlers starting on a new file must wait here, not fail.
    """
    deadline = time.monotonic() + _WAL_SWITCH_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin_immediate(connection: Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        # A reader needs no write lock; in WAL it sees a snapshot and blocks no one.
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    """An Alembic `Config` for this repository's migrations, independent of the
    current directory and of ``alembic.ini`` (whose logging setup would replace
    the crawler's)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(url_or_engine: str | URL | Engine | Connection) -> None:
    """Bring the database to the newest schema revision (a no-op when it is there).

    Accepts a URL, an engine (left open) or a connection (committed here).
    Concurrent callers are safe: SQLite serialises them through ``BEGIN
    IMMEDIATE``, PostgreSQL through an advisory lock taken in ``env.py``.
    """
    if isinstance(url_or_engine, Connection):
        _upgrade(url_or_engine)
        return
    engine, owned = _engine_for(url_or_engine)
    try:
        with engine.connect() as connection:
            _upgrade(connection)
    finally:
        if owned:
            engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    # env.py commits the transaction it began; this commits one the caller had open.
    connection.commit()


def current_revision(url_or_engine: str | URL | Engine) -> str | None:
    """The database's Alembic revision, or None when it has never been migrated."""
    engine, owned = _engine_for(url_or_engine)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def _engine_for(url_or_engine: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(url_or_engine, Engine):
        return url_or_engine, False
    return create_archive_engine(url_or_engine), True


def mask_url(url: str | URL) -> str:
    """`url` with its password replaced by ``***``, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Unparseable: printing it could still leak a password, so do not.
        return "<unparseable database URL>"
